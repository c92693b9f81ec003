"""The W&B tracker: trackstack's backend hooks mapped onto wandb runs.

wandb is imported on the first call that needs it, not when this module loads.
Offline runs are read back from their run files, online runs through
``wandb.Api``; what each path returns is listed in ``trackstack_wandb.online``
and the README.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from trackstack.enums import RunStatus
from trackstack.errors import (
    AuthenticationError,
    BackendError,
    MissingExtraError,
    RunNotFoundError,
)
from trackstack.experiment_trackers import (
    BaseExperimentTracker,
    Capabilities,
    MetricPoint,
    ParamValue,
    Run,
    RunRecord,
    RunStart,
    StartedRun,
    StepRunInfo,
)
from trackstack_wandb.config import WandbExperimentTrackerConfig, WandbExperimentTrackerSettings
from trackstack_wandb.credentials import session_key_returned
from trackstack_wandb.errors import translated_errors
from trackstack_wandb.mapping import (
    EXIT_CODES,
    META_KEY,
    RESERVED_METRICS,
    STEP_KEY,
    config_updates,
    history_rows,
    record_from_state,
    summary_meta,
    summary_of,
    wandb_tags,
)
from trackstack_wandb.runfile import SYNC_KEY, RunLog, RunState, read_state, run_files

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["WandbExperimentTracker", "import_wandb"]

logger = logging.getLogger(__name__)

READ_TIMEOUT = 30.0
"""Longest wait for wandb to write what was logged to the run file."""
# wandb writes the run file every 15 s by default; trackstack reads it back sooner.
_FLUSH_INTERVAL = 0.2
_EPOCH = datetime.fromtimestamp(0, UTC)
_RUN_ID = re.compile(r"[A-Za-z0-9_-]+")
# What wandb.init points at the active run, so that a step's own wandb.log lands in it.
_GLOBALS = (
    "run", "config", "summary", "log", "save", "use_artifact", "log_artifact",
    "define_metric", "alert", "watch", "unwatch", "mark_preempting", "log_model",
    "use_model", "link_model",
)  # fmt: skip


def import_wandb() -> ModuleType:
    """wandb, or a ``MissingExtraError`` with the line that installs it."""
    try:
        import wandb
    except ImportError as exc:
        raise MissingExtraError(
            f"the wandb flavor needs wandb ({exc}); pip install 'trackstack[wandb]'"
        ) from exc
    return wandb


_LIVE: dict[str, _LiveRun] = {}
"""The wandb runs open in this process, by W&B run id."""
_LIVE_LOCK = threading.Lock()


@dataclass
class _LiveRun:
    """A run started in this process and not ended, with what W&B cannot tell back."""

    run: Any
    log: RunLog | None
    """The run file being written; None unless offline."""
    tags: dict[str, str]
    parent_id: str | None
    params: dict[str, Any] = field(default_factory=dict)
    """The config trackstack has put in, nested as W&B holds it."""
    written: bool = False
    """Everything logged is known to be in the run file (not yet for a new run)."""
    marker: int = 0
    summary: dict[str, MetricPoint] = field(default_factory=dict)
    """Each metric's point at its highest step: written into the run's config at a flush
    and at the end, so that listing runs reads it instead of every history row."""
    native: bool = False
    """wandb's own calls may log into it (a pipeline step): the summary cannot know them."""

    def meta(self) -> dict[str, Any]:
        """trackstack's config section: what W&B has no field for."""
        summary = {} if self.native else summary_meta(self.summary)
        return {"tags": self.tags, "parent_id": self.parent_id, **summary}


