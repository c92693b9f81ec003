"""The local tracker: the backend hooks mapped onto ``LocalStore``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from trackstack.enums import RunStatus
from trackstack.experiment_trackers import (
    BaseExperimentTracker,
    Capabilities,
    MetricPoint,
    ParamValue,
    RunRecord,
    RunStart,
    StartedRun,
)
from trackstack.local.flavor import LocalExperimentTrackerConfig
from trackstack.local.store import LocalStore

__all__ = ["LocalExperimentTracker"]


class LocalExperimentTracker(BaseExperimentTracker):
    """Logs to ``<root>/trackstack.db`` and ``<root>/artifacts/<run id>/``."""

    capabilities = Capabilities(max_metrics_per_call=10_000)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.store = LocalStore(self.config.root)

    @property
    def config(self) -> LocalExperimentTrackerConfig:
        """Returns the config of the local tracker."""
        return cast(LocalExperimentTrackerConfig, self._config)

    def missing_store(self) -> str | None:
        return None if self.store.database.exists() else str(self.config.root)

    def protected_paths(self) -> list[Path]:
        return [*super().protected_paths(), self.config.root]

    def backend_start_run(self, request: RunStart) -> StartedRun:
        if request.resume_id is not None:
            self.store.reopen_run(request.resume_id, request.run_name, request.tags)
            run_id = request.resume_id
        else:
            run_id = self.store.create_run(
                request.experiment, request.run_name, request.parent_id, request.tags
            )
        return StartedRun(id=run_id, url=self.store.artifact_dir(run_id).as_uri())

    def backend_end_run(self, run_id: str, status: RunStatus) -> None:
        self.store.end_run(run_id, status)

    def backend_log_params(self, run_id: str, params: Mapping[str, ParamValue]) -> None:
        self.store.add_params(run_id, {key: param.text for key, param in params.items()})

    def backend_log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        self.store.add_metrics(run_id, points)

    def backend_set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self.store.set_tags(run_id, tags)

    def backend_log_artifact(
        self, run_id: str, local_path: Path, artifact_path: str | None
    ) -> None:
        self.store.add_artifact(run_id, local_path, artifact_path)

    def backend_get_run(self, run_id: str) -> RunRecord:
        return self.store.get_run(run_id)

    def backend_list_runs(self, experiment: str | None) -> list[RunRecord]:
        return self.store.list_runs(experiment)
