"""What a run looks like when it is read back, whatever the backend.

Plain dataclasses rather than pydantic models: a run can hold millions of
metric points, and reading them back should not pay for validation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from trackstack.enums import RunStatus

__all__ = ["MetricPoint", "RunRecord", "keyed_points"]


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One logged value of a metric."""

    step: int
    value: float
    timestamp: float
    """Seconds since the epoch, taken when the point was logged."""


def keyed_points(rows: Iterable[Sequence[Any]]) -> list[tuple[str, MetricPoint]]:
    """``(key, step, value, timestamp)`` rows as the ``(key, MetricPoint)`` pairs hooks take.

    The journal and its cache keep plain rows; points are made only to send.
    """
    return [(key, MetricPoint(step, value, at)) for key, step, value, at in rows]


@dataclass(frozen=True)
class RunRecord:
    """A run as the backend holds it."""

    id: str
    name: str | None
    experiment: str
    status: RunStatus
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, list[MetricPoint]] = field(default_factory=dict)
    """Every point of every metric, in logging order."""
    artifacts: list[str] = field(default_factory=list)
    """File paths relative to the run's artifact root, with ``/`` separators."""
    start_time: datetime | None = None
    end_time: datetime | None = None
    """Timezone-aware; ``None`` while the run is running."""
    url: str | None = None
    parent_id: str | None = None

    def final_metrics(self) -> dict[str, float]:
        """Each metric's value at its highest step (the last logged on ties)."""
        finals: dict[str, float] = {}
        for key, points in self.metrics.items():
            if points:
                # max() keeps the first of equal keys, so scan newest first.
                finals[key] = max(reversed(points), key=lambda p: p.step).value
        return finals

    def last_step(self) -> int | None:
        """The highest step any metric of this run reached."""
        steps = [p.step for points in self.metrics.values() for p in points]
        return max(steps, default=None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: times as ISO strings, points as ``{step, value, timestamp}``."""
        return {
            "id": self.id,
            "name": self.name,
            "experiment": self.experiment,
            "status": self.status.value,
            "params": dict(self.params),
            "tags": dict(self.tags),
            "metrics": {
                key: [{"step": p.step, "value": p.value, "timestamp": p.timestamp} for p in points]
                for key, points in self.metrics.items()
            },
            "artifacts": list(self.artifacts),
            "start_time": self.start_time.isoformat() if self.start_time else None,
            "end_time": self.end_time.isoformat() if self.end_time else None,
            "url": self.url,
            "parent_id": self.parent_id,
        }
