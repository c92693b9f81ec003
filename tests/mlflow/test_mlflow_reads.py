"""Reading at scale: listings read no history, filters go to MLflow, histories come whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

import trackstack
from tests.mlflow.conftest import Servers
from trackstack.errors import RunNotFoundError
from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.records import LazyHistories


def logged_runs(tracker: BaseExperimentTracker, experiment: str, tmp_path: Path) -> list[str]:
    (tmp_path / "model.txt").write_text("weights")
    ids = []
    for index, status in enumerate(["FINISHED", "FAILED", "FINISHED", "KILLED"]):
        run = tracker.start_run(experiment=experiment, tags={"team": "a" if index % 2 else "b"})
        for step in range(5):
            run.log_metrics({"loss": (index + 1) / (step + 1), "acc": step / 5}, step=step)
        run.log_metrics({"loss": 9.0}, step=2)  # the last point, not the highest step
        run.log_artifact(tmp_path / "model.txt")
        run.end(status)
        ids.append(run.id)
    return ids


def test_listing_and_comparing_read_no_history(
    mlflow_servers: Servers, tmp_path: Path, reads: list[str]
) -> None:
    tracker = trackstack.load_tracker(
        {"flavor": "mlflow", "config": {"tracking_uri": mlflow_servers.sqlite.url}}
    )
    ids = logged_runs(tracker, "listed-without-histories", tmp_path)
    reads.clear()
    records = tracker.list_runs(experiment="listed-without-histories")
    comparison = trackstack.compare_runs(tracker.get_runs(ids))
    assert reads == []
    assert [r.id for r in records] == ids[::-1]
    assert all(isinstance(r.metrics, LazyHistories) and not r.metrics.loaded for r in records)
    # Each run's loss at its highest step, 4, not the 9.0 logged last at step 2.
    assert comparison.metrics["loss"] == {
        run_id: pytest.approx((i + 1) / 5) for i, run_id in enumerate(ids)
    }
    assert set(records[0].metrics) == {"loss", "acc"}
    assert records[0].summary["loss"].step == 4
    # Used, a record reads as a whole one does.
    whole = records[-1]
    assert [p.step for p in whole.metrics["loss"]] == [0, 1, 2, 3, 4, 2]
    assert whole.artifacts == ["model.txt"]
    assert reads.count("get_metric_history") == 2  # one per key, once
    print(f"reads while listing and comparing 4 runs: 0; after using one record: {len(reads)}")


def test_filters_go_to_mlflow_and_read_the_same(mlflow_servers: Servers, tmp_path: Path) -> None:
    tracker = trackstack.load_tracker(
        {"flavor": "mlflow", "config": {"tracking_uri": mlflow_servers.sqlite.url}}
    )
    ids = logged_runs(tracker, "filtered", tmp_path)
    listed = tracker.list_runs
    assert [r.id for r in listed("filtered", status="FINISHED")] == [ids[2], ids[0]]
    assert [r.id for r in listed("filtered", tags={"team": "a"})] == [ids[3], ids[1]]
    assert [r.id for r in listed("filtered", status=["FAILED", "KILLED"], tags={"team": "a"})] == [
        ids[3],
        ids[1],
    ]
    assert [r.id for r in listed("filtered", limit=3)] == ids[:0:-1]
    assert [r.id for r in listed("filtered", status="RUNNING")] == []
    assert [r.id for r in tracker.get_runs([ids[2], ids[0]])] == [ids[2], ids[0]]
    with pytest.raises(RunNotFoundError, match="0" * 32):
        tracker.get_runs([ids[0], "0" * 32])


def test_a_server_serves_every_history_at_once(mlflow_servers: Servers) -> None:
    client = MlflowClient(mlflow_servers.sqlite.url)
    tracker = trackstack.load_tracker(
        {"flavor": "mlflow", "config": {"tracking_uri": mlflow_servers.sqlite.url}}
    )
    with tracker.start_run(experiment="histories") as run:
        for step in range(200):
            run.log_metrics({f"key{k}": k * step for k in range(20)}, step=step)
    record = tracker.get_run(run.id)
    for k in range(20):
        expected = [(m.step, m.value) for m in client.get_metric_history(run.id, f"key{k}")]
        assert [(p.step, p.value) for p in record.metrics[f"key{k}"]] == expected
        assert expected == [(step, float(k * step)) for step in range(200)]
