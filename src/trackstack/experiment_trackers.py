"""Experiment trackers, in the shape of ZenML's ``zenml.experiment_trackers``.

``BaseExperimentTracker`` carries two faces on one object:

- the run API users call (``start_run``, ``get_run``, ``list_runs`` and ZenML's
  step lifecycle), implemented here once for every backend;
- the backend hooks an adapter implements (the ``backend_*`` methods), which
  receive only validated input, one call per run at a time.
"""

from __future__ import annotations

import logging
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar, cast
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from trackstack.backend import Capabilities, ResumeState, RunStart, StartedRun
from trackstack.delivery import journal as journals
from trackstack.delivery.recovery import recover_in_background
from trackstack.delivery.sender_process import sender_process
from trackstack.enums import RunStatus, StackComponentType
from trackstack.errors import (
    BackendError,
    BackendUnavailableError,
    InvalidInputError,
    RunNotFoundError,
    TrackstackError,
    UnsupportedOperationError,
)
from trackstack.ranks import process_rank
from trackstack.records import MetricPoint, RunRecord, keyed_points
from trackstack.run import Run, check_lengths
from trackstack.secrets import forget_locals, warn_about_plain_text
from trackstack.stack import Flavor, StackComponent, StackComponentConfig, describe_config_errors
from trackstack.validation import ParamValue, tag_values

__all__ = [
    "BaseExperimentTracker",
    "BaseExperimentTrackerConfig",
    "BaseExperimentTrackerFlavor",
    "Capabilities",
    "MetricPoint",
    "ParamValue",
    "ResumeState",
    "Run",
    "RunRecord",
    "RunStart",
    "StartedRun",
    "StepRunInfo",
    "Tags",
    "step_tags",
]

logger = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "Default"

Tags = Annotated[dict[str, str], AfterValidator(tag_values)]
"""A config or settings field of tags: keys checked like every tag key."""
_T = TypeVar("_T")
PENDING_PREFIX = "pending-"
"""Provisional ids of runs started while the backend was unavailable."""


class StepRunInfo(BaseModel):
    """The pipeline step a tracker prepares a run for."""

    model_config = ConfigDict(frozen=True)

    pipeline_name: str
    run_name: str
    step_name: str
    run_id: str
    settings: dict[str, Any] = Field(default_factory=dict)
    """This step's settings for the tracker's ``settings_class`` (ZenML's step settings)."""


