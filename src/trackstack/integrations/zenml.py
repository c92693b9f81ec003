"""A ZenML experiment-tracker flavor, ``trackstack``, that logs through any trackstack backend.

Register the flavor once (``zenml experiment-tracker flavor register
trackstack.integrations.zenml.TrackstackExperimentTrackerFlavor``), then a component
per trackstack config (``zenml experiment-tracker register team --flavor=trackstack
--tracker_config=trackstack.yaml``).

Step code reaches its run with ``active_run()``; the backend SDK's own calls land in
it too (MLflow's active run, W&B's ``wandb.run``). Unlike ZenML's own trackers, a
tracker failure never fails the step: it is logged as a warning, and the step's
calls go to a run that discards them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml
from pydantic import field_validator

from trackstack import config as configs
from trackstack.errors import MissingExtraError, TrackstackError
from trackstack.experiment_trackers import BaseExperimentTracker as TrackstackTracker
from trackstack.experiment_trackers import StepRunInfo as TrackstackStepInfo
from trackstack.integrations.bridge import discarding_run, require
from trackstack.registry import get_flavor
from trackstack.run import Run

require("zenml", "zenml")

from zenml.experiment_trackers.base_experiment_tracker import (  # noqa: E402
    BaseExperimentTracker,
    BaseExperimentTrackerConfig,
    BaseExperimentTrackerFlavor,
)
from zenml.metadata.metadata_types import Uri  # noqa: E402
from zenml.utils.secret_utils import SecretField  # noqa: E402

if TYPE_CHECKING:
    from zenml.config.step_run_info import StepRunInfo
    from zenml.metadata.metadata_types import MetadataType

__all__ = [
    "TrackstackExperimentTracker",
    "TrackstackExperimentTrackerConfig",
    "TrackstackExperimentTrackerFlavor",
    "active_run",
]

logger = logging.getLogger(__name__)

FLAVOR = "trackstack"
SECRET_FIELDS = ("tracking_username", "tracking_password", "tracking_token", "api_key")
"""The credentials a component may hold as ZenML secret references; each goes into the
trackstack config field of the same name (MLflow's ``tracking_*``, W&B's ``api_key``)."""
_EXTRAS = {"mlflow": "mlflow", "wandb": "wandb"}


class TrackstackExperimentTrackerConfig(BaseExperimentTrackerConfig):
    """``tracker_config``: a trackstack config file's path, or the same mapping inline
    (``{flavor: mlflow, config: {...}}`` or ``{experiment_trackers: [...]}``), checked
    when the component is registered. Credentials go in the secret fields, as
    ``{{secret.key}}`` references, never in ``tracker_config``."""

    tracker_config: str | dict[str, Any]
    """A path (read at registration) or the mapping itself; held as the mapping."""
    tracking_username: str | None = SecretField(default=None)
    tracking_password: str | None = SecretField(default=None)
    tracking_token: str | None = SecretField(default=None)
    api_key: str | None = SecretField(default=None)

    @field_validator("tracker_config")
    @classmethod
    def _check_tracker_config(cls, value: str | dict[str, Any]) -> dict[str, Any]:
        # A file is read once, here, when the component is registered: the component then
        # holds the mapping itself, so a step in another folder or an image has no file to find.
        data, origin, folder = _source(value)
        if not isinstance(data, dict):
            raise ValueError(f"tracker_config: {origin} holds no mapping")
        try:
            built = configs._build(data, origin, folder)
        except MissingExtraError:
            return data  # the image that runs the steps gets the extra: see ``requirements``
        except TrackstackError as error:
            raise ValueError(f"tracker_config: {error}") from None
        return _resolved_paths(data, built)


class TrackstackExperimentTracker(BaseExperimentTracker):
    """Builds the trackstack tracker its config describes and hands it ZenML's step lifecycle."""

    _built: TrackstackTracker | None = None
    _lock = threading.Lock()

    @property
    def config(self) -> TrackstackExperimentTrackerConfig:
        return cast(TrackstackExperimentTrackerConfig, self._config)

    @property
    def tracker(self) -> TrackstackTracker:
        """The trackstack tracker, built on first use with the component's credentials."""
        with self._lock:
            if self._built is None:
                data, origin, folder = _source(self.config.tracker_config)
                secrets = {f: getattr(self.config, f) for f in SECRET_FIELDS}
                data = _with_secrets(data, {f: v for f, v in secrets.items() if v is not None})
                self._built = configs._build(data, origin, folder)
            return self._built

    @property
    def requirements(self) -> set[str]:
        """``trackstack[zenml,...]`` with the extras of the backends the config names."""
        data, _, _ = _source(self.config.tracker_config)
        extras = sorted({"zenml", *(_EXTRAS[f] for f in _flavors(data) if f in _EXTRAS)})
        return {f"trackstack[{','.join(extras)}]"}

    def prepare_step_run(self, info: StepRunInfo) -> None:
        step = _step_info(info)
        try:
            tracker = self.tracker
            tracker.prepare_step_run(step)
            _active.run = tracker.step_run(step)
        except Exception as error:  # never the step's failure
            logger.warning(
                "trackstack: cannot start a run for step %s (%s); the step runs on, its "
                "calls to active_run() are discarded", step.step_name, error,
            )  # fmt: skip
            _active.run = discarding_run(step.pipeline_name)

    def get_step_run_metadata(self, info: StepRunInfo) -> dict[str, MetadataType]:
        step = _step_info(info)
        try:
            found = self.tracker.get_step_run_metadata(step)
        except Exception as error:
            logger.warning("trackstack: no metadata for step %s (%s)", step.step_name, error)
            return {}
        metadata: dict[str, MetadataType] = {}
        for key, value in found.items():
            if key == "experiment_tracker_url" and value:
                metadata[key] = Uri(str(value))
            elif isinstance(value, str | int | float | bool):
                metadata[key] = value
        return metadata

    def cleanup_step_run(self, info: StepRunInfo, step_failed: bool) -> None:
        step = _step_info(info)
        _active.run = None
        try:
            self.tracker.cleanup_step_run(step, step_failed)
        except Exception as error:
            logger.warning("trackstack: the run of step %s ended with trouble (%s)",
                           step.step_name, error)  # fmt: skip


