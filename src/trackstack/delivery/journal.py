"""Where journals live, and how one is written, locked, acknowledged and read back.

``<root>/<flavor>-<digest of the non-secret config>/`` holds one folder per run
(``<run id>.<8 hex>/``) and ``tracker.json``, which says how to rebuild the
tracker for sync. A run's folder holds:

- ``records``: the run's calls, framed (see ``codec``), appended by one
  ``os.write`` each, so a killed process loses nothing whose call returned;
- ``header.json``: a copy of the start record, in case ``records`` is damaged;
- ``acks``: framed acknowledgement states appended after each backend call; the
  last intact one says how far delivery has got;
- ``lock``: held (``flock``) by the writing process for the run's life and by a
  sync while it delivers; the kernel drops it when the holder dies, so a free
  lock on a journal without an end is a dead writer, not a guess;
- ``files/``: copies of artifacts logged while the backend was unreachable.

A run's folder is made under a dotted name and renamed into place once locked,
so a sync never sees a journal whose writer has not taken its lock yet.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trackstack.delivery.codec import (
    Damage,
    Entry,
    Frame,
    Kind,
    encode_json,
    entry_from_frame,
    scan,
)

__all__ = [
    "JOURNAL_ENV",
    "OUTBOX_ENV",
    "JournalContents",
    "JournalWriter",
    "default_root",
    "read_acks",
    "read_journal",
    "run_journals",
    "tracker_folder",
    "try_lock",
]

JOURNAL_ENV = "TRACKSTACK_JOURNAL"
OUTBOX_ENV = "TRACKSTACK_OUTBOX"
"""The name before journals: still honoured."""
_ACKS_COMPACT_BYTES = 1 << 20
_STAGING = ".new-"


def default_root() -> Path:
    """``$TRACKSTACK_JOURNAL``, else ``$TRACKSTACK_OUTBOX``, else ``./.trackstack/journal``."""
    chosen = os.environ.get(JOURNAL_ENV) or os.environ.get(OUTBOX_ENV) or ".trackstack/journal"
    return Path(chosen).absolute()


def tracker_folder(root: Path, flavor: str, public_config: dict[str, Any]) -> Path:
    """The folder of one tracker's journals: named by its flavor and its non-secret config."""
    text = json.dumps(public_config, sort_keys=True, default=str)
    return root / f"{flavor}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def describe_tracker(folder: Path, flavor: str, name: str, public_config: dict[str, Any]) -> None:
    """Write ``tracker.json`` once: what sync needs to rebuild the tracker (never a secret)."""
    target = folder / "tracker.json"
    if target.exists():
        return
    staging = folder / f"{_STAGING}tracker-{uuid.uuid4().hex[:8]}.json"
    data = {"flavor": flavor, "name": name, "config": public_config}
    staging.write_text(json.dumps(data, default=str, indent=1), encoding="utf-8")
    staging.replace(target)


def run_journals(folder: Path) -> list[Path]:
    """The run folders of a tracker folder, oldest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and (p / "lock").exists()]
    return sorted((p for p in found if not p.name.startswith(_STAGING)), key=_age)


def _age(path: Path) -> tuple[float, str]:
    try:
        return (path.stat().st_mtime, path.name)
    except OSError:
        return (0.0, path.name)


def _safe(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)[:80] or "run"


class JournalWriter:
    """The writing side of one run's journal; the caller serialises calls."""

    def __init__(self, folder: Path, start: dict[str, Any]) -> None:
        """Create the run's journal under ``folder`` with ``start`` as its record 0.

        Raises ``OSError`` when the folder cannot be written.
        """
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{_safe(str(start['run_id']))}.{uuid.uuid4().hex[:8]}"
        staging = folder / f"{_STAGING}{name}"
        staging.mkdir()
        self.lock_fd = -1
        self.fd = -1
        self.acks_fd = -1
        try:
            self.lock_fd = os.open(staging / "lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.fd = os.open(staging / "records", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self.acks_fd = os.open(staging / "acks", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            start = {**start, "journal": name, "pid": os.getpid(), "host": socket.gethostname()}
            (staging / "header.json").write_text(json.dumps(start), encoding="utf-8")
            self.size = 0
            self.append(encode_json(0, Kind.START, start))
            staging.rename(folder / name)
        except BaseException:
            self._close_fds()
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.path = folder / name
        self.name = name
        self.unsynced = False
        self.fsyncs = 0
        """fsync calls so far (one covers the records and the acks), for the benchmarks."""
        self._acks_size = 0

    def append(self, data: bytes) -> None:
        """Hand one frame to the kernel; ``OSError`` if it did not all go (a full disk)."""
        written = os.write(self.fd, data)
        self.size += written
        self.unsynced = True
        if written != len(data):
            raise OSError(errno.ENOSPC, f"only {written} of {len(data)} bytes written")

    def ack(self, state: dict[str, Any]) -> None:
        """Record how far delivery got; the last intact state wins when read back."""
        data = encode_json(0, Kind.ACK, state)
        if self._acks_size + len(data) > _ACKS_COMPACT_BYTES:
            # Rewritten whole, then swapped in: a crash leaves the old file or the new one.
            staging = self.path / "acks.new"
            staging.write_bytes(data)
            staging.replace(self.path / "acks")
            os.close(self.acks_fd)
            self.acks_fd = os.open(self.path / "acks", os.O_WRONLY | os.O_APPEND)
            self._acks_size = len(data)
            return
        os.write(self.acks_fd, data)
        self._acks_size += len(data)

    def sync(self) -> None:
        """fsync what was written: against power loss, not needed against a killed process."""
        if self.unsynced:
            self.unsynced = False
            os.fsync(self.fd)
            os.fsync(self.acks_fd)
            self.fsyncs += 1

    def sync_outside(self, lock: threading.RLock) -> None:
        """``sync`` holding ``lock`` (the writers') only to copy the descriptors.

        A flush can take tens of milliseconds on a busy disk; the training loop
        appends under the same lock and must not wait for it.
        """
        with lock:
            if self.fd < 0 or not self.unsynced:
                return
            try:
                copies = [os.dup(self.fd), os.dup(self.acks_fd)]
            except OSError:  # out of descriptors: the next round tries again
                return
            self.unsynced = False
        try:
            for fd in copies:
                os.fsync(fd)
        finally:
            for fd in copies:
                os.close(fd)
        self.fsyncs += 1

    def close(self, delete: bool) -> None:
        """Release the journal: deleted when everything in it was delivered, else kept for sync."""
        try:
            if delete:
                shutil.rmtree(self.path, ignore_errors=True)
            else:
                self.sync()
        finally:
            self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self.fd, self.acks_fd, self.lock_fd):  # the lock last
            if fd >= 0:
                os.close(fd)
        self.fd = self.acks_fd = self.lock_fd = -1