class BaseExperimentTrackerConfig(StackComponentConfig):
    """Base config for experiment trackers."""

    environment_prefix: ClassVar[str] = ""
    """Prefix of the backend SDK's own environment variables (``MLFLOW_``, ``WANDB_``): a
    secret field is best read from ``${<prefix><FIELD>}``, as starter configs and warnings say."""

    warn_about_plain_text_secrets: bool = False
    """Warn (``PlainTextSecretWarning``) when a secret is written into the config."""

    @model_validator(mode="before")
    @classmethod
    def _warn_about_plain_text_secrets(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("warn_about_plain_text_secrets"):
            warn_about_plain_text(cls, data)
        return data


class BaseExperimentTracker(StackComponent, ABC):
    """Base class for all experiment trackers."""

    capabilities: ClassVar[Capabilities] = Capabilities()
    """What the backend can do; override in an adapter."""
    settings_class: ClassVar[type[BaseModel] | None] = None
    """Per-run settings the adapter accepts (``start_run(settings=...)``), if any."""
    buffer_size: int = 1000
    """Buffered metric points that the background sender sends as a batch; settable per tracker."""
    flush_interval: float = 5.0
    """Seconds after which buffered points are sent even if fewer than ``buffer_size``."""
    max_buffered_points: int = 50_000
    """Unsent points a run keeps in memory; beyond this they wait in its journal only."""
    max_block_seconds: float = 2.0
    """Without a writable journal, the longest wait for room in memory before points drop."""
    retry_initial: float = 0.5
    """Seconds before the first retry of a batch the backend was unavailable for; doubles."""
    retry_max: float = 30.0
    """Longest wait between retries."""
    end_timeout: float = 30.0
    """How long ``end()`` retries an unavailable backend before leaving the journal to sync."""
    log_on: str = "all"
    """``all``: every process logs; ``rank0``: only the process with ``$RANK`` (else
    ``$LOCAL_RANK``) 0, the others get runs that accept every call and discard it."""
    start_offline: bool = True
    """A run that cannot start because the backend is unavailable starts pending: its
    journal creates it once the backend answers (or at ``trackstack sync``)."""
    journal_dir: Path | None = None
    """Where run journals live; None: ``$TRACKSTACK_JOURNAL``, else ``$TRACKSTACK_OUTBOX``,
    else ``.trackstack/journal`` in the working directory."""
    send_from_process: bool = True
    """Store metric batches from a child process when the backend allows it
    (``capabilities.sender_process``), so the SDK's work never stalls the training loop."""
    sender_process_after: int = 20_000
    """Points this tracker stores from threads before it starts the sender process: a
    short script never pays for one (a second Python that imports the SDK); a long
    or busy run gets it. 0 starts it with the first run."""

    def __init__(
        self,
        name: str,
        id: UUID,
        config: StackComponentConfig,
        flavor: str,
        type: StackComponentType,
        user: UUID | None,
        workspace: UUID,
        created: datetime,
        updated: datetime,
        labels: dict[str, Any] | None = None,
        connector_requirements: Any | None = None,
        connector: UUID | None = None,
        connector_resource_id: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            name, id, config, flavor, type, user, workspace, created, updated, labels,
            connector_requirements, connector, connector_resource_id, *args, **kwargs,
        )  # fmt: skip
        self._runs_lock = threading.Lock()
        self._open_runs: dict[str, Run] = {}
        self._step_runs: dict[tuple[str, str], Run] = {}
        self._stored_here = 0
        """Metric points stored from this process's threads, until the sender process sends."""
        # Fixed now, like a store's root: a later chdir must not move the journals.
        self._journal_root = journals.default_root()

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as what built it (its config and settings), not its runs, threads and
        # SDK clients: a tracker travels to a spawned process (a Lightning Trainer under
        # DDP spawn, a multiprocessing worker) and starts there as a fresh copy.
        identity = {key: getattr(self, key) for key in _IDENTITY}
        kept = (*TRACKER_SETTINGS, "_journal_root")  # where it journals, fixed when built
        settings = {key: vars(self)[key] for key in kept if key in vars(self)}
        return _rebuilt_tracker, (type(self), identity, self._config, settings)

    @property
    def config(self) -> BaseExperimentTrackerConfig:
        """Returns the config of the experiment tracker."""
        return cast(BaseExperimentTrackerConfig, self._config)

    @property
    def outbox(self) -> Path | None:
        """The name ``journal_dir`` had before runs were journaled."""
        return self.journal_dir

    @outbox.setter
    def outbox(self, value: Path | None) -> None:
        self.journal_dir = value

    def journal_folder(self, root: Path | None = None) -> Path:
        """The folder of this tracker's run journals (under ``root``, else ``journal_dir``)."""
        return self._journal_identity(root)[0]

    def _journal_identity(
        self, root: Path | None = None
    ) -> tuple[Path, tuple[str, dict[str, Any]]]:
        from trackstack.secrets import secret_field_names

        secrets = set(secret_field_names(type(self.config)))
        public = self.config.model_dump(mode="json", exclude=secrets)
        base = root or self.journal_dir or self._journal_root
        return journals.tracker_folder(Path(base), self.flavor, public), (self.name, public)

    def protected_paths(self) -> list[Path]:
        """This tracker's own files and folders here, which no artifact may contain.

        The journal root; adapters add their store's files (the local store's
        root, MLflow's SQLite file or file store).
        """
        return [Path(self.journal_dir or self._journal_root)]

    def experiment_for(self, settings: Any) -> str | None:
        """The experiment the run's settings or the flavor's config name, if any.

        Adapters override this (MLflow: ``experiment_name``, W&B: ``project_name``).
        """
        return None

    def validate_settings(self, settings: BaseModel | Mapping[str, Any] | None) -> Any:
        """Turn per-run settings into an instance of ``settings_class``."""
        if settings is None or (isinstance(settings, Mapping) and not settings):
            return None
        if self.settings_class is None:
            raise UnsupportedOperationError(
                f"the {self.flavor} flavor takes no per-run settings; leave settings out"
            )
        if isinstance(settings, self.settings_class):
            return settings
        data = (
            settings.model_dump(exclude_unset=True) if isinstance(settings, BaseModel) else settings
        )
        try:
            return self.settings_class.model_validate(data)
        except ValidationError as exc:
            raise InvalidInputError(
                describe_config_errors(self.flavor, self.settings_class, exc, "run settings")
            ) from None

    # -- the run API ----------------------------------------------------------

    def start_run(
        self,
        experiment: str | None = None,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        parent: Run | str | None = None,
        settings: BaseModel | Mapping[str, Any] | None = None,
    ) -> Run:
        """Start a run, resume one (``run_id``) or nest one under another (``parent``).

        The experiment is the argument, else the one the run's ``settings`` or
        the flavor's config name, else ``"Default"``. Use the run as a context
        manager or call ``end()``.
        """
        run_settings = self.validate_settings(settings)
        tag_map, parent_id = self._checked_start(experiment, run_name, tags, run_id, parent)
        # Checked like any other rank's call above; only the backend is left out.
        if self.log_on == "rank0" and (rank := process_rank()) != 0:
            return self._discarding_run(rank, experiment or self.experiment_for(run_settings))
        if parent_id is not None:
            self._call_backend("find the parent run", self.backend_check_run, parent_id)
        params: Mapping[str, str] = {}
        next_step = 0
        if run_id is not None:
            self._flush_live(run_id)
            existing = self._call_backend("find the run", self.backend_resume_state, run_id)
            if experiment is not None and experiment != existing.experiment:
                raise InvalidInputError(
                    f"run {run_id} belongs to experiment {existing.experiment!r}, "
                    f"not {experiment!r}; leave experiment out to resume it"
                )
            resolved = existing.experiment
            params = existing.params
            next_step = 0 if existing.last_step is None else existing.last_step + 1
            parent_id = parent_id or existing.parent_id
            run_name = run_name or existing.name
        else:
            resolved = experiment or self.experiment_for(run_settings) or DEFAULT_EXPERIMENT
        request = RunStart(resolved, run_name, tag_map, parent_id, run_id, run_settings)
        pending = False
        try:
            started = self._call_backend("start run", self.backend_start_run, request)
        except BackendUnavailableError as error:
            if run_id is not None or not self.start_offline:
                raise
            started, pending = self._start_pending(request, error), True
        settings_data = run_settings.model_dump(mode="json") if run_settings is not None else None
        start = {
            "pending": pending,
            "tags": tag_map,
            "parent_id": parent_id,
            "settings": settings_data,
            "resumed": run_id is not None,
        }
        run = Run(
            self,
            id=started.id,
            url=started.url,
            name=started.name or run_name,
            experiment=resolved,
            parent_id=parent_id,
            params=params,
            next_step=next_step,
            start=start,
        )
        with self._runs_lock:
            self._open_runs[run.id] = run
        if self._uses_sender_process and not pending and self.sender_process_after <= 0:
            sender_process().prepare(self)
        recover_in_background(self, self.journal_folder())
        return run

    def _checked_start(
        self,
        experiment: str | None,
        run_name: str | None,
        tags: Mapping[str, Any] | None,
        run_id: str | None,
        parent: Run | str | None,
    ) -> tuple[dict[str, str], str | None]:
        """``start_run``'s arguments checked: the tags as strings, and the parent's id."""
        tag_map = tag_values(tags or {})
        check_lengths(tag_map, self.capabilities.max_tag_length, "tag")
        for value, what in ((experiment, "experiment"), (run_name, "run_name")):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidInputError(f"{what} must be a non-empty string, got {value!r}")
        parent_id = parent.id if isinstance(parent, Run) else parent
        if parent_id is not None:
            self._require("nested_runs", "nest runs (parent=...)")
            if not isinstance(parent_id, str) or not parent_id:
                raise InvalidInputError(f"parent must be a run or a run id, got {parent!r}")
        if run_id is not None:
            self._require("resume", "resume runs (run_id=...)")
            if not isinstance(run_id, str) or not run_id:
                raise InvalidInputError(f"run_id must be a non-empty string, got {run_id!r}")
        return tag_map, parent_id

    def _discarding_run(self, rank: int, experiment: str | None) -> Run:
        return Run(
            self,
            id=f"rank{rank}-discarded-{uuid.uuid4().hex[:12]}",
            url=None,
            name=None,
            experiment=experiment or DEFAULT_EXPERIMENT,
            parent_id=None,
            params={},
            next_step=0,
            discard=True,
        )

    def _start_pending(self, request: RunStart, error: BackendError) -> StartedRun:
        provisional = f"{PENDING_PREFIX}{uuid.uuid4().hex}"
        folder = self.journal_folder()
        logger.warning(
            "trackstack: the %s backend is unavailable (%s); run %s is journaled in %s and "
            "created when the backend answers, or when you run `trackstack sync` (or "
            "trackstack.sync())", self.flavor, error, provisional, folder,
        )  # fmt: skip
        return StartedRun(provisional, url=folder.as_uri(), name=request.run_name)

    def get_run(self, run_id: str) -> RunRecord:
        """Read a run back; points still buffered in this process are sent first."""
        if not isinstance(run_id, str) or not run_id:
            raise InvalidInputError(f"run_id must be a non-empty string, got {run_id!r}")
        self._flush_live(run_id)
        if run_id.startswith(PENDING_PREFIX):
            run_id = self._created_id(run_id)
        return self._call_backend("get run", self.backend_get_run, run_id)

    def _created_id(self, pending_id: str) -> str:
        folder = self.journal_folder()
        created = journals.created_id(folder, pending_id)
        if created is None:
            raise RunNotFoundError(
                f"run {pending_id} was started while the {self.flavor} backend was "
                f"unavailable and has not been created yet; its journal waits in {folder}. "
                "Run `trackstack sync` once the backend answers"
            )
        return created

    def _flush_live(self, run_id: str) -> None:
        # A run open in this process may hold points its reader should see.
        with self._runs_lock:
            live = self._open_runs.get(run_id)
        if live is not None:
            live.flush()

    def list_runs(
        self,
        experiment: str | None = None,
        *,
        status: RunStatus | str | Collection[RunStatus | str] | None = None,
        tags: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Runs newest first, nested ones included: every run, or those of ``experiment``,
        with one of the ``status`` es given, carrying every tag in ``tags``, at most ``limit``."""
        if experiment is not None and (not isinstance(experiment, str) or not experiment):
            raise InvalidInputError(
                f"experiment must be a non-empty string or None, got {experiment!r}"
            )
        statuses = _statuses(status)
        wanted = tag_values(tags or {})
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise InvalidInputError(f"limit must be a whole number from 1, got {limit!r}")
        with self._runs_lock:
            live = list(self._open_runs.values())
        for run in live:
            run.flush()
        return self._call_backend(
            "list runs", self.backend_search_runs, experiment, statuses, wanted, limit
        )

    def get_runs(self, run_ids: Iterable[str]) -> list[RunRecord]:
        """Several runs read back at once, in the order given (pending ids too); the
        backend answers in one request where it can (MLflow: one search)."""
        ids = list(run_ids)
        for run_id in ids:
            if not isinstance(run_id, str) or not run_id:
                raise InvalidInputError(f"run ids must be non-empty strings, got {run_id!r}")
            self._flush_live(run_id)
        ids = [self._created_id(i) if i.startswith(PENDING_PREFIX) else i for i in ids]
        return self._call_backend("get runs", self.backend_get_runs, ids)

    def missing_store(self) -> str | None:
        """Where this tracker's store would be, if it does not exist yet; else None.

        Read-only commands ask first, so that reading never creates a store.
        Adapters with a store on this machine override it (the local store, an
        MLflow SQLite file, W&B's offline folder); a server's answer None.
        """
        return None

    # -- ZenML's step lifecycle ----------------------------------------------------

    def prepare_step_run(self, info: StepRunInfo) -> None:
        """Start (or resume) the run a pipeline step logs to, and make it the SDK's active run."""
        run = self.start_step_run(info)
        self._step_runs[(info.run_id, info.step_name)] = run
        if _in_the_sdk(run):
            self.enter_step_run(info, run)

    def cleanup_step_run(self, info: StepRunInfo, step_failed: bool) -> None:
        """End the step's run: FAILED if the step failed, else FINISHED."""
        run = self.step_run(info)
        status = RunStatus.FAILED if step_failed else RunStatus.FINISHED
        try:
            run.end(status)
        finally:
            if _in_the_sdk(run):
                self.exit_step_run(info, run, status)

    def start_step_run(self, info: StepRunInfo) -> Run:
        """The run a step logs to: by default a run of its own, tagged with the pipeline's ids.

        It goes to the experiment the step's settings or the config name, else
        the pipeline's name.
        """
        settings = self.validate_settings(info.settings)
        return self.start_run(
            experiment=self.experiment_for(settings) or info.pipeline_name,
            run_name=f"{info.run_name}/{info.step_name}",
            tags=step_tags(info),
            settings=settings,
        )

    def enter_step_run(self, info: StepRunInfo, run: Run) -> None:
        """Make ``run`` the backend SDK's active run, so its own logging calls land in it."""

    def exit_step_run(self, info: StepRunInfo, run: Run, status: RunStatus) -> None:
        """Undo ``enter_step_run``: end the SDK's active run, restore the environment."""

    def get_step_run_metadata(self, info: StepRunInfo) -> dict[str, Any]:
        """ZenML's ``experiment_tracker_url`` plus the backend's ids; never a secret."""
        run = self.step_run(info)
        if run.discards:
            return {"experiment_tracker_url": None, "trackstack_rank": process_rank()}
        if run.pending:  # the backend has no such run yet: `trackstack sync` creates it
            return {"experiment_tracker_url": None, "trackstack_pending_run_id": run.id}
        return {"experiment_tracker_url": run.url, **self.run_metadata(run)}

    def step_run(self, info: StepRunInfo) -> Run:
        """The run ``prepare_step_run`` started for this step."""
        try:
            return self._step_runs[(info.run_id, info.step_name)]
        except KeyError:
            raise InvalidInputError(
                f"no run was prepared for step {info.step_name!r} of pipeline run "
                f"{info.run_id!r}; call prepare_step_run(info) first"
            ) from None

    def run_metadata(self, run: Run) -> dict[str, Any]:
        """The backend's ids for a run, under keys prefixed with the flavor's name."""
        return {f"{self.flavor}_run_id": run.id, f"{self.flavor}_experiment": run.experiment}

    # -- backend hooks: what an adapter implements --------------------------------

    @abstractmethod
    def backend_start_run(self, request: RunStart) -> StartedRun:
        """Create a run (or reopen ``request.resume_id``) and set ``request.tags`` on it.

        The experiment may not exist yet: create it. A resumed run is RUNNING again.
        """

    @abstractmethod
    def backend_end_run(self, run_id: str, status: RunStatus) -> None:
        """Mark the run ended with ``status`` (FINISHED, FAILED or KILLED)."""

    @abstractmethod
    def backend_log_params(self, run_id: str, params: Mapping[str, ParamValue]) -> None:
        """Store params never logged to this run before (at most ``max_params_per_call``)."""

    @abstractmethod
    def backend_log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        """Store metric points in order (at most ``max_metrics_per_call``); all or none."""

    @abstractmethod
    def backend_set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set tags, overwriting earlier values (at most ``max_tags_per_call``)."""

    @abstractmethod
    def backend_log_artifact(
        self, run_id: str, local_path: Path, artifact_path: str | None
    ) -> None:
        """Upload a file to ``<artifact_path>/<name>`` or a directory to ``<artifact_path>/<dir>/``.

        Directories arrive only if ``capabilities.artifact_directories``.
        """

    @abstractmethod
    def backend_get_run(self, run_id: str) -> RunRecord:
        """Read a run back whole; raise ``RunNotFoundError`` for an unknown id.

        Metric points come in logging order; ±inf and NaN as logged.
        """

    @abstractmethod
    def backend_list_runs(self, experiment: str | None) -> list[RunRecord]:
        """Every run (of ``experiment``, or all), newest first, nested runs included."""

    def backend_search_runs(
        self,
        experiment: str | None,
        statuses: frozenset[RunStatus] | None,
        tags: Mapping[str, str],
        limit: int | None,
    ) -> list[RunRecord]:
        """Runs newest first with one of ``statuses`` (None: any), every tag in ``tags``,
        at most ``limit``.

        By default ``backend_list_runs`` filtered here; override it to have the
        backend filter (MLflow's ``filter_string`` and ``max_results``).
        """
        chosen = [r for r in self.backend_list_runs(experiment) if r.matches(statuses, tags)]
        return chosen if limit is None else chosen[:limit]

    def backend_get_runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        """Several runs, in the order given; ``RunNotFoundError`` for any unknown one.

        By default one ``backend_get_run`` each; override it when the backend reads
        many at once.
        """
        return [self.backend_get_run(run_id) for run_id in run_ids]

    def backend_resume_state(self, run_id: str) -> ResumeState:
        """What resuming the run needs; raise ``RunNotFoundError`` for an unknown id.

        By default this reads the whole run; override it when the backend
        knows a run's highest step without reading every metric history.
        """
        record = self.backend_get_run(run_id)
        return ResumeState(
            record.experiment,
            record.name,
            record.parent_id,
            dict(record.params),
            record.last_step(),
        )

    def check_params(self, known: Mapping[str, str], new: Mapping[str, ParamValue]) -> None:
        """Raise ``InvalidInputError`` for new params the backend could not store beside ``known``.

        Called by ``log_params`` before the params are journaled, so a refusal
        the adapter can foresee without the backend (W&B's nested config) is
        raised at the call. It must not reach the backend.
        """

    def backend_prepare_sender(self) -> None:
        """In a sender process, before its first batch: load what ``backend_log_metrics`` needs.

        Only for ``capabilities.sender_process``; importing the SDK here lets
        the first batch go out without waiting for it.
        """

    def backend_flush(self, run_id: str) -> None:
        """Make what the hooks stored for the run readable by the backend's own clients.

        Called by ``run.flush()`` once everything was delivered. Only an SDK that
        writes in the background needs it (wandb: until the run file holds it);
        by default the hooks have stored synchronously and there is nothing to do.
        """

    def backend_check_run(self, run_id: str) -> None:
        """Raise ``RunNotFoundError`` unless the run exists.

        By default this reads the whole run; override it when the backend can
        answer without reading every metric history.
        """
        self.backend_get_run(run_id)

    # -- internals used by Run ----------------------------------------------------

    def _call_backend(self, operation: str, hook: Callable[..., _T], *args: Any) -> _T:
        # The boundary where SDK exceptions become trackstack's, whatever the adapter forgot.
        try:
            return hook(*args)
        except TrackstackError as exc:
            forget_locals(exc)
            raise
        except Exception as exc:
            forget_locals(exc)
            message = self._scrub(f"{type(exc).__name__}: {exc}")
            kind = BackendUnavailableError if _unreachable(exc) else BackendError
            raise kind(f"the {self.flavor} backend failed to {operation}: {message}") from exc

    @property
    def _uses_sender_process(self) -> bool:
        return self.send_from_process and self.capabilities.sender_process

    def _store_metrics(self, run_id: str, rows: list[tuple[str, int, float, float]]) -> None:
        """Store buffered rows: through the sender process once this tracker has proven
        busy and the process is ready, else here."""
        if self._uses_sender_process:
            sender = sender_process()
            busy = self._stored_here >= self.sender_process_after
            if (busy or sender.ready(self)) and sender.send(self, run_id, rows):
                return
        self._call_backend("log metrics", self.backend_log_metrics, run_id, keyed_points(rows))
        self._stored_here += len(rows)

    def _scrub(self, text: str) -> str:
        for name in type(self._config).model_fields:
            value = getattr(self._config, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                text = text.replace(value.get_secret_value(), "**********")
        return text

    def _require(self, capability: str, action: str) -> None:
        if not getattr(self.capabilities, capability):
            raise UnsupportedOperationError(
                f"the {self.flavor} flavor cannot {action}: it declares {capability}=False"
            )

    def _forget_run(self, run: Run) -> None:
        with self._runs_lock:
            self._open_runs.pop(run.id, None)


def _in_the_sdk(run: Run) -> bool:
    """Whether the backend's SDK can make ``run`` its active run: a run that discards has
    no backend, and one started pending does not exist there until the backend answers."""
    return not run.discards and not run.pending


_IDENTITY = ("name", "id", "flavor", "type", "user", "workspace", "created", "updated", "labels")
TRACKER_SETTINGS = (
    "buffer_size",
    "flush_interval",
    "max_buffered_points",
    "max_block_seconds",
    "retry_initial",
    "retry_max",
    "end_timeout",
    "log_on",
    "start_offline",
    "journal_dir",
    "send_from_process",
    "sender_process_after",
)
"""The delivery settings a user may set on a tracker after building it."""


def _rebuilt_tracker(
    cls: type[BaseExperimentTracker],
    identity: dict[str, Any],
    config: StackComponentConfig,
    settings: dict[str, Any],
) -> BaseExperimentTracker:
    tracker = cls(config=config, **identity)
    for key, value in settings.items():
        setattr(tracker, key, value)
    return tracker


def _statuses(
    status: RunStatus | str | Collection[RunStatus | str] | None,
) -> frozenset[RunStatus] | None:
    if status is None:
        return None
    given = [status] if isinstance(status, RunStatus | str) else list(status)
    try:
        return frozenset(RunStatus(s.upper() if isinstance(s, str) else s) for s in given)
    except (ValueError, AttributeError):
        names = ", ".join(s.value for s in RunStatus)
        raise InvalidInputError(f"status must be one of {names}, got {status!r}") from None


def _unreachable(exc: Exception) -> bool:
    return isinstance(exc, ConnectionError | TimeoutError)


def step_tags(info: StepRunInfo) -> dict[str, str]:
    """The tags that tie a run to its pipeline run and step."""
    return {
        "trackstack.pipeline_name": info.pipeline_name,
        "trackstack.pipeline_run_name": info.run_name,
        "trackstack.pipeline_run_id": info.run_id,
        "trackstack.step_name": info.step_name,
    }


class BaseExperimentTrackerFlavor(Flavor):
    """Base class for all experiment tracker flavors."""

    @property
    def config_class(self) -> type[BaseExperimentTrackerConfig]:
        """Config class for this flavor."""
        return BaseExperimentTrackerConfig

    @property
    @abstractmethod
    def implementation_class(self) -> type[StackComponent]:
        """Returns the implementation class for this flavor."""

    @property
    def type(self) -> StackComponentType:
        """Type of the flavor."""
        return StackComponentType.EXPERIMENT_TRACKER
