"""The memory adapter passes trackstack's conformance suite."""

from __future__ import annotations

import uuid

import pytest
from trackstack_memory import MemoryExperimentTracker, MemoryReader

import trackstack
from trackstack.testing import RunReader, TrackerConformance


class TestMemoryConformance(TrackerConformance):
    @pytest.fixture
    def tracker(self) -> MemoryExperimentTracker:
        label = f"tests-{uuid.uuid4().hex}"  # a fresh store
        built = trackstack.load_tracker({"flavor": "memory", "config": {"label": label}})
        assert isinstance(built, MemoryExperimentTracker)
        return built

    @pytest.fixture
    def reader(self, tracker: MemoryExperimentTracker) -> RunReader:
        return MemoryReader(tracker.runs)
