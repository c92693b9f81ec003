"""The suite runs with no code on a configured tracker, through the pytest plugin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_pytest_pyargs_runs_the_suite_on_a_config_file(isolated_cwd: Path) -> None:
    (isolated_cwd / "tracker.yaml").write_text(
        "experiment_tracker:\n  flavor: local\n  config:\n    root: store\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "trackstack.testing",
         "--trackstack-config", "tracker.yaml", "-p", "no:cacheprovider", "-q", "-rs"],
        capture_output=True, text=True, cwd=isolated_cwd,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert "the local flavor declares sdk_active_run=False" in result.stdout
    assert " passed, 1 skipped" in result.stdout
    assert (isolated_cwd / "store" / "trackstack.db").is_file()


def test_without_a_config_the_suite_says_what_to_pass(isolated_cwd: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "trackstack.testing", "-x", "-q",
         "-p", "no:cacheprovider"],
        capture_output=True, text=True, cwd=isolated_cwd,
    )  # fmt: skip
    assert result.returncode == 1
    assert "pass --trackstack-config FILE" in result.stdout
