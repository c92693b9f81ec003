"""Peak memory of a run logging many points, and what its journal wrote to disk.

Each size runs in a fresh process that logs through trackstack into the local
store (4 metrics per step) and reports its peak resident set size; the peak
should not grow with the number of points. The journal's cost is its bytes
per point and the fsyncs it made (on a cadence and at the end). The same loop with a no-op tracker
(the call does nothing), in a process that imported as much, is the baseline.
The peak is Linux's VmHWM: unlike ``ru_maxrss``, it starts afresh at exec
instead of carrying the parent's peak.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

SIZES = (10_000, 100_000, 1_000_000)
CHILD = """
import json, sys, tempfile, time
import trackstack

def peak_mib():
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

points, noop = int(sys.argv[1]), sys.argv[2] == "noop"
tracker = trackstack.load_tracker({"flavor": "local", "config": {"root": tempfile.mkdtemp()}})
baseline = peak_mib()
start = time.perf_counter()
with tracker.start_run() as run:
    journal = run._sender.journal  # read after the end, when the journal is closed and gone
    log = (lambda metrics, step: None) if noop else run.log_metrics
    for step in range(points // 4):
        log({"a": step, "b": step / 2, "c": step / 3, "d": step / 4}, step=step)
seconds = time.perf_counter() - start
print(json.dumps({
    "baseline_mib": baseline, "peak_mib": peak_mib(), "seconds": seconds,
    "journal_bytes_per_point": journal.size / points, "fsyncs": journal.fsyncs,
}))
"""


def _child(points: int, mode: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(points), mode], capture_output=True, text=True, check=True
    )
    figures: dict[str, float] = json.loads(out.stdout)
    return figures


def run() -> dict[str, Any]:
    """Per number of points: peak RSS (MiB) with trackstack and with a no-op, the time,
    journal bytes per point and fsyncs."""
    results = {}
    for points in SIZES:
        figures = _child(points, "trackstack")
        figures["noop_peak_mib"] = _child(points, "noop")["peak_mib"]
        results[str(points)] = figures
    return results
