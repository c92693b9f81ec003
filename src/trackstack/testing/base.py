"""What every group of the conformance suite shares: the promises, the helpers, the paths.

A failing check names the promise it found broken and what it saw, so that the
adapter's author reads what to fix, not only which assertion failed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from trackstack.enums import RunStatus
from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.records import RunRecord
from trackstack.run import Run
from trackstack.testing.readers import RunReader

__all__ = ["DELIVERY_PATHS", "SuiteBase", "assert_points", "points", "wait_past"]

# The promises a failing test names.
POINTS = "every metric point is stored once, with its step and value, in logging order"
TIMESTAMPS = "each metric point keeps the time it was logged at"
TIMES = "a run's start and end times are the real instants (timezone-aware), end >= start"
PARAMS = "params are stored whole, as the strings trackstack made of them"
TAGS = "every tag set is stored, the last value set winning"
EXACT = "keys, params, tags, run and experiment names are stored exactly as given"
STATUS = "a run ends FINISHED, FAILED on an exception, KILLED on KeyboardInterrupt"
ARTIFACTS = "every file logged is stored, byte for byte, under its artifact path"
ISOLATION = "runs open at once each hold only what was logged to them"
RESUME = "a resumed run is RUNNING again and keeps its start time, parent, tags and params"
NESTING = "a nested run records its parent, even one that has ended"
LISTING = "list_runs is newest first across experiments, nested runs included"
FLUSH = "after flush() every point logged so far is in the backend, while the run is open"
DELIVERY = "points reach the backend the same way through every delivery path"
SECRETS = (
    "secret config values appear in no repr, log, output, warning, metadata, url, error, "
    "environment, file or run data"
)
METADATA = "a step's metadata holds experiment_tracker_url and the backend's <backend>_run_id"
STEP = "a pipeline step's run is the SDK's active run during the step, and leaves no trace after"

DELIVERY_PATHS = ("in-process", "sender-process", "journal-replay")
"""How metric points can reach an adapter's ``backend_log_metrics``: from the run's
sender thread, from the sender process's copy of the tracker, or from
``trackstack sync`` replaying the journal of a process that died."""

_CLOCK_BOUND_SECONDS = 60.0


def points(record: RunRecord, key: str) -> list[tuple[int, float]]:
    return [(p.step, p.value) for p in record.metrics.get(key, [])]


def assert_points(
    actual: list[tuple[int, float]], expected: list[tuple[int, float]], where: str = ""
) -> None:
    """Equal step by step, value by value, with NaN equal to NaN."""
    same = len(actual) == len(expected) and all(
        step == want_step and (value == want or (math.isnan(value) and math.isnan(want)))
        for (step, value), (want_step, want) in zip(actual, expected, strict=True)
    )
    if not same:
        shown = f"logged {expected[:8]}{'...' if len(expected) > 8 else ''} ({len(expected)}), "
        shown += f"stored {actual[:8]}{'...' if len(actual) > 8 else ''} ({len(actual)})"
        raise AssertionError(f"broken promise: {POINTS}; {where}{shown}")


def wait_past(instant: float) -> None:
    """Wait until the wall clock reads later than ``instant`` (the event meant, bounded)."""
    deadline = time.monotonic() + _CLOCK_BOUND_SECONDS
    while (now := time.time()) <= instant:
        if time.monotonic() > deadline:
            raise AssertionError(f"the wall clock did not pass {instant} within a minute")
        time.sleep(min(0.05, instant - now + 0.001))


class SuiteBase:
    """Helpers of the suite's test groups; ``TrackerConformance`` supplies the fixtures."""

    @pytest.fixture(params=DELIVERY_PATHS)
    def delivery(self, request: pytest.FixtureRequest) -> str:
        """Each delivery path the core has, for the checks that run through all of them."""
        path: str = request.param
        return path

    @staticmethod
    def require(tracker: BaseExperimentTracker, capability: str) -> None:
        if not getattr(tracker.capabilities, capability):
            pytest.skip(f"the {tracker.flavor} flavor declares {capability}=False")

    @staticmethod
    def both(tracker: BaseExperimentTracker, reader: RunReader, run_id: str) -> Iterator[RunRecord]:
        """The run as the backend's client reads it, then as the adapter reads it."""
        yield reader.read(run_id)
        yield tracker.get_run(run_id)

    @staticmethod
    def ended_status(path: str) -> RunStatus:
        """How a run delivered by ``path`` ends: recovery after a crash ends it KILLED."""
        return RunStatus.KILLED if path == "journal-replay" else RunStatus.FINISHED

    @contextmanager
    def delivered(self, tracker: BaseExperimentTracker, path: str, **start: Any) -> Iterator[Run]:
        """A run whose metric points reach the backend through ``path``; ended on leaving.

        ``journal-replay`` keeps every point in the journal, leaves the run as a
        killed process would and delivers it with ``trackstack.sync``, which ends
        it KILLED. Log only metrics in such a run: params and tags are sent at
        once, and points waiting then go with them.
        """
        from trackstack.delivery.sender_process import sender_process
        from trackstack.syncing import sync

        saved = (tracker.send_from_process, tracker.flush_interval, tracker.buffer_size)
        try:
            if path == "sender-process":
                self.require(tracker, "sender_process")
                tracker.send_from_process = True
                assert sender_process().wait_ready(tracker, 300), (
                    f"broken promise: {DELIVERY}; the sender process could not build a copy "
                    "of the tracker from its identity (the class and config must pickle, and "
                    "the class must be importable in a new process)"
                )
                before = sender_process().batches_stored
            else:
                tracker.send_from_process = False
            if path == "journal-replay":
                tracker.flush_interval, tracker.buffer_size = 3600.0, 10**9
            run = tracker.start_run(**start)
            yield run
            if path == "journal-replay":
                run._abandon()
                # As after a crash: a tracker built anew delivers it (or a background
                # recovery does, which this sync waits for).
                rebuilt = type(tracker)(**tracker.identity())
                rebuilt.journal_dir = tracker.journal_dir
                report = sync(rebuilt)
                problems = [*report.failed, *report.refused]
                assert not problems, (
                    f"broken promise: {DELIVERY}; trackstack sync could not deliver all of run "
                    f"{run.id} from its journal: {problems}"
                )
            else:
                run.end()
            if path == "sender-process":
                assert sender_process().batches_stored > before, (
                    f"broken promise: {DELIVERY}; no batch went through the sender process"
                )
        finally:
            tracker.send_from_process, tracker.flush_interval, tracker.buffer_size = saved
