"""trackstack's measured claims; run with ``nox -s bench`` or ``python -m benchmarks``."""
