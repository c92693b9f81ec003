"""Delivery from the journal: in the background and at the end; it never drops a point.

Failures are injected by a tracker subclass around the real local store: a
backend that fails on demand, with everything it does accept really stored.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar
from unittest.mock import ANY

import pytest

import trackstack
from trackstack import RunStatus
from trackstack.errors import BackendError, BackendUnavailableError
from trackstack.experiment_trackers import Capabilities, MetricPoint, RunStart, StartedRun
from trackstack.local import LocalExperimentTrackerFlavor
from trackstack.local.tracker import LocalExperimentTracker
from trackstack.stack import StackComponent


class FlakyTracker(LocalExperimentTracker):
    """Accepts ``accept_first`` metric batches, then refuses ``failures``: a dying server."""

    capabilities: ClassVar[Capabilities] = Capabilities(max_metrics_per_call=3)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures = 0
        self.accept_first = 0
        self.fail_end = False
        self.fail_start = False
        self.delay = 0.0
        self.error: Exception = RuntimeError("server said no")
        self.refused_keys: set[str] = set()
        self.batches: list[int] = []

    def backend_log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        time.sleep(self.delay)
        if self.accept_first:
            self.accept_first -= 1
        elif self.failures:
            self.failures -= 1
            raise self.error
        refused = self.refused_keys.intersection(key for key, _ in points)
        if refused:
            raise ValueError(f"invalid metric name {sorted(refused)}")
        self.batches.append(len(points))
        super().backend_log_metrics(run_id, points)

    def backend_start_run(self, request: RunStart) -> StartedRun:
        if self.fail_start:
            raise self.error
        return super().backend_start_run(request)

    def backend_end_run(self, run_id: str, status: RunStatus) -> None:
        if self.fail_end:
            raise self.error
        super().backend_end_run(run_id, status)


class FlakyFlavor(LocalExperimentTrackerFlavor):
    @property
    def implementation_class(self) -> type[StackComponent]:
        return FlakyTracker


@pytest.fixture
def flaky(tmp_path: Path) -> FlakyTracker:
    tracker = FlakyFlavor().create("flaky", root=tmp_path / "store")
    assert isinstance(tracker, FlakyTracker)
    return tracker


def stored_points(tracker: LocalExperimentTracker, run_id: str) -> list[tuple[str, int, float]]:
    """Read the store's own table, bypassing the tracker (and its flush on read)."""
    with sqlite3.connect(tracker.store.database) as conn:
        rows = conn.execute(
            "SELECT key, step, value FROM metrics WHERE run_id = ? ORDER BY seq", (run_id,)
        ).fetchall()
    return [(str(k), int(s), float(v)) for k, s, v in rows]


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the background sender"
        time.sleep(0.01)


def test_full_batches_are_sent_in_the_background(tracker: LocalExperimentTracker) -> None:
    tracker.buffer_size = 10
    tracker.flush_interval = 3600
    run = tracker.start_run()
    for step in range(25):
        run.log_metrics({"m": step}, step=step)
    wait_until(lambda: len(stored_points(tracker, run.id)) >= 10)
    sent = [s for _, s, _ in stored_points(tracker, run.id)]
    assert sent == list(range(len(sent)))
    run.end()
    assert [s for _, s, _ in stored_points(tracker, run.id)] == list(range(25))


