"""The user-facing run: validation, the metric buffer, status and thread safety.

One ``Run`` object serialises every call it makes to the backend hooks under
its lock, so adapters never see two calls for one run at the same time.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, SupportsIndex

from trackstack.enums import RunStatus
from trackstack.errors import (
    ArtifactNotFoundError,
    BackendError,
    BackendUnavailableError,
    InvalidInputError,
    ParamConflictError,
    TrackstackError,
)
from trackstack.outbox import RunOutbox, deliver_run
from trackstack.records import keyed_points
from trackstack.sender_process import close_sender_process
from trackstack.validation import (
    ParamValue,
    check_artifact_path,
    check_key,
    check_step,
    flatten_params,
    metric_value,
    tag_values,
)

if TYPE_CHECKING:
    from trackstack.experiment_trackers import BaseExperimentTracker

__all__ = ["Run", "coerce_status"]

logger = logging.getLogger(__name__)


def coerce_status(status: RunStatus | str) -> RunStatus:
    """Accept a ``RunStatus`` or its name (any case) as a final status."""
    try:
        final = RunStatus(status.upper() if isinstance(status, str) else status)
    except ValueError:
        final = None
    if final is None or final is RunStatus.RUNNING:
        raise InvalidInputError(
            f"cannot end a run with status {status!r}; use one of FINISHED, FAILED, KILLED"
        )
    return final


def check_lengths(values: Mapping[str, str], limit: int | None, kind: str) -> None:
    """Reject values the backend would truncate; trackstack never truncates."""
    if limit is None:
        return
    for key, text in values.items():
        if len(text) > limit:
            raise InvalidInputError(
                f"{kind} {key!r} has a value of {len(text)} characters; this backend stores "
                f"at most {limit}. Shorten it or log it as an artifact instead"
            )


class Run:
    """A run being logged to. Use it as a context manager or call ``end()``."""

    def __init__(
        self,
        tracker: BaseExperimentTracker,
        *,
        id: str,
        url: str | None,
        name: str | None,
        experiment: str,
        parent_id: str | None,
        params: Mapping[str, str],
        next_step: int,
        outbox: RunOutbox | None = None,
        discard: bool = False,
    ) -> None:
        self.id = id
        self.url = url
        self.name = name
        self.experiment = experiment
        self.parent_id = parent_id
        self._tracker = tracker
        self._outbox = outbox
        """Set for a run started while the backend was unavailable: it all goes there."""
        self.discards = discard
        """True on a process whose rank does not log (``log_on: rank0``): calls are
        checked as anywhere else, then dropped."""
        # Lock order: _backend_lock, then _lock. log_metrics takes only _lock, so
        # the training loop never waits for a request in flight.
        self._backend_lock = threading.RLock()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._params = dict(params)
        self._next_step = next_step
        # Plain tuples of atoms, which CPython's collector stops tracking: a full
        # buffer of objects made every full collection of a big process slower.
        self._buffer: list[tuple[str, int, float, float]] = []
        self._last_flush = time.monotonic()
        self._pending_error: BackendError | None = None
        self._status = RunStatus.RUNNING
        self._closed = threading.Event()
        self._sender: threading.Thread | None = None
        self._told_outbox = False
        _live_runs.add(self)
        install_sigterm_handler()

    def __repr__(self) -> str:
        return (
            f"Run(id={self.id!r}, name={self.name!r}, experiment={self.experiment!r}, "
            f"status={self._status.value})"
        )

    @property
    def status(self) -> RunStatus:
        """RUNNING until ``end()``, then the status it ended with."""
        return self._status

    @property
    def buffered_points(self) -> int:
        """Metric points accepted but not yet sent to the backend."""
        return len(self._buffer)

    # -- logging --------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params; nested dicts are flattened with dots, values stored as strings.

        Logging a param again with the same value does nothing; with another
        value it raises ``ParamConflictError``.
        """
        flat = flatten_params(params)
        caps = self._tracker.capabilities
        check_lengths({k: v.text for k, v in flat.items()}, caps.max_param_length, "param")
        with self._backend_lock, self._lock:
            self._check_open()
            new: dict[str, ParamValue] = {}
            for key, param in flat.items():
                known = self._params.get(key)
                if known is None:
                    new[key] = param
                elif known != param.text:
                    raise ParamConflictError(
                        f"param {key!r} of run {self.id} is already {known!r}; it cannot "
                        f"change to {param.text!r}. Log the new value under another name "
                        "or start a new run"
                    )
            for chunk in _chunks(new, caps.max_params_per_call):
                self._to_backend("log params", "backend_log_params", chunk)
                self._params.update((key, param.text) for key, param in chunk.items())

    def log_metrics(self, metrics: Mapping[str, Any], step: SupportsIndex | None = None) -> None:
        """Buffer one value per metric at ``step`` (by default one past the last step used).

        A background thread sends the points when ``buffer_size`` are waiting
        and when ``flush_interval`` seconds have passed; ``flush()`` and the
        end of the run send the rest. The call waits only while more than
        ``max_buffered_points`` are waiting. If sending failed, the points stay
        buffered and the ``BackendError`` is raised by the next call.
        """
        if not isinstance(metrics, Mapping):
            raise InvalidInputError(
                f"log_metrics takes a dict of name to value, got a {type(metrics).__name__}"
            )
        values = {check_key(key, "metric"): metric_value(key, v) for key, v in metrics.items()}
        reserved = self._tracker.capabilities.reserved_metric_keys.intersection(values)
        if reserved:
            raise InvalidInputError(
                f"metric name(s) {sorted(reserved)} are reserved by the "
                f"{self._tracker.flavor} backend; log under another name"
            )
        given_step = None if step is None else check_step(step)
        timestamp = time.time()
        with self._lock:
            self._check_open()
            if not values:
                return
            used = self._next_step if given_step is None else given_step
            self._next_step = used + 1
            self._buffer.extend((key, used, v, timestamp) for key, v in values.items())
            if len(self._buffer) >= self._tracker.buffer_size:
                self._changed.notify_all()
            self._start_sender()
            self._wait_for_room()
            self._raise_pending()

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags; a tag set again takes the new value."""
        values = tag_values(tags)
        caps = self._tracker.capabilities
        check_lengths(values, caps.max_tag_length, "tag")
        with self._backend_lock, self._lock:
            self._check_open()
            for chunk in _chunks(values, caps.max_tags_per_call):
                self._to_backend("set tags", "backend_set_tags", chunk)

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        """Upload a file (to ``<artifact_path>/<name>``) or a directory (under its own name)."""
        if not isinstance(path, str | os.PathLike):
            raise InvalidInputError(
                f"log_artifact takes a file or directory path, got a {type(path).__name__}"
            )
        local = Path(path)
        folder = check_artifact_path(artifact_path)
        if not local.exists():
            raise ArtifactNotFoundError(
                f"artifact path {str(local)!r} does not exist (looked in {local.absolute()}); "
                "pass an existing file or directory"
            )
        with self._backend_lock, self._lock:
            self._check_open()
            if local.is_dir() and not self._tracker.capabilities.artifact_directories:
                for file in sorted(p for p in local.rglob("*") if p.is_file()):
                    inner = file.parent.relative_to(local.parent).as_posix()
                    self._log_artifact_locked(file, f"{folder}/{inner}" if folder else inner)
            else:
                self._log_artifact_locked(local, folder)

    def _log_artifact_locked(self, local: Path, folder: str | None) -> None:
        self._to_backend("log artifact", "backend_log_artifact", local, folder)

    # -- flushing and ending ----------------------------------------------------

    def flush(self) -> None:
        """Send every buffered point now."""
        with self._backend_lock, self._lock:
            self._pending_error = None
            self._send(everything=True)

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Send what is buffered and close the run; ending an ended run does nothing.

        While the backend is unavailable (unreachable, 5xx, 429) this retries
        with backoff for up to ``tracker.end_timeout`` seconds, then writes the
        undelivered points and the final status to the outbox for
        ``trackstack sync`` and closes the run. On any other backend failure the
        run stays open with its points buffered, and ``end()`` can be called again.
        """
        final = coerce_status(status)
        with self._backend_lock, self._lock:
            if self._status is not RunStatus.RUNNING:
                return
            self._pending_error = None
            deadline = time.monotonic() + self._tracker.end_timeout
            delay = self._tracker.retry_initial
            while True:
                try:
                    self._send(everything=True)
                    self._to_backend("end run", "backend_end_run", final)
                    self._deliver_spilled()
                    break
                except BackendUnavailableError as error:
                    if time.monotonic() + delay > deadline:
                        self._to_outbox(final, error)
                        break
                    time.sleep(delay)
                    delay = min(delay * 2, self._tracker.retry_max)
            self._status = final
            self._closed.set()
            self._changed.notify_all()
            _live_runs.discard(self)
            self._tracker._forget_run(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.end(RunStatus.FINISHED)
            return
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            status = RunStatus.FINISHED
        elif isinstance(exc, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        try:
            self.end(status)
        except TrackstackError as end_error:
            # The user's exception matters more; ours rides along as a note.
            exc.add_note(f"trackstack could not end run {self.id} as {status.value}: {end_error}")

    # -- internals ----------------------------------------------------------------

    def _to_backend(self, operation: str, hook: str, *args: Any) -> None:
        """Call the adapter's hook for this run, or record the call in the outbox."""
        if self.discards:
            return
        if self._outbox is not None:
            self._outbox.record(hook, *args)
        else:
            self._tracker._call_backend(operation, getattr(self._tracker, hook), self.id, *args)

    def _check_open(self) -> None:
        if self._status is not RunStatus.RUNNING:
            raise InvalidInputError(
                f"run {self.id} has ended ({self._status.value}); resume it with "
                f"start_run(run_id={self.id!r}) to log more"
            )

    def _raise_pending(self) -> None:
        error, self._pending_error = self._pending_error, None
        if error is not None:
            raise error

    def _deliver_spilled(self) -> None:
        """Send what this run moved to the outbox while the backend lagged, now it answers."""
        if self._outbox is None and RunOutbox(self._tracker, self.id).path.exists():
            try:
                deliver_run(self._tracker, self.id)
            except BackendError as error:
                logger.warning(
                    "trackstack: run %s keeps points in the outbox (%s); send them with "
                    "`trackstack sync`", self.id, error,
                )  # fmt: skip

    def _wait_for_room(self) -> None:
        """Hold the loop while the buffer is full, for ``max_block_seconds`` at most.

        A backend slower than the loop gets that long to catch up; after it,
        the buffered points move to the outbox so the loop goes on.
        """
        deadline = time.monotonic() + self._tracker.max_block_seconds
        while len(self._buffer) >= self._tracker.max_buffered_points:
            if self._pending_error is not None:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                self._to_outbox(None, "the backend has not taken them in time")
                return
            self._changed.wait(left)

    def _due(self) -> bool:
        """Whether the sender should send now: a full batch, or points waiting too long."""
        waiting = time.monotonic() - self._last_flush >= self._tracker.flush_interval
        return len(self._buffer) >= self._tracker.buffer_size or (bool(self._buffer) and waiting)

    def _send(self, everything: bool) -> None:
        """Send buffered points in order, a batch at a time, while they are due (or all).

        The caller holds ``_backend_lock``. ``_lock`` is held only to take a
        batch from the front of the buffer and to drop it once stored, so
        ``log_metrics`` goes on appending meanwhile; a failed batch stays.
        """
        limit = self._tracker.capabilities.max_metrics_per_call
        while True:
            with self._lock:
                if not self._buffer or not (everything or self._due()):
                    return
                chunk = self._buffer[:limit]
            try:
                if self._outbox is None and not self.discards:
                    self._tracker._store_metrics(self.id, chunk)
                else:
                    self._to_backend("log metrics", "backend_log_metrics", keyed_points(chunk))
            except BackendError as error:
                error.add_note(
                    f"{len(self._buffer)} metric points of run {self.id} are kept buffered "
                    "and will be sent again by the next flush"
                )
                raise
            with self._lock:
                del self._buffer[: len(chunk)]
                self._last_flush = time.monotonic()
                self._changed.notify_all()

    def _start_sender(self) -> None:
        if self._sender is None:
            self._sender = threading.Thread(
                target=self._send_in_background, name=f"trackstack-send-{self.id}", daemon=True
            )
            self._sender.start()

    def _send_in_background(self) -> None:
        delay = self._tracker.retry_initial
        while not self._closed.is_set():
            with self._lock:
                if not self._due():
                    self._changed.wait(self._tracker.flush_interval / 2)
                    continue
            try:
                with self._backend_lock:
                    self._send(everything=False)
            except BackendUnavailableError as error:
                if delay == self._tracker.retry_initial:
                    logger.warning(
                        "trackstack: run %s cannot reach its backend (%s); %d metric points "
                        "are kept and retried", self.id, error, len(self._buffer)
                    )  # fmt: skip
                self._closed.wait(delay)
                delay = min(delay * 2, self._tracker.retry_max)
                continue
            except BackendError as error:
                with self._lock:
                    self._pending_error = error
                    self._changed.notify_all()
                # Not again until the next interval: the backend just failed.
                self._closed.wait(self._tracker.flush_interval)
                continue
            if delay != self._tracker.retry_initial:
                logger.warning("trackstack: run %s reached its backend again", self.id)
                delay = self._tracker.retry_initial

    def _to_outbox(self, final: RunStatus | None, error: BackendError | str) -> None:
        """Move what is buffered (and the final status) to the outbox; say where, once."""
        outbox = self._outbox or RunOutbox(self._tracker, self.id)
        points = keyed_points(self._buffer)
        if points:
            outbox.record("backend_log_metrics", points)
        if final is not None:
            outbox.record("backend_end_run", final)
        self._buffer.clear()
        self._changed.notify_all()
        if self._told_outbox and final is None:
            return
        self._told_outbox = True
        ending = f" and the end ({final.value})" if final is not None else ""
        logger.warning(
            "trackstack: the %s backend is unavailable (%s); %d metric points%s of run %s "
            "are waiting in %s. Send them with `trackstack sync` or trackstack.sync()",
            self._tracker.flavor, error, len(points), ending, self.id, outbox.path,
        )  # fmt: skip


def _chunks(values: dict[str, Any], size: int) -> list[dict[str, Any]]:
    items = list(values.items())
    return [dict(items[i : i + size]) for i in range(0, len(items), size)]


_live_runs: weakref.WeakSet[Run] = weakref.WeakSet()
_exit_status: RunStatus | None = None
"""How runs left open end at exit: set when an exception ended the program."""


@atexit.register
def _close_live_runs() -> None:
    # Daemon sender threads die with the interpreter: send what they would
    # have. A run left open by an uncaught exception (or Ctrl-C) is ended.
    for run in list(_live_runs):
        try:
            if _exit_status is not None:
                run.end(_exit_status)
            else:
                run.flush()
        except BackendUnavailableError as error:
            with run._backend_lock, run._lock:
                run._to_outbox(None, error)
        except TrackstackError as error:
            logger.error("trackstack: points of run %s were not sent at exit: %s", run.id, error)
    close_sender_process()


def _note_crash(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    global _exit_status
    # SystemExit never reaches sys.excepthook: the program chose to exit.
    _exit_status = RunStatus.KILLED if issubclass(kind, KeyboardInterrupt) else RunStatus.FAILED
    _previous_excepthook(kind, value, tb)


def _end_killed(signum: int, frame: FrameType | None) -> None:
    for run in list(_live_runs):
        try:
            run.end(RunStatus.KILLED)
        except TrackstackError as error:
            logger.error("trackstack: run %s could not be ended on SIGTERM: %s", run.id, error)
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


_previous_excepthook = sys.excepthook
sys.excepthook = _note_crash
_previous_sigterm: Any = None


def install_sigterm_handler() -> None:
    """End open runs KILLED on SIGTERM, then do what the process did before.

    Installed when the first run starts, from the main thread only (where
    Python allows it); a handler already there is called afterwards.
    """
    global _previous_sigterm
    if _previous_sigterm is not None or threading.current_thread() is not threading.main_thread():
        return
    _previous_sigterm = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _end_killed)
