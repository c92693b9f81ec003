"""A journal folder on a read-only or full disk: no OSError reaches the loop, nothing is lost.

Each case runs a training script inside its own mount namespace (``unshare -m``)
with the journal folder on a tiny tmpfs of its own, mounted read-only or
filled up: real ``EROFS`` and ``ENOSPC`` from the kernel, not mocks.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

POINTS = 20_000
SCRIPT = """
import trackstack
tracker = trackstack.load_tracker({config!r})
run = tracker.start_run(experiment="disk")
run.log_params({{"lr": 0.1}})
for step in range({points}):
    run.log_metrics({{"m": step}}, step=step)
run.set_tags({{"done": "yes"}})
run.end()
print(run.id, flush=True)
"""


def run_on_mount(
    folder: Path, options: str, fill: bool = False
) -> subprocess.CompletedProcess[str]:
    if shutil.which("unshare") is None:
        pytest.fail("these tests need unshare (util-linux) and root to mount a small tmpfs")
    journal = folder / "journal"
    journal.mkdir()
    config = {"flavor": "local", "config": {"root": str(folder / "store")}}
    script = folder / "train.py"
    script.write_text(SCRIPT.format(config=config, points=POINTS))
    filling = f"head -c 100000000 /dev/zero > {journal}/filler 2>/dev/null;" if fill else ""
    command = (
        f"mount -t tmpfs -o {options} tmpfs {journal} && {filling} "
        f"TRACKSTACK_JOURNAL={journal} exec {sys.executable} {script}"
    )
    result = subprocess.run(["unshare", "-m", "sh", "-c", command], cwd=folder,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert "mount:" not in result.stderr, f"could not mount a tmpfs here: {result.stderr}"
    return result


def stored(folder: Path, run_id: str) -> tuple[int, str]:
    with sqlite3.connect(folder / "store" / "trackstack.db") as conn:
        (points,) = conn.execute(
            "SELECT count(*) FROM metrics WHERE run_id = ?", (run_id,)
        ).fetchone()
        (status,) = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    return int(points), str(status)


@pytest.mark.parametrize(
    ("options", "fill"),
    [("ro,size=1m", False), ("size=64k", False), ("size=1m", True)],
    ids=["read-only", "fills-up-mid-run", "full-from-the-start"],
)
def test_a_journal_folder_that_cannot_be_written_warns_once_and_loses_nothing(
    isolated_cwd: Path, options: str, fill: bool
) -> None:
    result = run_on_mount(isolated_cwd, options, fill)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "OSError" not in result.stderr
    assert result.stderr.count("cannot write the journal") == 1, result.stderr
    assert "TRACKSTACK_JOURNAL" in result.stderr
    points, status = stored(isolated_cwd, result.stdout.strip())
    print(f"{options}{' filled' if fill else ''}: logged {POINTS}, found {points}")
    assert (points, status) == (POINTS, "FINISHED")
