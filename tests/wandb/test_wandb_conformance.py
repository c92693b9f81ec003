"""The W&B adapter, offline, passes the conformance suite, read back from W&B's run files."""

from __future__ import annotations

import pytest
from trackstack_wandb.testing import WandbRunFileReader
from trackstack_wandb.tracker import WandbExperimentTracker

from trackstack.testing import RunReader, TrackerConformance
from trackstack.testing.conformance import NativeLogger


class TestOffline(TrackerConformance):
    @pytest.fixture
    def tracker(self, offline: WandbExperimentTracker) -> WandbExperimentTracker:
        return offline

    @pytest.fixture
    def reader(self, tracker: WandbExperimentTracker) -> RunReader:
        return WandbRunFileReader.for_tracker(tracker)

    @pytest.fixture
    def native_logger(self) -> NativeLogger:
        return WandbRunFileReader.log_natively
