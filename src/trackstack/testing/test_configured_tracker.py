"""The conformance suite on the tracker named by ``--trackstack-config``.

Collected by ``pytest --pyargs trackstack.testing --trackstack-config FILE``.
The tracker's store is not fresh: the tests log new runs next to what is there
and check only those.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from trackstack.config import load_tracker
from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.testing.conformance import NativeLogger, TrackerConformance
from trackstack.testing.readers import RunReader

READERS = "trackstack.readers"


class TestConfiguredTracker(TrackerConformance):
    @pytest.fixture
    def tracker(self, pytestconfig: pytest.Config) -> BaseExperimentTracker:
        path = pytestconfig.getoption("--trackstack-config")
        if not path:
            pytest.fail(
                "pass --trackstack-config FILE: the tracker config to run the suite on",
                pytrace=False,
            )
        return load_tracker(path)

    @pytest.fixture
    def reader(self, tracker: BaseExperimentTracker) -> RunReader:
        found = [point for point in entry_points(group=READERS) if point.name == tracker.flavor]
        if not found:
            pytest.fail(
                f"flavor {tracker.flavor!r} registers no reader under the {READERS!r} entry "
                "points: the suite reads runs back through the backend's own client",
                pytrace=False,
            )
        reader: RunReader = found[0].load()(tracker)
        return reader

    @pytest.fixture
    def native_logger(self, reader: RunReader) -> NativeLogger:
        native: NativeLogger | None = getattr(reader, "log_natively", None)
        if native is None:
            pytest.fail("the flavor's reader has no log_natively(key, value, step)")
        return native