def test_a_loop_that_never_pauses_still_has_its_journal_fsynced(
    tracker: LocalExperimentTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Against power loss the journal is fsynced on a cadence; a loop logging
    # without a pause keeps the sender busy delivering, which must not skip it.
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    tracker.buffer_size = 10
    run = tracker.start_run()
    deadline, step = time.monotonic() + 120, 0
    while not any(path.endswith("/records") for path in synced):
        assert time.monotonic() < deadline, "the journal was never fsynced while logging"
        run.log_metrics({"m": step}, step=step)
        step += 1
    run.end()
    print(f"logged {step} steps before the first fsync")
    assert [s for _, s, _ in stored_points(tracker, run.id)] == list(range(step))


def test_a_backend_slower_than_the_loop_keeps_at_most_max_buffered_points_in_memory(
    flaky: FlakyTracker,
) -> None:
    flaky.buffer_size, flaky.max_buffered_points, flaky.flush_interval = 3, 6, 3600
    flaky.delay = 0.05
    run = flaky.start_run()
    most = 0
    for step in range(30):
        run.log_metrics({"m": step}, step=step)
        most = max(most, run.buffered_points)
    assert most <= 6
    run.end()
    assert [s for _, s, _ in stored_points(flaky, run.id)] == list(range(30))


def test_buffer_flushes_a_quiet_run_by_interval(tracker: LocalExperimentTracker) -> None:
    tracker.flush_interval = 0.05
    run = tracker.start_run()
    run.log_metrics({"m": 1.0})
    # Stored, then acknowledged: the buffer empties just after the store has the point.
    wait_until(lambda: bool(stored_points(tracker, run.id)) and run.buffered_points == 0)
    assert stored_points(tracker, run.id) == [("m", 0, 1.0)]
    run.end()


def test_get_run_sends_what_is_buffered_first(tracker: LocalExperimentTracker) -> None:
    tracker.flush_interval = 3600
    run = tracker.start_run()
    run.log_metrics({"m": 1.0})
    assert stored_points(tracker, run.id) == []
    assert [p.value for p in tracker.get_run(run.id).metrics["m"]] == [1.0]
    run.end()


def test_a_batch_refused_once_is_sent_again_by_halves_and_nothing_is_lost(
    flaky: FlakyTracker,
) -> None:
    flaky.flush_interval = 3600
    run = flaky.start_run()
    for step in range(7):
        run.log_metrics({"m": step}, step=step)
    flaky.failures = 1
    run.flush()  # the refused batch is halved; both halves go through
    assert run.buffered_points == 0
    run.end()
    assert [s for _, s, _ in stored_points(flaky, run.id)] == list(range(7))
    assert flaky.batches == [1, 2, 3, 1]


def test_a_point_the_backend_refuses_is_set_aside_and_named_once(
    flaky: FlakyTracker, isolated_cwd: Path
) -> None:
    flaky.refused_keys = {"bad"}
    flaky.flush_interval = 3600
    run = flaky.start_run()
    for step in range(5_000):
        run.log_metrics({"m": step, **({"bad": 1.0} if step == 2_500 else {})}, step=step)
    with pytest.raises(BackendError, match="'bad'") as caught:
        run.flush()  # delivering is where the refusal is met; it is named once, here
    run.log_metrics({"m": 5_000}, step=5_000)
    assert "everything else was delivered" in str(caught.value)
    for step in range(5_001, 10_000):
        run.log_metrics({"m": step}, step=step)  # not again
    run.end()
    points = stored_points(flaky, run.id)
    print(f"logged 10001, stored {len(points)}, refused 1")
    assert [s for _, s, _ in points] == list(range(10_000))
    (refused,) = (isolated_cwd / ".trackstack" / "journal").rglob("refused/*.jsonl")
    assert '"bad"' in refused.read_text()
    assert flaky.get_run(run.id).status is RunStatus.FINISHED


def test_a_refusal_the_loop_has_not_heard_of_is_raised_by_end_after_the_run_ended(
    flaky: FlakyTracker,
) -> None:
    flaky.refused_keys = {"bad"}
    run = flaky.start_run()
    run.log_metrics({"bad": 1.0, "good": 2.0}, step=0)
    with pytest.raises(BackendError, match="'bad'"):
        run.end()
    assert run.status is RunStatus.FINISHED
    run.end()  # once only
    assert stored_points(flaky, run.id) == [("good", 0, 2.0)]
    assert flaky.get_run(run.id).status is RunStatus.FINISHED


def test_an_end_the_backend_refuses_closes_the_run_and_says_so(flaky: FlakyTracker) -> None:
    run = flaky.start_run()
    run.log_metrics({"m": 1.0})
    flaky.fail_end = True
    with pytest.raises(BackendError, match="refused end 'FINISHED'"):
        run.end()
    assert run.status is RunStatus.FINISHED
    assert stored_points(flaky, run.id) == [("m", 0, 1.0)]


def test_user_exception_wins_over_a_failing_end(flaky: FlakyTracker) -> None:
    flaky.fail_end = True
    with pytest.raises(ValueError, match="user error") as caught, flaky.start_run() as run:
        raise ValueError("user error")
    assert any("could not end run" in note for note in caught.value.__notes__)
    assert run.status is RunStatus.FAILED


def test_started_run_reports_the_backend_url(tracker: LocalExperimentTracker) -> None:
    started = tracker.backend_start_run
    captured: list[StartedRun] = []

    def capture(request: Any) -> StartedRun:
        captured.append(started(request))
        return captured[-1]

    tracker.backend_start_run = capture  # type: ignore[method-assign]
    with tracker.start_run() as run:
        pass
    assert run.url == captured[0].url
    assert run.url == (tracker.config.root / "artifacts" / run.id).as_uri()


# -- an unavailable backend: retried, then the journal ------------------------------------


def test_unreachable_backend_is_retried_in_the_background_without_bothering_the_loop(
    flaky: FlakyTracker, caplog: pytest.LogCaptureFixture
) -> None:
    flaky.error = ConnectionError("connection refused")
    flaky.buffer_size, flaky.flush_interval, flaky.retry_initial = 4, 3600, 0.01
    flaky.failures = 5
    run = flaky.start_run()
    for step in range(12):
        run.log_metrics({"m": step}, step=step)  # never raises: the sender retries
    wait_until(lambda: flaky.failures == 0 and run.buffered_points < 4)
    run.end()
    assert [s for _, s, _ in stored_points(flaky, run.id)] == list(range(12))
    assert "cannot reach its backend" in caplog.text
    assert "reached its backend again" in caplog.text


def test_end_while_unreachable_leaves_everything_in_the_journal_for_sync(
    flaky: FlakyTracker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flaky.error = ConnectionError("connection refused")
    flaky.flush_interval, flaky.retry_initial, flaky.end_timeout = 3600, 0.01, 0.05
    flaky.journal_dir = tmp_path / "journal"
    run = flaky.start_run()
    run.log_metrics({"loss": 1.0, "acc": 0.5}, step=0)
    flaky.failures, flaky.fail_end = 10**9, True
    run.log_metrics({"loss": 0.5, "acc": 0.7}, step=1)
    run.end()  # does not raise: nothing is lost
    assert run.status is RunStatus.FINISHED
    assert "waiting in" in caplog.text
    assert "trackstack sync" in caplog.text
    assert stored_points(flaky, run.id) == []
    assert flaky.get_run(run.id).status is RunStatus.RUNNING

    flaky.failures, flaky.fail_end = 0, False
    report = trackstack.sync(flaky)
    assert (report.runs, report.points, report.ended) == (1, 4, 1)
    assert stored_points(flaky, run.id) == [
        ("loss", 0, 1.0), ("acc", 0, 0.5), ("loss", 1, 0.5), ("acc", 1, 0.7)
    ]  # fmt: skip
    assert flaky.get_run(run.id).status is RunStatus.FINISHED
    assert trackstack.sync(flaky).points == 0
    assert len(stored_points(flaky, run.id)) == 4
    assert not list((tmp_path / "journal").rglob("records"))


def test_a_sync_cut_short_resumes_where_it_stopped(flaky: FlakyTracker, tmp_path: Path) -> None:
    flaky.error = ConnectionError("connection refused")
    flaky.flush_interval, flaky.retry_initial, flaky.end_timeout = 3600, 0.01, 0.05
    flaky.journal_dir = tmp_path / "journal"
    run = flaky.start_run()
    flaky.failures, flaky.fail_end = 10**9, True
    for step in range(3):
        run.log_metrics({"m": step}, step=step)
    run.end()
    flaky.failures, flaky.fail_end = 0, True  # points go through, the end does not
    with pytest.raises(BackendUnavailableError):
        trackstack.sync(flaky)
    flaky.fail_end = False
    assert trackstack.sync(flaky).points == 0  # the points were already delivered
    assert [s for _, s, _ in stored_points(flaky, run.id)] == [0, 1, 2]
    assert flaky.get_run(run.id).status is RunStatus.FINISHED


def test_a_run_started_while_unreachable_is_created_from_its_journal(
    flaky: FlakyTracker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flaky.error = ConnectionError("connection refused")
    flaky.journal_dir, flaky.end_timeout, flaky.retry_initial = tmp_path / "j", 0.05, 0.01
    flaky.fail_start = flaky.fail_end = True
    flaky.failures = 10**9
    (tmp_path / "model.pkl").write_bytes(b"weights")
    with flaky.start_run(experiment="offline", run_name="r", tags={"team": "a"}) as run:
        run.log_params({"lr": 0.1, "opt": {"name": "adam"}})
        for step in range(5):
            run.log_metrics({"loss": 1 / (step + 1)}, step=step)
        run.set_tags({"stage": "dev"})
        run.log_artifact(tmp_path / "model.pkl", artifact_path="best")
    (tmp_path / "model.pkl").unlink()  # the journal keeps its own copy
    assert run.id.startswith("pending-")
    assert "created when the backend answers" in caplog.text
    assert flaky.list_runs() == []
    with pytest.raises(trackstack.errors.RunNotFoundError, match="trackstack sync"):
        flaky.get_run(run.id)

    flaky.fail_start = flaky.fail_end = False
    flaky.failures = 0
    report = trackstack.sync(flaky)
    print(report)
    created = report.started[run.id]
    record = flaky.get_run(created)
    assert (record.name, record.experiment, record.status) == ("r", "offline", RunStatus.FINISHED)
    assert record.params == {"lr": "0.1", "opt.name": "adam"}
    assert record.tags == {"team": "a", "stage": "dev", "trackstack.journal": ANY}
    assert [p.step for p in record.metrics["loss"]] == [0, 1, 2, 3, 4]
    assert record.artifacts == ["best/model.pkl"]
    assert flaky.get_run(run.id).id == created  # the pending id still finds it
    assert trackstack.sync(flaky).runs == 0
    assert len(flaky.list_runs()) == 1


def test_a_backend_slower_than_the_loop_never_holds_it_the_journal_takes_the_rest(
    flaky: FlakyTracker, tmp_path: Path
) -> None:
    flaky.error = ConnectionError("connection refused")
    flaky.retry_initial, flaky.flush_interval = 0.01, 3600
    flaky.buffer_size, flaky.max_buffered_points = 3, 6
    flaky.failures = 10**9
    run = flaky.start_run()
    for step in range(200):
        run.log_metrics({"m": step}, step=step)
        assert run.buffered_points <= 6  # beyond that, points wait on disk only
    flaky.failures = 0
    run.end()  # the backend is back: what waited on disk is read back and sent
    assert [s for _, s, _ in stored_points(flaky, run.id)] == list(range(200))
    assert flaky.get_run(run.id).status is RunStatus.FINISHED
