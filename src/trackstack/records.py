"""What a run looks like when it is read back, whatever the backend.

Plain dataclasses rather than pydantic models: a run can hold millions of
metric points, and reading them back should not pay for validation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, overload

from trackstack.enums import RunStatus

__all__ = [
    "LazyArtifacts",
    "LazyHistories",
    "MetricPoint",
    "RunRecord",
    "keyed_points",
    "summarize",
]


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


class LazyHistories(Mapping[str, list[MetricPoint]]):
    """Metric histories that are fetched on first use, all at once.

    The keys are known up front (the backend listed them with each run), so
    ``len``, ``in`` and iterating over names cost nothing; the first history
    asked for fetches every one with ``load`` (an adapter's bulk or concurrent
    read). It reads like the dict it stands for, equality included.
    """

    def __init__(
        self, keys: Iterable[str], load: Callable[[], Mapping[str, list[MetricPoint]]]
    ) -> None:
        self._keys = list(dict.fromkeys(keys))
        self._load = load
        self._loaded: dict[str, list[MetricPoint]] | None = None
        self._lock = threading.Lock()

    def _histories(self) -> dict[str, list[MetricPoint]]:
        with self._lock:
            if self._loaded is None:
                loaded = self._load()
                self._loaded = {key: list(loaded.get(key, [])) for key in self._keys}
            return self._loaded

    @property
    def loaded(self) -> bool:
        """Whether the histories have been fetched."""
        return self._loaded is not None

    def __getitem__(self, key: str) -> list[MetricPoint]:
        if key not in self._keys:
            raise KeyError(key)
        return self._histories()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __repr__(self) -> str:
        if self._loaded is None:
            return f"LazyHistories({self._keys!r}, not fetched)"
        return repr(self._loaded)


class LazyArtifacts(Sequence[str]):
    """Artifact paths listed on first use; reads like the list it stands for."""

    def __init__(self, load: Callable[[], Iterable[str]]) -> None:
        self._load = load
        self._loaded: list[str] | None = None
        self._lock = threading.Lock()

    def _paths(self) -> list[str]:
        with self._lock:
            if self._loaded is None:
                self._loaded = sorted(self._load())
            return self._loaded

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        return self._paths()[index]

    def __len__(self) -> int:
        return len(self._paths())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return self._paths() == list(other)
        return NotImplemented

    def __hash__(self) -> int:  # mutable-looking, like the list it stands for
        raise TypeError("unhashable type: 'LazyArtifacts'")

    def __repr__(self) -> str:
        return repr(self._loaded) if self._loaded is not None else "LazyArtifacts(not listed)"


@dataclass(frozen=True)
class RunRecord:
    """A run as the backend holds it."""

    id: str
    name: str | None
    experiment: str
    status: RunStatus
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: Mapping[str, list[MetricPoint]] = field(default_factory=dict)
    """Every point of every metric, in logging order; may be fetched on first use
    (``LazyHistories``), so that listing runs reads no history."""
    artifacts: Sequence[str] = field(default_factory=list)
    """File paths relative to the run's artifact root, with ``/`` separators; may be
    listed on first use (``LazyArtifacts``)."""
    start_time: datetime | None = None
    end_time: datetime | None = None
    """Timezone-aware; ``None`` while the run is running."""
    url: str | None = None
    parent_id: str | None = None
    summary: dict[str, MetricPoint] = field(default_factory=dict)
    """Each metric's point at its highest step (the last logged on ties). Given by the
    backend with lazy histories; else worked out from ``metrics``."""

    def __post_init__(self) -> None:
        if not self.summary and self.metrics and not isinstance(self.metrics, LazyHistories):
            object.__setattr__(self, "summary", summarize(self.metrics))

    def matches(self, statuses: Collection[RunStatus] | None, tags: Mapping[str, str]) -> bool:
        """Whether the run has one of ``statuses`` (None: any) and every tag in ``tags``."""
        return (statuses is None or self.status in statuses) and tags.items() <= self.tags.items()

    def final_metrics(self) -> dict[str, float]:
        """Each metric's value at its highest step (the last logged on ties)."""
        return {key: point.value for key, point in self.summary.items()}

    def last_step(self) -> int | None:
        """The highest step any metric of this run reached."""
        return max((point.step for point in self.summary.values()), default=None)

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
            "summary": {
                key: {"step": p.step, "value": p.value, "timestamp": p.timestamp}
                for key, p in self.summary.items()
            },
            "artifacts": list(self.artifacts),
            "start_time": self.start_time.isoformat() if self.start_time else None,
            "end_time": self.end_time.isoformat() if self.end_time else None,
            "url": self.url,
            "parent_id": self.parent_id,
        }


def summarize(metrics: Mapping[str, Sequence[MetricPoint]]) -> dict[str, MetricPoint]:
    """Each metric's point at its highest step, the last logged on ties."""
    summary: dict[str, MetricPoint] = {}
    for key, points in metrics.items():
        if points:
            # max() keeps the first of equal keys, so scan newest first.
            summary[key] = max(reversed(points), key=lambda p: p.step)
    return summary
