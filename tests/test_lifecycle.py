"""ZenML's step lifecycle, built on the run API."""

from __future__ import annotations

import pytest

from trackstack import RunStatus, StepRunInfo
from trackstack.errors import InvalidInputError
from trackstack.local.tracker import LocalExperimentTracker

INFO = StepRunInfo(pipeline_name="training", run_name="training-7", step_name="fit", run_id="r-7")


def test_prepare_log_cleanup(tracker: LocalExperimentTracker) -> None:
    tracker.prepare_step_run(INFO)
    run = tracker.step_run(INFO)
    run.log_metrics({"loss": 0.1})
    metadata = tracker.get_step_run_metadata(INFO)
    assert metadata == {
        "experiment_tracker_url": run.url,
        "local_run_id": run.id,
        "local_experiment": "training",
    }
    tracker.cleanup_step_run(INFO, step_failed=False)
    record = tracker.get_run(run.id)
    assert record.status is RunStatus.FINISHED
    assert record.experiment == "training"
    assert record.name == "training-7/fit"
    assert record.tags == {
        "trackstack.pipeline_name": "training",
        "trackstack.pipeline_run_name": "training-7",
        "trackstack.pipeline_run_id": "r-7",
        "trackstack.step_name": "fit",
    }
    assert [p.value for p in record.metrics["loss"]] == [0.1]
    assert tracker.get_step_run_metadata(INFO) == metadata


def test_failed_step_marks_the_run_failed(tracker: LocalExperimentTracker) -> None:
    tracker.prepare_step_run(INFO)
    tracker.cleanup_step_run(INFO, step_failed=True)
    assert tracker.get_run(tracker.step_run(INFO).id).status is RunStatus.FAILED


def test_steps_without_prepare_are_explained(tracker: LocalExperimentTracker) -> None:
    with pytest.raises(InvalidInputError, match="call prepare_step_run"):
        tracker.cleanup_step_run(INFO, step_failed=False)
    with pytest.raises(InvalidInputError, match="'fit'"):
        tracker.get_step_run_metadata(INFO)


def test_step_run_info_is_a_frozen_model() -> None:
    assert StepRunInfo.model_fields.keys() == {"pipeline_name", "run_name", "step_name", "run_id"}
    with pytest.raises(ValueError, match="frozen"):
        INFO.step_name = "other"  # type: ignore[misc]
