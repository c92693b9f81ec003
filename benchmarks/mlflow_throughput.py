"""Metric throughput into MLflow: trackstack's natural loop against MLflow's own APIs.

A training loop logs 4 metrics per step, four ways, each into a fresh run:

a. trackstack: ``run.log_metrics({...}, step=step)`` once per step (the natural loop);
b. ``mlflow.log_metric`` once per point (how most step code logs);
c. ``MlflowClient.log_batch`` once per step (what framework loggers do);
d. ``MlflowClient.log_batch`` in chunks of 1,000 (the best a user can write by hand).

The slow ways log fewer steps, so that a run takes seconds, not hours; points
per second compare across step counts. The ways alternate within each round,
after a warm-up round, on a SQLite store and on a local ``mlflow server``.
"""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric

import trackstack
from tests.servers import MlflowServer
from trackstack.delivery.sender_process import sender_process
from trackstack.experiment_trackers import BaseExperimentTracker

KEYS = ("loss", "accuracy", "learning_rate", "grad_norm")
STEPS = {"a": 10_000, "b": 100, "c": 250, "d": 10_000}
NAMES = {
    "a": "trackstack run.log_metrics per step",
    "b": "mlflow.log_metric per point",
    "c": "MlflowClient.log_batch per step",
    "d": "MlflowClient.log_batch per 1,000 points",
}


def _values(step: int) -> dict[str, float]:
    return {key: (step + 1) / (index + 2) for index, key in enumerate(KEYS)}


def _experiment(client: MlflowClient) -> str:
    return str(client.create_experiment(f"bench-{uuid.uuid4().hex}"))


def way_a(tracker: BaseExperimentTracker, steps: int, blocked: list[Call]) -> float:
    run = tracker.start_run()
    with _cpu_wait() as cpu_wait, _full_collections() as collections:
        start = time.perf_counter()
        for step in range(steps):
            waited = cpu_wait()
            full = len(collections)
            before = time.perf_counter()
            run.log_metrics(_values(step), step=step)
            after = time.perf_counter()
            blocked.append(Call(after - before, cpu_wait() - waited, len(collections) > full))
        run.end()  # sends what is still buffered: part of the cost
        return time.perf_counter() - start


class Call(NamedTuple):
    """One ``log_metrics`` call: how long it took, how long it waited for a CPU, and
    whether a full collection of the process's heap ran inside it."""

    seconds: float
    cpu_wait: float
    full_gc: bool


@contextmanager
def _full_collections() -> Iterator[list[float]]:
    """The durations of this process's full (generation 2) garbage collections meanwhile.

    Any allocation may set one off once the heap's older objects have grown by a
    quarter; its cost is the whole heap's (MLflow's SQL store alone is ~300,000
    objects here), not the allocating call's.
    """
    durations: list[float] = []
    started: list[float] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            durations.append(time.perf_counter() - started.pop())

    gc.callbacks.append(note)
    try:
        yield durations
    finally:
        gc.callbacks.remove(note)


@contextmanager
def _cpu_wait() -> Iterator[Callable[[], float]]:
    """Seconds the calling thread has been runnable but waiting for a CPU (Linux), else 0.

    The file stays open: reading it costs 1 us, opening it 12 us, inside the timed loop.
    """
    try:
        stat = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        yield lambda: 0.0
        return
    try:
        yield lambda: int(os.pread(stat, 64, 0).split()[1]) / 1e9
    finally:
        os.close(stat)


def way_b(uri: str, steps: int) -> float:
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(experiment_id=_experiment(MlflowClient(uri))):
        start = time.perf_counter()
        for step in range(steps):
            for key, value in _values(step).items():
                mlflow.log_metric(key, value, step=step)
        return time.perf_counter() - start


def way_c(uri: str, steps: int) -> float:
    client = MlflowClient(uri)
    run_id = client.create_run(_experiment(client)).info.run_id
    start = time.perf_counter()
    for step in range(steps):
        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, step) for k, v in _values(step).items()]
        client.log_batch(run_id, metrics=batch, synchronous=True)
    return time.perf_counter() - start


def way_d(uri: str, steps: int) -> float:
    client = MlflowClient(uri)
    run_id = client.create_run(_experiment(client)).info.run_id
    start = time.perf_counter()
    pending: list[Metric] = []
    for step in range(steps):
        now = int(time.time() * 1000)
        pending.extend(Metric(k, v, now, step) for k, v in _values(step).items())
        if len(pending) >= 1000:
            client.log_batch(run_id, metrics=pending[:1000], synchronous=True)
            del pending[:1000]
    if pending:
        client.log_batch(run_id, metrics=pending, synchronous=True)
    return time.perf_counter() - start


