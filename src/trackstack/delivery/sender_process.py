"""A child process that stores metric batches, so the training process does not.

A sender thread in the training process costs the training loop the SDK's
Python work: a ``log_metrics`` call waits up to a GIL switch interval (5 ms)
whenever the thread runs Python, and the SDK's allocations set off full
garbage collections of the whole process (200 ms with MLflow's SQL store).
For a backend that declares ``Capabilities.sender_process``, one child Python
process per training process stores the batches instead: the sender thread
only pickles a batch and waits on a pipe, without holding the GIL.

The child starts with the first run and loads the SDK meanwhile (seconds, for
MLflow); until it has, and whenever it is restarting, batches are sent from
the thread as before. It serves every tracker of its parent, one request at a
time, and exits when its parent closes the pipe or dies. Run as
``python -m trackstack.delivery.sender_process`` by ``SenderProcess`` only.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import IO, Any

from trackstack.delivery.protocol import ProcessBackend
from trackstack.errors import BackendError, BackendUnavailableError, TrackstackError

__all__ = ["SenderProcess", "close_sender_process", "sender_process"]

logger = logging.getLogger(__name__)

_LENGTH = struct.Struct("<Q")
_ORPHAN_POLL_SECONDS = 1.0
_NICENESS = 10


def _frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def _read_frame(stream: IO[bytes]) -> Any:
    """The next message, or None at the end of the stream."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


@dataclass
class _Child:
    """A running child and its requests not answered yet, oldest first."""

    process: subprocess.Popen[bytes]
    waiting: deque[Future[Any]] = field(default_factory=deque)


@dataclass
class _Registration:
    """A tracker the child was asked to build, under the key batches name it by."""

    key: int
    answer: Future[None]


class SenderProcess:
    """The parent's side: starts the child, registers trackers, sends their batches.

    Requests are answered in the order they were written; a reader thread per
    child hands each answer to the future of that child's oldest request.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        """The process this sender belongs to; a forked child makes its own."""
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._registered: weakref.WeakKeyDictionary[ProcessBackend, _Registration]
        self._registered = weakref.WeakKeyDictionary()
        self._keys = itertools.count()
        self._forgotten: list[int] = []
        """Keys of trackers garbage-collected here, for the child to drop."""
        self._broken = False
        """The child could not start or serve at all: stop trying, send from threads."""
        self.batches_stored = 0
        """Batches the child has stored: how a test sees that this path was taken."""

    @property
    def child_pid(self) -> int | None:
        """The running child's process id, if one runs."""
        with self._lock:
            child = self._child
        if child is None or child.process.poll() is not None:
            return None
        return child.process.pid

    def prepare(self, tracker: ProcessBackend) -> None:
        """Start the child if needed and have it build ``tracker``; returns at once."""
        with self._lock:
            if not self._broken and tracker not in self._registered:
                self._register(tracker)

    def send(self, tracker: ProcessBackend, run_id: str, rows: list[Any]) -> bool:
        """Store ``(key, step, value, timestamp)`` rows through the child's copy of ``tracker``.

        False, having sent nothing, while the child is not ready for the
        tracker: the caller sends in-process. Raises what the backend hook
        raised in the child; ``BackendUnavailableError`` if the child died
        meanwhile (a new one starts with the next batch).
        """
        with self._lock:
            if self._broken:
                return False
            registration = self._registered.get(tracker)
            if registration is None:
                self._register(tracker)
                return False
            if not _succeeded(registration.answer):
                return False
            answer = self._request(("metrics", registration.key, run_id, rows))
        answer.result()
        with self._lock:
            self.batches_stored += 1
        return True

    def ready(self, tracker: ProcessBackend) -> bool:
        """Whether the child holds a working copy of ``tracker`` now (starts nothing)."""
        with self._lock:
            registration = self._registered.get(tracker)
            return registration is not None and _succeeded(registration.answer)

    def wait_ready(self, tracker: ProcessBackend, timeout: float) -> bool:
        """Wait until the child holds a working copy of ``tracker``."""
        self.prepare(tracker)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                registration = self._registered.get(tracker)
                if self._broken:
                    return False
            if registration is None:
                self.prepare(tracker)
            elif registration.answer.done():
                return _succeeded(registration.answer)
            time.sleep(0.05)
        return False

    def close(self) -> None:
        """Close the pipe; the child exits once its request in flight is done."""
        with self._lock:
            child, self._child = self._child, None
            self._registered.clear()
        if child is not None and child.process.stdin is not None:
            child.process.stdin.close()
            try:
                child.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                logger.warning("trackstack: the sender process %d is still busy", child.process.pid)

    # -- internals; the caller holds _lock --------------------------------------

    def _register(self, tracker: ProcessBackend) -> None:
        running = self._child is not None and self._child.process.poll() is None
        if not running and not self._start_child():
            return
        key = next(self._keys)
        answer = self._request(
            ("tracker", key, type(tracker), tracker.identity(), dict(os.environ))
        )
        flavor = tracker.flavor  # not the tracker: the registration must not keep it alive
        answer.add_done_callback(lambda done: _note_refusal(flavor, done))
        self._registered[tracker] = _Registration(key, answer)
        # Only an append here: a finalizer may run inside this class's own locked code.
        forget = weakref.finalize(tracker, self._forgotten.append, key)
        forget.atexit = False  # at exit, the last flush still needs the child's copy

    def _start_child(self) -> bool:
        self._registered.clear()
        self._forgotten.clear()
        if not sys.executable or getattr(sys, "frozen", False):
            # An embedded or frozen interpreter has no Python to start: send from threads.
            self._broken = True
            return False
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "trackstack.delivery.sender_process"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                # The child imports the adapter's classes from where this process did.
                env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
            )
        except OSError as error:
            self._broken = True
            logger.warning(
                "trackstack: cannot start the sender process (%s); metric batches are sent "
                "from this process", error,
            )  # fmt: skip
            return False
        self._child = _Child(process)
        threading.Thread(
            target=self._read_answers,
            args=(self._child,),
            name=f"trackstack-sender-{process.pid}",
            daemon=True,
        ).start()
        return True

    def _request(self, message: tuple[Any, ...]) -> Future[Any]:
        if self._forgotten and message[0] != "forget":
            keys = [self._forgotten.pop() for _ in range(len(self._forgotten))]
            self._request(("forget", keys))  # the child drops its copies; nobody waits
        answer: Future[Any] = Future()
        child = self._child
        assert child is not None
        stdin = child.process.stdin
        assert stdin is not None
        try:
            frame = _frame(message)
        except Exception as error:  # e.g. a tracker class defined inside a function
            answer.set_exception(BackendError(f"cannot hand this to the sender process: {error}"))
            return answer
        try:
            stdin.write(frame)
            stdin.flush()
        except (OSError, ValueError) as error:  # a closed pipe: the child is gone
            answer.set_exception(_gone(child.process, error))
            return answer
        child.waiting.append(answer)
        return answer

    def _read_answers(self, child: _Child) -> None:
        process = child.process
        assert process.stdout is not None
        answered = False
        while (reply := _read_frame(process.stdout)) is not None:
            answered = True
            with self._lock:
                answer = child.waiting.popleft()
            outcome, value = reply
            if outcome == "ok":
                answer.set_result(value)
            else:
                answer.set_exception(value)
        code = process.wait()
        process.stdout.close()
        with self._lock:
            if process.stdin is not None:
                process.stdin.close()
            if not answered and code != 0:
                self._broken = True
                logger.warning(
                    "trackstack: the sender process exited with code %s before answering; "
                    "metric batches are sent from this process", code,
                )  # fmt: skip
            waiting, child.waiting = list(child.waiting), deque()
            if self._child is child:
                self._child = None
                self._registered.clear()
        for answer in waiting:
            answer.set_exception(_gone(process, f"exit code {code}"))


