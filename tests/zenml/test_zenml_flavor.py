"""The ``trackstack`` ZenML flavor in real pipelines: ZenML's local orchestrator and store.

Each test runs ZenML in subprocesses with its own ``ZENML_CONFIG_PATH`` (ZenML keeps
global state: the client, the active stack, the store), registers the flavor and a
component the documented way, runs a pipeline, then reads the backend directly.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import trackstack
from tests.bridges import read, readme_example
from tests.servers import MlflowServer, free_port
from trackstack.enums import RunStatus

PIPELINE = """
import json, os, sys
from zenml import pipeline, step
from zenml.client import Client
from trackstack.integrations.zenml import active_run


@step(experiment_tracker="team")
def train(lr: float) -> float:
    run = active_run()
    run.log_params({"lr": lr, "optimizer": {"name": "sgd"}})
    for step_number in range(5):
        run.log_metrics({"loss": 1 / (step_number + 1)}, step=step_number)
    if os.environ.get("FAIL_STEP"):
        raise RuntimeError("the step failed")
    return 0.5


@pipeline(enable_cache=False)
def training(lr: float = 0.1) -> None:
    train(lr)


if __name__ == "__main__":
    try:
        ran = training()
    except RuntimeError as error:
        print("FAILED", error)
        ran = Client().get_pipeline("training").last_run
    step_run = Client().get_pipeline_run(ran.id).steps["train"]
    print(json.dumps({"status": str(ran.status), "metadata": {
        key: str(value) for key, value in step_run.run_metadata.items()}}))
"""


@pytest.fixture
def zenml_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A ZenML of the test's own (its local store under tmp_path), run from tmp_path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    return {
        **os.environ,
        "ZENML_CONFIG_PATH": str(tmp_path / "zenml-config"),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_LOGGING_VERBOSITY": "WARN",
        "ZENML_ENABLE_RICH_TRACEBACK": "false",
        "TRACKSTACK_JOURNAL": str(tmp_path / "journal"),
    }


def zenml(env: dict[str, str], *arguments: str) -> str:
    command = [str(Path(sys.executable).with_name("zenml")), *arguments]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def register(env: dict[str, str], tracker_config: str, *secrets: str) -> None:
    """The README's way: the flavor, a component, a stack with it, active."""
    zenml(env, "experiment-tracker", "flavor", "register",
          "trackstack.integrations.zenml.TrackstackExperimentTrackerFlavor")  # fmt: skip
    zenml(env, "experiment-tracker", "register", "team", "--flavor=trackstack",
          f"--tracker_config={tracker_config}", *secrets)  # fmt: skip
    zenml(env, "stack", "register", "tracked", "-o", "default", "-a", "default", "-e", "team",
          "--set")  # fmt: skip


