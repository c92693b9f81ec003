"""Runs: status, start and end times, runs open at once, resume, nesting, listing, comparing."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from trackstack.enums import RunStatus
from trackstack.errors import (
    InvalidInputError,
    ParamConflictError,
    RunNotFoundError,
    TrackstackError,
)
from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.records import RunRecord
from trackstack.run import Run
from trackstack.testing.base import (
    EXACT,
    ISOLATION,
    LISTING,
    NESTING,
    RESUME,
    STATUS,
    TIMES,
    SuiteBase,
    assert_points,
    points,
    wait_past,
)
from trackstack.testing.readers import RunReader

__all__ = ["RunChecks"]

LONG_LIST = 130
UNKNOWN_ID = "0123456789abcdef0123456789abcdef"


def instant(value: datetime | None, what: str) -> float:
    assert value is not None, f"broken promise: {TIMES}; the {what} time is missing"
    assert value.tzinfo is not None, f"broken promise: {TIMES}; the {what} time is naive"
    return value.timestamp()


class RunChecks(SuiteBase):
    @pytest.mark.parametrize(
        ("exception", "status"),
        [
            (None, RunStatus.FINISHED),
            (ValueError("failed step"), RunStatus.FAILED),
            (KeyboardInterrupt(), RunStatus.KILLED),
            (SystemExit(0), RunStatus.FINISHED),
            (SystemExit(2), RunStatus.FAILED),
        ],
        ids=["clean", "exception", "keyboard-interrupt", "exit-0", "exit-2"],
    )
    def test_status_follows_how_the_block_ends(
        self,
        tracker: BaseExperimentTracker,
        reader: RunReader,
        exception: BaseException | None,
        status: RunStatus,
    ) -> None:
        def body(run: Run) -> None:
            run.log_metrics({"m": 1.0})
            if exception is not None:
                raise exception

        if exception is None:
            with tracker.start_run() as run:
                body(run)
        else:
            with pytest.raises(type(exception)), tracker.start_run() as run:
                body(run)
        for record in self.both(tracker, reader, run.id):
            assert record.status is status, (
                f"broken promise: {STATUS}; expected {status.value}, stored {record.status.value}"
            )
            assert_points(points(record, "m"), [(0, 1.0)])

    @pytest.mark.parametrize("status", [RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED])
    def test_start_and_end_times_are_the_real_instants(
        self, tracker: BaseExperimentTracker, reader: RunReader, status: RunStatus
    ) -> None:
        """Run under a timezone far from UTC (the suite's own): a naive local time shows."""
        resolution = tracker.capabilities.run_time_resolution
        before_start = time.time()
        run = tracker.start_run(experiment="timed", run_name="timed")
        after_start = time.time()
        for record in self.both(tracker, reader, run.id):
            assert record.status is RunStatus.RUNNING, f"broken promise: {STATUS}"
            assert record.end_time is None, f"broken promise: {TIMES}; a running run has an end"
        wait_past(after_start + 2 * resolution + 0.2)
        before_end = time.time()
        run.end(status.value.lower())
        after_end = time.time()
        for record in self.both(tracker, reader, run.id):
            start, end = instant(record.start_time, "start"), instant(record.end_time, "end")
            seen = (
                f"started between {before_start:.3f} and {after_start:.3f}, ended between "
                f"{before_end:.3f} and {after_end:.3f} (seconds since the epoch); stored "
                f"start {start:.3f}, end {end:.3f} (declared run_time_resolution {resolution} s)"
            )
            assert before_start - resolution <= start <= after_start + resolution, (
                f"broken promise: {TIMES}; {seen}"
            )
            assert before_end - resolution <= end <= after_end + resolution, (
                f"broken promise: {TIMES}; {seen}"
            )
            assert end >= start, f"broken promise: {TIMES}; {seen}"
            assert record.status is status, f"broken promise: {STATUS}"
            assert record.name == "timed"
            assert record.experiment == "timed"

    def test_plain_calls_and_end_by_name(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        run = tracker.start_run(experiment="plain-calls", run_name="plain")
        run.end("killed")
        run.end()  # ending an ended run does nothing
        with pytest.raises(InvalidInputError, match="has ended"):
            run.log_metrics({"late": 1.0})
        for record in self.both(tracker, reader, run.id):
            assert record.status is RunStatus.KILLED, f"broken promise: {STATUS}"
            assert "late" not in record.metrics

    def test_unknown_run_id(self, tracker: BaseExperimentTracker) -> None:
        with pytest.raises(RunNotFoundError):
            tracker.get_run(UNKNOWN_ID)

    # -- several runs at once ----------------------------------------------------------

    def test_runs_open_at_once_hold_only_their_own_data(
        self, tracker: BaseExperimentTracker, reader: RunReader, tmp_path: Path
    ) -> None:
        """Two runs of one tracker and one of a second tracker, logging interleaved."""
        other = type(tracker)(**tracker.identity())
        experiment = f"isolation-{uuid.uuid4().hex[:8]}"
        runs = [
            tracker.start_run(experiment=experiment, run_name="first"),
            tracker.start_run(experiment=experiment, run_name="second"),
            other.start_run(experiment=experiment, run_name="third"),
        ]
        names = ["first", "second", "third"]
        for step in range(40):
            for index, run in enumerate(runs):
                run.log_metrics({f"m{index}": step * 10.0 + index, "shared": float(index)}, step)
                if step == 5:
                    run.log_params({"who": names[index], f"p{index}": index})
                    run.set_tags({"who": names[index], f"t{index}": index})
                if step == 20:
                    (tmp_path / f"{names[index]}.txt").write_text(names[index])
                    run.log_artifact(tmp_path / f"{names[index]}.txt")
        statuses = [RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED]
        for index in (1, 2, 0):
            runs[index].end(statuses[index])
        readings: list[tuple[int, RunRecord]] = []
        for index in (0, 1):
            readings += [(index, record) for record in self.both(tracker, reader, runs[index].id)]
        readings.append((2, other.get_run(runs[2].id)))
        for index, record in readings:
            name = names[index]
            seen = f"run {name!r} holds metrics {sorted(record.metrics)}, params {record.params}"
            assert set(record.metrics) == {f"m{index}", "shared"}, (
                f"broken promise: {ISOLATION}; {seen}"
            )
            assert_points(points(record, f"m{index}"), [(s, s * 10.0 + index) for s in range(40)])
            assert_points(points(record, "shared"), [(s, float(index)) for s in range(40)])
            assert record.params == {"who": name, f"p{index}": str(index)}, (
                f"broken promise: {ISOLATION}; {seen}"
            )
            assert record.tags.get("who") == name, f"broken promise: {ISOLATION}; {record.tags}"
            assert not {f"t{i}" for i in range(3) if i != index} & set(record.tags), (
                f"broken promise: {ISOLATION}; run {name!r} has tags {record.tags}"
            )
            assert record.artifacts == [f"{name}.txt"], (
                f"broken promise: {ISOLATION}; run {name!r} holds artifacts {record.artifacts}"
            )
            assert record.status is statuses[index], f"broken promise: {STATUS}"
            assert record.name == name

    # -- resume and nesting ------------------------------------------------------------

    def test_resume_keeps_what_the_run_had_and_goes_on_after_its_highest_step(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        self.require(tracker, "resume")
        self.require(tracker, "nested_runs")
        parent = tracker.start_run(experiment="resumed", run_name="parent")
        parent.end()
        with tracker.start_run(
            experiment="resumed",
            run_name="first",
            tags={"before": "resume", "kept": "yes"},
            parent=parent,
        ) as run:
            run.log_params({"lr": 0.1})
            run.log_metrics({"loss": 1.0}, step=0)
            run.log_metrics({"loss": 0.9}, step=7)
            run.log_metrics({"loss": 0.95}, step=3)  # the last point is not the highest step
        first = tracker.get_run(run.id)
        resumed = {"after": "resume", "before": "overwritten"}
        with tracker.start_run(run_id=run.id, tags=resumed) as again:
            assert again.id == run.id
            assert again.experiment == "resumed"
            for record in self.both(tracker, reader, run.id):
                assert record.status is RunStatus.RUNNING, (
                    f"broken promise: {RESUME}; a resumed run reads {record.status.value}"
                )
            # The backend may keep the old end (MLflow does); a record of a running run has none.
            ended = tracker.get_run(run.id).end_time
            assert ended is None, f"broken promise: {RESUME}; a resumed run still ends at {ended}"
            # Before anything else: the params come from the backend, not from this session.
            try:
                again.log_params({"lr": 0.5})
            except ParamConflictError:
                pass
            else:
                raise AssertionError(
                    f"broken promise: {RESUME}; after resuming, logging param 'lr' again with "
                    "another value did not raise ParamConflictError: the resumed run did not "
                    "know its params (backend_resume_state)"
                )
            again.log_params({"lr": 0.1, "epochs": 3})
            again.log_metrics({"loss": 0.8})
        for record in self.both(tracker, reader, run.id):
            seen = (
                f"stored status {record.status.value}, parent {record.parent_id!r}, "
                f"params {record.params}, tags {record.tags}, start {record.start_time}"
            )
            assert record.status is RunStatus.FINISHED, f"broken promise: {RESUME}; {seen}"
            assert record.parent_id == parent.id, f"broken promise: {RESUME}; {seen}"
            assert record.params == {"lr": "0.1", "epochs": "3"}, (
                f"broken promise: {RESUME}; {seen}"
            )
            assert resumed.items() <= record.tags.items(), (
                f"broken promise: {RESUME} (tags given on resume are set); {seen}"
            )
            assert record.tags.get("kept") == "yes", (
                f"broken promise: {RESUME} (tags not given on resume stay); {seen}"
            )
            assert record.name == "first", f"broken promise: {RESUME}; {seen}"
            start, was = instant(record.start_time, "start"), instant(first.start_time, "start")
            assert abs(start - was) <= tracker.capabilities.run_time_resolution, (
                f"broken promise: {RESUME}; started at {was}, after resuming {start}"
            )
            stored = points(record, "loss")
            assert_points(stored[:3], [(0, 1.0), (7, 0.9), (3, 0.95)])
            assert stored[3:] == [(8, 0.8)], (
                f"broken promise: {RESUME}; the next step after resuming must follow the "
                f"highest step logged (7), not the last one (3): stored {stored[3:]}"
            )

    def test_a_run_resumed_without_points_starts_at_step_zero(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        self.require(tracker, "resume")
        with tracker.start_run(experiment="resumed") as run:
            run.log_params({"empty": True})
        with tracker.start_run(run_id=run.id) as again:
            again.log_metrics({"first": 1.0})
        for record in self.both(tracker, reader, run.id):
            assert points(record, "first") == [(0, 1.0)], (
                f"broken promise: {RESUME}; a run that had no points goes on at step 0, "
                f"stored {points(record, 'first')}"
            )

    def test_nested_runs_even_under_an_ended_parent(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        self.require(tracker, "nested_runs")
        with (
            tracker.start_run(experiment="nesting") as parent,
            tracker.start_run(experiment="nesting", parent=parent) as child,
        ):
            child.log_metrics({"m": 1.0})
        try:
            late = tracker.start_run(experiment="nesting", parent=parent.id)
        except TrackstackError as error:
            raise AssertionError(
                f"broken promise: {NESTING}; starting a run under the ended parent raised {error!r}"
            ) from error
        with late:
            late.log_metrics({"m": 2.0})
        for run_id in (child.id, late.id):
            for record in self.both(tracker, reader, run_id):
                assert record.parent_id == parent.id, (
                    f"broken promise: {NESTING}; stored parent {record.parent_id!r}"
                )
        assert tracker.get_run(parent.id).parent_id is None

    def test_a_parent_that_does_not_exist_is_refused(self, tracker: BaseExperimentTracker) -> None:
        self.require(tracker, "nested_runs")
        experiment = f"orphans-{uuid.uuid4().hex[:8]}"
        with tracker.start_run(experiment=experiment) as real:
            real.log_params({"real": True})
        try:
            orphan = tracker.start_run(
                experiment=experiment, parent="0123456789abcdef0123456789abcdef"
            )
        except RunNotFoundError:
            pass
        else:
            orphan.end()
            raise AssertionError(
                f"broken promise: {NESTING}; a run started under a parent that does not exist "
                "(backend_check_run must raise RunNotFoundError)"
            )
        listed = [record.id for record in tracker.list_runs(experiment=experiment)]
        assert listed == [real.id], f"broken promise: {NESTING}; a refused start left {listed}"

    def test_a_name_the_backend_chose_is_the_runs_name(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        with tracker.start_run() as run:
            run.log_metrics({"m": 1.0})
        for record in self.both(tracker, reader, run.id):
            assert record.name == run.name, (
                f"broken promise: {EXACT}; run.name is {run.name!r} but the backend holds "
                f"{record.name!r} (StartedRun.name is the name the backend chose)"
            )

    # -- listing and comparing ---------------------------------------------------------

    def test_listed_runs_read_as_they_read_one_by_one(self, tracker: BaseExperimentTracker) -> None:
        experiment = f"listed-whole-{uuid.uuid4().hex[:8]}"
        ids = []
        for index in range(3):
            with tracker.start_run(experiment=experiment, tags={"i": index}) as run:
                run.log_params({"index": index})
                run.log_metrics({"loss": 1.0 / (index + 1)}, step=0)
                run.log_metrics({"loss": 0.5 / (index + 1)}, step=1)
            ids.append(run.id)
        for listed in tracker.list_runs(experiment=experiment):
            alone = tracker.get_run(listed.id)
            for field in ("name", "experiment", "status", "params", "tags", "parent_id"):
                assert getattr(listed, field) == getattr(alone, field), (
                    f"broken promise: {LISTING}; run {listed.id} lists {field} "
                    f"{getattr(listed, field)!r}, get_run reads {getattr(alone, field)!r}"
                )
            assert listed.final_metrics() == alone.final_metrics(), (
                f"broken promise: {LISTING}; run {listed.id} lists metrics "
                f"{listed.final_metrics()}, get_run reads {alone.final_metrics()}"
            )

    def test_list_runs_returns_every_run_of_a_long_list(
        self, tracker: BaseExperimentTracker
    ) -> None:
        """More runs than one page of a backend's listing (100 in many APIs)."""
        experiment = f"long-list-{uuid.uuid4().hex[:8]}"
        ids = [tracker.start_run(experiment=experiment) for _ in range(LONG_LIST)]
        for run in ids:
            run.end()
        listed = [record.id for record in tracker.list_runs(experiment=experiment)]
        assert sorted(listed) == sorted(run.id for run in ids), (
            f"broken promise: {LISTING}; {LONG_LIST} runs started, list_runs gave {len(listed)}"
        )

    def test_list_runs_newest_first_across_experiments_nested_included(
        self, tracker: BaseExperimentTracker
    ) -> None:
        # Fresh names: the suite may run again against the same long-lived store.
        tag = uuid.uuid4().hex[:12]
        first, second = f"listed-{tag}", f"listed-too-{tag}"
        nested = tracker.capabilities.nested_runs
        resolution = tracker.capabilities.run_time_resolution
        started: list[tuple[Run, str]] = []
        last_started = [0.0]

        def start(experiment: str, parent: Run | None = None) -> Run:
            if started:  # start times apart by more than the store's resolution
                wait_past(last_started[0] + resolution)
            run = tracker.start_run(experiment=experiment, parent=parent if nested else None)
            last_started[0] = time.time()
            started.append((run, experiment))
            return run

        outer = start(first)
        start(first, parent=outer).end("FAILED")
        outer.end()
        other = start(second)
        start(second, parent=other).end("KILLED")
        other.end()
        running = start(first)
        newest_first = [run.id for run, _ in reversed(started)]
        listed = [record.id for record in tracker.list_runs() if record.id in newest_first]
        assert listed == newest_first, (
            f"broken promise: {LISTING}; started {newest_first[::-1]}, list_runs() "
            f"gave them as {listed}"
        )
        only_first = tracker.list_runs(experiment=first)
        expected = [run.id for run, experiment in reversed(started) if experiment == first]
        assert [record.id for record in only_first] == expected, (
            f"broken promise: {LISTING}; list_runs({first!r}) gave "
            f"{[(r.id, r.experiment) for r in only_first]}, expected {expected}"
        )
        statuses = {record.id: record.status for record in tracker.list_runs(experiment=second)}
        assert set(statuses.values()) == {RunStatus.FINISHED, RunStatus.KILLED} or not nested
        assert tracker.list_runs(experiment=first)[0].status is RunStatus.RUNNING
        running.end()

    def test_compare_runs(self, tracker: BaseExperimentTracker) -> None:
        from trackstack.compare import compare_runs

        ids = []
        for lr in (0.1, 0.2):
            with tracker.start_run(experiment="compared") as run:
                run.log_params({"lr": lr, "epochs": 3})
                for step in range(3):
                    run.log_metrics({"loss": lr * (3 - step)}, step=step)
            ids.append(run.id)
        comparison = compare_runs(tracker.get_run(run_id) for run_id in ids)
        assert comparison.params == {
            "epochs": {ids[0]: "3", ids[1]: "3"},
            "lr": {ids[0]: "0.1", ids[1]: "0.2"},
        }
        assert comparison.metrics == {"loss": {ids[0]: 0.1, ids[1]: 0.2}}
        assert comparison.differing == ["lr", "loss"]
