"""The suite runs with no code on a configured tracker, through the pytest plugin."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def run_suite(folder: Path, config: str) -> subprocess.CompletedProcess[str]:
    (folder / "tracker.yaml").write_text(config)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "trackstack.testing",
         "--trackstack-config", "tracker.yaml", "-p", "no:cacheprovider", "-rs"],
        capture_output=True, text=True, cwd=folder,
    )  # fmt: skip


def test_pytest_pyargs_runs_the_suite_in_a_scratch_folder(isolated_cwd: Path) -> None:
    result = run_suite(
        isolated_cwd,
        "experiment_tracker:\n  flavor: local\n  config:\n    root: ${TRACKSTACK_TEST_DIR}/store\n",
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "the local flavor declares sdk_active_run=False" in result.stdout
    (scratch,) = re.findall(r"scratch folder \$TRACKSTACK_TEST_DIR=(\S+),", result.stdout)
    assert (Path(scratch) / "store" / "trackstack.db").is_file()
    assert not (isolated_cwd / ".trackstack").exists(), "journals belong in the scratch folder"
    assert "does not use" not in result.stdout


def test_a_config_that_names_its_own_store_is_said_to_fill_it(isolated_cwd: Path) -> None:
    result = run_suite(
        isolated_cwd, "experiment_tracker:\n  flavor: local\n  config:\n    root: store\n"
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "tracker.yaml does not use ${TRACKSTACK_TEST_DIR}" in result.stdout
    assert (isolated_cwd / "store" / "trackstack.db").is_file()


def test_without_a_config_the_suite_says_what_to_pass(isolated_cwd: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "trackstack.testing", "-x", "-q",
         "-p", "no:cacheprovider"],
        capture_output=True, text=True, cwd=isolated_cwd,
    )  # fmt: skip
    assert result.returncode == 1
    assert "pass --trackstack-config FILE" in result.stdout
