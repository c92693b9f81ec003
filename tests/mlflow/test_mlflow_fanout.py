"""Fan-out to a local store and a real ``mlflow server`` that is killed for the whole run."""

from __future__ import annotations

import time
from pathlib import Path

from mlflow import MlflowClient

import trackstack
from tests.servers import MlflowServer
from tests.test_cli import cli
from trackstack.fanout import RUN_ID_TAG, FanOutTracker

POINTS = 20_000


def test_a_server_down_for_the_whole_run_never_troubles_the_loop_and_sync_completes_it(
    tmp_path: Path,
) -> None:
    server = MlflowServer(tmp_path / "server", f"sqlite:///{tmp_path / 'server.db'}")
    url = server.wait_until_healthy().url
    config = tmp_path / "fan.yaml"
    config.write_text(
        "experiment_trackers:\n"
        f"  - flavor: local\n    name: laptop\n    config:\n      root: {tmp_path / 'local'}\n"
        f"  - flavor: mlflow\n    name: team\n    config:\n      tracking_uri: {url}\n"
        "      request_retries: 0\n      request_timeout: 5\n"
    )
    tracker = trackstack.load_tracker(config)
    assert isinstance(tracker, FanOutTracker)
    tracker.retry_initial, tracker.end_timeout = 0.1, 1.0
    server.kill()
    slowest = 0.0
    with tracker.start_run(experiment="fanned") as run:
        run.log_params({"lr": 0.1})
        for step in range(POINTS // 2):
            before = time.perf_counter()
            run.log_metrics({"loss": 1 / (step + 1), "acc": step / POINTS}, step=step)
            slowest = max(slowest, time.perf_counter() - before)
    laptop = tracker.trackers[0].get_run(run.ids["laptop"])
    print(f"logged {POINTS} points with the server down; the slowest call took "
          f"{slowest * 1000:.1f} ms; the local member holds "
          f"{sum(len(p) for p in laptop.metrics.values())}")  # fmt: skip
    assert sum(len(points) for points in laptop.metrics.values()) == POINTS
    assert slowest < 5.0  # a hang, not a speed limit: the loop never waits on the server
    restarted = server.restarted().wait_until_healthy()
    try:
        report = trackstack.sync(tracker)
        assert report.points == POINTS
        client = MlflowClient(url)
        experiment = client.get_experiment_by_name("fanned")
        assert experiment is not None
        (stored,) = client.search_runs([experiment.experiment_id])
        assert stored.data.tags[RUN_ID_TAG] == run.id
        for key in ("loss", "acc"):
            history = client.get_metric_history(stored.info.run_id, key)
            assert sorted(m.step for m in history) == list(range(POINTS // 2))
        verified = cli("runs", "verify", run.id, "--config", config)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "laptop, team agree" in verified.stdout
    finally:
        restarted.stop()