class TrackstackExperimentTrackerFlavor(BaseExperimentTrackerFlavor):
    """ZenML's flavor ``trackstack``: any trackstack backend as an experiment tracker."""

    @property
    def name(self) -> str:
        return FLAVOR

    @property
    def display_name(self) -> str:
        return "trackstack"

    @property
    def config_class(self) -> type[TrackstackExperimentTrackerConfig]:
        return TrackstackExperimentTrackerConfig

    @property
    def implementation_class(self) -> type[TrackstackExperimentTracker]:
        return TrackstackExperimentTracker


class _Active(threading.local):
    run: Run | None = None


_active = _Active()


def active_run() -> Run:
    """The trackstack run of the step running now (a run that discards, if the tracker
    could not start one)."""
    run = _active.run
    if run is None:
        raise RuntimeError(
            "no trackstack run is active: call active_run() inside a step whose "
            "@step(experiment_tracker=...) is a component of the trackstack flavor"
        )
    return run


def _step_info(info: StepRunInfo) -> TrackstackStepInfo:
    return TrackstackStepInfo(
        pipeline_name=info.pipeline.name,
        run_name=info.run_name,
        step_name=info.pipeline_step_name,
        run_id=str(info.run_id),
    )


def _source(value: str | Mapping[str, Any]) -> tuple[Any, str, Path | None]:
    """The config's data, where it came from, and the folder its relative paths start at."""
    if isinstance(value, Mapping):
        return dict(value), "tracker_config", None
    text = value.strip()
    if text.startswith("{"):  # a mapping given inline on the command line
        try:
            return yaml.safe_load(text), "tracker_config", None
        except yaml.YAMLError as error:
            raise ValueError(f"tracker_config is neither a file nor a mapping: {error}") from None
    path = Path(os.path.expanduser(text))
    try:
        return configs._read(path), str(path), path.absolute().parent
    except TrackstackError as error:
        raise ValueError(f"tracker_config: {error}") from None


def _resolved_paths(data: dict[str, Any], built: TrackstackTracker) -> dict[str, Any]:
    """``data`` with each relative path as the tracker resolved it (against the file's
    folder), so that the mapping means the same wherever a step runs."""
    if "experiment_trackers" in data:
        members = [_resolved_paths(dict(m), member) if isinstance(m, Mapping) else m
                   for m, member in zip(data["experiment_trackers"],
                                        getattr(built, "trackers", []), strict=False)]  # fmt: skip
        return {**data, "experiment_trackers": members}
    if isinstance(data.get("experiment_tracker"), Mapping):
        inner = _resolved_paths(dict(data["experiment_tracker"]), built)
        return {**data, "experiment_tracker": inner}
    config = data.get("config")
    if not isinstance(config, Mapping):
        return data
    resolved = {
        key: str(getattr(built.config, key))
        for key, raw in config.items()
        if isinstance(getattr(built.config, key, None), Path) and "${" not in str(raw)
    }
    return {**data, "config": {**config, **resolved}}


def _flavors(data: Any) -> list[str]:
    if isinstance(data, Mapping) and "experiment_trackers" in data:
        return [f for member in data["experiment_trackers"] for f in _flavors(member)]
    spec = data.get("experiment_tracker", data) if isinstance(data, Mapping) else {}
    return [str(spec.get("flavor", "local"))] if isinstance(spec, Mapping) else []


def _with_secrets(data: Any, secrets: Mapping[str, str]) -> Any:
    """``data`` with each credential set in every tracker whose config has that field."""
    if not secrets or not isinstance(data, Mapping):
        return data
    if "experiment_trackers" in data:
        members = [_with_secrets(member, secrets) for member in data["experiment_trackers"]]
        return {**data, "experiment_trackers": members}
    if "experiment_tracker" in data:
        return {**data, "experiment_tracker": _with_secrets(data["experiment_tracker"], secrets)}
    try:
        fields = get_flavor(str(data.get("flavor", "local"))).config_class.model_fields
    except TrackstackError:
        return data  # building it names the problem
    given = {name: value for name, value in secrets.items() if name in fields}
    return {**data, "config": {**(data.get("config") or {}), **given}}
