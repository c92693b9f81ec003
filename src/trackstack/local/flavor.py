"""The ``local`` flavor: its config and flavor class, importable without the store."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from trackstack.experiment_trackers import BaseExperimentTrackerConfig, BaseExperimentTrackerFlavor
from trackstack.stack import StackComponent, resolve_path

__all__ = ["DEFAULT_ROOT", "LocalExperimentTrackerConfig", "LocalExperimentTrackerFlavor"]

DEFAULT_ROOT = Path(".trackstack")


class LocalExperimentTrackerConfig(BaseExperimentTrackerConfig):
    """Config of the local store."""

    root: Path = Field(default=DEFAULT_ROOT, validate_default=True)
    """Folder of the store; a relative path is resolved when the tracker is built, against
    the folder of the config file it is written in, else the working directory."""

    @field_validator("root", mode="after")
    @classmethod
    def _absolute(cls, root: Path, info: ValidationInfo) -> Path:
        # Resolved once, so a tracker keeps its store when the process changes directory.
        return resolve_path(root, info)


class LocalExperimentTrackerFlavor(BaseExperimentTrackerFlavor):
    """Runs in a SQLite file and an artifact folder; needs nothing but trackstack."""

    @property
    def name(self) -> str:
        return "local"

    @property
    def config_class(self) -> type[LocalExperimentTrackerConfig]:
        return LocalExperimentTrackerConfig

    @property
    def implementation_class(self) -> type[StackComponent]:
        from trackstack.local.tracker import LocalExperimentTracker

        return LocalExperimentTracker
