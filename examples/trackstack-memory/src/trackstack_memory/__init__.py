"""A trackstack adapter that keeps runs in a dict: the smallest complete one.

Written as any third party would write an adapter: it imports only trackstack's
public API, registers its flavor and its conformance reader through entry
points, and passes ``trackstack.testing.TrackerConformance``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, cast

from trackstack import MetricPoint, RunRecord, RunStatus
from trackstack.errors import RunNotFoundError
from trackstack.experiment_trackers import (
    BaseExperimentTracker,
    BaseExperimentTrackerConfig,
    BaseExperimentTrackerFlavor,
    Capabilities,
    ParamValue,
    RunStart,
    StartedRun,
)
from trackstack.stack import StackComponent

__all__ = [
    "MemoryExperimentTracker",
    "MemoryExperimentTrackerConfig",
    "MemoryExperimentTrackerFlavor",
    "MemoryReader",
    "StoredRun",
]


class MemoryExperimentTrackerConfig(BaseExperimentTrackerConfig):
    """The config: one field, to show how fields reach the tracker."""

    label: str = "memory"
    """Names the store: trackers with the same label share their runs."""


@dataclass
class StoredRun:
    """A run as the "backend" holds it."""

    experiment: str
    name: str | None
    parent_id: str | None
    start: float
    status: RunStatus = RunStatus.RUNNING
    end: float | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, list[MetricPoint]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    """Each artifact file's bytes under its path in the run."""


_STORES: dict[str, dict[str, StoredRun]] = {}


def _when(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


class MemoryExperimentTracker(BaseExperimentTracker):
    """The eight backend hooks over a dict of ``StoredRun``."""

    # Directories arrive file by file: the core walks them for us.
    capabilities: ClassVar[Capabilities] = Capabilities(artifact_directories=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The "backend": one store per label, shared by the trackers of this process,
        # as a server is shared (trackstack sync delivers through a tracker built anew).
        self.runs: dict[str, StoredRun] = _STORES.setdefault(self.config.label, {})

    @property
    def config(self) -> MemoryExperimentTrackerConfig:
        """The base class types its config as the base config; this one is ours."""
        return cast(MemoryExperimentTrackerConfig, super().config)

    def _stored(self, run_id: str) -> StoredRun:
        if run_id not in self.runs:
            raise RunNotFoundError(f"no run {run_id!r} in {self.config.label!r}")
        return self.runs[run_id]

    def backend_start_run(self, request: RunStart) -> StartedRun:
        if request.resume_id is not None:
            run_id = request.resume_id
            run = self._stored(run_id)
            run.status, run.end = RunStatus.RUNNING, None
            run.name = request.run_name or run.name
        else:
            run_id = uuid.uuid4().hex
            run = StoredRun(request.experiment, request.run_name, request.parent_id, time.time())
            self.runs[run_id] = run
        run.tags.update(request.tags)
        return StartedRun(id=run_id, url=f"memory://{self.config.label}/{run_id}")

    def backend_end_run(self, run_id: str, status: RunStatus) -> None:
        run = self._stored(run_id)
        run.status, run.end = status, time.time()

    def backend_log_params(self, run_id: str, params: Mapping[str, ParamValue]) -> None:
        self._stored(run_id).params.update({key: p.text for key, p in params.items()})

    def backend_log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        metrics = self._stored(run_id).metrics
        for key, point in points:
            metrics.setdefault(key, []).append(point)

    def backend_set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self._stored(run_id).tags.update(tags)

    def backend_log_artifact(
        self, run_id: str, local_path: Path, artifact_path: str | None
    ) -> None:
        name = f"{artifact_path}/{local_path.name}" if artifact_path else local_path.name
        self._stored(run_id).files[name] = local_path.read_bytes()

    def backend_get_run(self, run_id: str) -> RunRecord:
        run = self._stored(run_id)
        return RunRecord(
            id=run_id,
            name=run.name,
            experiment=run.experiment,
            status=run.status,
            params=dict(run.params),
            tags=dict(run.tags),
            metrics={key: list(points) for key, points in run.metrics.items()},
            artifacts=sorted(run.files),
            start_time=_when(run.start),
            end_time=_when(run.end),
            url=f"memory://{self.config.label}/{run_id}",
            parent_id=run.parent_id,
        )

    def backend_list_runs(self, experiment: str | None) -> list[RunRecord]:
        chosen = [i for i, run in self.runs.items() if experiment in (None, run.experiment)]
        return [self.backend_get_run(run_id) for run_id in reversed(chosen)]


class MemoryExperimentTrackerFlavor(BaseExperimentTrackerFlavor):
    """The flavor ``memory``, found through the ``trackstack.flavors`` entry point."""

    @property
    def name(self) -> str:
        return "memory"

    @property
    def config_class(self) -> type[MemoryExperimentTrackerConfig]:
        return MemoryExperimentTrackerConfig

    @property
    def implementation_class(self) -> type[StackComponent]:
        return MemoryExperimentTracker


class MemoryReader:
    """The conformance reader: reads the dict itself, never ``get_run``."""

    def __init__(self, runs: Mapping[str, StoredRun]) -> None:
        self.runs = runs

    @classmethod
    def for_tracker(cls, tracker: Any) -> MemoryReader:
        return cls(tracker.runs)

    def _run(self, run_id: str) -> StoredRun:
        if run_id not in self.runs:
            raise RunNotFoundError(f"the memory store holds no run {run_id!r}")
        return self.runs[run_id]

    def read_artifact(self, run_id: str, path: str) -> bytes:
        return self._run(run_id).files[path]

    def read(self, run_id: str) -> RunRecord:
        run = self._run(run_id)
        return RunRecord(
            id=run_id,
            name=run.name,
            experiment=run.experiment,
            status=run.status,
            params=run.params,
            tags=run.tags,
            metrics=run.metrics,
            artifacts=sorted(run.files),
            start_time=_when(run.start),
            end_time=_when(run.end),
            parent_id=run.parent_id,
        )
