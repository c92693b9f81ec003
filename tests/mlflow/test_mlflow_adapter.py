"""What is particular to the MLflow adapter: config, credentials, limits, ZenML's lifecycle."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from trackstack_mlflow import MLFlowExperimentTrackerConfig, MLFlowExperimentTrackerSettings
from trackstack_mlflow.testing import MlflowClientReader
from trackstack_mlflow.tracker import MLFlowExperimentTracker

import trackstack
from tests.extras import sdk_imported_around_a_run
from tests.mlflow.conftest import USER, Servers
from tests.swap import SCRIPT, same_records
from trackstack import RunStatus, StepRunInfo
from trackstack.errors import (
    AuthenticationError,
    ConfigError,
    InvalidInputError,
    RunNotFoundError,
)


def build(**config: Any) -> MLFlowExperimentTracker:
    tracker = trackstack.load_tracker({"flavor": "mlflow", "config": config})
    assert isinstance(tracker, MLFlowExperimentTracker)
    return tracker


def auth_tracker(servers: Servers, **config: Any) -> MLFlowExperimentTracker:
    user, password = USER
    return build(
        tracking_uri=servers.basic_auth.url,
        tracking_username=user,
        tracking_password=password,
        **config,
    )


def mlflow_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}


# -- config ------------------------------------------------------------------------------


def test_importing_the_adapter_imports_no_mlflow(isolated_cwd: Path) -> None:
    loaded = sdk_imported_around_a_run("trackstack_mlflow", "mlflow", {"flavor": "mlflow"})
    assert loaded == ["False", "True"]


def test_default_store_is_sqlite_in_the_working_directory(
    isolated_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert build().config.tracking_uri == f"sqlite:///{isolated_cwd / 'mlflow.db'}"
    assert build(tracking_uri="sqlite:///runs/m.db").config.tracking_uri == (
        f"sqlite:///{isolated_cwd / 'runs' / 'm.db'}"
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert build().config.tracking_uri == "http://127.0.0.1:5999"


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        ({"tracking_username": "u"}, "go together"),
        ({"tracking_password": "secret-pw"}, "go together"),
        ({"tracking_token": "secret-tok", "tracking_username": "u"}, "replaces"),
        ({"tracking_token": "secret-tok", "tracking_password": "secret-pw"}, "replaces"),
    ],
)
def test_credential_rules(credentials: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        build(tracking_uri="http://127.0.0.1:1", **credentials)
    assert "secret-" not in str(caught.value)


def test_settings_override_the_config(sqlite_uri: str) -> None:
    tracker = build(
        tracking_uri=sqlite_uri, experiment_name="from-config", default_tags={"team": "a"}
    )
    settings = MLFlowExperimentTrackerSettings(experiment_name="from-settings", tags={"x": "1"})
    with tracker.start_run(settings=settings, tags={"x": "2"}) as run:
        pass
    assert run.experiment == "from-settings"
    assert tracker.get_run(run.id).tags == {"team": "a", "x": "2"}
    with tracker.start_run(experiment="argument", settings={"experiment_name": "s"}) as run:
        pass
    assert tracker.get_run(run.id).experiment == "argument"
    with tracker.start_run() as run:
        pass
    assert tracker.get_run(run.id).experiment == "from-config"
    with pytest.raises(InvalidInputError, match="unknown field 'experiment'"):
        tracker.start_run(settings={"experiment": "typo"})


# -- what MLflow would truncate or reject -----------------------------------------------


def test_values_mlflow_would_truncate_are_rejected_before_sending(sqlite_uri: str) -> None:
    tracker = build(tracking_uri=sqlite_uri)
    with tracker.start_run() as run:
        run.log_params({"whole": "x" * 6000})
        with pytest.raises(InvalidInputError, match=r"6001 characters.*at most 6000"):
            run.log_params({"short": 1, "long": "x" * 6001})
        with pytest.raises(InvalidInputError, match=r"8001 characters.*at most 8000"):
            run.set_tags({"long": "y" * 8001})
    stored = MlflowClient(sqlite_uri).get_run(run.id)
    assert stored.data.params == {"whole": "x" * 6000}
    assert "long" not in stored.data.tags


def test_resuming_reads_no_metric_history_or_artifact_list(
    sqlite_uri: str, tmp_path: Path, reads: list[str]
) -> None:
    tracker = build(tracking_uri=sqlite_uri)
    (tmp_path / "model.txt").write_text("weights")
    with tracker.start_run(experiment="resumed", run_name="long") as first:
        run_params = {"lr": 0.1, "layers": 3}
        first.log_params(run_params)
        first.log_metrics({"loss": 0.5, "accuracy": 0.7}, step=7)
        first.log_metrics({"loss": 0.4}, step=3)  # a lower step after a higher one
        first.log_artifact(tmp_path / "model.txt")
    reads.clear()
    with tracker.start_run(run_id=first.id) as resumed:
        assert reads == []
        assert (resumed.experiment, resumed.name) == ("resumed", "long")
        resumed.log_metrics({"loss": 0.3})  # goes on after the highest step
        with pytest.raises(InvalidInputError, match=r"already '0\.1'"):
            resumed.log_params({"lr": 0.2})
    assert [p.step for p in tracker.get_run(first.id).metrics["loss"]] == [7, 3, 8]


def test_mlflow_errors_arrive_as_trackstack_errors(sqlite_uri: str) -> None:
    tracker = build(tracking_uri=sqlite_uri)
    with pytest.raises(RunNotFoundError) as caught:
        tracker.start_run(run_id="f" * 32)
    assert isinstance(caught.value.__cause__, MlflowException)
    client = MlflowClient(sqlite_uri)
    client.delete_experiment(client.create_experiment("gone"))
    with pytest.raises(ConfigError, match="'gone' is deleted"):
        tracker.start_run(experiment="gone")


def test_urls_and_metadata(sqlite_uri: str, mlflow_servers: Servers) -> None:
    info = StepRunInfo(pipeline_name="p", run_name="p-1", step_name="s", run_id="u1")
    for tracker in (build(tracking_uri=sqlite_uri), build(tracking_uri=mlflow_servers.sqlite.url)):
        tracker.prepare_step_run(info)
        run = tracker.step_run(info)
        metadata = tracker.get_step_run_metadata(info)
        tracker.cleanup_step_run(info, step_failed=False)
        stored = MlflowClient(tracker.config.tracking_uri).get_run(run.id)
        assert metadata == {
            "experiment_tracker_url": run.url,
            "mlflow_run_id": run.id,
            "mlflow_experiment_id": stored.info.experiment_id,
            "mlflow_experiment_name": "p",
            "mlflow_tracking_uri": tracker.config.tracking_uri,
        }
        if tracker.config.is_server:
            assert run.url == (
                f"{mlflow_servers.sqlite.url}/#/experiments/"
                f"{stored.info.experiment_id}/runs/{run.id}"
            )
        else:
            assert run.url == stored.info.artifact_uri


# -- credentials, for real ---------------------------------------------------------------
# The basic-auth server checks the password hash on every request, which takes
# one to two seconds here: these tests make as few requests as they can.


def test_credentials_reach_the_server_and_leave_no_trace(mlflow_servers: Servers) -> None:
    before = mlflow_environment()
    tracker = auth_tracker(mlflow_servers, experiment_name="alice-runs")
    with tracker.start_run() as run:
        run.log_params({"lr": 0.1})
        run.log_metrics({"loss": 0.5})
    assert mlflow_environment() == before
    user, password = USER
    reader = MlflowClientReader(
        mlflow_servers.basic_auth.url,
        {"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password},
    )
    record = reader.read(run.id)
    assert record.params == {"lr": "0.1"}
    assert [(p.step, p.value) for p in record.metrics["loss"]] == [(0, 0.5)]
    assert record.status is RunStatus.FINISHED


@pytest.mark.parametrize("password", ["wrong-password", None])
def test_refused_credentials_get_a_clear_error(
    mlflow_servers: Servers, password: str | None
) -> None:
    config: dict[str, Any] = {"tracking_uri": mlflow_servers.basic_auth.url}
    if password:
        config.update(tracking_username=USER[0], tracking_password=password)
    tracker = build(**config)
    with pytest.raises(AuthenticationError, match="tracking_username and tracking_password") as e:
        tracker.start_run()
    assert password is None or password not in str(e.value)
    assert "401" in str(e.value)


# -- ZenML's step lifecycle --------------------------------------------------------------


def test_native_mlflow_calls_land_in_the_step_run_and_nothing_stays_set(
    mlflow_servers: Servers,
) -> None:
    before, uri_before = mlflow_environment(), mlflow.get_tracking_uri()
    tracker = auth_tracker(mlflow_servers)
    info = StepRunInfo(pipeline_name="native", run_name="native-1", step_name="fit", run_id="n1")
    tracker.prepare_step_run(info)
    run = tracker.step_run(info)
    active = mlflow.active_run()
    assert active is not None
    assert active.info.run_id == run.id
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == USER[0]
    mlflow.log_param("native_param", "yes")
    mlflow.log_metric("native_metric", 2.5, step=3)
    run.log_metrics({"ours": 1.0}, step=0)
    tracker.cleanup_step_run(info, step_failed=True)

    assert mlflow.active_run() is None
    assert mlflow_environment() == before
    assert mlflow.get_tracking_uri() == uri_before
    user, password = USER
    environment = {"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password}
    record = MlflowClientReader(mlflow_servers.basic_auth.url, environment).read(run.id)
    assert record.status is RunStatus.FAILED
    assert record.params == {"native_param": "yes"}
    assert [(p.step, p.value) for p in record.metrics["native_metric"]] == [(3, 2.5)]
    assert [(p.step, p.value) for p in record.metrics["ours"]] == [(0, 1.0)]


def test_steps_of_one_pipeline_run_share_its_run(sqlite_uri: str) -> None:
    tracker = build(tracking_uri=sqlite_uri)
    ids = []
    for step in ("load", "train"):
        info = StepRunInfo(pipeline_name="shared", run_name="shared-1", step_name=step, run_id="s1")
        tracker.prepare_step_run(info)
        tracker.step_run(info).log_metrics({step: 1.0}, step=0)
        tracker.cleanup_step_run(info, step_failed=False)
        ids.append(tracker.step_run(info).id)
    assert ids[0] == ids[1]
    record = tracker.get_run(ids[0])
    assert record.name == "shared-1"
    assert record.experiment == "shared"
    assert set(record.metrics) == {"load", "train"}
    assert record.tags["trackstack.step_name"] == "train"


def test_nested_steps_are_children_of_the_pipeline_run(sqlite_uri: str) -> None:
    tracker = build(tracking_uri=sqlite_uri, nested=True)
    children = []
    for step, failed in (("load", False), ("train", True)):
        info = StepRunInfo(pipeline_name="nest", run_name="nest-1", step_name=step, run_id="n2")
        tracker.prepare_step_run(info)
        tracker.cleanup_step_run(info, step_failed=failed)
        children.append(tracker.get_run(tracker.step_run(info).id))
    parents = {child.parent_id for child in children}
    assert len(parents) == 1
    (parent_id,) = parents
    assert parent_id is not None
    parent = tracker.get_run(parent_id)
    assert parent.name == "nest-1"
    assert parent.tags["trackstack.pipeline_run_id"] == "n2"
    assert "trackstack.step_name" not in parent.tags
    assert parent.status is RunStatus.FAILED
    assert [c.name for c in children] == ["load", "train"]
    assert [c.status for c in children] == [RunStatus.FINISHED, RunStatus.FAILED]
    assert mlflow.active_run() is None

    flat = StepRunInfo(
        pipeline_name="nest",
        run_name="nest-2",
        step_name="x",
        run_id="n3",
        settings={"nested": False},
    )
    tracker.prepare_step_run(flat)
    tracker.cleanup_step_run(flat, step_failed=False)
    assert tracker.get_run(tracker.step_run(flat).id).parent_id is None


# -- swapping by config --------------------------------------------------------------------


def test_the_same_script_logs_wherever_the_yaml_points(
    isolated_cwd: Path, mlflow_servers: Servers
) -> None:
    (isolated_cwd / "train.py").write_text(SCRIPT)
    records = []
    for uri in (f"sqlite:///{isolated_cwd / 'local.db'}", mlflow_servers.sqlite.url):
        (isolated_cwd / "trackstack.yaml").write_text(
            f"experiment_tracker:\n  flavor: mlflow\n  config:\n    tracking_uri: {uri}\n"
        )
        result = subprocess.run(
            [sys.executable, "train.py"], capture_output=True, text=True, cwd=isolated_cwd
        )
        assert result.returncode == 0, result.stderr
        run_id = result.stdout.split()[-1]
        records.append(MlflowClientReader(uri).read(run_id))
        assert records[-1].status is RunStatus.FINISHED
    same_records(*(dataclasses.replace(r, tags=user_tags(r.tags)) for r in records))


def user_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if not k.startswith("mlflow.")}


def test_readme_mlflow_configs_load(isolated_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_readme import blocks

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "token-from-env")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "reader")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "password-from-env")
    examples = [
        text
        for text in blocks("yaml")
        if text.startswith("experiment_tracker:") and "flavor: mlflow" in text
    ]
    assert len(examples) == 2
    for number, text in enumerate(examples):
        path = isolated_cwd / f"example{number}.yaml"
        path.write_text(text)
        loaded = trackstack.load_tracker(path)
        assert isinstance(loaded, MLFlowExperimentTracker)
        assert loaded.config.tracking_uri == "http://127.0.0.1:5000"
        assert isinstance(loaded.config, MLFlowExperimentTrackerConfig)
        config = loaded.config
    assert config.experiment_name == "churn"
    assert config.default_tags == {"team": "growth"}
    assert config.tracking_password is not None
    assert config.tracking_password.get_secret_value() == "password-from-env"


def test_the_flavor_registers_its_conformance_reader(sqlite_uri: str) -> None:
    from importlib.metadata import entry_points

    (point,) = [p for p in entry_points(group="trackstack.readers") if p.name == "mlflow"]
    tracker = build(tracking_uri=sqlite_uri)
    reader = point.load()(tracker)
    assert isinstance(reader, MlflowClientReader)
    with tracker.start_run() as run:
        run.log_metrics({"m": 1.0})
    assert reader.read(run.id).metrics["m"][0].value == 1.0
