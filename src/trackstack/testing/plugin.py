"""The pytest plugin (entry point ``pytest11``) that runs the suite on a configured tracker.

``pytest --pyargs trackstack.testing --trackstack-config tracker.yaml`` runs
``TrackerConformance`` against the tracker the file describes, reading runs
back with the reader its flavor registers under ``trackstack.readers``. This
module stays light: it is loaded by every pytest run where trackstack is installed.
"""

from __future__ import annotations

import pytest

__all__ = ["pytest_addoption"]

# Show the suite's failing comparisons in detail, as pytest does for test modules.
pytest.register_assert_rewrite("trackstack.testing.conformance")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("trackstack", "trackstack conformance suite")
    group.addoption(
        "--trackstack-config",
        default=None,
        metavar="FILE",
        help="run trackstack.testing's conformance suite on the tracker this YAML "
        "or TOML file describes (with: pytest --pyargs trackstack.testing)",
    )