def _succeeded(answer: Future[Any]) -> bool:
    return answer.done() and answer.exception() is None


def _note_refusal(flavor: str, answer: Future[Any]) -> None:
    error = answer.exception()
    if error is not None and not isinstance(error, BackendUnavailableError):
        logger.warning(
            "trackstack: the sender process cannot send for the %s tracker (%s); "
            "its metric batches are sent from this process",
            flavor, error,
        )  # fmt: skip


def _gone(child: subprocess.Popen[bytes], why: object) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"trackstack's sender process (pid {child.pid}) is gone ({why}); "
        "the batch is kept and sent again"
    )


_sender: SenderProcess | None = None
_sender_lock = threading.Lock()


def sender_process() -> SenderProcess:
    """This process's sender (a forked process gets its own, never its parent's pipe)."""
    global _sender
    with _sender_lock:
        if _sender is None or _sender.pid != os.getpid():
            _sender = SenderProcess()
        return _sender


def close_sender_process() -> None:
    """Let this process's sender child exit (at interpreter exit, after the last flush)."""
    if _sender is not None and _sender.pid == os.getpid():
        _sender.close()


# -- the child's side --------------------------------------------------------------


def _serve() -> None:
    # Ctrl-C and a SIGTERM to the process group are the parent's to handle: it
    # ends its runs through this process, which exits when the parent is gone.
    if hasattr(os, "nice"):
        # Below the training process: on a busy machine its loop gets the CPU
        # first (measured: the longest log_metrics call 0.5-0.9 ms instead of 2-7 ms).
        os.nice(_NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print must not break the pipe
    busy = threading.Lock()
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(), busy), daemon=True).start()
    trackers: dict[int, ProcessBackend] = {}
    while (message := _read_frame(sys.stdin.buffer)) is not None:
        with busy:
            replies.write(_frame(_answer(message, trackers)))
            replies.flush()


def _answer(message: tuple[Any, ...], trackers: dict[int, ProcessBackend]) -> Any:
    try:
        if message[0] == "forget":
            for key in message[1]:
                trackers.pop(key, None)
            return ("ok", None)
        if message[0] == "tracker":
            _, key, tracker_class, identity, environment = message
            os.environ.clear()
            os.environ.update(environment)
            tracker = tracker_class(**identity)
            tracker.send_from_process = False  # this is the process that sends
            tracker.backend_prepare_sender()
            trackers[key] = tracker
            return ("ok", None)
        _, key, run_id, rows = message
        trackers[key]._store_metrics(run_id, rows)
        return ("ok", None)
    except Exception as error:  # every failure goes back to the parent, which raises it
        return ("error", _portable(error))


def _portable(error: Exception) -> TrackstackError:
    """The error as the parent can unpickle it: trackstack's own, else a BackendError."""
    if isinstance(error, TrackstackError):
        try:
            pickle.loads(pickle.dumps(error))
            return error
        except Exception:  # an adapter's error class that does not pickle round
            pass
    return BackendError(f"{type(error).__name__}: {error}")


def _exit_when_orphaned(parent: int, busy: threading.Lock) -> None:
    # A forked worker of the parent may hold the pipe open after the parent dies.
    while os.getppid() == parent:
        time.sleep(_ORPHAN_POLL_SECONDS)
    with busy:
        os._exit(0)


if __name__ == "__main__":
    _serve()
