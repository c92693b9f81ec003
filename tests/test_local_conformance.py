"""The local flavor passes the conformance suite, read back with plain SQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from trackstack.local.tracker import LocalExperimentTracker
from trackstack.registry import get_flavor
from trackstack.testing import LocalStoreReader, RunReader, TrackerConformance


class TestLocalConformance(TrackerConformance):
    @pytest.fixture
    def tracker(self, tmp_path: Path) -> LocalExperimentTracker:
        built = get_flavor("local").create("local", root=tmp_path / "store")
        assert isinstance(built, LocalExperimentTracker)
        return built

    @pytest.fixture
    def reader(self, tracker: LocalExperimentTracker) -> RunReader:
        return LocalStoreReader(tracker.config.root)
