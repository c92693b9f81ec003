"""One training script, run against whichever tracker ./trackstack.yaml names."""

from __future__ import annotations

from trackstack.records import RunRecord

SCRIPT = """
import trackstack
tracker = trackstack.load_tracker()
with tracker.start_run(experiment="swap", run_name="same-script", tags={"team": "a"}) as run:
    run.log_params({"lr": 0.1, "optimizer": {"name": "adam"}})
    for step in range(3):
        run.log_metrics({"loss": 1.0 / (step + 1)})
    run.log_metrics({"loss": 0.1}, step=1)
print(run.id)
"""
"""Prints the run's id last."""


def same_records(*records: RunRecord) -> None:
    """Records of SCRIPT's run agree on what was logged, whichever backend holds them."""
    first, *others = records
    assert first.params == {"lr": "0.1", "optimizer.name": "adam"}
    assert first.tags == {"team": "a"}
    assert [(p.step, p.value) for p in first.metrics["loss"]] == [
        (0, 1.0), (1, 0.5), (2, 1 / 3), (1, 0.1)
    ]  # fmt: skip
    for other in others:
        assert (other.name, other.experiment, other.status) == (
            first.name, first.experiment, first.status
        )  # fmt: skip
        assert other.params == first.params
        assert other.tags == first.tags
        assert {k: [(p.step, p.value) for p in v] for k, v in other.metrics.items()} == {
            k: [(p.step, p.value) for p in v] for k, v in first.metrics.items()
        }
