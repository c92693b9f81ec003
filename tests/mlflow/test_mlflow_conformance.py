"""The MLflow adapter passes the conformance suite on every store, read back by MlflowClient."""

from __future__ import annotations

import uuid
from typing import Any

import mlflow
import pytest
from trackstack_mlflow.testing import MlflowClientReader
from trackstack_mlflow.tracker import MLFlowExperimentTracker

from tests.mlflow.conftest import Servers
from trackstack.registry import get_flavor
from trackstack.testing import RunReader, TrackerConformance
from trackstack.testing.conformance import NativeLogger


def build(**config: Any) -> MLFlowExperimentTracker:
    tracker = get_flavor("mlflow").create("mlflow", **config)
    assert isinstance(tracker, MLFlowExperimentTracker)
    return tracker


class MlflowConformance(TrackerConformance):
    @pytest.fixture
    def reader(self, tracker: MLFlowExperimentTracker) -> RunReader:
        return MlflowClientReader(
            tracker.config.tracking_uri, tracker.config.credential_environment()
        )

    @pytest.fixture
    def native_logger(self) -> NativeLogger:
        def log_metric(key: str, value: float, step: int) -> None:
            mlflow.log_metric(key, value, step=step)

        return log_metric


class TestSqliteStore(MlflowConformance):
    @pytest.fixture
    def tracker(self, sqlite_uri: str) -> MLFlowExperimentTracker:
        return build(tracking_uri=sqlite_uri)


class TestSqliteServer(MlflowConformance):
    """A shared server: each test gets an experiment of its own as its fresh store."""

    @pytest.fixture
    def tracker(self, mlflow_servers: Servers) -> MLFlowExperimentTracker:
        return build(
            tracking_uri=mlflow_servers.sqlite.url, experiment_name=f"t-{uuid.uuid4().hex}"
        )


class TestPostgresServer(MlflowConformance):
    @pytest.fixture
    def tracker(self, mlflow_servers: Servers) -> MLFlowExperimentTracker:
        return build(
            tracking_uri=mlflow_servers.postgres.url, experiment_name=f"t-{uuid.uuid4().hex}"
        )
