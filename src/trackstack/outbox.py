"""What a run could not deliver before it ended, kept on disk until ``trackstack sync``.

One file per run, ``<outbox>/<flavor>-<config digest>/<run id>.jsonl``: JSON
lines appended with an fsync each, so a crash loses at most a torn last line,
which replay skips. A sidecar ``<run id>.sent`` counts the lines delivered;
``sync`` resumes after it and deletes both files once the run is delivered, so
a second sync sends nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trackstack.enums import RunStatus
from trackstack.records import MetricPoint

if TYPE_CHECKING:
    from trackstack.experiment_trackers import BaseExperimentTracker

__all__ = ["SyncReport", "default_outbox", "outbox_folder", "sync", "write_undelivered"]

logger = logging.getLogger(__name__)

OUTBOX_ENV = "TRACKSTACK_OUTBOX"

Points = list[tuple[str, int, float, float]]


def default_outbox() -> Path:
    """``$TRACKSTACK_OUTBOX``, else ``.trackstack/outbox`` in the working directory."""
    return Path(os.environ.get(OUTBOX_ENV) or ".trackstack/outbox").resolve()


def outbox_folder(tracker: BaseExperimentTracker, root: Path | None = None) -> Path:
    """The folder of one tracker's undelivered runs: named by flavor and non-secret config."""
    public = tracker.config.model_dump(mode="json", exclude=_secret_fields(tracker))
    digest = hashlib.sha256(json.dumps(public, sort_keys=True).encode()).hexdigest()[:12]
    return (root or default_outbox()) / f"{tracker.flavor}-{digest}"


def _secret_fields(tracker: BaseExperimentTracker) -> set[str]:
    from trackstack.secrets import secret_field_names

    return set(secret_field_names(type(tracker.config)))


def write_undelivered(
    tracker: BaseExperimentTracker, run_id: str, points: Points, status: RunStatus | None
) -> Path:
    """Append a run's undelivered points (and its final status) to its outbox file."""
    folder = outbox_folder(tracker, tracker.outbox)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.jsonl"
    with path.open("a", encoding="utf-8") as file:
        if points:
            file.write(json.dumps({"points": points}) + "\n")
        if status is not None:
            file.write(json.dumps({"end": status.value}) + "\n")
        file.flush()
        os.fsync(file.fileno())
    return path


@dataclass
class SyncReport:
    """What one ``sync`` delivered."""

    runs: int = 0
    points: int = 0
    ended: int = 0


def sync(tracker: BaseExperimentTracker | None = None, outbox: Path | None = None) -> SyncReport:
    """Deliver every run waiting in the outbox of ``tracker`` (default: ``load_tracker()``).

    Idempotent: each delivered line is recorded before the next is sent, and a
    delivered run's files are deleted, so syncing again sends nothing.
    """
    if tracker is None:
        from trackstack.config import load_tracker

        tracker = load_tracker()
    folder = outbox_folder(tracker, outbox or tracker.outbox)
    report = SyncReport()
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        _deliver(tracker, path, report)
        report.runs += 1
    return report


def _deliver(tracker: BaseExperimentTracker, path: Path, report: SyncReport) -> None:
    run_id = path.stem
    progress = path.with_suffix(".sent")
    done = int(progress.read_text()) if progress.exists() else 0
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if number < done:
            continue
        try:
            entry: dict[str, Any] = json.loads(line)
        except ValueError:
            logger.warning("trackstack: skipping a torn line %d of %s", number + 1, path)
            continue
        if "points" in entry:
            _send_points(tracker, run_id, entry["points"])
            report.points += len(entry["points"])
        if "end" in entry:
            tracker._call_backend(
                "end run", tracker.backend_end_run, run_id, RunStatus(entry["end"])
            )
            report.ended += 1
        _write_atomically(progress, str(number + 1))
    path.unlink()
    progress.unlink(missing_ok=True)


def _send_points(tracker: BaseExperimentTracker, run_id: str, raw: Points) -> None:
    limit = tracker.capabilities.max_metrics_per_call
    points = [(key, MetricPoint(step, value, at)) for key, step, value, at in raw]
    for start in range(0, len(points), limit):
        tracker._call_backend(
            "log metrics", tracker.backend_log_metrics, run_id, points[start : start + limit]
        )


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    with temporary.open("w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    temporary.replace(path)
