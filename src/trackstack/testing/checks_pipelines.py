"""ZenML's step lifecycle: a run per step, its metadata, the SDK's own calls landing in it."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from trackstack.enums import RunStatus
from trackstack.experiment_trackers import BaseExperimentTracker, StepRunInfo
from trackstack.testing.base import METADATA, STATUS, STEP, SuiteBase, assert_points, points
from trackstack.testing.readers import RunReader

__all__ = ["NativeLogger", "PipelineChecks"]

NativeLogger = Callable[[str, float, int], None]
"""Logs one metric point through the backend SDK's own API into its active run."""


class PipelineChecks(SuiteBase):
    def test_step_lifecycle(self, tracker: BaseExperimentTracker, reader: RunReader) -> None:
        info = StepRunInfo(pipeline_name="pipe", run_name="pipe-1", step_name="fit", run_id="p1")
        environment = dict(os.environ)
        tracker.prepare_step_run(info)
        run = tracker.step_run(info)
        run.log_metrics({"loss": 0.5}, step=0)
        metadata = tracker.get_step_run_metadata(info)
        tracker.cleanup_step_run(info, step_failed=False)
        changed = sorted(
            key
            for key in {*environment, *os.environ}
            if environment.get(key) != os.environ.get(key)
        )
        assert not changed, (
            f"broken promise: {STEP}; after the step, the environment differs in {changed}"
        )
        assert metadata.get("experiment_tracker_url") == run.url, (
            f"broken promise: {METADATA}; experiment_tracker_url is "
            f"{metadata.get('experiment_tracker_url')!r}, the run's url {run.url!r}"
        )
        ids = {key: value for key, value in metadata.items() if key.endswith("_run_id")}
        assert run.id in ids.values(), (
            f"broken promise: {METADATA}; no <backend>_run_id key holds {run.id!r}: {ids}"
        )
        for record in self.both(tracker, reader, run.id):
            assert record.status is RunStatus.FINISHED, f"broken promise: {STATUS}"
            assert_points(points(record, "loss"), [(0, 0.5)])
            assert record.tags.get("trackstack.pipeline_run_id") == "p1", (
                f"broken promise: {METADATA}; the step's run has tags {record.tags}"
            )

        failing = info.model_copy(update={"step_name": "evaluate"})
        tracker.prepare_step_run(failing)
        tracker.cleanup_step_run(failing, step_failed=True)
        stored = reader.read(tracker.step_run(failing).id).status
        assert stored is RunStatus.FAILED, (
            f"broken promise: {STATUS}; a failed step's run is stored {stored.value}"
        )

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
        assert_points(points(record, "native"), [(1, 2.0)], where="logged through the SDK: ")
        assert record.status is RunStatus.FINISHED, (
            f"broken promise: {STATUS}; the step's run is stored {record.status.value}"
        )
