"""The pytest plugin (entry point ``pytest11``) that runs the suite on a configured tracker.

``pytest --pyargs trackstack.testing --trackstack-config tracker.yaml`` runs
``TrackerConformance`` against the tracker the file describes, reading runs
back with the reader its flavor registers under ``trackstack.readers``.

So that the suite never fills a real store, each such session gets a fresh
scratch folder, ``$TRACKSTACK_TEST_DIR``, for the file to point its store at
(``root: ${TRACKSTACK_TEST_DIR}/store``); run journals go under it too. This
module stays light: it is loaded by every pytest run where trackstack is installed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

__all__ = ["pytest_addoption", "pytest_configure", "pytest_report_header"]

SCRATCH = "TRACKSTACK_TEST_DIR"

# Show the suite's failing comparisons in detail, as pytest does for test modules.
pytest.register_assert_rewrite("trackstack.testing")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("trackstack", "trackstack conformance suite")
    group.addoption(
        "--trackstack-config",
        default=None,
        metavar="FILE",
        help="run trackstack.testing's conformance suite on the tracker this YAML "
        "or TOML file describes (with: pytest --pyargs trackstack.testing); "
        f"${SCRATCH} is a fresh folder for the file's store",
    )


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--trackstack-config", None)
    if not path:
        return
    scratch = Path(tempfile.mkdtemp(prefix="trackstack-conformance-"))
    os.environ[SCRATCH] = str(scratch)
    os.environ["TRACKSTACK_JOURNAL"] = str(scratch / "journal")
    from trackstack.config import load_tracker
    from trackstack.errors import TrackstackError

    try:  # a broken file is one error, not one per test
        load_tracker(path)
    except TrackstackError as error:
        raise pytest.UsageError(f"--trackstack-config {path}: {error}") from None


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    path = config.getoption("--trackstack-config", None)
    if not path:
        return None
    scratch = os.environ[SCRATCH]
    lines = [
        f"trackstack conformance suite on {path}: scratch folder ${SCRATCH}={scratch}, "
        f"run journals in {scratch}/journal"
    ]
    try:
        uses_scratch = SCRATCH in Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        uses_scratch = True  # the suite's own fixture says what is wrong with the file
    if not uses_scratch:
        lines.append(
            f"note: {path} does not use ${{{SCRATCH}}}: the suite's runs go to the store it "
            f"names (e.g. write root: ${{{SCRATCH}}}/store to keep them out of it)"
        )
    return lines
