"""Metric points: values, steps, order, timestamps, flushing, threads; by every delivery path."""

from __future__ import annotations

import math
import threading
import time

import pytest

from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.testing.base import (
    DELIVERY_PATHS,
    FLUSH,
    POINTS,
    TIMESTAMPS,
    SuiteBase,
    assert_points,
    points,
    wait_past,
)
from trackstack.testing.readers import RunReader

__all__ = ["MetricChecks"]

LIVE_PATHS = DELIVERY_PATHS[:2]


class MetricChecks(SuiteBase):
    def test_many_points_read_back_exactly(
        self, tracker: BaseExperimentTracker, reader: RunReader, delivery: str
    ) -> None:
        steps = 2_500
        with self.delivered(tracker, delivery) as run:
            for step in range(steps):
                run.log_metrics({"loss": 1 / (step + 1), "acc": step / steps}, step=step)
        for record in self.both(tracker, reader, run.id):
            assert record.status is self.ended_status(delivery)
            assert_points(points(record, "loss"), [(s, 1 / (s + 1)) for s in range(steps)])
            assert_points(points(record, "acc"), [(s, s / steps) for s in range(steps)])

    def test_steps_given_and_automatic(
        self, tracker: BaseExperimentTracker, reader: RunReader, delivery: str
    ) -> None:
        with self.delivered(tracker, delivery) as run:
            run.log_metrics({"a": 1.0})
            run.log_metrics({"a": 2.0, "b": 2.0})
            run.log_metrics({"a": 3.0}, step=10)
            run.log_metrics({"b": 4.0})
        for record in self.both(tracker, reader, run.id):
            assert_points(points(record, "a"), [(0, 1.0), (1, 2.0), (10, 3.0)])
            assert_points(points(record, "b"), [(1, 2.0), (11, 4.0)])

    def test_out_of_order_and_repeated_steps_keep_logging_order(
        self, tracker: BaseExperimentTracker, reader: RunReader, delivery: str
    ) -> None:
        logged = [(5, 1.0), (2, 2.0), (2, 3.0), (2, 3.0), (7, 4.0), (0, 5.0)]
        with self.delivered(tracker, delivery) as run:
            for step, value in logged:
                run.log_metrics({"m": value}, step=step)
        for record in self.both(tracker, reader, run.id):
            assert_points(points(record, "m"), logged)

    def test_largest_steps_are_stored_exactly(
        self, tracker: BaseExperimentTracker, reader: RunReader, delivery: str
    ) -> None:
        top = tracker.capabilities.max_step
        logged = sorted(s for s in {0, 2**31 - 1, 2**31, 2**53 + 1, top - 1, top} if s <= top)
        with self.delivered(tracker, delivery) as run:
            for index, step in enumerate(logged):
                run.log_metrics({"far": float(index)}, step=step)
        for record in self.both(tracker, reader, run.id):
            assert_points(
                points(record, "far"),
                [(step, float(index)) for index, step in enumerate(logged)],
                where=f"steps up to the declared max_step {top}: ",
            )

    def test_nan_and_infinities_round_trip(
        self, tracker: BaseExperimentTracker, reader: RunReader, delivery: str
    ) -> None:
        with self.delivered(tracker, delivery) as run:
            run.log_metrics({"nan": math.nan, "inf": math.inf, "ninf": -math.inf}, step=0)
            run.log_metrics({"nan": 1.0, "inf": 1.0, "ninf": 1.0}, step=1)
        record = tracker.get_run(run.id)
        assert_points(points(record, "nan"), [(0, math.nan), (1, 1.0)])
        assert_points(points(record, "inf"), [(0, math.inf), (1, 1.0)])
        assert_points(points(record, "ninf"), [(0, -math.inf), (1, 1.0)])
        stored = reader.read(run.id)
        assert math.isnan(points(stored, "nan")[0][1]), f"broken promise: {POINTS}"
        # A store may keep ±inf as ±float max; the adapter must map it back.
        assert points(stored, "inf")[0][1] in (math.inf, 1.7976931348623157e308)
        assert points(stored, "ninf")[0][1] in (-math.inf, -1.7976931348623157e308)

    def test_points_keep_the_time_they_were_logged(
        self, tracker: BaseExperimentTracker, reader: RunReader, delivery: str
    ) -> None:
        """Sent a while after they were logged: a point stamped when sent shows it."""
        resolution = tracker.capabilities.timestamp_resolution
        logged: list[tuple[float, float]] = []
        tracker.flush_interval, tracker.buffer_size = 3600.0, 10**9
        with self.delivered(tracker, delivery) as run:
            for step in range(3):
                before = time.time()
                run.log_metrics({"timed": float(step)}, step=step)
                logged.append((before, time.time()))
                wait_past(logged[-1][1] + 2 * resolution)
            wait_past(logged[-1][1] + max(0.5, 4 * resolution))
        for record in self.both(tracker, reader, run.id):
            stamps = [point.timestamp for point in record.metrics.get("timed", [])]
            assert len(stamps) == len(logged), f"broken promise: {POINTS}"
            for (before, after), stamp in zip(logged, stamps, strict=True):
                assert before - resolution <= stamp <= after + resolution, (
                    f"broken promise: {TIMESTAMPS}; logged between {before:.6f} and "
                    f"{after:.6f} (seconds since the epoch), stored {stamp!r} "
                    f"(declared timestamp_resolution {resolution} s)"
                )

    @pytest.mark.parametrize("path", LIVE_PATHS)
    def test_flush_makes_every_point_visible_while_the_run_is_open(
        self, tracker: BaseExperimentTracker, reader: RunReader, path: str
    ) -> None:
        tracker.flush_interval, tracker.buffer_size = 3600.0, 10**9
        with self.delivered(tracker, path) as run:
            for step in range(50):
                run.log_metrics({"seen": float(step)}, step=step)
            run.flush()
            stored = reader.read(run.id)  # first: get_run would flush by itself
            assert len(points(stored, "seen")) == 50, (
                f"broken promise: {FLUSH}; the backend holds {len(points(stored, 'seen'))} "
                "of 50 points after flush()"
            )
            run.log_metrics({"seen": 50.0}, step=50)
            run.flush()
            for record in self.both(tracker, reader, run.id):
                assert_points(points(record, "seen"), [(s, float(s)) for s in range(51)])

    def test_numpy_scalars_zero_d_arrays_and_ints(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        import numpy  # the suite needs numpy: numpy values are what training code logs

        with tracker.start_run() as run:
            run.log_metrics(
                {"f32": numpy.float32(0.5), "i64": numpy.int64(7), "arr": numpy.array(2.5)},
                step=numpy.int64(3),
            )
            run.log_metrics({"big": 10**300, "neg": -3})
        for record in self.both(tracker, reader, run.id):
            assert_points(points(record, "f32"), [(3, 0.5)])
            assert_points(points(record, "i64"), [(3, 7.0)])
            assert_points(points(record, "arr"), [(3, 2.5)])
            assert_points(points(record, "big"), [(4, 1e300)])
            assert_points(points(record, "neg"), [(4, -3.0)])

    def test_many_keys_at_once(self, tracker: BaseExperimentTracker, reader: RunReader) -> None:
        keys = [f"group{i % 7}/metric_{i}" for i in range(120)]
        with tracker.start_run() as run:
            run.log_metrics({key: float(i) for i, key in enumerate(keys)}, step=0)
            run.log_params({f"p{i}": i for i in range(250)})
            run.set_tags({f"t{i}": i for i in range(150)})
        for record in self.both(tracker, reader, run.id):
            assert {key: points(record, key) for key in keys} == {
                key: [(0, float(i))] for i, key in enumerate(keys)
            }
            assert record.params == {f"p{i}": str(i) for i in range(250)}
            assert {f"t{i}": str(i) for i in range(150)}.items() <= record.tags.items()

    def test_threads_logging_into_one_run_lose_nothing(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        threads, calls = 8, 250
        barrier = threading.Barrier(threads)
        with tracker.start_run() as run:

            def work(index: int) -> None:
                barrier.wait()
                for i in range(calls):
                    run.log_metrics({f"thread{index}": float(i)})
                    if i % 50 == 0:
                        run.log_params({f"p{index}.{i}": i})

            workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        for record in self.both(tracker, reader, run.id):
            for index in range(threads):
                assert [v for _, v in points(record, f"thread{index}")] == [
                    float(i) for i in range(calls)
                ], f"broken promise: {POINTS}"
            steps = sorted(p.step for series in record.metrics.values() for p in series)
            assert steps == list(range(threads * calls)), f"broken promise: {POINTS}"
            assert len(record.params) == threads * calls // 50
