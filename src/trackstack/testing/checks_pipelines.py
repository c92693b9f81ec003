"""ZenML's step lifecycle: a run per step, its metadata, the SDK's own calls landing in it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from trackstack.enums import RunStatus
from trackstack.experiment_trackers import BaseExperimentTracker, StepRunInfo
from trackstack.testing.base import STATUS, SuiteBase, assert_points, points
from trackstack.testing.readers import RunReader

__all__ = ["NativeLogger", "PipelineChecks"]

NativeLogger = Callable[[str, float, int], None]
"""Logs one metric point through the backend SDK's own API into its active run."""


class PipelineChecks(SuiteBase):
    def test_step_lifecycle(self, tracker: BaseExperimentTracker, reader: RunReader) -> None:
        info = StepRunInfo(pipeline_name="pipe", run_name="pipe-1", step_name="fit", run_id="p1")
        tracker.prepare_step_run(info)
        run = tracker.step_run(info)
        run.log_metrics({"loss": 0.5}, step=0)
        metadata = tracker.get_step_run_metadata(info)
        tracker.cleanup_step_run(info, step_failed=False)
        assert metadata["experiment_tracker_url"] == run.url
        assert metadata[f"{tracker.flavor}_run_id"] == run.id
        for record in self.both(tracker, reader, run.id):
            assert record.status is RunStatus.FINISHED, f"broken promise: {STATUS}"
            assert_points(points(record, "loss"), [(0, 0.5)])
            assert record.tags["trackstack.pipeline_run_id"] == "p1"

        failing = info.model_copy(update={"step_name": "evaluate"})
        tracker.prepare_step_run(failing)
        tracker.cleanup_step_run(failing, step_failed=True)
        assert reader.read(tracker.step_run(failing).id).status is RunStatus.FAILED

    def test_native_sdk_logs_into_the_step_run(
        self, tracker: BaseExperimentTracker, reader: RunReader, request: pytest.FixtureRequest
    ) -> None:
        self.require(tracker, "sdk_active_run")
        native: NativeLogger = request.getfixturevalue("native_logger")
        info = StepRunInfo(pipeline_name="pipe", run_name="pipe-2", step_name="fit", run_id="p2")
        tracker.prepare_step_run(info)
        tracker.step_run(info).log_metrics({"ours": 1.0}, step=0)
        native("native", 2.0, 1)
        tracker.cleanup_step_run(info, step_failed=False)
        record = reader.read(tracker.step_run(info).id)
        assert_points(points(record, "ours"), [(0, 1.0)])
        assert_points(points(record, "native"), [(1, 2.0)])
        assert record.status is RunStatus.FINISHED
