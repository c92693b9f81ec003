"""The MLflow tracker: trackstack's backend hooks mapped onto ``MlflowClient``.

MLflow is imported on the first call that needs it, not when this module loads.
"""

from __future__ import annotations

import contextvars
import logging
import math
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast
from urllib.parse import urlsplit, urlunsplit

from trackstack.enums import RunStatus
from trackstack.environment import restored_environment, scoped_environment
from trackstack.errors import (
    BackendUnavailableError,
    ConfigError,
    MissingExtraError,
    RunNotFoundError,
)
from trackstack.experiment_trackers import (
    BaseExperimentTracker,
    Capabilities,
    MetricPoint,
    ParamValue,
    ResumeState,
    Run,
    RunRecord,
    RunStart,
    StartedRun,
    StepRunInfo,
    step_tags,
)
from trackstack.records import LazyArtifacts, LazyHistories
from trackstack_mlflow.config import MLFlowExperimentTrackerConfig, MLFlowExperimentTrackerSettings
from trackstack_mlflow.credentials import credentials_for
from trackstack_mlflow.errors import translated_errors

if TYPE_CHECKING:
    from types import ModuleType

    from mlflow import MlflowClient
    from mlflow.entities import Run as MlflowRun

__all__ = ["MLFlowExperimentTracker", "import_mlflow"]

logger = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
PIPELINE_RUN_TAG = "trackstack.pipeline_run_id"
# MLflow's SQL stores keep ±inf as ±float max; read back, those mean ±inf.
_FLOAT_MAX = sys.float_info.max
# trackstack's own calls print no "View run ... at" lines; users' own mlflow calls still do.
_QUIET = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


def import_mlflow() -> ModuleType:
    """MLflow, or a ``MissingExtraError`` with the line that installs it."""
    try:
        import mlflow
    except ImportError as exc:
        raise MissingExtraError(
            f"the mlflow flavor needs MLflow ({exc}); pip install 'trackstack[mlflow]'"
        ) from exc
    return mlflow


def _millis(seconds: float) -> int:
    return round(seconds * 1000)


def _datetime(millis: int | None) -> datetime | None:
    return None if millis is None else datetime.fromtimestamp(millis / 1000, UTC)


_READERS = 8
"""Metric histories read from a server at once: MLflow answers one key a request."""
_IDS_PER_SEARCH = 100
"""Run ids in one ``attributes.run_id IN (...)`` filter."""


def _quoted(text: str) -> str:
    """``text`` inside single quotes of an MLflow filter string."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _point(metric: Any) -> MetricPoint:
    return MetricPoint(metric.step, _infinite(metric.value), metric.timestamp / 1000)


def _points(history: Iterable[Any]) -> list[MetricPoint]:
    return [_point(metric) for metric in history]


def _infinite(value: float) -> float:
    if value == _FLOAT_MAX:
        return math.inf
    if value == -_FLOAT_MAX:
        return -math.inf
    return value


def _without_credentials(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


class _PointOrder:
    """Timestamps that make MLflow return points in the order they were logged.

    MLflow returns a metric's history sorted by (timestamp, step, value) at
    millisecond resolution, and stores identical points once. A point that
    would sort before, or equal, the previous point of its key within the same
    millisecond goes one millisecond later; increasing steps are left alone.
    """

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], tuple[int, int, float]] = {}

    def stamp(
        self, run_id: str, points: Sequence[tuple[str, MetricPoint]]
    ) -> tuple[list[int], dict[tuple[str, str], tuple[int, int, float]]]:
        """Each point's timestamp in ms, and the state to ``commit`` once they are stored."""
        pending: dict[tuple[str, str], tuple[int, int, float]] = {}
        stamps = []
        for key, point in points:
            millis = _millis(point.timestamp)
            last = pending.get((run_id, key)) or self._last.get((run_id, key))
            if last is not None:
                last_millis, last_step, last_value = last
                millis = max(millis, last_millis)
                later = (point.step, point.value) > (last_step, last_value)
                if millis == last_millis and (math.isnan(point.value) or not later):
                    millis += 1
            pending[(run_id, key)] = (millis, point.step, point.value)
            stamps.append(millis)
        return stamps, pending

    def commit(self, pending: Mapping[tuple[str, str], tuple[int, int, float]]) -> None:
        self._last.update(pending)


