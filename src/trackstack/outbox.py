"""What a run could not deliver, kept on disk until ``trackstack sync`` sends it.

One file per run, ``<outbox>/<flavor>-<config digest>/<run id>.jsonl``: one JSON
line per backend call (start, params, tags, a metric batch, an artifact, the
end), appended with an fsync each, so a crash loses at most a torn last line,
which replay skips. Artifacts are copied next to it (``<run id>.files/``). A run
started while the backend was unavailable has a provisional id (``pending-…``)
and a ``start`` line; sync creates it then.

A sidecar ``<run id>.sent`` records how many lines were delivered (and the
backend's id for a provisional run); sync resumes after it and deletes the
run's files once delivered, so syncing again sends nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from trackstack.backend import RunStart
from trackstack.enums import RunStatus
from trackstack.records import MetricPoint, keyed_points
from trackstack.validation import ParamValue

if TYPE_CHECKING:
    from trackstack.experiment_trackers import BaseExperimentTracker

__all__ = [
    "OUTBOX_ENV",
    "RunOutbox",
    "SyncReport",
    "default_outbox",
    "deliver_run",
    "outbox_folder",
    "sync",
]

OUTBOX_ENV = "TRACKSTACK_OUTBOX"
PENDING_PREFIX = "pending-"
"""Provisional ids of runs started while the backend was unavailable."""


def default_outbox() -> Path:
    """``$TRACKSTACK_OUTBOX``, else ``.trackstack/outbox`` in the working directory."""
    return Path(os.environ.get(OUTBOX_ENV) or ".trackstack/outbox").resolve()


def outbox_folder(tracker: BaseExperimentTracker, root: Path | None = None) -> Path:
    """The folder of one tracker's undelivered runs: named by flavor and non-secret config."""
    from trackstack.secrets import secret_field_names

    secrets = set(secret_field_names(type(tracker.config)))
    public = tracker.config.model_dump(mode="json", exclude=secrets)
    digest = hashlib.sha256(json.dumps(public, sort_keys=True).encode()).hexdigest()[:12]
    return (root or tracker.outbox or default_outbox()) / f"{tracker.flavor}-{digest}"


class RunOutbox:
    """Appends one run's backend calls to its outbox file instead of making them."""

    def __init__(self, tracker: BaseExperimentTracker, run_id: str) -> None:
        self.folder = outbox_folder(tracker)
        self.path = self.folder / f"{run_id}.jsonl"

    def record(self, hook: str, *args: Any) -> None:
        """Write the call ``tracker.<hook>(run_id, *args)`` would have made."""
        self.folder.mkdir(parents=True, exist_ok=True)
        entry = getattr(self, f"_{hook}")(*args)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(entry) + "\n")
            file.flush()
            os.fsync(file.fileno())

    def _backend_start_run(self, request: RunStart) -> dict[str, Any]:
        settings = request.settings
        return {
            "start": {
                "experiment": request.experiment,
                "run_name": request.run_name,
                "tags": request.tags,
                "parent_id": request.parent_id,
                "settings": settings.model_dump() if isinstance(settings, BaseModel) else None,
            }
        }

    def _backend_log_params(self, params: dict[str, ParamValue]) -> dict[str, Any]:
        return {"params": {key: [p.text, _json_or(p.value, p.text)] for key, p in params.items()}}

    def _backend_log_metrics(self, points: list[tuple[str, MetricPoint]]) -> dict[str, Any]:
        return {"points": [[key, p.step, p.value, p.timestamp] for key, p in points]}

    def _backend_set_tags(self, tags: dict[str, str]) -> dict[str, Any]:
        return {"tags": dict(tags)}

    def _backend_log_artifact(self, local: Path, artifact_path: str | None) -> dict[str, Any]:
        # A copy: the file may change or go before the backend is back.
        files = self.path.with_suffix(".files")
        copy = files / str(sum(1 for _ in files.iterdir()) if files.is_dir() else 0) / local.name
        copy.parent.mkdir(parents=True)
        if local.is_dir():
            shutil.copytree(local, copy)
        else:
            shutil.copy2(local, copy)
        return {"artifact": [copy.relative_to(self.folder).as_posix(), artifact_path]}

    def _backend_end_run(self, status: RunStatus) -> dict[str, Any]:
        return {"end": status.value}


