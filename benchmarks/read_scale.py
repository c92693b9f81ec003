"""Reading runs back at a team's scale, and what a short script pays, against MLflow's own.

On a local ``mlflow server``, in one run, each trackstack figure beside MLflow's
own client doing the same:

- listing 500 runs of 20 metrics: ``tracker.list_runs`` against ``search_runs``;
- comparing 10 runs of 50 metrics by final values: ``compare_runs(tracker.get_runs(ids))``
  against ``search_runs`` for those runs;
- one run's 50 histories of 1,000 steps: ``get_run`` with every history read, against
  the fastest ``MlflowClient`` code found (8 threads of ``get_metric_history``);
- a 200-step script, the whole process: wall time and peak memory against the same
  points logged with ``mlflow.log_metrics`` per step and with one ``log_batch``;
- W&B offline: ``list_runs`` of 200 runs, against reading every history too.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric

import trackstack
from tests.servers import MlflowServer

ROUNDS = 5


def _median_seconds(call: Callable[[], object], rounds: int = ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _runs(
    client: MlflowClient, experiment: str, runs: int, keys: int, steps: int
) -> tuple[str, list[str]]:
    """An experiment of ``runs`` ended runs, each ``keys`` metrics of ``steps`` points: its id
    and theirs."""
    experiment_id = client.create_experiment(experiment)
    ids = []
    for _ in range(runs):
        run_id = client.create_run(experiment_id).info.run_id
        now = int(time.time() * 1000)
        points = [Metric(f"m{k}", k * s / 7, now + s, s) for s in range(steps) for k in range(keys)]
        for start in range(0, len(points), 1000):
            client.log_batch(run_id, metrics=points[start : start + 1000], synchronous=True)
        client.set_terminated(run_id)
        ids.append(run_id)
    return experiment_id, ids


def _search_all(client: MlflowClient, experiment_ids: list[str], where: str = "") -> list[Any]:
    found: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            experiment_ids, filter_string=where, max_results=1000, page_token=token
        )
        found.extend(page)
        token = page.token
        if not token:
            return found


SCRIPT_TRACKSTACK = """
import json, sys, trackstack
from trackstack.delivery.sender_process import sender_process
tracker = trackstack.load_tracker({"flavor": "mlflow", "config": {"tracking_uri": sys.argv[1]}})
with tracker.start_run(experiment="short-scripts") as run:
    for step in range(200):
        run.log_metrics({"loss": 1 / (step + 1), "acc": step / 200, "lr": 0.1, "gn": 2.0}, step)
status = open("/proc/self/status").read()
peak = int(next(l for l in status.splitlines() if l.startswith("VmHWM")).split()[1]) / 1024
print(json.dumps({"peak_mib": peak, "sender_process": sender_process().child_pid is not None}))
"""
SCRIPT_MLFLOW = """
import json, sys, time, mlflow
from mlflow.entities import Metric
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("short-scripts")
with mlflow.start_run() as run:
    if sys.argv[2] == "per-step":
        for step in range(200):
            mlflow.log_metrics(
                {"loss": 1 / (step + 1), "acc": step / 200, "lr": 0.1, "gn": 2.0}, step=step
            )
    else:
        now = int(time.time() * 1000)
        points = [Metric(k, v, now, s) for s in range(200)
                  for k, v in {"loss": 1 / (s + 1), "acc": s / 200, "lr": 0.1, "gn": 2.0}.items()]
        mlflow.MlflowClient().log_batch(run.info.run_id, metrics=points, synchronous=True)
