"""The MLflow flavor's config and per-run settings, after ZenML's MLflow flavor."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from trackstack.experiment_trackers import BaseExperimentTrackerConfig, Tags
from trackstack.stack import resolve_path

__all__ = ["MLFlowExperimentTrackerConfig", "MLFlowExperimentTrackerSettings"]

_SQLITE = "sqlite:///"


def default_tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else a SQLite store in the working directory.

    MLflow 3 no longer defaults to a file store, and a relative SQLite path
    would move with the working directory.
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or f"{_SQLITE}{Path('mlflow.db').resolve()}"


class MLFlowExperimentTrackerConfig(BaseExperimentTrackerConfig):
    """Where and how to reach MLflow.

    Credentials are optional (a server without auth needs none); a username
    needs a password, and a token replaces both.
    """

    environment_prefix: ClassVar[str] = "MLFLOW_"

    tracking_uri: str = Field(default_factory=default_tracking_uri)
    """An ``http(s)://`` server or a database URI. Default: ``$MLFLOW_TRACKING_URI``, else
    ``mlflow.db`` in the working directory. A relative SQLite path is made absolute, against
    the config file's folder."""
    experiment_name: str | None = None
    """The experiment of runs started without one; else the pipeline's name, else "Default"."""
    tracking_username: SecretStr | None = None
    """Basic-auth user name; needs ``tracking_password``."""
    tracking_password: SecretStr | None = None
    """Basic-auth password; needs ``tracking_username``."""
    tracking_token: SecretStr | None = None
    """A bearer token; replaces user name and password."""
    tracking_insecure_tls: bool = False
    """Skip TLS certificate checks (a self-signed server certificate)."""
    nested: bool = False
    """In a pipeline, log each step to a child run of the pipeline run's run."""
    default_tags: Tags = Field(default_factory=dict)
    """Tags set on every run this tracker starts."""
    request_timeout: int = Field(default=30, gt=0)
    """Seconds one HTTP request to the server may take."""
    request_retries: int = Field(default=2, ge=0)
    """MLflow's own retries of a failed request for calls that wait for an answer (start,
    params, tags, artifacts, reads); metric batches are retried by trackstack's sender."""

    @field_validator("tracking_uri")
    @classmethod
    def _absolute_sqlite(cls, uri: str, info: ValidationInfo) -> str:
        if uri.startswith(_SQLITE) and not uri.startswith(f"{_SQLITE}/"):
            path = uri.removeprefix(_SQLITE)
            if path and path != ":memory:":
                return f"{_SQLITE}{resolve_path(Path(path), info)}"
        return uri

    @model_validator(mode="after")
    def _credentials(self) -> MLFlowExperimentTrackerConfig:
        if self.tracking_token and (self.tracking_username or self.tracking_password):
            raise ValueError(
                "tracking_token replaces tracking_username and tracking_password: "
                "give one or the other"
            )
        if bool(self.tracking_username) != bool(self.tracking_password):
            raise ValueError("tracking_username and tracking_password go together: give both")
        return self

    @property
    def is_server(self) -> bool:
        """Whether the tracking URI is an HTTP(S) tracking server."""
        return self.tracking_uri.startswith(("http://", "https://"))

    def request_environment(self, retries: int | None = None) -> dict[str, str]:
        """The ``MLFLOW_HTTP_*`` variables bounding how long MLflow's client keeps trying.

        Left alone, it retries a dead server for about four minutes.
        """
        environment = {
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(self.request_timeout),
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(
                self.request_retries if retries is None else retries
            ),
        }
        if self.tracking_insecure_tls:
            environment["MLFLOW_TRACKING_INSECURE_TLS"] = "true"
        return environment

    def credential_environment(self) -> dict[str, str]:
        """The ``MLFLOW_*`` variables MLflow's client reads credentials from.

        Set only for a pipeline step, whose own ``mlflow`` calls need them;
        trackstack's calls send them as a header instead.
        """
        values: dict[str, Any] = {
            "MLFLOW_TRACKING_USERNAME": self.tracking_username,
            "MLFLOW_TRACKING_PASSWORD": self.tracking_password,
            "MLFLOW_TRACKING_TOKEN": self.tracking_token,
        }
        environment = {
            name: secret.get_secret_value() for name, secret in values.items() if secret is not None
        }
        if self.tracking_insecure_tls:
            environment["MLFLOW_TRACKING_INSECURE_TLS"] = "true"
        return environment


class MLFlowExperimentTrackerSettings(BaseModel):
    """Per-run settings that override the config for one run or pipeline step."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment_name: str | None = None
    nested: bool | None = None
    tags: Tags = Field(default_factory=dict)
