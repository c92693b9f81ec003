"""The user-facing run: validation, the metric buffer, status and thread safety.

One ``Run`` object serialises every call it makes to the backend hooks under
its lock, so adapters never see two calls for one run at the same time.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, SupportsIndex

from trackstack.enums import RunStatus
from trackstack.errors import (
    ArtifactNotFoundError,
    BackendError,
    InvalidInputError,
    ParamConflictError,
    TrackstackError,
)
from trackstack.records import MetricPoint
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
    ) -> None:
        self.id = id
        self.url = url
        self.name = name
        self.experiment = experiment
        self.parent_id = parent_id
        self._tracker = tracker
        self._lock = threading.RLock()
        self._params = dict(params)
        self._next_step = next_step
        self._buffer: list[tuple[str, MetricPoint]] = []
        self._last_flush = time.monotonic()
        self._pending_error: BackendError | None = None
        self._status = RunStatus.RUNNING
        self._closed = threading.Event()
        self._flusher: threading.Thread | None = None
        _live_runs.add(self)

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
        with self._lock:
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
                self._tracker._call_backend(
                    "log params", self._tracker.backend_log_params, self.id, chunk
                )
                self._params.update((key, param.text) for key, param in chunk.items())

    def log_metrics(self, metrics: Mapping[str, Any], step: SupportsIndex | None = None) -> None:
        """Buffer one value per metric at ``step`` (by default one past the last step used).

        Points are sent when the buffer is full, every ``flush_interval``
        seconds, on ``flush()`` and at the end of the run. If sending fails,
        the points stay buffered and the ``BackendError`` is raised here.
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
            self._buffer.extend((key, MetricPoint(used, v, timestamp)) for key, v in values.items())
            if len(self._buffer) >= self._tracker.buffer_size:
                self._flush_locked()
            else:
                self._start_flusher()
            self._raise_pending()

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags; a tag set again takes the new value."""
        values = tag_values(tags)
        caps = self._tracker.capabilities
        check_lengths(values, caps.max_tag_length, "tag")
        with self._lock:
            self._check_open()
            for chunk in _chunks(values, caps.max_tags_per_call):
                self._tracker._call_backend(
                    "set tags", self._tracker.backend_set_tags, self.id, chunk
                )

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
        with self._lock:
            self._check_open()
            if local.is_dir() and not self._tracker.capabilities.artifact_directories:
                for file in sorted(p for p in local.rglob("*") if p.is_file()):
                    inner = file.parent.relative_to(local.parent).as_posix()
                    self._log_artifact_locked(file, f"{folder}/{inner}" if folder else inner)
            else:
                self._log_artifact_locked(local, folder)

    def _log_artifact_locked(self, local: Path, folder: str | None) -> None:
        self._tracker._call_backend(
            "log artifact", self._tracker.backend_log_artifact, self.id, local, folder
        )

    # -- flushing and ending ----------------------------------------------------

    def flush(self) -> None:
        """Send every buffered point now."""
        with self._lock:
            self._pending_error = None
            self._flush_locked()

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Send what is buffered and close the run; ending an ended run does nothing.

        If sending fails the run stays open with its points buffered, and
        ``end()`` can be called again.
        """
        final = coerce_status(status)
        with self._lock:
            if self._status is not RunStatus.RUNNING:
                return
            self._pending_error = None
            self._flush_locked()
            self._tracker._call_backend("end run", self._tracker.backend_end_run, self.id, final)
            self._status = final
            self._closed.set()
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
        if self._status is not RunStatus.RUNNING:
            raise InvalidInputError(
                f"run {self.id} has ended ({self._status.value}); resume it with "
                f"start_run(run_id={self.id!r}) to log more"
            )

    def _raise_pending(self) -> None:
        error, self._pending_error = self._pending_error, None
        if error is not None:
            raise error

    def _flush_locked(self) -> None:
        limit = self._tracker.capabilities.max_metrics_per_call
        while self._buffer:
            chunk = self._buffer[:limit]
            try:
                self._tracker._call_backend(
                    "log metrics", self._tracker.backend_log_metrics, self.id, chunk
                )
            except BackendError as error:
                error.add_note(
                    f"{len(self._buffer)} metric points of run {self.id} are kept buffered "
                    "and will be sent again by the next flush"
                )
                raise
            del self._buffer[: len(chunk)]
        self._last_flush = time.monotonic()

    def _start_flusher(self) -> None:
        if self._flusher is None:
            self._flusher = threading.Thread(
                target=self._flush_periodically, name=f"trackstack-flush-{self.id}", daemon=True
            )
            self._flusher.start()

    def _flush_periodically(self) -> None:
        # Only flushes runs that went quiet: a busy loop fills the buffer and
        # flushes it from its own thread, which keeps sending synchronous.
        interval = self._tracker.flush_interval
        while not self._closed.wait(interval):
            with self._lock:
                if self._buffer and time.monotonic() - self._last_flush >= interval:
                    try:
                        self._flush_locked()
                    except BackendError as error:
                        self._pending_error = error


def _chunks(values: dict[str, Any], size: int) -> list[dict[str, Any]]:
    items = list(values.items())
    return [dict(items[i : i + size]) for i in range(0, len(items), size)]


_live_runs: weakref.WeakSet[Run] = weakref.WeakSet()


@atexit.register
def _flush_live_runs() -> None:
    # Daemon flusher threads die with the interpreter: send what they would have.
    for run in list(_live_runs):
        try:
            run.flush()
        except TrackstackError as error:
            logger.error("trackstack: points of run %s were not sent at exit: %s", run.id, error)
