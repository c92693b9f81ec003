"""The one exception tree users catch, whatever the backend.

Adapters translate their SDK's exceptions into these at the boundary and chain
the original (``raise BackendError(...) from exc``), so code written against
trackstack never has to import a backend's exception types.
"""

from __future__ import annotations

__all__ = [
    "ArtifactNotFoundError",
    "AuthenticationError",
    "BackendError",
    "BackendUnavailableError",
    "ConfigError",
    "FlavorNotFoundError",
    "InvalidInputError",
    "MissingExtraError",
    "ParamConflictError",
    "PlainTextSecretWarning",
    "RunNotFoundError",
    "TrackstackError",
    "UnsupportedOperationError",
]


class TrackstackError(Exception):
    """Base of every error trackstack raises."""


class ConfigError(TrackstackError, ValueError):
    """A tracker configuration is invalid: unknown field, wrong type, unset ``${VAR}``."""


class FlavorNotFoundError(TrackstackError, LookupError):
    """No installed flavor has the requested name."""


class MissingExtraError(TrackstackError, ImportError):
    """A flavor's backend SDK is not installed; the message has the ``pip install`` line."""


class InvalidInputError(TrackstackError, ValueError):
    """A key, value, step or path was rejected before anything was sent."""


class ParamConflictError(InvalidInputError):
    """A param was logged again with a different value."""


class ArtifactNotFoundError(TrackstackError, FileNotFoundError):
    """The local file or directory given to ``log_artifact`` does not exist."""


class RunNotFoundError(TrackstackError, LookupError):
    """The backend has no run with the requested id."""


class UnsupportedOperationError(TrackstackError, NotImplementedError):
    """The adapter declares that it lacks the capability the call needs."""


class BackendError(TrackstackError):
    """The backend failed; the original exception is chained as ``__cause__``."""


class AuthenticationError(BackendError):
    """The backend refused the credentials."""


class BackendUnavailableError(BackendError):
    """The backend could not be reached, or answered 5xx or 429: trying again may work.

    Calls that meet this error wait in the run's journal and are retried with
    backoff; what is still undelivered when the run ends waits for ``trackstack sync``.
    """


class PlainTextSecretWarning(UserWarning):
    """A secret config field was given as a literal instead of through ``${VAR}``."""
