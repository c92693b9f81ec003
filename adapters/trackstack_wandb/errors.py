"""wandb's exceptions, translated into trackstack's error tree at the adapter boundary."""

from __future__ import annotations

from contextlib import AbstractContextManager

from trackstack.backend import translating
from trackstack.errors import (
    AuthenticationError,
    BackendError,
    BackendUnavailableError,
    InvalidInputError,
    TrackstackError,
)

__all__ = ["NO_API_KEY", "translated_errors"]

NO_API_KEY = (
    "set api_key in the wandb config (api_key: ${WANDB_API_KEY}), export WANDB_API_KEY "
    "or run `wandb login`; or set mode: offline to log without W&B's servers"
)


def translate(exc: Exception, where: str) -> TrackstackError:
    """The trackstack error for an exception wandb raised while doing ``where``."""
    from wandb import errors

    message = str(exc) or type(exc).__name__
    if isinstance(exc, errors.AuthenticationError) or (
        isinstance(exc, errors.UsageError) and "api key" in message.lower()
    ):
        return AuthenticationError(f"W&B could not {where}: {message}; {NO_API_KEY}")
    if isinstance(exc, errors.CommError):
        return BackendUnavailableError(f"W&B could not {where}: {message}")
    if isinstance(exc, errors.UsageError | ValueError | TypeError):
        return InvalidInputError(f"W&B rejected the input to {where}: {message}")
    return BackendError(f"W&B failed to {where}: {type(exc).__name__}: {message}")


def translated_errors(where: str) -> AbstractContextManager[None]:
    """Raise trackstack errors, with wandb's exception chained, for what fails inside."""
    return translating(translate, where)
