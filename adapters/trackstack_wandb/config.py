"""The W&B flavor's config and per-run settings, after ZenML's W&B flavor."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from trackstack.experiment_trackers import BaseExperimentTrackerConfig, Tags
from trackstack.stack import resolve_path

__all__ = ["WandbExperimentTrackerConfig", "WandbExperimentTrackerSettings"]


def default_dir() -> Path:
    """``$WANDB_DIR``, else the working directory, as wandb itself chooses."""
    return Path(os.environ.get("WANDB_DIR") or ".").resolve()


class WandbExperimentTrackerConfig(BaseExperimentTrackerConfig):
    """Where and how runs go to Weights & Biases.

    ``online`` needs an API key (here, or wandb's own ``WANDB_API_KEY`` or
    ``wandb login``); ``offline`` writes run files under ``dir`` that
    trackstack reads back and ``wandb sync`` uploads later; ``disabled``
    accepts every call and writes nothing.
    """

    environment_prefix: ClassVar[str] = "WANDB_"

    api_key: SecretStr | None = None
    """W&B API key; online mode needs it, here or as wandb's own ``WANDB_API_KEY``."""
    entity: str | None = None
    """The team or user that owns the projects; None: the API key's default entity."""
    project_name: str | None = None
    """The project of runs started without an experiment; else the pipeline's name."""
    mode: Literal["online", "offline", "disabled"] = "online"
    """online; offline: run files under ``dir``, for ``wandb sync``; disabled: nothing written."""
    base_url: str | None = None
    """A self-hosted W&B server, e.g. ``https://wandb.example.com``; None: W&B's cloud."""
    dir: Path = Field(default_factory=default_dir)
    """The folder whose ``wandb/`` subfolder holds the run files. Default: ``$WANDB_DIR``,
    else the working directory. A relative path is made absolute, against the config
    file's folder."""
    init_timeout: float = Field(default=15.0, gt=0)
    """Seconds to wait for W&B to start a run (wandb alone waits 90)."""
    fallback_to_offline: bool = False
    """When an online run cannot start, continue it offline (and say so once)."""
    settings: dict[str, Any] = Field(default_factory=dict)
    """Passed to ``wandb.Settings``; trackstack's own choices give way to these."""

    @field_validator("dir")
    @classmethod
    def _absolute(cls, path: Path, info: ValidationInfo) -> Path:
        return resolve_path(path, info)

    @field_validator("base_url")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {url!r}")
        return url


class WandbExperimentTrackerSettings(BaseModel):
    """Per-run settings that override the config for one run or pipeline step."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_name: str | None = None
    project_name: str | None = None
    tags: Tags = Field(default_factory=dict)
    group: str | None = None
    """W&B's run group; by default a nested run's group is its parent's id."""
    job_type: str | None = None
    notes: str | None = None
