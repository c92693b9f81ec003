"""The live side of a run's delivery: the journal written on every call, a thread sending it.

Each run call appends its record to the journal (one ``os.write``) and to an
in-memory cache of what is not yet acknowledged; a background thread delivers
the cache through ``Delivery``. The cache is bounded: beyond
``max_buffered_points`` records go to disk only and the thread reads them back,
so the loop never waits on a slow backend while the journal works.

A journal folder that cannot be written (read-only, full) is said once; the
run goes on from memory alone, bounded as the cache is, sent while the backend
answers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from trackstack.delivery.codec import (
    Damage,
    Entry,
    KeyCache,
    Kind,
    encode_json,
    encode_metrics,
    entry_from_frame,
    scan,
)
from trackstack.delivery.deliver import TRANSIENT, Delivery, Refusal
from trackstack.delivery.journal import JournalWriter, describe_tracker, remember_created
from trackstack.delivery.protocol import Backend
from trackstack.errors import BackendError, TrackstackError

__all__ = ["RunSender"]

logger = logging.getLogger(__name__)

_FSYNC_SECONDS = 1.0
_REFILL_BYTES = 1 << 20
_TAKE_ENTRIES = 2000


class RunSender:
    """Journals one run's calls and delivers them; the run's lock guards its state."""

    def __init__(
        self,
        backend: Backend,
        start: dict[str, Any],
        *,
        folder: Path,
        tracker_info: tuple[str, dict[str, Any]],
        lock: threading.RLock,
        backend_lock: threading.RLock,
    ) -> None:
        self.backend = backend
        self.lock = lock
        self.backend_lock = backend_lock
        self.changed = threading.Condition(lock)
        self.folder = folder
        self.run_id = str(start["run_id"])
        self.journal: JournalWriter | None = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            describe_tracker(folder, backend.flavor, *tracker_info)
            self.journal = JournalWriter(folder, start)
            start = {**start, "journal": self.journal.name}
        except OSError as error:
            self._journal_failed(error)
            start = {**start, "journal": f"memory-{os.getpid()}-{id(self):x}"}
        self.delivery = Delivery(
            backend,
            start,
            {},
            on_ack=self._ack,
            files=self.journal.path if self.journal else None,
            refused_file=folder / "refused" / f"{self.run_id}.jsonl",
        )
        self.cache: deque[Entry] = deque()
        if start.get("pending"):
            self.cache.append(Entry(0, Kind.START, [start]))
        self.cached_points = 0
        self.others = len(self.cache)
        """Entries in the cache that are not metrics: sent without waiting for a batch."""
        self.spill_offset: int | None = None
        self.next_seq = 1
        self.keys = KeyCache()
        self.last_send = time.monotonic()
        self.last_fsync = time.monotonic()
        self.closed = threading.Event()
        self.dropped = 0
        self.error: TrackstackError | None = None
        """What the loop must hear at its next call: refusals, a sender that cannot go on."""
        self._told_refusals = 0
        self.created: str | None = None
        """The backend's id of a run started pending, once delivery has created it."""
        self._unavailable: BaseException | None = None
        self._thread: threading.Thread | None = None

    # -- the loop's side: called with the run's lock held ----------------------------

    def add_metrics(self, step: int, timestamp: float, values: dict[str, float]) -> None:
        seq = self.next_seq
        self.next_seq += 1
        journal = self.journal
        if journal is not None:
            at = journal.size
            try:
                journal.append(encode_metrics(seq, step, timestamp, values, self.keys))
            except OSError as error:
                self._journal_failed(error)
            else:
                if (
                    self.spill_offset is not None
                    or self.cached_points >= self.backend.max_buffered_points
                ):
                    if self.spill_offset is None:
                        self.spill_offset = at
                    self._wake()
                    return
        elif not self._room_in_memory(len(values)):
            return
        self.cache.append(
            Entry(seq, Kind.METRICS, tuple([(k, step, v, timestamp) for k, v in values.items()]))
        )
        self.cached_points += len(values)
        if self.cached_points >= self.backend.buffer_size:
            self._wake()

    def add(self, kind: int, data: Any, items: list[Any]) -> None:
        """Journal a params, tags, artifact, end or detach record and queue it."""
        seq = self.next_seq
        self.next_seq += 1
        if self.journal is not None:
            try:
                self.journal.append(encode_json(seq, kind, data))
            except OSError as error:
                self._journal_failed(error)
            else:
                if self.spill_offset is not None:
                    self._wake()
                    return
        self.cache.append(Entry(seq, kind, items))
        self.others += 1
        self._wake()

    def files_folder(self) -> Path | None:
        """Where an artifact copy for the journal goes, or None without a journal."""
        return None if self.journal is None else self.journal.path / "files" / str(self.next_seq)

    @property
    def waiting_points(self) -> int:
        return self.cached_points

    def take_error(self) -> TrackstackError | None:
        error, self.error = self.error, None
        return error

    def start_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"trackstack-send-{self.run_id}", daemon=True
            )
            self._thread.start()

    # -- delivering ---------------------------------------------------------------

    def flush(self) -> None:
        """Deliver everything now on the caller's thread, readable in the backend once it
        returns; an outage is left to the thread."""
        with self.backend_lock:
            try:
                self._deliver(everything=True)
                run_id = self.delivery.run_id
                if run_id is not None and not self.cache:
                    backend = self.backend
                    backend._call_backend("flush", backend.backend_flush, run_id)
            except TRANSIENT as error:
                self._note_unavailable(error)
        self._collect_refusals()

    def finish(self, timeout: float) -> bool:
        """Deliver everything within ``timeout`` seconds, then release the journal.

        True when all was delivered (the journal is deleted); else the journal
        stays for ``trackstack sync``.
        """
        deadline = time.monotonic() + timeout
        delay = self.backend.retry_initial
        done = False
        with self.backend_lock:
            while True:
                try:
                    self._deliver(everything=True)
                    done = True
                    break
                except TRANSIENT as error:
                    self._note_unavailable(error)
                    if time.monotonic() + delay > deadline:
                        break
                    time.sleep(delay)
                    delay = min(delay * 2, self.backend.retry_max)
                except TrackstackError as error:
                    self.error = error
                    break
            self.closed.set()
            with self.lock:
                self.changed.notify_all()
            if self.journal is not None:
                try:
                    self.journal.close(delete=done)
                except OSError as error:
                    logger.warning("trackstack: cannot close the journal %s: %s",
                                   self.journal.path, error)  # fmt: skip
        self._collect_refusals()
        return done

    def abandon(self) -> None:
        """Stop as a killed process stops: send nothing more, keep the journal as it is.

        Its lock is released, so ``trackstack sync`` recovers the run as it would
        a dead process's; the conformance suite delivers through that path this way.
        """
        with self.backend_lock, self.lock:
            self.closed.set()
            self.changed.notify_all()
            if self.journal is not None:
                self.journal.close(delete=False)

    def where(self) -> str:
        if self.journal is None:
            return "memory only (the journal folder could not be written)"
        return str(self.journal.path)

    def _deliver(self, everything: bool) -> None:
        """Send cached entries while they are due (or all); the caller holds backend_lock."""
        while True:
            with self.lock:
                if not self.cache and self.spill_offset is not None:
                    start, end = self.spill_offset, self._journal_size()
                else:
                    start = end = -1
            if start >= 0:
                self._refill(start, end)
                continue
            with self.lock:
                if not self.cache or not (everything or self._due()):
                    return
                batch = []
                for entry in self.cache:
                    batch.append(entry)
                    if len(batch) >= _TAKE_ENTRIES:
                        break
            try:
                self.delivery.deliver(batch)
            finally:
                self._remember_created()
                with self.lock:
                    while self.cache and self.delivery.done_with(self.cache[0]):
                        gone = self.cache.popleft()
                        if gone.kind == Kind.METRICS:
                            self.cached_points -= len(gone.items)
                        else:
                            self.others -= 1
                    self.last_send = time.monotonic()
                    self.changed.notify_all()
            self._collect_refusals()
            self._fsync_now_and_then()  # a loop that never pauses still gets its fsyncs

    def _refill(self, start: int, end: int) -> None:
        """Read records that went to disk only back into the cache (outside the loop's lock)."""
        assert self.journal is not None
        with open(self.journal.path / "records", "rb") as file:
            file.seek(start)
            data = file.read(min(end - start, _REFILL_BYTES))
        entries, consumed = [], start
        for found in scan(data):
            if isinstance(found, Damage):
                break
            entries.append(entry_from_frame(found))
            consumed = start + found.end
        with self.lock:
            for entry in entries:
                self._take_back(entry)
            if consumed >= self._journal_size() or not entries:
                self.spill_offset = None
            else:
                self.spill_offset = consumed

    def _remember_created(self) -> None:
        delivery = self.delivery
        if delivery.pending_id is not None and delivery.run_id is not None and not self.created:
            self.created = delivery.run_id
            remember_created(self.folder, delivery.pending_id, delivery.run_id)

    def _take_back(self, entry: Entry) -> None:
        """Queue an entry read back from disk."""
        self.cache.append(entry)
        if entry.kind == Kind.METRICS:
            self.cached_points += len(entry.items)
        else:
            self.others += 1

    def _journal_size(self) -> int:
        return self.journal.size if self.journal is not None else 0

    def _due(self) -> bool:
        if self.others or self.spill_offset is not None:
            return True
        if self.cached_points >= self.backend.buffer_size:
            return True
        waited = time.monotonic() - self.last_send >= self.backend.flush_interval
        return bool(self.cache) and waited

    def _run(self) -> None:
        delay = self.backend.retry_initial
        while not self.closed.is_set():
            with self.lock:
                if not self._due():
                    self.changed.wait(min(self.backend.flush_interval / 2, _FSYNC_SECONDS))
            self._fsync_now_and_then()
            if self.closed.is_set():
                return
            try:
                with self.backend_lock:
                    if self.closed.is_set():
                        return
                    self._deliver(everything=False)
            except TRANSIENT as error:
                self._note_unavailable(error)
                self.closed.wait(delay)
                delay = min(delay * 2, self.backend.retry_max)
                continue
            except Exception as error:  # the thread never dies; the loop hears of it
                told = error if isinstance(error, TrackstackError) else BackendError(
                    f"trackstack's sender for run {self.run_id} failed: "
                    f"{type(error).__name__}: {error}; what it holds is kept and sent again"
                )  # fmt: skip
                with self.lock:
                    self.error = told
                self.closed.wait(delay)
                delay = min(delay * 2, self.backend.retry_max)
                continue
            delay = self.backend.retry_initial
            if self._unavailable is not None:
                self._unavailable = None
                logger.warning("trackstack: run %s reached its backend again", self.run_id)

    def _fsync_now_and_then(self) -> None:
        journal = self.journal
        if journal is None or time.monotonic() - self.last_fsync < _FSYNC_SECONDS:
            return
        self.last_fsync = time.monotonic()
        try:
            journal.sync_outside(self.lock)
        except OSError as error:
            with self.lock:
                self._journal_failed(error)

    # -- bookkeeping ----------------------------------------------------------------

    def _wake(self) -> None:
        self.changed.notify_all()

    def _ack(self, state: dict[str, Any]) -> None:
        journal = self.journal
        if journal is None:
            return
        with self.lock:
            if journal.fd < 0:
                return
            try:
                journal.ack(state)
            except OSError as error:
                self._journal_failed(error)

    def _note_unavailable(self, error: BaseException) -> None:
        if self._unavailable is None:
            logger.warning(
                "trackstack: run %s cannot reach its backend (%s); %d metric points are kept "
                "in its journal (%s) and retried", self.run_id, error, self.cached_points,
                self.where(),
            )  # fmt: skip
        self._unavailable = error

    def _collect_refusals(self) -> None:
        new = self.delivery.refusals[self._told_refusals :]
        if not new:
            return
        self._told_refusals = len(self.delivery.refusals)
        with self.lock:
            self.error = refusal_error(self.backend.flavor, self.run_id, new, self.folder)

    def _journal_failed(self, error: OSError) -> None:
        """Go on from memory: say so once, and take back what went to disk only."""
        journal, self.journal = self.journal, None
        where = journal.path if journal is not None else self.folder
        logger.warning(
            "trackstack: cannot write the journal of run %s in %s (%s); its calls are kept "
            "in memory and sent while the backend answers, but a killed process would lose "
            "them. Free space there or point TRACKSTACK_JOURNAL (or the tracker's journal_dir) "
            "at a writable folder", self.run_id, where, error,
        )  # fmt: skip
        if journal is None:
            return
        spilled = getattr(self, "spill_offset", None)
        if spilled is not None:
            # Records that went to disk only come back now: nothing else will read them.
            with open(journal.path / "records", "rb") as file:
                file.seek(spilled)
                for found in scan(file.read()):
                    if not isinstance(found, Damage):
                        self._take_back(entry_from_frame(found))
            self.spill_offset = None
        with contextlib.suppress(OSError):
            journal.close(delete=False)

    def _room_in_memory(self, points: int) -> bool:
        """Without a journal: wait up to ``max_block_seconds`` for room, else drop (said once)."""
        limit = self.backend.max_buffered_points
        if self.cached_points < limit:
            return True
        self._wake()
        self.changed.wait_for(
            lambda: self.cached_points < limit or self.closed.is_set(),
            self.backend.max_block_seconds,
        )
        if self.cached_points < limit:
            return True
        if not self.dropped:
            logger.error(
                "trackstack: run %s has no journal and its backend is not taking points; "
                "points beyond %d are dropped until it does", self.run_id, limit,
            )  # fmt: skip
        self.dropped += points
        return False


def refusal_error(flavor: str, run_id: str, refusals: list[Refusal], folder: Path) -> BackendError:
    """One error naming what the backend refused, for the loop to hear once."""
    listed = "; ".join(refusal.describe() for refusal in refusals[:10])
    more = f" and {len(refusals) - 10} more" if len(refusals) > 10 else ""
    return BackendError(
        f"the {flavor} backend refused {listed}{more} for run {run_id}; everything else was "
        f"delivered. The refused items are kept in {folder / 'refused' / (run_id + '.jsonl')}"
    )
