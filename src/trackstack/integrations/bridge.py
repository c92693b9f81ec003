"""What every framework bridge does the same way.

A framework hands its logger metrics, hyperparameters and checkpoints at moments
it chooses, and an exception there ends the training. So a bridge:

- finds its tracker (given, from a config, or ``load_tracker()``) and starts the run
  on first use, resuming ``run_id`` (or, in a requeued SLURM job, the job's run);
- logs numbers only, under the framework's own keys and steps; a key no backend
  takes is logged under a close name (``acc@1`` -> ``acc_1``), one warning each;
- sets each hyperparameter once: logged again with another value (frameworks do
  this on resume), the first value stays and one warning names the key; a value
  longer than the backend stores goes to the artifact ``params/<key>.txt``;
- masks values of keys that name secrets (``*password*``, ``*api_key*``, ``*_token``);
- never raises into training: a tracker's trouble is a warning, the run's journal
  keeps what the backend has not taken;
- uploads checkpoints from a background thread, from hard links taken when the
  framework reports them, so the next save or a rotation cannot change the upload.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import inspect
import logging
import os
import re
import shutil
import tempfile
import threading
import weakref
from argparse import Namespace
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

from trackstack import run as runs
from trackstack.config import load_tracker
from trackstack.enums import RunStatus
from trackstack.errors import InvalidInputError, MissingExtraError, TrackstackError
from trackstack.experiment_trackers import PENDING_PREFIX, BaseExperimentTracker
from trackstack.run import Run
from trackstack.validation import MAX_KEY_LENGTH, check_key, metric_value, param_text

__all__ = ["MASKED", "RunBridge", "discarding_run", "is_secret_key", "require"]

logger = logging.getLogger("trackstack.integrations")

_UNSAFE_KEY_CHARS = re.compile(r"[^\w\-./: ]")
_SECRET_WORDS = re.compile(
    r"password|passwd|passphrase|secret|api_?key|access_?key|private_?key|credential|"
    r"authorization|bearer|^auth$|^pass$|^pwd$",
    re.IGNORECASE,
)
# Tokenizer settings, not credentials.
_SPECIAL_TOKENS = {f"{kind}_token" for kind in ("bos", "eos", "pad", "unk", "sep", "cls", "mask")}
MASKED = "<masked>"
_MAX_DEPTH = 32
"""Nesting flattened at most; deeper mappings are stored as their text."""
_REMEMBERED_KEYS = 10_000
"""Metric keys whose accepted name a bridge remembers (a loop may make up keys per step)."""


def is_secret_key(key: str) -> bool:
    """Whether a setting named ``key`` holds a credential: any of its dotted parts does."""
    for part in key.lower().split("."):
        if _SECRET_WORDS.search(part):
            return True
        if (part == "token" or part.endswith("_token")) and part not in _SPECIAL_TOKENS:
            return True
    return False


def require(module: str, extra: str) -> ModuleType:
    """Import a framework, or say which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"trackstack.integrations.{extra} needs {module.split('.')[0]}, which is not "
            f"installed ({error}); install it with: pip install 'trackstack[{extra}]'"
        ) from error


