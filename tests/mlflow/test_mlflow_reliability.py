"""Nothing logged is lost: server crashes mid-run, a server that stays down, and sync."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

import trackstack
from tests.mlflow.faults import log_through_restarts
from tests.servers import MlflowServer, PostgresCluster
from trackstack import RunStatus


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


def test_a_server_down_at_the_end_leaves_the_run_in_the_outbox_until_sync(
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
    waiting = list((tmp_path / "outbox").rglob("*.jsonl"))
    assert [path.stem for path in waiting] == [run.id]

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

    server.append(server[0].restarted().wait_until_healthy())
    report = trackstack.sync(tracker)
    assert (report.runs, report.points, report.ended) == (1, 10_000, 1)
    created = report.started[run.id]
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
