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
    "trackstack_mlflow": "import trackstack_mlflow",
    "trackstack_wandb": "import trackstack_wandb",
    "mlflow": "import mlflow",
    "wandb": "import wandb",
}
# Prints the seconds, then whether the import pulled in an SDK (an adapter must not).
TIMER = (
    "import time, sys; t = time.perf_counter(); {code}; s = time.perf_counter() - t; "
    "print(s); print(sorted({{m.split('.')[0] for m in sys.modules}} & {{'mlflow', 'wandb'}}))"
)


def _installed(code: str) -> bool:
    module = code.split()[1].rstrip(";")
    return importlib.util.find_spec(module) is not None


def _time_once(code: str) -> tuple[float, str]:
    result = subprocess.run(
        [sys.executable, "-c", TIMER.format(code=code)],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, sdks = result.stdout.strip().splitlines()[-2:]
    return float(seconds), sdks


def run(repetitions: int = 7) -> dict[str, Any]:
    """Median seconds per import, and each SDK's import time as a multiple of trackstack's."""
    present = {name: code for name, code in CANDIDATES.items() if _installed(code)}
    sdks_loaded = {name: _time_once(code)[1] for name, code in present.items()}  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in present}
    for _ in range(repetitions):
        for name, code in present.items():
            samples[name].append(_time_once(code)[0])
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["trackstack"]
    return {
        "repetitions": repetitions,
        "median_seconds": medians,
        "times_trackstack": {name: value / base for name, value in medians.items()},
        "sdks_loaded": sdks_loaded,
        "missing": sorted(set(CANDIDATES) - set(present)),
    }
