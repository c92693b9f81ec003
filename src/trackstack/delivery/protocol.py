"""The narrow face of a tracker that delivery uses: its backend hooks and its limits.

Delivery never imports the tracker classes; any object with these members
(``BaseExperimentTracker`` has them all) can be delivered to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from trackstack.backend import Capabilities, RunStart, StartedRun
from trackstack.enums import RunStatus
from trackstack.records import MetricPoint, RunRecord
from trackstack.validation import ParamValue

__all__ = ["Backend", "ProcessBackend"]

_T = TypeVar("_T")


class Backend(Protocol):
    # The tracker's delivery settings, read when used: users change them on a live tracker.
    buffer_size: int
    flush_interval: float
    max_buffered_points: int
    max_block_seconds: float
    retry_initial: float
    retry_max: float

    @property
    def flavor(self) -> str: ...

    @property
    def capabilities(self) -> Capabilities: ...

    def _call_backend(self, operation: str, hook: Callable[..., _T], *args: Any) -> _T: ...

    def _store_metrics(self, run_id: str, rows: list[tuple[str, int, float, float]]) -> None: ...

    def validate_settings(self, settings: Any) -> Any: ...

    def backend_start_run(self, request: RunStart) -> StartedRun: ...

    def backend_end_run(self, run_id: str, status: RunStatus) -> None: ...

    def backend_log_params(self, run_id: str, params: Mapping[str, ParamValue]) -> None: ...

    def backend_log_metrics(
        self, run_id: str, points: Sequence[tuple[str, MetricPoint]]
    ) -> None: ...

    def backend_set_tags(self, run_id: str, tags: Mapping[str, str]) -> None: ...

    def backend_log_artifact(
        self, run_id: str, local_path: Path, artifact_path: str | None
    ) -> None: ...

    def backend_list_runs(self, experiment: str | None) -> list[RunRecord]: ...

    def backend_flush(self, run_id: str) -> None: ...


class ProcessBackend(Protocol):
    """What the sender process needs of a tracker: how to build its copy, and the hooks."""

    send_from_process: bool

    @property
    def flavor(self) -> str: ...

    def identity(self) -> dict[str, Any]: ...

    def backend_prepare_sender(self) -> None: ...

    def _store_metrics(self, run_id: str, rows: list[tuple[str, int, float, float]]) -> None: ...
