"""``python -m trackstack``: the same as the ``trackstack`` command."""

from trackstack.cli import main

main(prog_name="trackstack")
