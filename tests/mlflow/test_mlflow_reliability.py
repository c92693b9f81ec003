"""Nothing logged is lost: server crashes mid-run, a server that stays down, and sync."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

import trackstack
from tests.mlflow.conftest import Servers
from tests.mlflow.faults import log_through_restarts
from tests.servers import MlflowServer, PostgresCluster
from trackstack import RunStatus, StepRunInfo
from trackstack.errors import RunNotFoundError


@pytest.fixture
def server(postgres: PostgresCluster, tmp_path: Path) -> Iterator[list[MlflowServer]]:
    """A server of the test's own, on a fresh PostgreSQL database; restarts replace it."""
    store = postgres.create_database(f"t{uuid.uuid4().hex}")
    servers = [MlflowServer(tmp_path / "server", store).wait_until_healthy()]
    try:
        yield servers
    finally:
        servers[-1].stop()


def test_a_run_through_two_server_crashes_loses_and_repeats_nothing(
    server: list[MlflowServer],
) -> None:
    report, running = log_through_restarts(server[0])
    server.append(running)
    print(report)
    assert report.points_found == report.points_logged == 20_000
    assert report.duplicates == 0
    assert report.missing == 0


def test_a_server_down_at_the_end_leaves_the_run_in_its_journal_until_sync(
    server: list[MlflowServer], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = server[0].url
    tracker = trackstack.load_tracker({"flavor": "mlflow", "config": {"tracking_uri": url}})
    tracker.flush_interval, tracker.retry_initial, tracker.end_timeout = 3600, 0.1, 1.0
    tracker.outbox = tmp_path / "outbox"
    run = tracker.start_run(experiment="outage")
    run.log_params({"lr": 0.1})
    run.log_metrics({"loss": 1.0}, step=0)
    run.flush()
    server[0].kill()
    for step in range(1, 2_000):
        run.log_metrics({"loss": 1 / (step + 1)}, step=step)
    with caplog.at_level(logging.WARNING):
        run.end()
    assert "trackstack sync" in caplog.text
    waiting = list((tmp_path / "outbox").rglob("records"))
    assert [path.parent.name.split(".")[0] for path in waiting] == [run.id]

    server.append(server[0].restarted().wait_until_healthy())
    client = MlflowClient(url)
    assert client.get_run(run.id).info.status == "RUNNING"
    report = trackstack.sync(tracker)
    assert (report.runs, report.points, report.ended) == (1, 1_999, 1)
    history = client.get_metric_history(run.id, "loss")
    assert sorted(m.step for m in history) == list(range(2_000))
    assert client.get_run(run.id).info.status == "FINISHED"
    again = trackstack.sync(tracker)
    assert (again.runs, again.points) == (0, 0)
    assert len(client.get_metric_history(run.id, "loss")) == 2_000
    assert tracker.get_run(run.id).status is RunStatus.FINISHED


def test_a_server_down_for_the_whole_run_gets_all_of_it_from_sync(
    server: list[MlflowServer], tmp_path: Path
) -> None:
    url = server[0].url
    tracker = trackstack.load_tracker({"flavor": "mlflow", "config": {"tracking_uri": url}})
    tracker.retry_initial, tracker.end_timeout = 0.1, 0.5
    tracker.outbox = tmp_path / "outbox"
    server[0].kill()
    with tracker.start_run(experiment="never-up", tags={"team": "a"}) as run:
        run.log_params({"lr": 0.1})
        for step in range(5_000):
            run.log_metrics({"loss": 1 / (step + 1), "acc": step / 5_000}, step=step)
    assert run.id.startswith("pending-")
    with pytest.raises(RunNotFoundError, match="has not been created yet; its journal waits in"):
        tracker.get_run(run.id)
    config = tmp_path / "trackstack.yaml"
    config.write_text(
        f"experiment_tracker:\n  flavor: mlflow\n  config:\n    tracking_uri: {url}\n"
    )
    environment = {**os.environ, "TRACKSTACK_JOURNAL": str(tmp_path / "outbox")}

    def show(run_id: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "trackstack", "runs", "show", run_id, "--config", str(config)],
            capture_output=True, text=True, env=environment, timeout=300,
        )  # fmt: skip

    waiting = show(run.id)
    assert waiting.returncode == 1
    assert "has not been created yet" in waiting.stderr
    assert str(tracker.journal_folder()) in waiting.stderr

    server.append(server[0].restarted().wait_until_healthy())
    report = trackstack.sync(tracker)
    assert (report.runs, report.points, report.ended) == (1, 10_000, 1)
    created = report.started[run.id]
    assert tracker.get_run(run.id).id == created
    shown = show(run.id)
    assert shown.returncode == 0, shown.stderr
    assert f"run {created}" in shown.stdout
    left = [p for p in (tmp_path / "outbox").rglob("*") if p.is_dir() and not any(p.iterdir())]
    assert left == [], left
    client = MlflowClient(url)
    stored = client.get_run(created)
    assert stored.info.status == "FINISHED"
    assert stored.data.params == {"lr": "0.1"}
    assert stored.data.tags["team"] == "a"
    for key in ("loss", "acc"):
        assert sorted(m.step for m in client.get_metric_history(created, key)) == list(range(5_000))
    again = trackstack.sync(tracker)
    assert (again.runs, again.points) == (0, 0)
    assert len(client.search_runs([stored.info.experiment_id])) == 1


