"""trackstack: one experiment-tracking API in front of MLflow, W&B and a local store.

Names load on first use, so ``import trackstack`` stays cheap (no pydantic, no
backend SDK, not even ``typing``) until a tracker is actually needed.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from trackstack.compare import RunComparison, compare_runs
    from trackstack.config import load_tracker
    from trackstack.enums import RunStatus
    from trackstack.experiment_trackers import StepRunInfo
    from trackstack.fanout import fan_out
    from trackstack.records import MetricPoint, RunRecord
    from trackstack.registry import FlavorInfo, get_flavor, list_flavors
    from trackstack.run import Run
    from trackstack.syncing import sync

__version__ = "0.1.0"

__all__ = [
    "FlavorInfo",
    "MetricPoint",
    "Run",
    "RunComparison",
    "RunRecord",
    "RunStatus",
    "StepRunInfo",
    "compare_runs",
    "fan_out",
    "get_flavor",
    "list_flavors",
    "load_tracker",
    "sync",
]

_HOMES = {
    "FlavorInfo": "trackstack.registry",
    "MetricPoint": "trackstack.records",
    "Run": "trackstack.run",
    "RunComparison": "trackstack.compare",
    "RunRecord": "trackstack.records",
    "RunStatus": "trackstack.enums",
    "StepRunInfo": "trackstack.experiment_trackers",
    "compare_runs": "trackstack.compare",
    "fan_out": "trackstack.fanout",
    "get_flavor": "trackstack.registry",
    "list_flavors": "trackstack.registry",
    "load_tracker": "trackstack.config",
    "sync": "trackstack.syncing",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'trackstack' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
