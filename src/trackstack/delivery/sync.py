"""Delivering the journals a tracker folder holds: runs cut off, and runs whose process died.

Each run journal is delivered under its lock, so two syncs (or a sync and the
run's own process) never send the same record; one whose lock is held is
reported busy and left. A journal without an end whose lock is free was
written by a process that died: it is delivered in full and its run ended
KILLED, tagged to say why. Damaged records are reported and skipped; the
intact ones are all delivered, and the journal is then kept under
``damaged/`` instead of deleted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trackstack.delivery.codec import Entry, Kind, encode_json
from trackstack.delivery.deliver import TRANSIENT, Delivery
from trackstack.delivery.journal import (
    read_acks,
    read_journal,
    remember_created,
    run_journals,
    try_lock,
)
from trackstack.delivery.protocol import Backend
from trackstack.errors import TrackstackError

__all__ = ["SyncReport", "describe", "sync_folder"]

logger = logging.getLogger(__name__)

_WAIT_FOR_RECOVERY_SECONDS = 120.0


@dataclass
class SyncReport:
    """What one sync delivered.

    ``started`` maps pending ids to the backend's ids; ``recovered`` lists runs
    of dead processes ended KILLED; ``refused`` what the backend would not
    take; ``damaged`` the journals with torn or corrupt records; ``busy`` the
    journals still being written (their run is alive); ``failed`` the journals
    that could not be delivered, with why.
    """

    runs: int = 0
    points: int = 0
    ended: int = 0
    started: dict[str, str] = field(default_factory=dict)
    recovered: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    damaged: list[dict[str, Any]] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)

    def merge(self, other: SyncReport) -> None:
        self.runs += other.runs
        self.points += other.points
        self.ended += other.ended
        self.started.update(other.started)
        for name in ("recovered", "refused", "damaged", "busy", "failed"):
            getattr(self, name).extend(getattr(other, name))


def sync_folder(
    backend: Backend, folder: Path, report: SyncReport, *, only_dead: bool = False
) -> None:
    """Deliver every unlocked run journal of a tracker folder (``only_dead``: of dead writers).

    Raises ``BackendUnavailableError`` or ``AuthenticationError`` when the
    backend cannot be reached or refuses the credentials: what was delivered
    so far is acknowledged, and the next sync goes on from there.
    """
    for path in run_journals(folder):
        fd = try_lock(path, wait=0 if only_dead else _WAIT_FOR_RECOVERY_SECONDS)
        if fd is None:
            if (path / "records").exists():
                report.busy.append(str(path))
            continue
        try:
            if not only_dead:
                (path / "recovering").unlink(missing_ok=True)
            else:
                (path / "recovering").write_text(str(os.getpid()))
            _deliver_journal(backend, folder, path, report, only_dead)
        except TRANSIENT:
            raise
        except TrackstackError as error:
            report.failed.append({"journal": str(path), "error": str(error)})
        except (OSError, ValueError, KeyError, TypeError) as error:
            report.failed.append(
                {"journal": str(path), "error": f"{type(error).__name__}: {error}"}
            )
        finally:
            if path.exists():
                (path / "recovering").unlink(missing_ok=True)
            os.close(fd)
    _remove_empty_folders(folder)


def _remove_empty_folders(folder: Path) -> None:
    """Drop what delivery emptied (``refused/``, ``files/`` copies, staging); ``tracker.json``
    and ``delivered/``, which maps pending ids to the backend's, stay."""
    for child in folder.iterdir() if folder.is_dir() else []:
        if child.is_dir() and not any(child.iterdir()):
            with contextlib.suppress(OSError):  # filled again meanwhile, or not ours
                child.rmdir()


def _deliver_journal(
    backend: Backend, folder: Path, path: Path, report: SyncReport, only_dead: bool
) -> None:
    contents = read_journal(path)
    closed = any(entry.kind in (Kind.END, Kind.DETACH) for entry in contents.entries)
    if only_dead and closed:
        return
    start = contents.start
    if start is None or "run_id" not in start or "experiment" not in start:
        _set_aside(folder, path, report, contents, "its start record is damaged")
        return
    acks_path = path / "acks"

    def ack(state: dict[str, Any]) -> None:
        with open(acks_path, "ab") as file:
            file.write(encode_json(0, Kind.ACK, state))

    delivery = Delivery(
        backend,
        start,
        read_acks(path),
        on_ack=ack,
        files=path,
        refused_file=folder / "refused" / f"{path.name}.jsonl",
    )
    # Record 0 may have come from header.json: handed over whatever the file held.
    delivery.deliver([Entry(0, Kind.START, [start]), *contents.entries])
    if delivery.pending_id is not None and delivery.run_id is not None:
        remember_created(folder, delivery.pending_id, delivery.run_id)
        report.started[delivery.pending_id] = delivery.run_id
    if not closed:
        delivery.recover(str(start.get("host")), start.get("pid"))
        report.recovered.append(
            {"journal": path.name, "run_id": delivery.run_id, "pending_id": delivery.pending_id}
        )
    report.runs += 1
    report.points += delivery.points
    report.ended += delivery.ended
    for refusal in delivery.refusals:
        report.refused.append(
            {
                "run_id": delivery.run_id,
                "what": refusal.what,
                "keys": refusal.keys,
                "reason": refusal.reason,
            }
        )
    if contents.damage or contents.undecodable or contents.missing:
        _set_aside(folder, path, report, contents, "some records are damaged")
    else:
        shutil.rmtree(path, ignore_errors=True)


def _set_aside(folder: Path, path: Path, report: SyncReport, contents: Any, why: str) -> None:
    """Keep a damaged journal's bytes under ``damaged/`` once its intact records are delivered."""
    target = folder / "damaged" / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    path.rename(target)
    report.damaged.append(
        {
            "file": str(target / "records"),
            "why": why,
            "spans": [[d.offset, d.length] for d in contents.damage],
            "records_lost": contents.missing
            + contents.undecodable
            + (1 if contents.damage and not contents.missing else 0),
        }
    )
    logger.warning("trackstack: journal %s: %s; the intact records were delivered and the file "
                   "is kept as %s", path.name, why, target)  # fmt: skip


def describe(report: SyncReport) -> str:
    """The report in a sentence a person reads."""
    parts = [f"delivered {report.points} metric points and {report.ended} run ends "
             f"of {report.runs} run(s)"]  # fmt: skip
    if report.recovered:
        parts.append(f"{len(report.recovered)} run(s) of dead processes ended KILLED")
    if report.busy:
        parts.append(f"{len(report.busy)} journal(s) still being written, left alone")
    if report.refused:
        parts.append(f"{len(report.refused)} item(s) refused by the backend")
    if report.damaged:
        parts.append(f"{len(report.damaged)} damaged journal(s) kept under damaged/")
    if report.failed:
        parts.append(f"{len(report.failed)} journal(s) failed")
    return "; ".join(parts)