class WandbExperimentTracker(BaseExperimentTracker):
    """Logs to Weights & Biases: online, offline (run files, synced later) or disabled."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        sdk_active_run=True,
        max_metrics_per_call=1000,
        max_params_per_call=100,
        max_tags_per_call=100,
        reserved_metric_keys=RESERVED_METRICS,
        run_time_resolution=1.0,  # W&B records a run's runtime in whole seconds
    )
    settings_class = WandbExperimentTrackerSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # wandb's runs are the process's, not one tracker's: a tracker built anew from the
        # same config (as trackstack sync builds one) finds a run another one started.
        self._live = _LIVE
        self._live_lock = _LIVE_LOCK
        self._warned_offline = False
        self._saved_globals: dict[tuple[str, str], dict[str, Any]] = {}

    @property
    def config(self) -> WandbExperimentTrackerConfig:
        """Returns the config of the W&B tracker."""
        return cast(WandbExperimentTrackerConfig, self._config)

    def experiment_for(self, settings: Any) -> str | None:
        if isinstance(settings, WandbExperimentTrackerSettings) and settings.project_name:
            return settings.project_name
        return self.config.project_name

    # -- backend hooks -----------------------------------------------------------------

    def backend_start_run(self, request: RunStart) -> StartedRun:
        settings = request.settings
        if not isinstance(settings, WandbExperimentTrackerSettings):
            settings = WandbExperimentTrackerSettings()
        params: dict[str, Any] = {}
        tags = {**settings.tags, **request.tags}
        resuming: dict[str, Any] = {}
        summary: dict[str, MetricPoint] = {}
        state = RunState()
        if request.resume_id is not None:
            # W&B resumes offline runs into a new run file; the old ones keep the rest.
            state = read_state(self._run_files(request.resume_id))
            params = {k: v for k, v in state.config.items() if k not in (META_KEY, "_wandb")}
            tags = {**(state.config.get(META_KEY) or {}).get("tags", {}), **tags}
            summary = summary_of(state)
            resuming = {"id": request.resume_id, "resume": "allow"}
        arguments = {
            "project": request.experiment,
            "entity": self.config.entity,
            "name": request.run_name or settings.run_name,
            # W&B has no parent runs; a parent's children share a group named by its id.
            "group": settings.group or request.parent_id,
            "job_type": settings.job_type,
            "notes": settings.notes,
            "tags": wandb_tags(tags),
            "config": {META_KEY: {"tags": tags, "parent_id": request.parent_id}},
            "dir": str(self.config.dir),
            "reinit": "create_new",  # each trackstack run its own W&B run
            **resuming,
        }
        run = self._init(arguments)
        with translated_errors("declare trackstack's step as every metric's x-axis"):
            run.define_metric("*", step_metric=STEP_KEY)
        offline = run.settings.mode == "offline"
        # A resumed run's live state starts from its earlier files, so that reading it while
        # it is open shows all of it, as reading its files after the end does.
        log = RunLog(Path(run.settings.sync_file), state.resumed()) if offline else None
        with self._live_lock:
            self._live[run.id] = _LiveRun(
                run, log, tags, request.parent_id, params, summary=summary
            )
        return StartedRun(id=run.id, url=self._url(run), name=run.name or None)

    def backend_end_run(self, run_id: str, status: RunStatus) -> None:
        live = self._live_run(run_id)
        self._write_meta(live)
        with translated_errors(f"finish run {run_id}"):
            live.run.finish(exit_code=EXIT_CODES[status])
        if live.log is not None:
            # finish() can return before the run file holds what was logged.
            self._wait(live.log, lambda state: state.exit_code is not None, "its exit")
        with self._live_lock:
            self._live.pop(run_id, None)

    def check_params(self, known: Mapping[str, str], new: Mapping[str, ParamValue]) -> None:
        tree, _ = config_updates({}, {key: ParamValue(text, text) for key, text in known.items()})
        config_updates(tree, new)

    def backend_log_params(self, run_id: str, params: Mapping[str, ParamValue]) -> None:
        live = self._live_run(run_id)
        tree, updates = config_updates(live.params, params)
        with translated_errors(f"log params to run {run_id}"):
            live.run.config.update(updates, allow_val_change=True)
        live.params, live.written = tree, False

    def backend_log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        live = self._live_run(run_id)
        with translated_errors(f"log metrics to run {run_id}"):
            for row in history_rows(points):
                live.run.log(row)
        for key, point in points:
            known = live.summary.get(key)
            if known is None or point.step >= known.step:
                live.summary[key] = point
        live.written = False

    def backend_set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        live = self._live_run(run_id)
        live.tags = {**live.tags, **tags}
        with translated_errors(f"set tags on run {run_id}"):
            live.run.tags = tuple(wandb_tags(live.tags))
        self._write_meta(live)

    def backend_log_artifact(
        self, run_id: str, local_path: Path, artifact_path: str | None
    ) -> None:
        live = self._live_run(run_id)
        wandb = import_wandb()
        inner = f"{artifact_path}/{local_path.name}" if artifact_path else local_path.name
        with translated_errors(f"upload {local_path} to run {run_id}"):
            artifact = wandb.Artifact(_artifact_name(local_path.name), type="file")
            if local_path.is_dir():
                artifact.add_dir(str(local_path), name=inner)
            else:
                artifact.add_file(str(local_path), name=inner)
            live.run.log_artifact(artifact)
        live.written = False

    def backend_get_run(self, run_id: str) -> RunRecord:
        with self._live_lock:
            live = self._live.get(run_id)
        if live is not None and live.log is not None:
            return record_from_state(self._written(live), self._url(live.run))
        files = self._run_files(run_id)
        if files:
            return record_from_state(read_state(files), str(files[-1].parent))
        if self.config.mode == "online" and _RUN_ID.fullmatch(run_id):
            return self._api_record(run_id)
        raise RunNotFoundError(
            f"W&B has no run {run_id!r} under {self.config.dir / 'wandb'}"
            + (" (mode is disabled: nothing is written)" if self.config.mode == "disabled" else "")
        )

    def missing_store(self) -> str | None:
        folder = self.config.dir / "wandb"
        return str(folder) if self.config.mode == "offline" and not folder.is_dir() else None

    def backend_flush(self, run_id: str) -> None:
        live = self._live_run(run_id)
        self._write_meta(live)
        if live.log is not None:
            self._written(live)

    @staticmethod
    def _write_meta(live: _LiveRun) -> None:
        with translated_errors(f"write trackstack's section of run {live.run.id}'s config"):
            live.run.config.update({META_KEY: live.meta()}, allow_val_change=True)
        live.written = False

    def backend_check_run(self, run_id: str) -> None:
        with self._live_lock:
            live = run_id in self._live
        if not live and not self._run_files(run_id):
            self.backend_get_run(run_id)  # online, or RunNotFoundError

    def backend_list_runs(self, experiment: str | None) -> list[RunRecord]:
        with self._live_lock:
            live = list(self._live.values())
        for run in live:
            if run.log is not None:
                self._written(run)
        by_id: dict[str, list[Path]] = {}
        for path in run_files(self.config.dir):
            by_id.setdefault(path.stem.removeprefix("run-"), []).append(path)
        states = [(read_state(files), files[-1].parent) for files in by_id.values()]
        records = [
            record_from_state(state, str(folder))
            for state, folder in states
            if experiment is None or state.project == experiment
        ]
        if self.config.mode == "online":
            records += self._api_records(experiment, {record.id for record in records})
        return sorted(records, key=lambda r: r.start_time or _EPOCH, reverse=True)

    # -- ZenML's step lifecycle --------------------------------------------------------

    def enter_step_run(self, info: StepRunInfo, run: Run) -> None:
        """Make the run wandb's active run: ``wandb.log`` in the step writes into it."""
        wandb = import_wandb()
        live = self._live_run(run.id)
        live.native = True  # its summary is read from its history: wandb.log may add to it
        active = live.run
        self._saved_globals[(info.run_id, info.step_name)] = {
            name: getattr(wandb, name) for name in _GLOBALS
        }
        for name in _GLOBALS:
            setattr(wandb, name, active if name == "run" else getattr(active, name))

    def exit_step_run(self, info: StepRunInfo, run: Run, status: RunStatus) -> None:
        """Put back whatever wandb's active run was before the step."""
        wandb = import_wandb()
        for name, value in self._saved_globals.pop((info.run_id, info.step_name), {}).items():
            setattr(wandb, name, value)

    def run_metadata(self, run: Run) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "wandb_run_id": run.id,
            "wandb_project": run.experiment,
            "wandb_entity": self.config.entity,
        }
        with self._live_lock:
            live = self._live.get(run.id)
        if live is not None and live.log is not None:
            metadata["wandb_offline_dir"] = str(live.log.path.parent)
        elif live is not None:
            metadata["wandb_run_url"] = live.run.url
        return metadata

    # -- internals ---------------------------------------------------------------------

    def _init(self, arguments: dict[str, Any]) -> Any:
        try:
            return self._init_in(self.config.mode, arguments)
        except AuthenticationError:
            raise
        except BackendError as error:
            if self.config.mode != "online" or not self.config.fallback_to_offline:
                raise
            if not self._warned_offline:
                self._warned_offline = True
                logger.warning(
                    "trackstack: W&B could not be reached (%s); runs continue offline "
                    "under %s. Upload them later with `wandb sync`",
                    error,
                    self.config.dir / "wandb",
                )
            return self._init_in("offline", arguments)

    def _init_in(self, mode: str, arguments: dict[str, Any]) -> Any:
        wandb = import_wandb()
        options: dict[str, Any] = {
            "silent": True,
            "init_timeout": self.config.init_timeout,
            "x_transaction_log_flush_interval": _FLUSH_INTERVAL,
            **({"base_url": self.config.base_url} if self.config.base_url else {}),
            **self.config.settings,
        }
        key = self.config.api_key if mode == "online" else None  # offline needs no key
        where = f"start a run in project {arguments['project']!r} ({mode})"
        # The key goes in the run's settings, never into os.environ, which wandb-core and
        # every process started meanwhile would inherit; nor is it left to a later tracker.
        with translated_errors(where), session_key_returned(key, self.config.base_url):
            return wandb.init(
                mode=mode,
                settings=wandb.Settings(
                    **options, **({"api_key": key.get_secret_value()} if key else {})
                ),
                **arguments,
            )

    def _run_files(self, run_id: str) -> list[Path]:
        """The offline run files of ``run_id``; none for an id W&B could not have made."""
        return run_files(self.config.dir, run_id) if _RUN_ID.fullmatch(run_id) else []

    def _live_run(self, run_id: str) -> _LiveRun:
        with self._live_lock:
            live = self._live.get(run_id)
        if live is None:
            raise RunNotFoundError(f"run {run_id} is not open in this W&B tracker")
        return live

    def _written(self, live: _LiveRun) -> RunState:
        """The live run's state once the run file holds everything logged so far."""
        assert live.log is not None
        if live.written:
            return live.log.refresh()
        live.marker += 1
        marker = live.marker
        with translated_errors(f"write run {live.run.id} to its run file"):
            live.run.summary[SYNC_KEY] = marker
        state = self._wait(live.log, lambda s: s.synced == marker, "what was logged")
        live.written = True
        return state

    @staticmethod
    def _wait(log: RunLog, done: Callable[[RunState], bool], what: str) -> RunState:
        deadline = time.monotonic() + READ_TIMEOUT
        while not done(state := log.refresh()):
            if time.monotonic() > deadline:
                raise BackendError(
                    f"wandb has not written {what} to {log.path} within {READ_TIMEOUT:.0f} s"
                )
            time.sleep(0.02)
        return state

    @staticmethod
    def _url(run: Any) -> str | None:
        if run.settings.mode == "offline":
            return str(Path(run.settings.sync_file).parent)
        return cast(str | None, run.url)

    @contextmanager
    def _api(self, where: str) -> Iterator[Any]:
        wandb = import_wandb()
        key = self.config.api_key
        overrides = {"base_url": self.config.base_url} if self.config.base_url else {}
        with translated_errors(where):
            yield wandb.Api(
                api_key=key.get_secret_value() if key else None,
                overrides=overrides,
                timeout=int(self.config.init_timeout),
            )

    def _api_record(self, run_id: str) -> RunRecord:
        from trackstack_wandb.online import record_from_api

        with self._api(f"read run {run_id}") as api:
            entity = self.config.entity or api.default_entity
            for project in self._projects(api):
                try:
                    found = api.run(f"{entity}/{project}/{run_id}")
                except Exception:  # not in this project; try the next
                    continue
                return record_from_api(found)
        raise RunNotFoundError(f"W&B has no run {run_id!r} in entity {self.config.entity!r}")

    def _api_records(self, experiment: str | None, known: set[str]) -> list[RunRecord]:
        from trackstack_wandb.online import record_from_api

        with self._api("list runs") as api:
            entity = self.config.entity or api.default_entity
            projects = [experiment] if experiment else self._projects(api)
            return [
                record_from_api(run)
                for project in projects
                for run in api.runs(f"{entity}/{project}", order="-created_at")
                if run.id not in known
            ]

    def _projects(self, api: Any) -> list[str]:
        first = [self.config.project_name] if self.config.project_name else []
        others = [p.name for p in api.projects(self.config.entity)]
        return first + [name for name in others if name not in first]


def _artifact_name(name: str) -> str:
    """A W&B artifact name (letters, digits, ``-_.``) for a file or directory name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name)[:128] or "artifact"