SDK_WAYS: dict[str, Callable[[str, int], float]] = {"b": way_b, "c": way_c, "d": way_d}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _blocked(calls: list[Call]) -> dict[str, float]:
    seconds = [call.seconds for call in calls]
    # What a call took beyond the time its thread sat runnable without a CPU:
    # on a machine busier than its cores, the scheduler's share of the longest call.
    own = [max(0.0, call.seconds - call.cpu_wait) for call in calls]
    return {
        "median": statistics.median(seconds) * 1000,
        "p99": _percentile(seconds, 0.99) * 1000,
        "max": max(seconds) * 1000,
        "max_less_cpu_wait": max(own) * 1000,
        "calls_over_5_ms": sum(took > 0.005 for took in seconds),
        "calls_over_5_ms_without_full_gc": sum(
            call.seconds > 0.005 for call in calls if not call.full_gc
        ),
        "calls_with_full_gc": sum(call.full_gc for call in calls),
        "max_without_full_gc": max(c.seconds for c in calls if not c.full_gc) * 1000,
    }


def _tracker(uri: str, send_from_process: bool) -> BaseExperimentTracker:
    tracker = trackstack.load_tracker(
        {"flavor": "mlflow", "config": {"tracking_uri": uri, "experiment_name": "bench-a"}}
    )
    tracker.send_from_process = send_from_process
    return tracker


def measure(uri: str, rounds: int, scale: float) -> dict[str, Any]:
    """Median points per second of each way, its ratio to a, and a's blocked time per call.

    trackstack's tracker is built once, as a program does; its sender process
    starts with the first run (it imports MLflow), which the warm-up round waits for.
    """
    tracker = _tracker(uri, send_from_process=True)
    started = time.perf_counter()
    tracker.start_run().end()
    ready = sender_process().wait_ready(tracker, 300)
    ready_seconds = time.perf_counter() - started
    rates: dict[str, list[float]] = {way: [] for way in NAMES}
    blocked: list[Call] = []
    for round_number in range(rounds + 1):  # round 0 warms up and is not counted
        for way in NAMES:
            steps = max(10, int(STEPS[way] * scale))
            calls: list[Call] = []
            seconds = way_a(tracker, steps, calls) if way == "a" else SDK_WAYS[way](uri, steps)
            if round_number:
                rates[way].append(steps * len(KEYS) / seconds)
                blocked.extend(calls)
    medians = {way: statistics.median(values) for way, values in rates.items()}
    ratios = {
        way: [a / other for a, other in zip(rates["a"], rates[way], strict=True)]
        for way in ("b", "c", "d")
    }
    # The same loop with the batches sent by a thread of this process, as before
    # the sender process: its longest calls are GIL waits and garbage collections.
    in_thread: list[Call] = []
    threaded = _tracker(uri, send_from_process=False)
    for _ in range(rounds):
        way_a(threaded, max(10, int(STEPS["a"] * scale)), in_thread)
    return {
        "points_per_second": medians,
        "steps": {way: max(10, int(STEPS[way] * scale)) for way in NAMES},
        # Each round's ratio pairs runs made back to back, which this noisy
        # machine's drift between rounds does not skew; the median of them, and their range.
        "a_over": {way: statistics.median(ratios[way]) for way in ratios},
        "a_over_range": {way: [min(ratios[way]), max(ratios[way])] for way in ratios},
        "sender_process_ready_seconds": ready_seconds if ready else None,
        "blocked_ms": _blocked(blocked),
        "blocked_ms_sender_thread": _blocked(in_thread),
    }


def run(rounds: int = 3, scale: float = 1.0) -> dict[str, Any]:
    """Both stores; the server is started here and stopped afterwards."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    folder = Path(tempfile.mkdtemp(prefix="trackstack-bench-"))
    results = {"sqlite": measure(f"sqlite:///{folder / 'bench.db'}", rounds, scale)}
    server = MlflowServer(folder / "server", f"sqlite:///{folder / 'server.db'}")
    try:
        results["http"] = measure(server.wait_until_healthy().url, rounds, scale)
    finally:
        server.stop()
    return results