class RunBridge:
    """One framework's logging, given to one trackstack run (resumed as the framework needs)."""

    def __init__(
        self,
        framework: str,
        tracker: BaseExperimentTracker | None = None,
        *,
        config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        experiment: str | None = None,
        run_name: str | None = None,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        log_checkpoints: bool = False,
    ) -> None:
        if tracker is not None and not isinstance(tracker, BaseExperimentTracker):
            raise InvalidInputError(
                f"tracker must be a trackstack tracker (trackstack.load_tracker(...)), "
                f"got a {type(tracker).__name__}"
            )
        if tracker is not None and config is not None:
            raise InvalidInputError("give a tracker or a config, not both")
        if config is not None and not isinstance(config, str | os.PathLike | Mapping):
            raise InvalidInputError(
                f"config must be a file path or a dict, got a {type(config).__name__}"
            )
        for value, what in ((experiment, "experiment"), (run_name, "run_name"), (run_id, "run_id")):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidInputError(f"{what} must be a non-empty string, got {value!r}")
        if tags is not None and not isinstance(tags, Mapping):
            raise InvalidInputError(f"tags must be a dict, got a {type(tags).__name__}")
        if not isinstance(log_checkpoints, bool):
            raise InvalidInputError(f"log_checkpoints is True or False, not {log_checkpoints!r}")
        self.framework = framework
        self.experiment = experiment
        self.run_name = run_name
        self.run_id = run_id
        """The run to resume on first use; after that, the run's own id."""
        self.tags = dict(tags or {})
        self.log_checkpoints = log_checkpoints
        self._tracker = tracker
        self._config = dict(config) if isinstance(config, Mapping) else config
        self._run: Run | None = None
        self._pid = os.getpid()
        self._released = False
        """Detached for a requeued job: this process logs no more."""
        self._names: dict[str, str | None] = {}
        self._long: dict[str, str] = {}
        """Params too long for the backend, to the text saved as an artifact."""
        self._warned: set[str] = set()
        self._lock = threading.RLock()
        self._uploads: ThreadPoolExecutor | None = None

    # -- pickling: a Trainer under DDP spawn takes its logger into each process -----------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_run=None, _lock=None, _uploads=None, _warned=set(), _names={})
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # -- the tracker and the run ----------------------------------------------------------

    @property
    def tracker(self) -> BaseExperimentTracker:
        with self._lock:
            if self._tracker is None:
                self._tracker = load_tracker(self._config)
            return self._tracker

    @property
    def current(self) -> Run | None:
        """The run, if this process has started or resumed it."""
        return self._run

    def start(self) -> Run:
        """The run: started on first use, resumed after ``end()`` if the framework logs again.

        Never raises: a run that cannot be resumed (its backend down, its id unknown)
        continues in a new run tagged ``trackstack.continues``; a tracker that cannot
        start a run at all gives one that discards. Each is warned about.
        """
        with self._lock:
            if self._run is not None and self._pid == os.getpid():
                return self._run
            # A forked process resumes the run by its id: it cannot log to its parent's.
            self._run, self._pid = None, os.getpid()
            if self._released:
                return discarding_run(self.experiment)
            try:
                tracker = self.tracker
            except Exception as error:
                self.warn("tracker", f"no tracker to log to ({error}); nothing is logged")
                self._run = discarding_run(self.experiment)
                return self._run
            self._run = self._started(tracker)
            if not self._run.discards:
                self.run_id = self._run.id
                _open_bridges.add(self)
                # Before the runs' own exit handling (registered again as each run starts).
                atexit.unregister(_end_open_bridges)
                atexit.register(_end_open_bridges)
            return self._run

    def _started(self, tracker: BaseExperimentTracker) -> Run:
        tags = {"trackstack.framework": self.framework, **self.tags}
        job = _slurm_job()
        if job is not None:
            tags["slurm.job_id"] = job
            if self.run_id is None and os.environ.get("SLURM_RESTART_COUNT", "0") != "0":
                self.run_id = self._requeued_run(tracker, job)
        run_id = self.run_id
        if run_id is not None and run_id.startswith(PENDING_PREFIX):
            with contextlib.suppress(TrackstackError):  # created by a sync since: its real id
                run_id = tracker._created_id(run_id)
        if run_id is not None and not tracker.capabilities.resume:
            self.warn("resume", f"the {tracker.flavor} flavor cannot resume runs; run "
                      f"{run_id} continues as a new run")  # fmt: skip
            tags["trackstack.continues"], run_id = run_id, None
        try:
            return tracker.start_run(
                experiment=self.experiment, run_name=self.run_name, tags=tags, run_id=run_id
            )
        except Exception as error:
            if run_id is None:
                self.warn("start", f"cannot start a run ({error}); nothing is logged")
                return tracker._discarding_run(0, self.experiment)
            self.warn("resume", f"cannot resume run {run_id} ({error}); logging goes on in a "
                      f"new run tagged trackstack.continues={run_id}")  # fmt: skip
        try:
            return tracker.start_run(
                experiment=self.experiment,
                run_name=self.run_name,
                tags={**tags, "trackstack.continues": run_id},
            )
        except Exception as error:
            self.warn("start", f"cannot start a run ({error}); nothing is logged")
            return tracker._discarding_run(0, self.experiment)

    def _requeued_run(self, tracker: BaseExperimentTracker, job: str) -> str | None:
        try:
            found = tracker.list_runs(
                self.experiment, status=RunStatus.RUNNING, tags={"slurm.job_id": job}, limit=1
            )
        except TrackstackError as error:
            self.warn("requeue", f"cannot look up the run of requeued SLURM job {job}: {error}")
            return None
        return found[0].id if found else None

    def end(self, status: RunStatus) -> None:
        """Wait for checkpoint uploads, then end the run; a later call resumes it."""
        with self._lock:
            run, self._run = self._run, None
            self._finish_uploads()
            _open_bridges.discard(self)
            if run is None:
                return
            try:
                run.end(status)
            except TrackstackError as error:
                self.warn("end", f"run {run.id} ended {status.value}, with trouble: {error}")

    def detach(self) -> None:
        """Deliver everything and leave the run RUNNING for the job that resumes it; this
        process logs no more (a requeued job repeats what comes after its checkpoint)."""
        with self._lock:
            self._released = True
            run, self._run = self._run, None
            self._finish_uploads()
            _open_bridges.discard(self)
            if run is not None:
                try:
                    run.detach()
                except TrackstackError as error:
                    self.warn("end", f"run {run.id} was left for resuming, with trouble: {error}")

    # -- logging, which never raises into training ----------------------------------------

    def log_metrics(self, metrics: Mapping[Any, Any], step: int | None = None) -> None:
        """Log the numbers among ``metrics`` at ``step``; anything else is warned about once."""
        try:
            run = self.start()
            values: dict[str, float] = {}
            for key, value in metrics.items():
                name = self._metric_name(run, key)
                number = None if name is None else self._number(name, value)
                if name is not None and number is not None:
                    values[name] = number
            if values:
                run.log_metrics(values, step=step)
        except Exception as error:  # never the training's failure
            self.warn(f"metrics:{type(error).__name__}", f"metrics at step {step}: {error}")

    def log_params(self, params: Any) -> None:
        """Set each (flattened) hyperparameter once; see the module's docstring for the rules."""
        try:
            self._log_params(vars(params) if isinstance(params, Namespace) else params)
        except Exception as error:  # never the training's failure
            self.warn(f"params:{type(error).__name__}", f"hyperparameters: {error}")

    def _log_params(self, params: Any) -> None:
        if not isinstance(params, Mapping):
            self.warn("params:type", f"hyperparameters come as a {type(params).__name__}, "
                      "not a dict; none is logged")  # fmt: skip
            return
        run = self.start()
        known = run.params
        limit = self.tracker.capabilities.max_param_length
        new: dict[str, Any] = {}
        texts: dict[str, str] = {}
        for key, raw in _flattened(params):
            name = self._key_name(key, "param")
            if name is None:
                continue
            value = _param_value(name, raw)
            try:
                text = param_text(value, name)
            except InvalidInputError as error:
                self.warn(f"param:{name}", str(error))
                continue
            before = known.get(name, texts.get(name, self._long.get(name)))
            if before is not None:
                if before != text:
                    self.warn(
                        f"param:{name}",
                        f"hyperparameter {name!r} is already {_short(before)} in run {run.id}; "
                        f"the new value {_short(text)} is not logged (a run's param is set "
                        "once, the first value stays)",
                    )
                continue
            if limit is not None and len(text) > limit:
                self._long[name] = text
                self._log_long_param(run, name, text, limit)
                continue
            new[name], texts[name] = value, text
        if not new:
            return
        try:
            run.log_params(new)
        except TrackstackError:
            for name, value in new.items():  # what one refused key took with it
                try:
                    run.log_params({name: value})
                except TrackstackError as error:
                    self.warn(f"param:{name}", f"hyperparameter {name!r} not logged: {error}")

    def _log_long_param(self, run: Run, name: str, text: str, limit: int) -> None:
        folder = Path(tempfile.mkdtemp(prefix="trackstack-param-"))
        try:
            file = folder / f"{name.replace('/', '_')}.txt"
            file.write_text(text, encoding="utf-8")
            run.log_artifact(file, "params")
            where = f"is in the artifact params/{file.name}"
        except (TrackstackError, OSError) as error:
            where = f"could not be saved as an artifact either ({error})"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.warn(
            f"long:{name}",
            f"hyperparameter {name!r} has {len(text)} characters, more than the "
            f"{self.tracker.flavor} backend stores in a param ({limit}); its whole value {where}",
        )

    def upload(self, path: str | os.PathLike[str], artifact_path: str) -> None:
        """Upload a checkpoint file or folder in the background, as it is now."""
        run = self.start()
        if run.discards:
            return
        source = Path(path)
        try:
            staged = _snapshot(source)
        except OSError as error:
            self.warn(f"upload:{source}", f"checkpoint {source} not uploaded: {error}")
            return
        with self._lock:
            if self._uploads is None:
                self._uploads = ThreadPoolExecutor(1, thread_name_prefix="trackstack-upload")
            self._uploads.submit(self._upload, run, staged, artifact_path)

    def _upload(self, run: Run, staged: Path, artifact_path: str) -> None:
        try:
            run.log_artifact(staged, artifact_path)
        except (TrackstackError, OSError) as error:
            self.warn(f"upload:{staged.name}", f"checkpoint {staged.name} not uploaded: {error}")
        finally:
            shutil.rmtree(staged.parent, ignore_errors=True)

    def _finish_uploads(self) -> None:
        uploads, self._uploads = self._uploads, None
        if uploads is not None:
            uploads.shutdown(wait=True)

    def warn(self, topic: str, message: str) -> None:
        """Log ``message`` as a warning, once per ``topic``."""
        if topic in self._warned:
            return
        if len(self._warned) < _REMEMBERED_KEYS:
            self._warned.add(topic)
        logger.warning("trackstack (%s): %s", self.framework, message)

    # -- names and values -----------------------------------------------------------------

    def _metric_name(self, run: Run, key: Any) -> str | None:
        if key in self._names:
            return self._names[key]
        name: str | None = None
        try:
            name = run.check_metric_key(key)
        except InvalidInputError as error:
            fixed = _safe_key(str(key))
            try:
                name = run.check_metric_key(fixed)
                self.warn(f"key:{key}", f"metric {key!r} is logged as {fixed!r}: {error}")
            except InvalidInputError:
                self.warn(f"key:{key}", f"metric {key!r} is not logged: {error}")
        if len(self._names) < _REMEMBERED_KEYS:
            self._names[key] = name
        return name

    def _key_name(self, key: str, kind: str) -> str | None:
        try:
            return check_key(key, kind)
        except InvalidInputError as error:
            fixed = _safe_key(key)
            try:
                check_key(fixed, kind)
            except InvalidInputError:
                self.warn(f"key:{key}", f"{kind} {key!r} is not logged: {error}")
                return None
            self.warn(f"key:{key}", f"{kind} {key!r} is logged as {fixed!r}: {error}")
            return fixed

    def _number(self, name: str, value: Any) -> float | None:
        if isinstance(value, bool):
            return float(value)
        item = getattr(value, "item", None)
        if callable(item) and not isinstance(value, int | float):
            # A tensor or numpy value of one element; with more, it is no metric.
            with contextlib.suppress(Exception):
                value = item()
        try:
            return metric_value(name, value)
        except InvalidInputError:
            self.warn(
                f"value:{name}",
                f"metric {name!r} has a {type(value).__name__} value, not a number; "
                "only numbers are logged as metrics",
            )
            return None


