"""The user-facing run: validation, status, the context manager and exit handling.

Every call is checked here, then handed to the run's ``RunSender``, which
journals it before the call returns and delivers it in the background
(``trackstack.delivery``). Only ``log_artifact`` talks to the backend directly,
so a file is not copied while the backend takes it.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Protocol, SupportsIndex

from trackstack.artifacts import check_artifact_source
from trackstack.delivery.codec import Kind, json_value
from trackstack.delivery.protocol import Backend
from trackstack.delivery.sender import RunSender
from trackstack.delivery.sender_process import close_sender_process
from trackstack.enums import RunStatus
from trackstack.errors import (
    BackendUnavailableError,
    InvalidInputError,
    ParamConflictError,
    TrackstackError,
)
from trackstack.validation import (
    ParamValue,
    check_artifact_path,
    check_key,
    check_step,
    flatten_params,
    metric_value,
    tag_values,
)

__all__ = ["Run", "coerce_status", "unset_params"]

logger = logging.getLogger(__name__)


class RunOwner(Backend, Protocol):
    """What a run needs of its tracker beyond delivery's hooks (``BaseExperimentTracker``)."""

    end_timeout: float

    def check_params(self, known: Mapping[str, str], new: Mapping[str, ParamValue]) -> None: ...

    def _journal_identity(self) -> tuple[Path, tuple[str, dict[str, Any]]]: ...

    def _forget_run(self, run: Run) -> None: ...

    def protected_paths(self) -> list[Path]: ...


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


