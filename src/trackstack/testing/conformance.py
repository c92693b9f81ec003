"""``TrackerConformance``: the executable definition of a trackstack adapter.

Every test logs through the run API, then checks what the backend holds twice:
through the ``reader`` fixture (the backend's own client) and through the
adapter's ``get_run``. Two adapters that pass behave the same for code that
logs through trackstack. The checks live in groups (``checks_*`` modules);
this class puts them together with the fixtures an adapter supplies.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.testing.base import assert_points, points
from trackstack.testing.checks_artifacts import ArtifactChecks, make_tree
from trackstack.testing.checks_input import InputChecks
from trackstack.testing.checks_metrics import MetricChecks
from trackstack.testing.checks_pipelines import NativeLogger, PipelineChecks
from trackstack.testing.checks_runs import RunChecks
from trackstack.testing.checks_secrets import SecretChecks
from trackstack.testing.checks_values import ValueChecks
from trackstack.testing.readers import RunReader

__all__ = ["NativeLogger", "TrackerConformance", "assert_points", "make_tree", "points"]

SUITE_TIMEZONE = "IST-5:30"
"""POSIX for UTC+05:30 (no time zone database needed): far enough from UTC, and by a
half hour, that a local time taken for UTC, or the reverse, shows in every check of times."""


class TrackerConformance(
    MetricChecks,
    ValueChecks,
    RunChecks,
    ArtifactChecks,
    PipelineChecks,
    SecretChecks,
    InputChecks,
):
    """Subclass this in a test module and override the ``tracker`` and ``reader`` fixtures."""

    # -- what an adapter supplies ----------------------------------------------------

    @pytest.fixture
    def tracker(self) -> BaseExperimentTracker:
        """A configured tracker on a fresh, empty store."""
        raise NotImplementedError("override the `tracker` fixture: a tracker on a fresh store")

    @pytest.fixture
    def reader(self) -> RunReader:
        """Reads runs back through the backend's own client, not the adapter."""
        raise NotImplementedError("override the `reader` fixture: reads via the backend's client")

    @pytest.fixture
    def native_logger(self) -> NativeLogger:
        """Logs through the SDK's own API; needed when ``capabilities.sdk_active_run``."""
        raise NotImplementedError("override `native_logger`: the SDK's own metric call")

    # -- what the suite sets up itself ---------------------------------------------------

    @pytest.fixture(autouse=True)
    def _far_from_utc(self) -> Iterator[None]:
        """Every check runs with the process's local time zone at UTC+05:30."""
        before = os.environ.get("TZ")
        os.environ["TZ"] = SUITE_TIMEZONE
        time.tzset()
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("TZ", None)
            else:
                os.environ["TZ"] = before
            time.tzset()
