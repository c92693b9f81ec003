"""MLflow's own stores and real ``mlflow server`` processes, shared by the MLflow tests.

The three servers (SQLite, PostgreSQL, basic-auth) start together on first use
and live for the test session: each takes 5 to 15 s to come up here.
"""

from __future__ import annotations

import base64
import json
import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from tests.servers import MlflowServer, PostgresCluster

ADMIN = ("admin", "trackstack-admin-password")
USER = ("alice", "alice-password-for-tests")


@pytest.fixture(scope="session", autouse=True)
def quiet_mlflow() -> Iterator[None]:
    """No telemetry written under the home folder while testing."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        yield


@dataclass
class Servers:
    sqlite: MlflowServer
    postgres: MlflowServer
    basic_auth: MlflowServer


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of the tests' own, on 127.0.0.1."""
    cluster = PostgresCluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def mlflow_servers(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresCluster
) -> Iterator[Servers]:
    folder = tmp_path_factory.mktemp("mlflow-servers")
    cluster = postgres
    started: list[MlflowServer] = []
    try:
        postgres_uri = cluster.create_database("mlflow")
        for name, store, auth in [
            ("sqlite", f"sqlite:///{folder / 'sqlite.db'}", None),
            ("postgres", postgres_uri, None),
            ("basic-auth", f"sqlite:///{folder / 'auth-store.db'}", ADMIN),
        ]:
            started.append(MlflowServer(folder / name, store, basic_auth=auth))
        for server in started:
            server.wait_until_healthy()
        create_user(started[2], *USER)
        yield Servers(*started)
    finally:
        for server in started:
            server.stop()


def create_user(server: MlflowServer, user: str, password: str) -> None:
    token = base64.b64encode(":".join(ADMIN).encode()).decode()
    request = urllib.request.Request(
        f"{server.url}/api/2.0/mlflow/users/create",
        data=json.dumps({"username": user, "password": password}).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated SQLite store: copying it is much cheaper than migrating anew."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def sqlite_uri(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh SQLite store for one test."""
    path = tmp_path / "mlflow.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The reads of histories and artifact listings made through MlflowClient, as they happen."""
    made: list[str] = []
    for name in ("get_metric_history", "list_artifacts"):
        original = getattr(MlflowClient, name)

        def counted(self: MlflowClient, *args: Any, _name: str = name, _f: Any = original) -> Any:
            made.append(_name)
            return _f(self, *args)

        monkeypatch.setattr(MlflowClient, name, counted)
    return made
