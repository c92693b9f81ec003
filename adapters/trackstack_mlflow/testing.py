"""A conformance reader that asks MLflow's own client, never the adapter."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trackstack.enums import RunStatus
from trackstack.environment import scoped_environment
from trackstack.records import MetricPoint, RunRecord

__all__ = ["MlflowClientReader"]


class MlflowClientReader:
    """Reads a run with ``MlflowClient``: raw values (±inf as ±float max), all tags."""

    def __init__(self, tracking_uri: str, environment: dict[str, str] | None = None) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.environment = environment or {}

    @classmethod
    def for_tracker(cls, tracker: Any) -> MlflowClientReader:
        """The reader of an MLflow tracker's store, with its credentials."""
        config = tracker.config
        return cls(config.tracking_uri, config.credential_environment())

    @staticmethod
    def log_natively(key: str, value: float, step: int) -> None:
        """Log through MLflow's own fluent API, into its active run."""
        import mlflow

        mlflow.log_metric(key, value, step=step)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        with scoped_environment(self.environment), tempfile.TemporaryDirectory() as folder:
            local = self.client.download_artifacts(run_id, path, folder)
            return Path(local).read_bytes()

    def read(self, run_id: str) -> RunRecord:
        with scoped_environment(self.environment):
            run = self.client.get_run(run_id)
            history = {key: self.client.get_metric_history(run_id, key) for key in run.data.metrics}
            files: list[str] = []
            folders: list[str | None] = [None]
            while folders:
                for item in self.client.list_artifacts(run_id, folders.pop()):
                    (folders if item.is_dir else files).append(item.path)
            experiment = self.client.get_experiment(run.info.experiment_id).name

        def when(millis: int | None) -> datetime | None:
            return None if millis is None else datetime.fromtimestamp(millis / 1000, UTC)

        return RunRecord(
            id=run.info.run_id,
            name=run.info.run_name,
            experiment=experiment,
            status=RunStatus(run.info.status),
            params=dict(run.data.params),
            tags=dict(run.data.tags),
            metrics={
                key: [MetricPoint(m.step, m.value, m.timestamp / 1000) for m in points]
                for key, points in history.items()
            },
            artifacts=sorted(files),
            start_time=when(run.info.start_time),
            end_time=when(run.info.end_time),
            parent_id=run.data.tags.get("mlflow.parentRunId"),
        )