WORKER = """
import os, sys, trackstack
url, experiment, shared = sys.argv[1], sys.argv[2], sys.argv[3]
rank = int(os.environ["RANK"])
tracker = trackstack.load_tracker(
    {"flavor": "mlflow", "config": {"tracking_uri": url, "experiment_name": experiment}}
)
if shared:
    run = tracker.start_run(run_id=shared)
else:
    run = tracker.start_run(run_name=f"rank-{rank}", tags={"job": experiment, "rank": rank})
for step in range(rank * 5000, (rank + 1) * 5000):
    run.log_metrics({key: step * (i + 1) for i, key in enumerate(("a", "b", "c", "d"))}, step=step)
if shared:
    run.flush()  # rank 0 ends the shared run once every rank is done
else:
    run.end()
print(run.id)
"""


@pytest.mark.parametrize("shared", [False, True], ids=["one-run-each", "one-shared-run"])
def test_eight_processes_log_every_point_exactly_once(
    mlflow_servers: Servers, tmp_path: Path, shared: bool
) -> None:
    url, experiment = mlflow_servers.postgres.url, f"ddp-{uuid.uuid4().hex[:8]}"
    tracker = trackstack.load_tracker(
        {"flavor": "mlflow", "config": {"tracking_uri": url, "experiment_name": experiment}}
    )
    shared_run = tracker.start_run(run_name="shared") if shared else None
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), url, experiment, shared_run.id if shared_run else ""],
            env={**os.environ, "RANK": str(rank), "WORLD_SIZE": "8"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(8)
    ]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, errors) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, errors
    client = MlflowClient(url)
    if shared_run is not None:
        shared_run.end()
        run_ids = {shared_run.id}
    else:
        run_ids = {out.split()[-1] for out, _ in outputs}
        assert len(run_ids) == 8
    steps: dict[str, list[int]] = {key: [] for key in "abcd"}
    for run_id in run_ids:
        assert client.get_run(run_id).info.status == "FINISHED"
        for key in steps:
            history = client.get_metric_history(run_id, key)
            assert all(m.value == m.step * ("abcd".index(key) + 1) for m in history)
            steps[key] += [m.step for m in history]
    for key, found in steps.items():
        assert sorted(found) == list(range(40_000)), f"{key}: {len(found)} points"


TOKEN = "tok-RECOGNISABLE-SECRET-4242"