status = open("/proc/self/status").read()
peak = int(next(l for l in status.splitlines() if l.startswith("VmHWM")).split()[1]) / 1024
print(json.dumps({"peak_mib": peak, "sender_process": False}))
"""


def _script(code: str, *arguments: str) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *arguments],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true",
             "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
             "TRACKSTACK_JOURNAL": tempfile.mkdtemp()},
    )  # fmt: skip
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["wall_seconds"] = time.perf_counter() - started
    return figures


def short_script(url: str, rounds: int) -> dict[str, Any]:
    """The whole process of a 200-step script, alternating the ways, medians of rounds."""
    ways = {
        "trackstack": (SCRIPT_TRACKSTACK,),
        "mlflow.log_metrics per step": (SCRIPT_MLFLOW, "per-step"),
        "MlflowClient.log_batch once": (SCRIPT_MLFLOW, "batch"),
    }
    samples: dict[str, list[dict[str, float]]] = {way: [] for way in ways}
    for round_number in range(rounds + 1):
        for way, (code, *arguments) in ways.items():
            figures = _script(code, url, *arguments)
            if round_number:  # round 0 warms the page cache and the server
                samples[way].append(figures)
    medians = {
        way: {
            "wall_seconds": statistics.median(s["wall_seconds"] for s in runs),
            "peak_mib": statistics.median(s["peak_mib"] for s in runs),
            "sender_process": any(s["sender_process"] for s in runs),
        }
        for way, runs in samples.items()
    }
    ours = medians["trackstack"]
    for figures in medians.values():
        figures["wall_ratio"] = ours["wall_seconds"] / figures["wall_seconds"]
        figures["peak_mib_more"] = ours["peak_mib"] - figures["peak_mib"]
    return medians


def mlflow_reads(url: str) -> dict[str, Any]:
    client = MlflowClient(url)
    tracker = trackstack.load_tracker({"flavor": "mlflow", "config": {"tracking_uri": url}})
    tag = uuid.uuid4().hex[:8]
    results: dict[str, Any] = {}

    listed = f"list-{tag}"
    listed_id, _ = _runs(client, listed, 500, 20, 1)
    ours = _median_seconds(lambda: tracker.list_runs(experiment=listed))
    theirs = _median_seconds(lambda: _search_all(client, [listed_id]))
    results["list_500_runs"] = {"trackstack": ours, "search_runs": theirs, "ratio": ours / theirs}

    compared_id, ids = _runs(client, f"compare-{tag}", 10, 50, 10)
    where = "attributes.run_id IN ({})".format(", ".join(f"'{i}'" for i in ids))
    ours = _median_seconds(lambda: trackstack.compare_runs(tracker.get_runs(ids)))
    theirs = _median_seconds(lambda: _search_all(client, [compared_id], where))
    results["compare_10_runs"] = {"trackstack": ours, "search_runs": theirs, "ratio": ours / theirs}

    _, (run_id,) = _runs(client, f"history-{tag}", 1, 50, 1000)
    keys = [f"m{k}" for k in range(50)]

    def ours_whole() -> None:
        record = tracker.get_run(run_id)
        assert sum(len(points) for points in record.metrics.values()) == 50_000

    def threads() -> None:
        with ThreadPoolExecutor(8) as pool:
            histories = list(pool.map(lambda key: client.get_metric_history(run_id, key), keys))
        assert sum(len(h) for h in histories) == 50_000

    def one_by_one() -> None:
        assert sum(len(client.get_metric_history(run_id, key)) for key in keys) == 50_000

    ours = _median_seconds(ours_whole, 3)
    fastest = _median_seconds(threads, 3)
    plain = _median_seconds(one_by_one, 3)
    results["get_run_50_keys_1000_steps"] = {
        "trackstack": ours,
        "client_8_threads": fastest,
        "client_one_by_one": plain,
        "ratio": ours / fastest,
    }
    return results


def wandb_listing(runs: int = 200) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="trackstack-bench-wandb-"))
    tracker = trackstack.load_tracker(
        {"flavor": "wandb", "config": {"mode": "offline", "dir": str(folder)}}
    )
    for index in range(runs):
        with tracker.start_run(experiment="listed") as run:
            for step in range(100):
                run.log_metrics({"loss": 1 / (step + 1 + index), "acc": step / 100}, step)
    listing = _median_seconds(lambda: tracker.list_runs(experiment="listed"), 3)

    def with_histories() -> None:
        for record in tracker.list_runs(experiment="listed"):
            dict(record.metrics)

    return {
        "runs": runs,
        "list_seconds": listing,
        "list_and_every_history_seconds": _median_seconds(with_histories, 3),
    }


def run(rounds: int = 5) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="trackstack-bench-reads-"))
    server = MlflowServer(folder / "server", f"sqlite:///{folder / 'server.db'}")
    try:
        url = server.wait_until_healthy().url
        results = mlflow_reads(url)
        results["short_script"] = short_script(url, rounds)
    finally:
        server.stop()
    results["wandb_offline_list"] = wandb_listing()
    return results