class MLFlowExperimentTracker(BaseExperimentTracker):
    """Logs to an MLflow tracking server or database store through ``MlflowClient``."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        max_param_length=6000,
        max_tag_length=8000,
        max_metrics_per_call=1000,
        max_params_per_call=100,
        max_tags_per_call=100,
        sdk_active_run=True,
        sender_process=True,
        # MLflow's own rule for metric names (mlflow.utils.validation), checked at the call.
        key_pattern=r"[/\w.\- :]*",
    )
    settings_class = MLFlowExperimentTrackerSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: MlflowClient | None = None
        self._experiment_names: dict[str, str] = {}
        self._run_experiments: dict[str, str] = {}
        """Run id to experiment id, for the runs this tracker started or resumed."""
        self._order = _PointOrder()
        self._start_lock = threading.Lock()
        self._last_start = 0
        self._step_scopes: dict[tuple[str, str], tuple[ExitStack, int]] = {}
        self._step_parents: dict[tuple[str, str], Run] = {}

    @property
    def config(self) -> MLFlowExperimentTrackerConfig:
        """Returns the config of the MLflow tracker."""
        return cast(MLFlowExperimentTrackerConfig, self._config)

    @property
    def client(self) -> MlflowClient:
        """The ``MlflowClient`` for the configured tracking URI."""
        if self._client is None:
            self._client = import_mlflow().MlflowClient(tracking_uri=self.config.tracking_uri)
        return self._client

    def missing_store(self) -> str | None:
        uri = self.config.tracking_uri
        path = uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else None
        if path is None and "://" not in uri:
            path = uri  # a file store given as a path
        return None if path is None or Path(path).exists() else path

    def protected_paths(self) -> list[Path]:
        own = super().protected_paths()
        uri = self.config.tracking_uri
        for prefix in ("sqlite:///", "file://"):  # a database file, a file store
            if uri.startswith(prefix):
                return [*own, Path(uri.removeprefix(prefix))]
        bare = "://" not in uri and Path(uri).exists()  # a file store given as a path
        return [*own, Path(uri)] if bare else own

    def experiment_for(self, settings: Any) -> str | None:
        if isinstance(settings, MLFlowExperimentTrackerSettings) and settings.experiment_name:
            return settings.experiment_name
        return self.config.experiment_name

    @contextmanager
    def _calling(self, where: str, retries: int | None = None) -> Iterator[MlflowClient]:
        client = self.client
        # Credentials go as a request header (credentials.py): a process started meanwhile
        # inherits the environment, so they are never put there.
        environment = {**self.config.request_environment(retries), **_QUIET}
        with (
            translated_errors(where),
            credentials_for(self.config),
            scoped_environment(environment),
        ):
            yield client

    # -- backend hooks -----------------------------------------------------------------

    def backend_start_run(self, request: RunStart) -> StartedRun:
        settings = request.settings
        tags = {
            **self.config.default_tags,
            **(settings.tags if isinstance(settings, MLFlowExperimentTrackerSettings) else {}),
            **request.tags,
        }
        if request.resume_id is not None:
            with self._calling(f"resume run {request.resume_id}") as client:
                client.update_run(request.resume_id, status="RUNNING", name=request.run_name)
                self._log_tags(client, request.resume_id, tags)
                run = client.get_run(request.resume_id)
        else:
            if request.parent_id is not None:
                tags[PARENT_TAG] = request.parent_id
            with self._calling(f"start a run in experiment {request.experiment!r}") as client:
                run = client.create_run(
                    self._experiment_id(client, request.experiment),
                    start_time=self._start_millis(),
                    tags=tags,
                    run_name=request.run_name,
                )
        self._run_experiments[run.info.run_id] = run.info.experiment_id
        return StartedRun(id=run.info.run_id, url=self._url(run), name=run.info.run_name)

    def backend_end_run(self, run_id: str, status: RunStatus) -> None:
        with self._calling(f"end run {run_id}") as client:
            client.set_terminated(run_id, status=status.value, end_time=_millis(time.time()))

    def backend_prepare_sender(self) -> None:
        self.client  # noqa: B018  (imports MLflow, builds the client)
        import mlflow.entities  # noqa: F401  (what backend_log_metrics imports)

    def backend_log_params(self, run_id: str, params: Mapping[str, ParamValue]) -> None:
        from mlflow.entities import Param

        batch = [Param(key, param.text) for key, param in params.items()]
        with self._calling(f"log params to run {run_id}") as client:
            client.log_batch(run_id, params=batch, synchronous=True)

    def backend_log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        from mlflow.entities import Metric

        stamps, pending = self._order.stamp(run_id, points)
        batch = [
            Metric(key, point.value, millis, point.step)
            for (key, point), millis in zip(points, stamps, strict=True)
        ]
        # No retries inside MLflow's client: the sender retries with backoff, off the loop.
        with self._calling(f"log metrics to run {run_id}", retries=0) as client:
            client.log_batch(run_id, metrics=batch, synchronous=True)
        self._order.commit(pending)

    def backend_set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        with self._calling(f"set tags on run {run_id}") as client:
            self._log_tags(client, run_id, tags)

    def backend_log_artifact(
        self, run_id: str, local_path: Path, artifact_path: str | None
    ) -> None:
        with self._calling(f"upload {local_path} to run {run_id}") as client:
            if local_path.is_dir():
                inner = f"{artifact_path}/{local_path.name}" if artifact_path else local_path.name
                client.log_artifacts(run_id, str(local_path), inner)
            else:
                client.log_artifact(run_id, str(local_path), artifact_path)

    def backend_get_run(self, run_id: str) -> RunRecord:
        with self._calling(f"read run {run_id}") as client:
            return self._record(client, client.get_run(run_id))

    def backend_get_runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        from mlflow.entities import ViewType

        if len(run_ids) < 2:
            return [self.backend_get_run(run_id) for run_id in run_ids]
        with self._calling(f"read runs {', '.join(run_ids)}") as client:
            experiments = [e.experiment_id for e in self._all_experiments(client)]
            found: dict[str, MlflowRun] = {}
            for start in range(0, len(run_ids), _IDS_PER_SEARCH):
                chunk = run_ids[start : start + _IDS_PER_SEARCH]
                listed = ", ".join(f"'{_quoted(run_id)}'" for run_id in chunk)
                for run in self._search(
                    client, experiments, f"attributes.run_id IN ({listed})", ViewType.ALL
                ):
                    found[run.info.run_id] = run
            missing = [run_id for run_id in run_ids if run_id not in found]
            if missing:
                raise RunNotFoundError(f"MLflow has no run {missing[0]!r}")
            return [self._record(client, found[run_id]) for run_id in run_ids]

    def backend_resume_state(self, run_id: str) -> ResumeState:
        with self._calling(f"read run {run_id}") as client:
            run = client.get_run(run_id)
            experiment = self._experiment_name(client, run.info.experiment_id)
        # MLflow keeps each key's latest point, the one with the highest step,
        # with the run: no metric history needs reading.
        latest = run.data._metric_objs
        return ResumeState(
            experiment=experiment,
            name=run.info.run_name,
            parent_id=run.data.tags.get(PARENT_TAG),
            params=dict(run.data.params),
            last_step=max((metric.step for metric in latest), default=None),
        )

    def backend_check_run(self, run_id: str) -> None:
        with self._calling(f"find run {run_id}") as client:
            client.get_run(run_id)

    def backend_list_runs(self, experiment: str | None) -> list[RunRecord]:
        return self.backend_search_runs(experiment, None, {}, None)

    def backend_search_runs(
        self,
        experiment: str | None,
        statuses: frozenset[RunStatus] | None,
        tags: Mapping[str, str],
        limit: int | None,
    ) -> list[RunRecord]:
        """One ``search_runs`` (paged): MLflow filters by tags and a single status and
        stops at ``limit``; every record carries its latest metrics, its histories and
        artifact listing are read only when used."""
        from mlflow.entities import ViewType

        where = f"list the runs of {experiment!r}" if experiment else "list runs"
        clauses = [f"tags.`{k}` = '{_quoted(v)}'" for k, v in tags.items() if "`" not in k]
        single = next(iter(statuses)) if statuses and len(statuses) == 1 else None
        if single is not None and single is not RunStatus.RUNNING:  # RUNNING is SCHEDULED too
            clauses.append(f"attributes.status = '{single.value}'")
        with self._calling(where) as client:
            if experiment is None:
                experiment_ids = [e.experiment_id for e in self._all_experiments(client)]
            else:
                found = client.get_experiment_by_name(experiment)
                experiment_ids = [found.experiment_id] if found else []
            records = []
            for run in self._search(client, experiment_ids, " and ".join(clauses), ViewType.ALL):
                record = self._record(client, run)
                if record.matches(statuses, tags):
                    records.append(record)
                    if limit is not None and len(records) >= limit:
                        break
            return records

    @staticmethod
    def _search(
        client: MlflowClient, experiment_ids: list[str], where: str, view: Any
    ) -> Iterator[MlflowRun]:
        """Runs newest first, a page of 1,000 at a time, fetched as they are used."""
        token = None
        while experiment_ids:
            page = client.search_runs(
                experiment_ids,
                filter_string=where,
                run_view_type=view,
                max_results=1000,
                order_by=["attributes.start_time DESC"],
                page_token=token,
            )
            yield from page
            token = page.token
            if not token:
                return

    # -- ZenML's step lifecycle --------------------------------------------------------

    def start_step_run(self, info: StepRunInfo) -> Run:
        """One MLflow run per pipeline run, resumed by each step; with ``nested``, a child each.

        The pipeline run's run is found again by its ``trackstack.pipeline_run_id`` tag.
        """
        settings = self.validate_settings(info.settings) or MLFlowExperimentTrackerSettings()
        experiment = self.experiment_for(settings) or info.pipeline_name
        nested = self.config.nested if settings.nested is None else settings.nested
        try:
            existing = self._pipeline_run_id(experiment, info.run_id)
        except BackendUnavailableError as error:
            if not self.start_offline:
                raise
            # The step still runs and logs: its run starts pending, in a run of its own.
            logger.warning(
                "trackstack: cannot look up the MLflow run of pipeline run %s (%s); step %s "
                "logs to a run of its own, created once the server answers",
                info.run_id, error, info.step_name,
            )  # fmt: skip
            existing = None
        if not nested:
            if existing is not None:
                return self.start_run(run_id=existing, tags=step_tags(info), settings=settings)
            return self.start_run(
                experiment, run_name=info.run_name, tags=step_tags(info), settings=settings
            )
        pipeline_tags = {k: v for k, v in step_tags(info).items() if k != "trackstack.step_name"}
        parent = (
            self.start_run(run_id=existing, settings=settings)
            if existing is not None
            else self.start_run(
                experiment, run_name=info.run_name, tags=pipeline_tags, settings=settings
            )
        )
        self._step_parents[(info.run_id, info.step_name)] = parent
        if parent.pending:  # a child needs its parent to exist: the step logs into the parent
            return parent
        return self.start_run(
            experiment,
            run_name=info.step_name,
            tags={**step_tags(info), "trackstack.nested": "true"},
            parent=parent,
            settings=settings,
        )

    def enter_step_run(self, info: StepRunInfo, run: Run) -> None:
        """Make the run MLflow's active run, with the config's URI and credentials."""
        mlflow = import_mlflow()
        scope = ExitStack()
        environment = {
            "MLFLOW_TRACKING_URI": self.config.tracking_uri,
            **self.config.credential_environment(),
        }
        scope.enter_context(restored_environment(environment))
        scope.enter_context(self._global_tracking_uri(mlflow))
        parent = self._step_parents.get((info.run_id, info.step_name))
        active = [parent.id, run.id] if parent is not None else [run.id]
        started = 0
        try:
            with translated_errors(f"make run {run.id} MLflow's active run"):
                for run_id in active:
                    mlflow.start_run(run_id=run_id, nested=started > 0)
                    started += 1
        except BaseException:
            self._end_active(mlflow, started, RunStatus.FAILED)
            scope.close()
            raise
        self._step_scopes[(info.run_id, info.step_name)] = (scope, started)

    def exit_step_run(self, info: StepRunInfo, run: Run, status: RunStatus) -> None:
        """End MLflow's active run(s) and restore the environment and tracking URI."""
        key = (info.run_id, info.step_name)
        scope, started = self._step_scopes.pop(key, (ExitStack(), 0))
        parent = self._step_parents.pop(key, None)
        try:
            self._end_active(import_mlflow(), started, status)
        finally:
            scope.close()
            if parent is not None:
                parent.end(status)

    def run_metadata(self, run: Run) -> dict[str, Any]:
        experiment_id = self._run_experiments.get(run.id)
        if experiment_id is None:
            with self._calling(f"read run {run.id}") as client:
                experiment_id = client.get_run(run.id).info.experiment_id
        return {
            "mlflow_run_id": run.id,
            "mlflow_experiment_id": experiment_id,
            "mlflow_experiment_name": run.experiment,
            "mlflow_tracking_uri": _without_credentials(self.config.tracking_uri),
        }

    # -- internals ---------------------------------------------------------------------

    @staticmethod
    def _end_active(mlflow: ModuleType, count: int, status: RunStatus) -> None:
        with translated_errors("end MLflow's active run"), scoped_environment(_QUIET):
            for _ in range(count):
                mlflow.end_run(status=status.value)

    @contextmanager
    def _global_tracking_uri(self, mlflow: ModuleType) -> Iterator[None]:
        # mlflow.set_tracking_uri() overrides the environment variable; put back
        # whatever the process had set before (None means "not set").
        from mlflow.tracking._tracking_service import utils

        previous = utils._tracking_uri
        mlflow.set_tracking_uri(self.config.tracking_uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(previous)

    def _start_millis(self) -> int:
        # Strictly increasing start times keep list_runs' newest-first order exact.
        with self._start_lock:
            self._last_start = max(_millis(time.time()), self._last_start + 1)
            return self._last_start

    def _experiment_id(self, client: MlflowClient, name: str) -> str:
        from mlflow.exceptions import MlflowException

        found = client.get_experiment_by_name(name)
        if found is None:
            try:
                return str(client.create_experiment(name))
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                found = client.get_experiment_by_name(name)  # another process created it
        if found is None or found.lifecycle_stage == "deleted":
            raise ConfigError(
                f"MLflow experiment {name!r} is deleted; restore it in MLflow "
                "or choose another name"
            )
        return str(found.experiment_id)

    def _experiment_name(self, client: MlflowClient, experiment_id: str) -> str:
        if experiment_id not in self._experiment_names:
            self._experiment_names[experiment_id] = client.get_experiment(experiment_id).name
        return self._experiment_names[experiment_id]

    @staticmethod
    def _all_experiments(client: MlflowClient) -> list[Any]:
        from mlflow.entities import ViewType

        experiments: list[Any] = []
        token = None
        while True:
            page = client.search_experiments(
                view_type=ViewType.ALL, max_results=1000, page_token=token
            )
            experiments.extend(page)
            token = page.token
            if not token:
                return experiments

    @staticmethod
    def _log_tags(client: MlflowClient, run_id: str, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        if tags:
            batch = [RunTag(key, value) for key, value in tags.items()]
            client.log_batch(run_id, tags=batch, synchronous=True)

    def _pipeline_run_id(self, experiment: str, pipeline_run_id: str) -> str | None:
        with self._calling(f"find the run of pipeline run {pipeline_run_id}") as client:
            found = client.get_experiment_by_name(experiment)
            if found is None:
                return None
            quoted = pipeline_run_id.replace("'", "\\'")
            runs = client.search_runs(
                [found.experiment_id],
                filter_string=f"tags.`{PIPELINE_RUN_TAG}` = '{quoted}'",
                order_by=["attributes.start_time ASC"],
            )
            top = [run for run in runs if PARENT_TAG not in run.data.tags]
            return top[0].info.run_id if top else None

    def _url(self, run: MlflowRun) -> str:
        if self.config.is_server:
            base = _without_credentials(self.config.tracking_uri).rstrip("/")
            return f"{base}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
        return str(run.info.artifact_uri)

    def _record(self, client: MlflowClient, run: MlflowRun) -> RunRecord:
        """A run as MLflow answered it: its latest metrics are the summary, its histories
        and artifact listing are read when first used."""
        info, data = run.info, run.data
        run_id = info.run_id
        keys = list(data.metrics)
        status = RunStatus.RUNNING if info.status == "SCHEDULED" else RunStatus(info.status)
        return RunRecord(
            id=run_id,
            name=info.run_name,
            experiment=self._experiment_name(client, info.experiment_id),
            status=status,
            params=dict(data.params),
            tags={k: v for k, v in data.tags.items() if not k.startswith("mlflow.")},
            metrics=LazyHistories(keys, lambda: self._histories(run_id, keys)),
            artifacts=LazyArtifacts(lambda: self._listed_artifacts(run_id)),
            start_time=_datetime(info.start_time),
            end_time=None if status is RunStatus.RUNNING else _datetime(info.end_time),
            url=self._url(run),
            parent_id=data.tags.get(PARENT_TAG),
            summary={m.key: _point(m) for m in data._metric_objs},
        )

    def _histories(self, run_id: str, keys: list[str]) -> dict[str, list[MetricPoint]]:
        """Every key's history: MLflow answers one key a request, so a server is asked for
        up to ``_READERS`` at once; a database store, read in this process, in turn."""
        with self._calling(f"read the metric histories of run {run_id}") as client:
            if not self.config.is_server or len(keys) < 2:
                return {key: _points(client.get_metric_history(run_id, key)) for key in keys}
            # Each reader runs in a copy of this context: the credentials go with it.
            context = contextvars.copy_context()

            def read(key: str) -> list[MetricPoint]:
                return _points(context.copy().run(client.get_metric_history, run_id, key))

            with ThreadPoolExecutor(min(_READERS, len(keys)), "trackstack-read") as pool:
                return dict(zip(keys, pool.map(read, keys), strict=True))

    def _listed_artifacts(self, run_id: str) -> list[str]:
        with self._calling(f"list the artifacts of run {run_id}") as client:
            return list(self._artifact_files(client, run_id))

    def _artifact_files(
        self, client: MlflowClient, run_id: str, path: str | None = None
    ) -> Iterator[str]:
        for item in client.list_artifacts(run_id, path):
            if item.is_dir:
                yield from self._artifact_files(client, run_id, item.path)
            else:
                yield item.path