def run_pipeline(env: dict[str, str], cwd: Path | None = None, **extra: str) -> dict[str, Any]:
    import json

    script = str(Path("pipeline.py").absolute())
    result = subprocess.run([sys.executable, script], env={**env, **extra}, cwd=cwd,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_a_step_logs_through_the_local_backend(zenml_home: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "trackstack.yaml").write_text(
        "experiment_tracker:\n  flavor: local\n  config:\n    root: store\n"
    )
    register(zenml_home, "trackstack.yaml")  # read now: relative paths are made absolute
    (tmp_path / "elsewhere").mkdir()
    ran = run_pipeline(zenml_home, cwd=tmp_path / "elsewhere")
    assert ran["status"] == "completed"
    metadata = ran["metadata"]
    tracker = trackstack.load_tracker(tmp_path / "trackstack.yaml")
    record = tracker.get_run(metadata["local_run_id"])
    assert record.status is RunStatus.FINISHED
    assert record.experiment == "training"
    assert record.params == {"lr": "0.1", "optimizer.name": "sgd"}
    assert [p.step for p in record.metrics["loss"]] == [0, 1, 2, 3, 4]
    assert metadata["experiment_tracker_url"].startswith("file://")

    failed = run_pipeline(zenml_home, FAIL_STEP="1")
    assert failed["status"] == "failed"
    (failed_run,) = tracker.list_runs("training", status="FAILED")
    assert [p.step for p in failed_run.metrics["loss"]] == [0, 1, 2, 3, 4]

    (tmp_path / "readme.py").write_text(readme_example("zenml"))
    result = subprocess.run([sys.executable, "readme.py"], env=zenml_home, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    newest, *_ = tracker.list_runs("training", status="FINISHED")
    assert newest.id != record.id
    assert [p.value for p in newest.metrics["loss"]] == [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5]


def test_an_inline_mlflow_config_with_a_zenml_secret(
    zenml_home: dict[str, str], tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    zenml(zenml_home, "secret", "create", "mlflow_auth", "--password=s3cret-value")
    register(zenml_home, f'{{"flavor": "mlflow", "config": {{"tracking_uri": "{uri}"}}}}',
             "--tracking_password={{mlflow_auth.password}}",
             "--tracking_username=reader")  # fmt: skip
    described = zenml(zenml_home, "experiment-tracker", "describe", "team")
    assert "s3cret-value" not in described
    ran = run_pipeline(zenml_home)
    assert ran["status"] == "completed"
    metadata = ran["metadata"]
    tracker = trackstack.load_tracker({"flavor": "mlflow", "config": {"tracking_uri": uri}})
    stored = read(tracker, metadata["mlflow_run_id"])
    assert stored.status is RunStatus.FINISHED
    assert stored.params == {"lr": "0.1", "optimizer.name": "sgd"}
    assert "s3cret-value" not in repr(stored)
    assert metadata["mlflow_experiment_id"]
    assert metadata["experiment_tracker_url"]  # the run's artifact folder, for a SQLite store
    # ZenML loads a flavor's source relative to the main module's folder: a file, not -c.
    (tmp_path / "inspect_component.py").write_text(
        textwrap.dedent("""
        from zenml.client import Client
        tracker = Client().active_stack.experiment_tracker
        print(sorted(tracker.requirements))
        print(tracker.tracker.config.tracking_password.get_secret_value())
    """)
    )
    requirements = subprocess.run([sys.executable, "inspect_component.py"], env=zenml_home,
                                  capture_output=True, text=True, timeout=600)  # fmt: skip
    assert requirements.returncode == 0, requirements.stderr
    assert requirements.stdout.splitlines() == ["['trackstack[mlflow,zenml]']", "s3cret-value"]


def test_the_backend_down_during_the_step_never_fails_it(
    zenml_home: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = tmp_path / "trackstack.yaml"
    config.write_text(
        f"experiment_tracker:\n  flavor: mlflow\n  config:\n    tracking_uri: {url}\n"
        "    request_retries: 0\n    request_timeout: 5\n"
    )
    register(zenml_home, str(config))
    ran = run_pipeline(zenml_home)  # nothing listens on the port
    assert ran["status"] == "completed"
    server = MlflowServer(tmp_path / "server", f"sqlite:///{tmp_path / 'server.db'}", port=port)
    try:
        server.wait_until_healthy()
        tracker = trackstack.load_tracker(config)
        report = trackstack.sync(tracker, tmp_path / "journal")
        assert report.runs == 1
        (run,) = tracker.list_runs("training")
        assert run.status is RunStatus.FINISHED
        assert [p.step for p in tracker.get_run(run.id).metrics["loss"]] == [0, 1, 2, 3, 4]
    finally:
        server.stop()


def test_a_bad_tracker_config_is_refused_at_registration(
    zenml_home: dict[str, str], tmp_path: Path
) -> None:
    zenml(zenml_home, "experiment-tracker", "flavor", "register",
          "trackstack.integrations.zenml.TrackstackExperimentTrackerFlavor")  # fmt: skip
    (tmp_path / "bad.yaml").write_text("experiment_tracker:\n  flavor: locl\n")
    command = [str(Path(sys.executable).with_name("zenml")), "experiment-tracker", "register",
               "team", "--flavor=trackstack", f"--tracker_config={tmp_path}/bad.yaml"]  # fmt: skip
    result = subprocess.run(command, env=zenml_home, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert "unknown flavor 'locl'" in result.stdout + result.stderr
