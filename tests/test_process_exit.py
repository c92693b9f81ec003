"""At process exit no run is left RUNNING by accident, and no buffered point is dropped."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import trackstack
from trackstack import RunStatus

START = """
import os, signal, sys, trackstack
tracker = trackstack.load_tracker({"flavor": "local", "config": {"root": "store"}})
tracker.flush_interval = 3600
run = tracker.start_run()
run.log_metrics({"m": 1.0})
run.log_metrics({"m": 2.0})
print(run.id, flush=True)
"""


def run_script(folder: Path, ending: str) -> tuple[subprocess.CompletedProcess[str], str]:
    script = folder / "train.py"
    script.write_text(START + textwrap.dedent(ending))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=folder, timeout=60
    )
    return result, result.stdout.split()[0]


def stored(folder: Path, run_id: str) -> trackstack.RunRecord:
    tracker = trackstack.load_tracker({"flavor": "local", "config": {"root": folder / "store"}})
    return tracker.get_run(run_id)


@pytest.mark.parametrize(
    ("ending", "status", "returncode"),
    [
        ("raise RuntimeError('crash')", RunStatus.FAILED, 1),
        ("raise KeyboardInterrupt", RunStatus.KILLED, -signal.SIGINT),
        ("os.kill(os.getpid(), signal.SIGTERM)", RunStatus.KILLED, -signal.SIGTERM),
        ("pass", RunStatus.RUNNING, 0),
    ],
    ids=["uncaught-exception", "ctrl-c", "sigterm", "normal-exit"],
)
def test_exit_sends_every_point_and_marks_runs_left_open(
    isolated_cwd: Path, ending: str, status: RunStatus, returncode: int
) -> None:
    result, run_id = run_script(isolated_cwd, ending)
    assert result.returncode == returncode, result.stderr
    record = stored(isolated_cwd, run_id)
    assert [p.value for p in record.metrics["m"]] == [1.0, 2.0]
    assert record.status is status


def test_a_sigterm_handler_the_program_had_runs_after_trackstacks(isolated_cwd: Path) -> None:
    script = isolated_cwd / "own_handler.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, signal, trackstack
            signal.signal(signal.SIGTERM, lambda *_: print("own handler", flush=True))
            tracker = trackstack.load_tracker({"flavor": "local", "config": {"root": "store"}})
            run = tracker.start_run()
            print(run.id, flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
            print("still running", flush=True)
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=isolated_cwd, timeout=60
    )
    assert result.returncode == 0, result.stderr
    run_id, *said = result.stdout.split("\n")
    assert said[:2] == ["own handler", "still running"]
    assert stored(isolated_cwd, run_id).status is RunStatus.KILLED
