"""ZenML's step lifecycle, built on the run API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trackstack import Run, RunStatus, StepRunInfo
from trackstack.errors import BackendError, InvalidInputError, UnsupportedOperationError
from trackstack.local import LocalExperimentTrackerFlavor
from trackstack.local.tracker import LocalExperimentTracker
from trackstack.stack import StackComponent

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
    assert list(StepRunInfo.model_fields) == [
        "pipeline_name",
        "run_name",
        "step_name",
        "run_id",
        "settings",
    ]
    assert INFO.settings == {}
    with pytest.raises(ValueError, match="frozen"):
        INFO.step_name = "other"  # type: ignore[misc]


class RecordingTracker(LocalExperimentTracker):
    """Records the SDK hooks, as an adapter that activates its SDK's run would."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, str, RunStatus | None]] = []

    def enter_step_run(self, info: StepRunInfo, run: Run) -> None:
        self.calls.append(("enter", run.id, None))

    def exit_step_run(self, info: StepRunInfo, run: Run, status: RunStatus) -> None:
        self.calls.append(("exit", run.id, status))


class RecordingFlavor(LocalExperimentTrackerFlavor):
    @property
    def implementation_class(self) -> type[StackComponent]:
        return RecordingTracker


def test_sdk_hooks_wrap_the_step_and_exit_runs_even_if_ending_fails(tmp_path: Path) -> None:
    tracker = RecordingFlavor().create("rec", root=tmp_path / "store")
    assert isinstance(tracker, RecordingTracker)
    tracker.prepare_step_run(INFO)
    run = tracker.step_run(INFO)

    def refuse(run_id: str, status: RunStatus) -> None:
        raise RuntimeError("the store will not end this run")

    tracker.backend_end_run = refuse  # type: ignore[method-assign]
    with pytest.raises(BackendError, match="will not end"):
        tracker.cleanup_step_run(INFO, step_failed=True)
    assert tracker.calls == [("enter", run.id, None), ("exit", run.id, RunStatus.FAILED)]


def test_local_flavor_takes_no_settings(tracker: LocalExperimentTracker) -> None:
    with pytest.raises(UnsupportedOperationError, match="takes no per-run settings"):
        tracker.start_run(settings={"nested": True})
    info = INFO.model_copy(update={"settings": {"nested": True}})
    with pytest.raises(UnsupportedOperationError):
        tracker.prepare_step_run(info)
    assert tracker.list_runs() == []
