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

import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric

import trackstack
from tests.servers import MlflowServer

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


def way_a(uri: str, steps: int, blocked: list[float]) -> float:
    tracker = trackstack.load_tracker(
        {"flavor": "mlflow", "config": {"tracking_uri": uri, "experiment_name": "bench-a"}}
    )
    run = tracker.start_run()
    start = time.perf_counter()
    for step in range(steps):
        before = time.perf_counter()
        run.log_metrics(_values(step), step=step)
        blocked.append(time.perf_counter() - before)
    run.end()  # sends what is still buffered: part of the cost
    return time.perf_counter() - start


def way_b(uri: str, steps: int, blocked: list[float]) -> float:
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(experiment_id=_experiment(MlflowClient(uri))):
        start = time.perf_counter()
        for step in range(steps):
            for key, value in _values(step).items():
                mlflow.log_metric(key, value, step=step)
        return time.perf_counter() - start


def way_c(uri: str, steps: int, blocked: list[float]) -> float:
    client = MlflowClient(uri)
    run_id = client.create_run(_experiment(client)).info.run_id
    start = time.perf_counter()
    for step in range(steps):
        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, step) for k, v in _values(step).items()]
        client.log_batch(run_id, metrics=batch, synchronous=True)
    return time.perf_counter() - start


def way_d(uri: str, steps: int, blocked: list[float]) -> float:
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


WAYS: dict[str, Callable[[str, int, list[float]], float]] = {
    "a": way_a,
    "b": way_b,
    "c": way_c,
    "d": way_d,
}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(uri: str, rounds: int, scale: float) -> dict[str, Any]:
    """Median points per second of each way, its ratio to a, and a's blocked time per call."""
    rates: dict[str, list[float]] = {way: [] for way in WAYS}
    blocked: list[float] = []
    for round_number in range(rounds + 1):  # round 0 warms up and is not counted
        for way, run in WAYS.items():
            steps = max(10, int(STEPS[way] * scale))
            calls: list[float] = []
            seconds = run(uri, steps, calls)
            if round_number:
                rates[way].append(steps * len(KEYS) / seconds)
                blocked.extend(calls)
    medians = {way: statistics.median(values) for way, values in rates.items()}
    # A call can wait one GIL switch interval while the sender thread runs
    # Python code; this pass shows the loop under a 1 ms interval instead of 5 ms.
    default_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    try:
        short_switch: list[float] = []
        way_a(uri, STEPS["a"], short_switch)
    finally:
        sys.setswitchinterval(default_interval)
    return {
        "points_per_second": medians,
        "steps": {way: max(10, int(STEPS[way] * scale)) for way in WAYS},
        "a_over": {way: medians["a"] / medians[way] for way in ("b", "c", "d")},
        "blocked_ms": {
            "median": statistics.median(blocked) * 1000,
            "p99": _percentile(blocked, 0.99) * 1000,
            "max": max(blocked) * 1000,
        },
        "blocked_ms_1ms_switch_interval": {
            "median": statistics.median(short_switch) * 1000,
            "p99": _percentile(short_switch, 0.99) * 1000,
            "max": max(short_switch) * 1000,
        },
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
