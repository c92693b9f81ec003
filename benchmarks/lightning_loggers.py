"""Per-step cost of a Lightning logger: ``TrackstackLogger`` against Lightning's own.

At every logging step a ``Trainer`` calls its logger's ``log_metrics`` and then
``save()``. Each way makes exactly those calls, 4 metrics a step for ``STEPS``
steps, into a fresh store, then ends the run; ways alternate within each round,
after a warm-up round:

- ``mlflow``: Lightning's ``MLFlowLogger`` against ``TrackstackLogger`` of the
  ``mlflow`` flavor, each on its own SQLite store;
- ``wandb``: Lightning's ``WandbLogger`` against ``TrackstackLogger`` of the
  ``wandb`` flavor, both offline.

Two figures per way: the training loop's time in the logger per step, and the
time until the run is complete in its store (the loop, ``finalize``, and for
W&B ``wandb.finish()`` plus the wait for the run file to hold the run's exit,
the event trackstack's ``finalize`` returns at).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wandb
from lightning.pytorch.loggers import MLFlowLogger, WandbLogger

import trackstack
from benchmarks.wandb_offline import _drain
from trackstack.integrations.lightning import TrackstackLogger

KEYS = ("train/loss", "train/acc", "lr", "epoch")
STEPS = 2_000
PAIRS = {"mlflow": ("MLFlowLogger", "TrackstackLogger, mlflow flavor"),
         "wandb": ("WandbLogger, offline", "TrackstackLogger, wandb flavor offline")}  # fmt: skip


def _values(step: int) -> dict[str, float]:
    return {key: (step + 1) / (index + 2) for index, key in enumerate(KEYS)}


def _drive(logger: Any, steps: int, end: Callable[[], None]) -> dict[str, float]:
    """Lightning's calls, timed: the loop's share, and until the run is complete."""
    logger.log_hyperparams({"lr": 0.1, "batch_size": 32})
    in_logger = 0.0
    started = time.perf_counter()
    for step in range(steps):
        before = time.perf_counter()
        logger.log_metrics(_values(step), step)
        logger.save()
        in_logger += time.perf_counter() - before
    logger.finalize("success")
    end()
    return {"loop_per_step": in_logger / steps, "complete": time.perf_counter() - started}


def mlflow_theirs(folder: Path, steps: int) -> dict[str, float]:
    logger = MLFlowLogger("bench", tracking_uri=f"sqlite:///{folder / 'theirs.db'}")
    _ = logger.experiment  # both ways start their run before the clock
    return _drive(logger, steps, lambda: None)


def mlflow_ours(folder: Path, steps: int) -> dict[str, float]:
    uri = f"sqlite:///{folder / 'ours.db'}"
    tracker = trackstack.load_tracker({"flavor": "mlflow", "config": {"tracking_uri": uri}})
    logger = TrackstackLogger(tracker, experiment="bench")
    _ = logger.experiment
    return _drive(logger, steps, lambda: None)


def wandb_theirs(folder: Path, steps: int) -> dict[str, float]:
    logger = WandbLogger(project="bench", save_dir=str(folder), offline=True)
    run = logger.experiment

    def finish() -> None:
        run.finish()
        _drain(Path(run.settings.sync_file))

    return _drive(logger, steps, finish)


def wandb_ours(folder: Path, steps: int) -> dict[str, float]:
    config = {"mode": "offline", "dir": str(folder)}
    tracker = trackstack.load_tracker({"flavor": "wandb", "config": config})
    logger = TrackstackLogger(tracker, experiment="bench")
    _ = logger.experiment
    return _drive(logger, steps, lambda: None)


WAYS = {"mlflow": (mlflow_theirs, mlflow_ours), "wandb": (wandb_theirs, wandb_ours)}


def run(rounds: int = 5, scale: float = 1.0) -> dict[str, Any]:
    """Per backend: median per-step loop time and completion time of each logger, and the
    median of each round's ratio (theirs over ours: above 1, trackstack is faster)."""
    steps = max(1, int(STEPS * scale))
    results: dict[str, Any] = {"steps": steps, "metrics_per_step": len(KEYS), "rounds": rounds}
    os.environ.setdefault("WANDB_SILENT", "true")
    with tempfile.TemporaryDirectory() as scratch:
        for backend, (theirs, ours) in WAYS.items():
            samples: dict[str, list[dict[str, float]]] = {"theirs": [], "ours": []}
            for round_number in range(rounds + 1):
                for side, measure in (("theirs", theirs), ("ours", ours)):
                    folder = Path(scratch) / f"{backend}-{side}-{round_number}"
                    folder.mkdir()
                    figures = measure(folder, steps)
                    if round_number:  # round 0 warms up the SDK, its stores and the cache
                        samples[side].append(figures)
            results[backend] = {
                side: {part: statistics.median(s[part] for s in runs) for part in runs[0]}
                for side, runs in samples.items()
            }
            for part in ("loop_per_step", "complete"):
                pairs = zip(samples["theirs"], samples["ours"], strict=True)
                ratios = [theirs_figures[part] / ours_figures[part]
                          for theirs_figures, ours_figures in pairs]  # fmt: skip
                results[backend][f"theirs_over_ours_{part}"] = statistics.median(ratios)
                results[backend][f"theirs_over_ours_{part}_range"] = (min(ratios), max(ratios))
    wandb.teardown()
    return results