def _json_or(value: Any, fallback: str) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return fallback
    return value


@dataclass
class SyncReport:
    """What one ``sync`` delivered; ``started`` maps provisional ids to the backend's."""

    runs: int = 0
    points: int = 0
    ended: int = 0
    started: dict[str, str] = field(default_factory=dict)


def sync(tracker: BaseExperimentTracker | None = None, outbox: Path | None = None) -> SyncReport:
    """Deliver every run waiting in the outbox of ``tracker`` (default: ``load_tracker()``).

    Idempotent: each delivered line is recorded before the next is sent, and a
    delivered run's files are deleted, so syncing again sends nothing.
    """
    if tracker is None:
        from trackstack.config import load_tracker

        tracker = load_tracker()
    folder = outbox_folder(tracker, outbox)
    report = SyncReport()
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        _Delivery(tracker, path, report).run()
        report.runs += 1
    return report


def deliver_run(tracker: BaseExperimentTracker, run_id: str) -> SyncReport:
    """Deliver one run's outbox file, as ``sync`` would."""
    report = SyncReport()
    _Delivery(tracker, RunOutbox(tracker, run_id).path, report).run()
    report.runs = 1
    return report


class _Delivery:
    """Replays one run's outbox file, a line at a time, recording progress after each."""

    def __init__(self, tracker: BaseExperimentTracker, path: Path, report: SyncReport) -> None:
        self.tracker, self.path, self.report = tracker, path, report
        self.progress = path.with_suffix(".sent")
        saved = json.loads(self.progress.read_text()) if self.progress.exists() else {}
        self.done: int = saved.get("lines", 0)
        self.run_id: str = saved.get("run_id", path.stem)

    def run(self) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines[self.done :], start=self.done):
            try:
                entry: dict[str, Any] = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash while it was written
            self._replay(entry)
            self.done = number + 1
            self._save()
        self.path.unlink()
        self.progress.unlink(missing_ok=True)
        shutil.rmtree(self.path.with_suffix(".files"), ignore_errors=True)

    def _replay(self, entry: dict[str, Any]) -> None:
        call = self.tracker._call_backend
        if "start" in entry:
            start = entry["start"]
            settings = self.tracker.validate_settings(start["settings"])
            request = RunStart(
                start["experiment"], start["run_name"], start["tags"], start["parent_id"],
                None, settings,
            )  # fmt: skip
            provisional = self.run_id
            self.run_id = call("start run", self.tracker.backend_start_run, request).id
            self.report.started[provisional] = self.run_id
        elif "params" in entry:
            params = {k: ParamValue(text, value) for k, (text, value) in entry["params"].items()}
            call("log params", self.tracker.backend_log_params, self.run_id, params)
        elif "tags" in entry:
            call("set tags", self.tracker.backend_set_tags, self.run_id, entry["tags"])
        elif "points" in entry:
            limit = self.tracker.capabilities.max_metrics_per_call
            points = keyed_points(entry["points"])
            for start_at in range(0, len(points), limit):
                batch = points[start_at : start_at + limit]
                call("log metrics", self.tracker.backend_log_metrics, self.run_id, batch)
            self.report.points += len(points)
        elif "artifact" in entry:
            stored, artifact_path = entry["artifact"]
            local = self.path.parent / stored
            call("log artifact", self.tracker.backend_log_artifact, self.run_id, local,
                 artifact_path)  # fmt: skip
        elif "end" in entry:
            status = RunStatus(entry["end"])
            call("end run", self.tracker.backend_end_run, self.run_id, status)
            self.report.ended += 1

    def _save(self) -> None:
        temporary = self.progress.with_suffix(".tmp")
        with temporary.open("w") as file:
            json.dump({"lines": self.done, "run_id": self.run_id}, file)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(self.progress)