def test_a_secret_appears_nowhere_trackstack_writes(
    server: list[MlflowServer],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The token reaches the server (which ignores it) and nothing else, whatever happens."""
    from tests.test_cli import cli

    monkeypatch.setenv("TRACKSTACK_TEST_TOKEN", TOKEN)
    config = tmp_path / "mlflow.yaml"
    config.write_text(
        "experiment_tracker:\n  flavor: mlflow\n  config:\n"
        f"    tracking_uri: {server[0].url}\n    tracking_token: ${{TRACKSTACK_TEST_TOKEN}}\n"
    )
    tracker = trackstack.load_tracker(config)
    tracker.retry_initial, tracker.end_timeout = 0.1, 0.5
    tracker.outbox = tmp_path / "outbox"
    shown: list[str] = [repr(tracker), repr(tracker.config), tracker.config.model_dump_json()]
    with caplog.at_level(logging.DEBUG):
        info = StepRunInfo(pipeline_name="p", run_name="p-1", step_name="s", run_id="x1")
        tracker.prepare_step_run(info)
        run = tracker.step_run(info)
        run.log_params({"lr": 0.1})
        shown.append(repr(tracker.get_step_run_metadata(info)))
        tracker.cleanup_step_run(info, step_failed=False)
        for call in (lambda: run.log_metrics({"../x": 1}), lambda: tracker.get_run("0" * 32)):
            with pytest.raises(trackstack.errors.TrackstackError) as failed:
                call()
            shown.append(str(failed.value))
        stored = MlflowClient(server[0].url).get_run(run.id)
        shown += [repr(stored.data.params), repr(stored.data.tags)]
        for command in (["runs", "show", run.id], ["runs", "list"], ["config", "validate", config]):
            result = cli(*command, "--config", config) if command[0] == "runs" else cli(*command)
            assert result.returncode == 0, result.stderr
            shown += [result.stdout, result.stderr]
        late = tracker.start_run(experiment="outage")
        late.log_metrics({"m": 1.0})
        server[0].kill()
        late.end()
    shown.append(caplog.text)
    shown += [
        p.read_bytes().decode("utf-8", "replace")
        for p in (tmp_path / "outbox").rglob("*")
        if p.is_file()
    ]
    assert len(shown) > 15
    assert not [text for text in shown if TOKEN in text]


def test_sigterm_with_the_server_down_and_a_10s_grace_loses_nothing(
    server: list[MlflowServer], isolated_cwd: Path
) -> None:
    from tests.killing import count, kill_after, start_loop, sync_cli

    url = server[0].url
    config = {"flavor": "mlflow", "config": {"tracking_uri": url}}
    loop = start_loop(isolated_cwd, config, setup="tracker.retry_initial = 0.1")
    run_id, last = kill_after(loop, 2_000, 5, before=server[0].kill, grace=10)
    server.append(server[0].restarted().wait_until_healthy())
    result = sync_cli(isolated_cwd)
    assert result.returncode == 0, result.stderr
    client = MlflowClient(url)
    history = [(k, m.step) for k in ("a", "b") for m in client.get_metric_history(run_id, k)]
    report = count(run_id, last, history, client.get_run(run_id).info.status)
    print(report, "| exit", loop.returncode, "|", result.stdout.strip())
    assert (report.missing, report.duplicates, report.status) == (0, 0, "KILLED")


def test_params_tags_and_artifacts_during_a_server_restart_never_raise_and_all_land(
    server: list[MlflowServer], tmp_path: Path
) -> None:
    url = server[0].url
    tracker = trackstack.load_tracker({"flavor": "mlflow", "config": {"tracking_uri": url}})
    tracker.retry_initial, tracker.retry_max = 0.1, 0.5
    run = tracker.start_run(experiment="restart")
    run.log_params({"before": 1})
    run.flush()
    server[0].kill()
    for i in range(10):
        run.log_params({f"p{i}": i})
        run.set_tags({f"t{i}": str(i)})
        (tmp_path / f"f{i}.txt").write_text(str(i))
        run.log_artifact(tmp_path / f"f{i}.txt", artifact_path="files")
        run.log_metrics({"m": i}, step=i)
    server.append(server[0].restarted().wait_until_healthy())
    run.end()
    stored = MlflowClient(url).get_run(run.id)
    artifacts = [a.path for a in MlflowClient(url).list_artifacts(run.id, "files")]
    tags = sum(key.startswith("t") for key in stored.data.tags)
    print(f"logged 11 params, 10 tags, 10 artifacts; found {len(stored.data.params)} params, "
          f"{tags} tags, {len(artifacts)} artifacts")  # fmt: skip
    assert stored.data.params == {"before": "1", **{f"p{i}": str(i) for i in range(10)}}
    assert all(stored.data.tags[f"t{i}"] == str(i) for i in range(10))
    assert sorted(artifacts) == sorted(f"files/f{i}.txt" for i in range(10))
    assert stored.info.status == "FINISHED"
