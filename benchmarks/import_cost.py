"""What importing trackstack costs, against importing the backends' own SDKs.

Each import runs in a fresh interpreter, alternating between the candidates,
after a warm-up round, and is timed from inside the process (``-X importtime``
would change what it measures): the figure is the import alone, not start-up.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
from typing import Any

CANDIDATES = {
    "trackstack": "import trackstack",
    "trackstack+local tracker": "import trackstack; trackstack.load_tracker({'flavor': 'local'})",
    "mlflow": "import mlflow",
    "wandb": "import wandb",
}
TIMER = "import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"


def _installed(code: str) -> bool:
    module = code.split()[1].rstrip(";")
    return importlib.util.find_spec(module) is not None


def _time_once(code: str) -> float:
    result = subprocess.run(
        [sys.executable, "-c", TIMER.format(code=code)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def run(repetitions: int = 7) -> dict[str, Any]:
    """Median seconds per import, and each SDK's import time as a multiple of trackstack's."""
    present = {name: code for name, code in CANDIDATES.items() if _installed(code)}
    for code in present.values():
        _time_once(code)  # warm-up: fills the OS page cache and writes .pyc files
    samples: dict[str, list[float]] = {name: [] for name in present}
    for _ in range(repetitions):
        for name, code in present.items():
            samples[name].append(_time_once(code))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["trackstack"]
    return {
        "repetitions": repetitions,
        "median_seconds": medians,
        "times_trackstack": {name: value / base for name, value in medians.items()},
        "missing": sorted(set(CANDIDATES) - set(present)),
    }
