"""Training processes killed at a random moment, and what survives of them, counted.

The child logs ``{"a": step, "b": -step}`` at each step and writes the step to
its stdout after ``log_metrics`` returned, so the last step the parent reads is
a point the journal promised to keep.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOOP = """
import os, sys, time, trackstack
tracker = trackstack.load_tracker({config!r})
tracker.flush_interval = {flush_interval}
{setup}
run = tracker.start_run(experiment="killed")
print("run", run.id, flush=True)
out = sys.stdout.fileno()
for step in range(10**9):
    run.log_metrics({{"a": step, "b": -step}}, step=step)
    os.write(out, b"%d\\n" % step)
"""


@dataclass
class KillReport:
    run_id: str
    logged: int
    """Steps whose log_metrics returned before the kill (each two points)."""
    found: int
    duplicates: int
    missing: int
    status: str

    def __str__(self) -> str:
        return (
            f"killed run {self.run_id}: logged {self.logged} steps, found {self.found}, "
            f"duplicates {self.duplicates}, missing {self.missing}, status {self.status}"
        )


def start_loop(folder: Path, config: dict[str, Any], *, setup: str = "",
               flush_interval: float = 0.05) -> subprocess.Popen[bytes]:  # fmt: skip
    script = folder / "loop.py"
    script.write_text(
        textwrap.dedent(LOOP).format(config=config, setup=setup, flush_interval=flush_interval)
    )
    return subprocess.Popen(
        [sys.executable, str(script)], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def kill_after(
    process: subprocess.Popen[bytes],
    steps: int,
    seed: int,
    *,
    before: Callable[[], object] = lambda: None,
    grace: float | None = None,
) -> tuple[str, int]:
    """Wait for ``steps`` steps, then a random few more, then kill; the run id and last step.

    ``before`` runs just before the kill. With ``grace``, the process gets a
    SIGTERM and that many seconds before the SIGKILL, as ``docker stop`` does.
    """
    assert process.stdout is not None
    head = process.stdout.readline().split()
    if head[:1] != [b"run"]:
        raise AssertionError(f"the loop did not start: {process.communicate(timeout=60)}")
    run_id = head[1].decode()
    target = steps + random.Random(seed).randrange(steps)
    last = -1
    deadline = time.monotonic() + 300
    while last < target:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"the loop died: {process.communicate(timeout=60)}")
        last = int(line)
        assert time.monotonic() < deadline, "the loop did not get that far"
    before()
    if grace is not None:
        os.kill(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    rest, _ = process.communicate(timeout=60)  # what it wrote before it died
    for line in rest.splitlines():
        if line.strip().isdigit():
            last = int(line)
    return run_id, last


def count(run_id: str, last: int, steps: Iterable[tuple[str, int]], status: str) -> KillReport:
    seen = Counter(steps)
    expected = {(key, step) for step in range(last + 1) for key in ("a", "b")}
    missing = len(expected - set(seen))
    duplicates = sum(n - 1 for n in seen.values() if n > 1)
    return KillReport(run_id, last + 1, len(seen), duplicates, missing, status)


def sync_cli(folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trackstack", "sync", *arguments],
        cwd=folder, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
