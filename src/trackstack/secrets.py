"""Which config fields are secrets, the warning for secrets given as plain text, and
the clearing of the frames an SDK's error passed through."""

from __future__ import annotations

import traceback
import typing
import warnings
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel, SecretStr

from trackstack.errors import PlainTextSecretWarning

__all__ = [
    "exception_chain",
    "forget_locals",
    "secret_field_names",
    "secret_variable",
    "warn_about_plain_text",
]


def _mentions_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_mentions_secret(arg) for arg in typing.get_args(annotation))


@cache
def secret_field_names(model: type[BaseModel]) -> frozenset[str]:
    """The fields of ``model`` typed ``SecretStr`` (or ``SecretStr | None``)."""
    return frozenset(
        name for name, info in model.model_fields.items() if _mentions_secret(info.annotation)
    )


def secret_variable(model: type[BaseModel], field: str, prefix: str = "") -> str:
    """The environment variable a secret field is best read from: the backend SDK's own
    (``MLFLOW_TRACKING_TOKEN``), from the config's ``environment_prefix``, else ``prefix``."""
    own = getattr(model, "environment_prefix", "") or prefix
    return f"{own}{field}".upper()


def warn_about_plain_text(model: type[BaseModel], data: Mapping[str, Any]) -> None:
    """Warn once per secret field whose raw value is a plain string.

    Values resolved from ``${VAR}`` arrive already wrapped in ``SecretStr``, so
    only literals written into a file or passed as ``str`` in code warn.
    """
    for name in sorted(secret_field_names(model)):
        if isinstance(data.get(name), str):
            warnings.warn(
                f"config field {name!r} of {model.__name__} is a secret given as plain text; "
                f"read it from the environment instead, e.g. "
                f"{name}: ${{{secret_variable(model, name)}}}",
                PlainTextSecretWarning,
                stacklevel=2,
            )


def forget_locals(error: BaseException) -> None:
    """Clear the local variables of the finished frames ``error`` and its causes passed.

    An SDK's frames hold credentials in plain text (an ``Authorization``
    header, a settings object), and error reporters such as Sentry record
    the locals of every frame in a traceback. Frames still running (the
    caller's) keep theirs; line numbers stay for the printed traceback.
    """
    for linked in exception_chain(error):
        traceback.clear_frames(linked.__traceback__)


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception it was raised from or while handling, once each."""
    seen: set[int] = set()
    chain: list[BaseException | None] = [error]
    while chain:
        current = chain.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        chain += [current.__cause__, current.__context__]
