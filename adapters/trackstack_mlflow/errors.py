"""MLflow's exceptions, translated into trackstack's error tree at the adapter boundary."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager

from trackstack.backend import translating
from trackstack.errors import (
    AuthenticationError,
    BackendError,
    BackendUnavailableError,
    InvalidInputError,
    ParamConflictError,
    RunNotFoundError,
    TrackstackError,
)

__all__ = ["translated_errors"]

_AUTH_CODES = {"UNAUTHENTICATED", "PERMISSION_DENIED"}
# MLflow's REST client wraps connection failures, timeouts and 5xx/429 answers
# that are not JSON in a plain MlflowException: only the message tells.
_UNREACHABLE = re.compile(
    r"API request to .* failed with (exception|timeout exception|error code (5\d\d|429))"
)


def translate(exc: Exception, where: str) -> TrackstackError:
    """The trackstack error for an exception MLflow raised while doing ``where``."""
    from mlflow.exceptions import MlflowException, RestException

    if not isinstance(exc, MlflowException):
        if isinstance(exc, OSError):  # connection refused or reset below MLflow's client
            return BackendUnavailableError(f"MLflow could not {where}: {exc}")
        return BackendError(f"MLflow failed to {where}: {type(exc).__name__}: {exc}")
    code, message = exc.error_code, exc.message
    status = exc.get_http_status_code()  # type: ignore[no-untyped-call]
    if code in _AUTH_CODES or status in (401, 403):
        return AuthenticationError(
            f"MLflow refused the credentials while trying to {where} ({message}); check "
            "tracking_username and tracking_password, or tracking_token, in the mlflow config"
        )
    answered_busy = isinstance(exc, RestException) and (status == 429 or status >= 500)
    if answered_busy or _UNREACHABLE.match(message):
        return BackendUnavailableError(f"MLflow could not {where}: {message}")
    if code == "RESOURCE_DOES_NOT_EXIST":
        return RunNotFoundError(f"MLflow could not {where}: {message}")
    if "Changing param values is not allowed" in message:
        return ParamConflictError(f"MLflow could not {where}: {message}")
    if code == "INVALID_PARAMETER_VALUE":
        return InvalidInputError(f"MLflow rejected the input to {where}: {message}")
    return BackendError(f"MLflow failed to {where}: {message}")


def translated_errors(where: str) -> AbstractContextManager[None]:
    """Raise trackstack errors, with MLflow's exception chained, for what fails inside."""
    return translating(translate, where)