def unset_params(
    run_id: str, known: Mapping[str, str], flat: Mapping[str, ParamValue]
) -> dict[str, ParamValue]:
    """The params of ``flat`` the run does not hold yet; one it holds with another value is
    a ``ParamConflictError`` (the same value again is nothing)."""
    new: dict[str, ParamValue] = {}
    for key, param in flat.items():
        before = known.get(key)
        if before is None:
            new[key] = param
        elif before != param.text:
            raise ParamConflictError(
                f"param {key!r} of run {run_id} is already {before!r}; it cannot change to "
                f"{param.text!r}. Log the new value under another name or start a new run"
            )
    return new


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
        tracker: RunOwner,
        *,
        id: str,
        url: str | None,
        name: str | None,
        experiment: str,
        parent_id: str | None,
        params: Mapping[str, str],
        next_step: int,
        start: dict[str, Any] | None = None,
        discard: bool = False,
    ) -> None:
        self.id = id
        self.url = url
        self.name = name
        self.experiment = experiment
        self.parent_id = parent_id
        self.pending = bool(start and start.get("pending"))
        """Started while the backend was unreachable: delivery creates it when it answers."""
        self._tracker = tracker
        self.discards = discard
        """True on a process whose rank does not log (``log_on: rank0``): calls are
        checked as anywhere else, then dropped."""
        # Lock order: _backend_lock, then _lock. log_metrics takes only _lock, so
        # the training loop never waits for a request in flight.
        self._backend_lock = threading.RLock()
        self._lock = threading.RLock()
        self._params = dict(params)
        self._accepted_keys: set[str] = set()
        """Metric keys that passed every check: the loop checks each key once, not per call."""
        self._next_step = next_step
        self._status = RunStatus.RUNNING
        self._detached = False
        self._pid = os.getpid()
        self._sender: RunSender | None = None
        if not discard:
            folder, described = tracker._journal_identity()
            self._sender = RunSender(
                tracker,
                {"run_id": id, "experiment": experiment, "run_name": name, **(start or {})},
                folder=folder,
                tracker_info=described,
                lock=self._lock,
                backend_lock=self._backend_lock,
            )
        _live_runs.add(self)
        install_sigterm_handler()
        # Runs at exit before the SDKs' own exit hooks registered since (wandb's tears down
        # its service): the runs' last calls still need them.
        atexit.unregister(_close_live_runs)
        atexit.register(_close_live_runs)

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
    def params(self) -> dict[str, str]:
        """The params this run holds (logged here, or found when it was resumed), as stored."""
        return dict(self._params)

    @property
    def buffered_points(self) -> int:
        """Metric points accepted but not yet acknowledged by the backend (held in memory)."""
        return 0 if self._sender is None else self._sender.waiting_points

    @property
    def journal(self) -> str | None:
        """Where this run's calls are journaled until the backend has them."""
        return None if self._sender is None else self._sender.where()

    # -- logging --------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params; nested dicts are flattened with dots, values stored as strings.

        Logging a param again with the same value does nothing; with another
        value it raises ``ParamConflictError``. Delivered in the background.
        """
        flat = flatten_params(params)
        caps = self._tracker.capabilities
        check_lengths({k: v.text for k, v in flat.items()}, caps.max_param_length, "param")
        with self._lock:
            self._check_open()
            new = unset_params(self.id, self._params, flat)
            if new:
                self._tracker.check_params(self._params, new)
            self._params.update((key, param.text) for key, param in new.items())
            if new and self._sender is not None:
                stored = {k: [p.text, json_value(p.value, p.text)] for k, p in new.items()}
                items = [(k, p.text, p.value) for k, p in new.items()]
                self._sender.add(Kind.PARAMS, stored, items)
                self._sender.start_thread()
            self._raise_pending()

    def log_metrics(self, metrics: Mapping[str, Any], step: SupportsIndex | None = None) -> None:
        """Journal one value per metric at ``step`` (by default one past the last step used).

        The call returns once the point is in the run's journal; a background
        thread sends batches of ``buffer_size`` points, or what waits after
        ``flush_interval`` seconds. An outage never raises here: points wait in
        the journal and are retried. What the backend refuses is set aside and
        named by a ``BackendError`` from the next call.
        """
        if not isinstance(metrics, Mapping):
            raise InvalidInputError(
                f"log_metrics takes a dict of name to value, got a {type(metrics).__name__}"
            )
        accepted = self._accepted_keys
        values: dict[str, float] = {}
        for key, value in metrics.items():
            if type(key) is not str or key not in accepted:
                self.check_metric_key(key)
            values[key] = metric_value(key, value)
        caps = self._tracker.capabilities
        given_step = None if step is None else check_step(step)
        timestamp = time.time()
        with self._lock:
            self._check_open()
            if not values:
                return
            used = self._next_step if given_step is None else given_step
            if used > caps.max_step:
                raise InvalidInputError(
                    f"step {used} is beyond the largest step the {self._tracker.flavor} backend "
                    f"stores ({caps.max_step}); pass a smaller step"
                )
            self._next_step = used + 1
            if self._sender is not None:
                self._sender.add_metrics(used, timestamp, values)
                self._sender.start_thread()
            self._raise_pending()

    def check_metric_key(self, key: object) -> str:
        """Return ``key`` if the backend takes it as a metric name; else ``InvalidInputError``.

        A key that passes is remembered, so the training loop checks each key once.
        """
        name = check_key(key, "metric")
        caps = self._tracker.capabilities
        if name in caps.reserved_metric_keys:
            raise InvalidInputError(
                f"metric name {name!r} is reserved by the {self._tracker.flavor} backend; "
                "log under another name"
            )
        if caps.key_pattern is not None:
            check_backend_keys([name], caps.key_pattern, self._tracker.flavor, "metric")
        if len(self._accepted_keys) < _ACCEPTED_KEYS:
            self._accepted_keys.add(name)
        return name

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags; a tag set again takes the new value. Delivered in the background."""
        values = tag_values(tags)
        check_lengths(values, self._tracker.capabilities.max_tag_length, "tag")
        with self._lock:
            self._check_open()
            if values and self._sender is not None:
                self._sender.add(Kind.TAGS, values, list(values.items()))
                self._sender.start_thread()
            self._raise_pending()

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        """Upload a file (to ``<artifact_path>/<name>``) or a directory (under its own name).

        While the backend is unreachable the file is copied into the run's
        journal and uploaded from there later.
        """
        local = check_artifact_source(path, self._tracker.protected_paths())
        folder = check_artifact_path(artifact_path)
        # Only _backend_lock while the backend takes the file: log_metrics needs just
        # _lock, so a large upload from another thread never holds up the training loop.
        with self._backend_lock:
            with self._lock:
                self._check_open()
            if local.is_dir() and not self._tracker.capabilities.artifact_directories:
                for file in sorted(p for p in local.rglob("*") if p.is_file()):
                    inner = file.parent.relative_to(local.parent).as_posix()
                    self._log_artifact_locked(file, f"{folder}/{inner}" if folder else inner)
            else:
                self._log_artifact_locked(local, folder)
            with self._lock:
                self._raise_pending()

    def _log_artifact_locked(self, local: Path, folder: str | None) -> None:
        """Upload (the caller holds ``_backend_lock``), else keep a copy in the journal."""
        sender = self._sender
        if sender is None:
            return
        if not self.pending and sender.created is None:
            try:
                tracker = self._tracker
                tracker._call_backend(
                    "log artifact", tracker.backend_log_artifact, self.id, local, folder
                )
                return
            except BackendUnavailableError:
                pass
        copies = sender.files_folder()
        stored = str(local.absolute())
        if copies is not None:
            # A copy: the file may change or go before the backend is back.
            try:
                copies.mkdir(parents=True)
                if local.is_dir():
                    shutil.copytree(local, copies / local.name)
                else:
                    shutil.copy2(local, copies / local.name)
                stored = (copies / local.name).relative_to(copies.parent.parent).as_posix()
            except OSError as error:
                logger.warning(
                    "trackstack: cannot copy artifact %s into the journal (%s); it is uploaded "
                    "from where it is once the backend answers", local, error,
                )  # fmt: skip
        with self._lock:
            sender.add(Kind.ARTIFACT, [stored, folder], [(stored, folder)])
            sender.start_thread()

    # -- flushing and ending ----------------------------------------------------

    def flush(self) -> None:
        """Send everything journaled now; what the backend refused raises ``BackendError``.

        While the backend is unreachable this returns; the points wait in the
        journal and the background thread retries.
        """
        if self._sender is not None and self._status is RunStatus.RUNNING and not self._detached:
            self._sender.flush()
        with self._lock:
            self._raise_pending()

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Deliver everything and close the run; ending an ended run does nothing.

        While the backend is unavailable this retries for up to
        ``tracker.end_timeout`` seconds, then leaves the journal (with the
        end) for ``trackstack sync`` and closes the run. What the backend
        refused is named once by a ``BackendError`` after the run is closed.
        """
        self._end(coerce_status(status), self._tracker.end_timeout)

    def detach(self) -> None:
        """Deliver everything and let go of the run without ending it: it stays RUNNING for
        another process to resume (``start_run(run_id=...)``), as a requeued job does."""
        self._end(None, self._tracker.end_timeout)
        self._detached = True

    def _end(self, final: RunStatus | None, timeout: float) -> None:
        """End with ``final``, or (None) deliver and leave the run open for good at exit."""
        with self._backend_lock, self._lock:
            if self._status is not RunStatus.RUNNING or self._detached:
                return
            sender = self._sender
            delivered = True
            if sender is not None:
                if final is not None:
                    sender.add(Kind.END, final.value, [final.value])
                else:
                    sender.add(Kind.DETACH, None, [None])
                delivered = sender.finish(timeout)
            if final is not None:
                self._status = final
            _live_runs.discard(self)
            self._tracker._forget_run(self)
            if not delivered and sender is not None:
                ending = f" and its end ({final.value})" if final is not None else ""
                logger.warning(
                    "trackstack: the %s backend is unavailable; run %s's undelivered calls%s "
                    "are waiting in %s. Send them with `trackstack sync` or trackstack.sync()",
                    self._tracker.flavor, self.id, ending, sender.where(),
                )  # fmt: skip
            self._raise_pending()

    def _abandon(self) -> None:
        """Leave the run as a process killed now would: journaled, undelivered, not ended.

        For the conformance suite's check of delivery through ``trackstack sync``'s recovery.
        """
        with self._backend_lock, self._lock:
            if self._sender is not None:
                self._sender.abandon()
            self._status = RunStatus.KILLED
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

    def _check_open(self) -> None:
        if self._status is not RunStatus.RUNNING or self._detached:
            ended = "was detached" if self._detached else f"has ended ({self._status.value})"
            raise InvalidInputError(
                f"run {self.id} {ended}; resume it with start_run(run_id={self.id!r}) to log more"
            )
        if os.getpid() != self._pid:
            raise InvalidInputError(
                f"run {self.id} was started in process {self._pid}; a forked process cannot "
                "log to it. Start or resume a run in this process (start_run(run_id=...))"
            )

    def _raise_pending(self) -> None:
        error = None if self._sender is None else self._sender.take_error()
        if error is not None:
            raise error


def check_backend_keys(keys: Iterable[str], pattern: str, flavor: str, kind: str) -> None:
    """Reject keys the backend is known to refuse, at the call instead of in delivery."""
    for key in keys:
        if re.fullmatch(pattern, key) is None:
            raise InvalidInputError(
                f"{kind} name {key!r} is not one the {flavor} backend accepts (it takes names "
                f"matching {pattern}); rename it"
            )


_live_runs: weakref.WeakSet[Run] = weakref.WeakSet()
_exit_status: RunStatus | None = None
"""How runs left open end at exit: set when an exception ended the program."""


_ACCEPTED_KEYS = 10_000
"""At most this many metric keys are remembered per run (a run may make up new ones per step)."""
SIGTERM_END_SECONDS = 5.0
"""How long a SIGTERM'd process tries to deliver before it goes: well inside docker's 10 s."""


@atexit.register
def _close_live_runs() -> None:
    # Daemon sender threads die with the interpreter: deliver what they would
    # have. A run left open by an uncaught exception (or Ctrl-C) is ended; one
    # left open by a normal exit stays open (the journal says so to sync).
    for run in list(_live_runs):
        try:
            run._end(_exit_status, run._tracker.end_timeout)
        except TrackstackError as error:
            logger.error("trackstack: run %s at exit: %s", run.id, error)
        except Exception as error:  # nothing at exit may hide the program's own outcome
            logger.error("trackstack: run %s could not be closed at exit: %r", run.id, error)
    close_sender_process()


def _note_crash(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    global _exit_status
    # SystemExit never reaches sys.excepthook: the program chose to exit.
    _exit_status = RunStatus.KILLED if issubclass(kind, KeyboardInterrupt) else RunStatus.FAILED
    _previous_excepthook(kind, value, tb)


def _end_killed(signum: int, frame: FrameType | None) -> None:
    for run in list(_live_runs):
        try:
            run._end(RunStatus.KILLED, min(run._tracker.end_timeout, SIGTERM_END_SECONDS))
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