def try_lock(path: Path, wait: float = 0) -> int | None:
    """Take a run journal's lock: its fd, or None if it is held or the journal is gone.

    A lock held by a background recovery (``recovering`` marks it) is waited for
    up to ``wait`` seconds: that journal is about to be delivered, not written.
    """
    try:
        fd = os.open(path / "lock", os.O_RDWR)
    except OSError:
        return None
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            if not (path / "recovering").exists() or time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.05)
    if not (path / "records").exists():  # delivered and deleted before we got the lock
        os.close(fd)
        return None
    return fd


@dataclass
class JournalContents:
    """What a journal file holds: intact entries by sequence number, and the damage."""

    start: dict[str, Any] | None
    entries: list[Entry]
    damage: list[Damage] = field(default_factory=list)
    undecodable: int = 0
    """Intact frames whose payload did not decode."""
    missing: int = 0
    """Sequence numbers absent between 0 and the highest intact one."""


def read_journal(path: Path) -> JournalContents:
    """Every intact record of a run journal in sequence order (duplicates dropped)."""
    data = (path / "records").read_bytes()
    by_seq: dict[int, Entry] = {}
    damage: list[Damage] = []
    undecodable = 0
    for found in scan(data):
        if isinstance(found, Damage):
            damage.append(found)
            continue
        try:
            entry = entry_from_frame(found)
        except ValueError:
            undecodable += 1
            continue
        if entry.kind != Kind.ACK:
            by_seq.setdefault(entry.seq, entry)
    start_entry = by_seq.pop(0, None)
    start = start_entry.items[0] if start_entry is not None else _header(path)
    if not isinstance(start, dict):
        start = None
    entries = [by_seq[seq] for seq in sorted(by_seq)]
    present = len(entries) + (start_entry is not None)
    missing = (entries[-1].seq + 1 - present) if entries else 0
    return JournalContents(start, entries, damage, undecodable, missing)


def _header(path: Path) -> Any:
    try:
        return json.loads((path / "header.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_acks(path: Path) -> dict[str, Any]:
    """The last intact acknowledgement state of a run journal ({} if none)."""
    try:
        data = (path / "acks").read_bytes()
    except OSError:
        return {}
    state: dict[str, Any] = {}
    for found in scan(data):
        if isinstance(found, Frame) and found.kind == Kind.ACK:
            try:
                value = json.loads(found.payload)
            except ValueError:
                continue
            if isinstance(value, dict):
                state = value
    return state


def remember_created(folder: Path, pending_id: str, run_id: str) -> None:
    """Keep which backend run a pending run became, so its pending id still finds it."""
    target = folder / "delivered" / f"{_safe(pending_id)}.json"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"pending_id": pending_id, "run_id": run_id}))
    except OSError:
        pass  # the run is delivered; only the lookup by pending id is lost


def created_id(folder: Path, pending_id: str) -> str | None:
    """The backend id a pending run was created as, if it has been."""
    try:
        data = json.loads((folder / "delivered" / f"{_safe(pending_id)}.json").read_text())
    except (OSError, ValueError):
        return None
    run_id = data.get("run_id") if isinstance(data, dict) else None
    return run_id if isinstance(run_id, str) else None