def _flattened(
    params: Mapping[Any, Any], prefix: str = "", depth: int = 0
) -> Iterator[tuple[str, Any]]:
    """Nested mappings flattened with dots; under a key that names a secret, the value
    (whatever it is, a whole mapping too) is masked."""
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if value is not None and is_secret_key(str(key)):
            yield name, MASKED
        elif isinstance(value, Mapping) and value:
            if depth < _MAX_DEPTH:
                yield from _flattened(value, name, depth + 1)
            else:
                yield name, repr(value)  # as text: a mapping would be flattened further
        else:
            yield name, value


def _param_value(name: str, value: Any) -> Any:
    """A function as its dotted name: its repr carries an address that changes every run."""
    if inspect.isroutine(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', name)}"
    return value


def _safe_key(key: str) -> str:
    fixed = _UNSAFE_KEY_CHARS.sub("_", key)
    segments = [s if s not in (".", "..") else "_" for s in fixed.split("/") if s]
    return "/".join(segments)[:MAX_KEY_LENGTH] or "_"


def _short(text: str) -> str:
    return repr(text) if len(text) <= 80 else f"{text[:60]!r}... ({len(text)} characters)"


def _snapshot(source: Path) -> Path:
    """The checkpoint as it is now, hard-linked (copied across devices) beside it."""
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist")
    staging = Path(tempfile.mkdtemp(prefix=".trackstack-upload-", dir=source.parent))
    target = staging / source.name
    try:
        if source.is_dir():
            shutil.copytree(source, target, copy_function=_link_or_copy)
        else:
            _link_or_copy(source, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _link_or_copy(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def discarding_run(experiment: str | None) -> Run:
    """A run that takes every call and keeps nothing: where a tracker could not start one."""
    return load_tracker({"flavor": "local"})._discarding_run(0, experiment)


def _slurm_job() -> str | None:
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array:
        return f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    return os.environ.get("SLURM_JOB_ID") or None


_open_bridges: weakref.WeakSet[RunBridge] = weakref.WeakSet()


@atexit.register
def _end_open_bridges() -> None:
    # A framework that never said training ended (a Trainer evaluated after train(),
    # an accelerate script without end_training()) ends its run with the program:
    # FINISHED, or as trackstack's exit handling would after a crash or Ctrl-C.
    status = runs._exit_status or RunStatus.FINISHED
    for bridge in list(_open_bridges):
        bridge.end(status)
