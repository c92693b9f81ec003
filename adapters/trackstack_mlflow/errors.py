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
    r"API request to (?P<server>[a-z]+://[^/\s]+)\S* failed with "
    r"(?P<how>exception|timeout exception|error code (?P<code>5\d\d|429))"
)


def _unreachable(found: re.Match[str], message: str, where: str) -> BackendUnavailableError:
    """One line a person can act on instead of urllib3's "Max retries exceeded" paragraph."""
    server = found["server"]
    if found["code"]:
        return BackendUnavailableError(
            f"the MLflow server at {server} answered HTTP {found['code']} while trying to "
            f"{where}: it is overloaded or failing; trackstack retries"
        )
    if "timeout" in found["how"] or "timed out" in message.lower():
        reason = "it did not answer in time"
    elif "refused" in message.lower():
        reason = "connection refused"
    elif "name or service not known" in message.lower() or "resolution" in message.lower():
        reason = "its host name does not resolve"
    else:
        reason = "the connection failed"
    return BackendUnavailableError(
        f"cannot reach the MLflow server at {server} ({reason}) to {where}: is it running, "
        "and is tracking_uri right?"
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
    if answered_busy:
        return BackendUnavailableError(f"MLflow could not {where}: {message}")
    if found := _UNREACHABLE.match(message):
        return _unreachable(found, message, where)
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
