"""Fan-out to a local store and W&B offline: both hold the same run, read back and verified."""

from __future__ import annotations

from pathlib import Path

import trackstack
from trackstack.fanout import fan_out
from trackstack.registry import get_flavor


def test_local_and_wandb_offline_hold_the_same_run(tmp_path: Path) -> None:
    local = get_flavor("local").create("laptop", root=tmp_path / "local")
    wandb = get_flavor("wandb").create("offline", mode="offline", dir=tmp_path / "runs")
    assert isinstance(local, trackstack.experiment_trackers.BaseExperimentTracker)
    assert isinstance(wandb, trackstack.experiment_trackers.BaseExperimentTracker)
    tracker = fan_out([local, wandb])
    with tracker.start_run(experiment="both", run_name="one", tags={"team": "a"}) as run:
        run.log_params({"lr": 0.1, "optimizer": {"name": "adam"}})
        for step in range(300):
            run.log_metrics({"loss": 1 / (step + 1)}, step=step)
        run.log_metrics({"loss": 9.0}, step=3)  # W&B drops such a step on its own; not here
    verified = tracker.verify(run.id)
    assert verified.agree, verified.differences
    record = tracker.get_run(run.id)
    assert record.id == run.id
    assert record.params == {"lr": "0.1", "optimizer.name": "adam"}
    assert [p.step for p in record.metrics["loss"]][-2:] == [299, 3]
    assert [r.id for r in tracker.list_runs(experiment="both")] == [run.id]
