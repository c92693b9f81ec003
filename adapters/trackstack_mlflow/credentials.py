"""MLflow credentials given per request, as a header, never through the environment.

MLflow's client reads credentials from ``MLFLOW_TRACKING_*`` environment
variables, which every process the training code starts would inherit. Instead
the tracker marks its own calls (``credentials_for``, a context variable: per
thread, so another thread's calls never carry them) and MLflow asks the
request header provider below, registered through MLflow's
``mlflow.request_header_provider`` entry point, for the ``Authorization``
header of each request. Outside trackstack's calls the provider adds nothing.

MLflow imports this module while it loads its registry, so it imports nothing
of MLflow's.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trackstack_mlflow.config import MLFlowExperimentTrackerConfig

__all__ = ["TrackstackCredentials", "credentials_for"]

# The config, not the secret: its SecretStr fields are read only when a request is made.
_CURRENT: ContextVar[MLFlowExperimentTrackerConfig | None]
_CURRENT = ContextVar("trackstack_mlflow_credentials", default=None)


@contextmanager
def credentials_for(config: MLFlowExperimentTrackerConfig) -> Iterator[None]:
    """Within this block, this thread's MLflow requests carry ``config``'s credentials."""
    if not (config.tracking_token or config.tracking_username):
        yield
        return
    marker = _CURRENT.set(config)
    try:
        yield
    finally:
        _CURRENT.reset(marker)


class TrackstackCredentials:
    """MLflow's ``RequestHeaderProvider`` interface (duck-typed: no MLflow import here)."""

    def in_context(self) -> bool:
        return _CURRENT.get() is not None

    def request_headers(self) -> dict[str, str]:
        config = _CURRENT.get()
        if config is None:
            return {}
        if config.tracking_token is not None:
            return {"Authorization": f"Bearer {config.tracking_token.get_secret_value()}"}
        if config.tracking_username is not None and config.tracking_password is not None:
            pair = (
                f"{config.tracking_username.get_secret_value()}:"
                f"{config.tracking_password.get_secret_value()}"
            )
            return {"Authorization": f"Basic {base64.b64encode(pair.encode()).decode()}"}
        return {}
