"""Metric throughput into W&B offline: trackstack's natural loop against raw ``wandb.log``.

A training loop logs 4 metrics per step for 10,000 steps, two ways, each into
a fresh offline run, alternating within each round after a warm-up round:

a. trackstack: ``run.log_metrics({...}, step=step)`` once per step;
w. wandb: ``run.log({...}, step=step)`` once per step.

The loop figure covers every logging call and the end of the run, up to the
same event for both ways: the run file holds the run's exit record, after every
point. trackstack's ``end()`` returns then; wandb's ``finish()`` returns
earlier, while wandb-core still writes, so the wandb way waits for the exit
record after it (the time ``finish()`` itself took is reported too). Starting
and ending a run are also timed on their own.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import wandb
from trackstack_wandb.runfile import RunLog

import trackstack

KEYS = ("loss", "accuracy", "learning_rate", "grad_norm")
STEPS = 10_000
NAMES = {"a": "trackstack run.log_metrics per step", "w": "wandb run.log per step"}


def _values(step: int) -> dict[str, float]:
    return {key: (step + 1) / (index + 2) for index, key in enumerate(KEYS)}


def way_a(folder: Path, steps: int) -> dict[str, float]:
    tracker = trackstack.load_tracker(
        {"flavor": "wandb", "config": {"mode": "offline", "dir": str(folder)}}
    )
    started = time.perf_counter()
    run = tracker.start_run(experiment="bench")
    loop = time.perf_counter()
    for step in range(steps):
        run.log_metrics(_values(step), step=step)
    ending = time.perf_counter()
    run.end()
    done = time.perf_counter()
    return {"start": loop - started, "loop": done - loop, "end": done - ending}


def way_w(folder: Path, steps: int) -> dict[str, float]:
    started = time.perf_counter()
    run = wandb.init(
        project="bench",
        mode="offline",
        dir=str(folder),
        reinit="create_new",
        settings=wandb.Settings(silent=True),
    )
    loop = time.perf_counter()
    for step in range(steps):
        run.log(_values(step), step=step)
    ending = time.perf_counter()
    run.finish()
    finished = time.perf_counter()
    _drain(Path(run.settings.sync_file))
    done = time.perf_counter()
    return {
        "start": loop - started,
        "loop": done - loop,
        "end": done - ending,
        "finish_returned": finished - ending,
    }


def _drain(run_file: Path) -> None:
    """Wait until wandb-core has written the run out, the event trackstack's end() waits for."""
    log = RunLog(run_file)
    deadline = time.monotonic() + 60
    while log.refresh().exit_code is None and time.monotonic() < deadline:
        time.sleep(0.02)


WAYS = {"a": way_a, "w": way_w}


def run(rounds: int = 7, scale: float = 1.0) -> dict[str, Any]:
    """Median loop, start and end seconds per way, points per second, and the a/w ratio.

    wandb's own timings vary by up to 2x from run to run here, so the ratio is
    the median of each round's ratio (a and w measured back to back).
    """
    steps = max(1, int(STEPS * scale))
    samples: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
    with tempfile.TemporaryDirectory() as scratch:
        os.environ.setdefault("WANDB_SILENT", "true")
        for round_number in range(rounds + 1):
            for way, measure in WAYS.items():
                figures = measure(Path(scratch) / f"{way}{round_number}", steps)
                if round_number:  # round 0 warms up wandb-core and the page cache
                    samples[way].append(figures)
    ratios = [w["loop"] / a["loop"] for a, w in zip(samples["a"], samples["w"], strict=True)]
    medians = {
        way: {part: statistics.median(s[part] for s in runs) for part in runs[0]}
        for way, runs in samples.items()
    }
    return {
        "steps": steps,
        "metrics_per_step": len(KEYS),
        "rounds": rounds,
        "median_seconds": medians,
        "points_per_second": {
            way: steps * len(KEYS) / figures["loop"] for way, figures in medians.items()
        },
        "a_over_w_per_round": ratios,
        "a_over_w_throughput": statistics.median(ratios),
    }
