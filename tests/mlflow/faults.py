"""A training run logging through server crashes, counted afterwards with MLflow's own client.

Shared by the reliability tests and ``benchmarks/reliability.py``, which prints
the figures as a table.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass

from mlflow import MlflowClient

import trackstack
from tests.servers import MlflowServer

KEYS = ("loss", "accuracy", "learning_rate", "grad_norm")


@dataclass
class FaultReport:
    """What was logged, what MLflow holds, and what the training loop felt."""

    restarts: int
    points_logged: int
    points_found: int
    duplicates: int
    missing: int
    blocked_median_ms: float
    blocked_max_ms: float
    seconds: float


def log_through_restarts(
    server: MlflowServer, steps: int = 5_000, restarts: int = 2, down_seconds: float = 1.0
) -> tuple[FaultReport, MlflowServer]:
    """Log ``steps`` x 4 points while the server is killed (SIGKILL) and restarted.

    Returns the report and the server now running (the last restart).
    """
    tracker = trackstack.load_tracker(
        {
            "flavor": "mlflow",
            "config": {"tracking_uri": server.url, "experiment_name": f"faults-{uuid.uuid4()}"},
        }
    )
    tracker.flush_interval, tracker.retry_initial, tracker.retry_max = 0.5, 0.2, 2.0
    tracker.end_timeout = 60
    blocked: list[float] = []
    run = tracker.start_run()
    # Spread the steps over the crashes, which take about 15 s each here.
    pause = restarts * 16.0 / steps

    def train() -> None:
        for step in range(steps):
            before = time.perf_counter()
            run.log_metrics({key: step / (i + 1) for i, key in enumerate(KEYS)}, step=step)
            blocked.append(time.perf_counter() - before)
            time.sleep(pause)

    # Servers start from this thread: they die with the thread that started them.
    trainer = threading.Thread(target=train, daemon=True)
    started = time.perf_counter()
    trainer.start()
    for _ in range(restarts):
        time.sleep(2.0)
        server.kill()
        time.sleep(down_seconds)
        server = server.restarted().wait_until_healthy()
    trainer.join()
    run.end()
    seconds = time.perf_counter() - started

    client = MlflowClient(server.url)
    found = 0
    duplicates = missing = 0
    for key in KEYS:
        history = client.get_metric_history(run.id, key)
        found += len(history)
        per_step = Counter(m.step for m in history)
        duplicates += sum(count - 1 for count in per_step.values())
        missing += sum(1 for step in range(steps) if step not in per_step)
    report = FaultReport(
        restarts=restarts,
        points_logged=steps * len(KEYS),
        points_found=found,
        duplicates=duplicates,
        missing=missing,
        blocked_median_ms=statistics.median(blocked) * 1000,
        blocked_max_ms=max(blocked) * 1000,
        seconds=seconds,
    )
    return report, server
