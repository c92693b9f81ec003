"""Which config fields are secrets, and the warning for secrets given as plain text."""

from __future__ import annotations

import typing
import warnings
from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel, SecretStr

from trackstack.errors import PlainTextSecretWarning

__all__ = ["secret_field_names", "warn_about_plain_text"]


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


def warn_about_plain_text(model: type[BaseModel], data: Mapping[str, Any]) -> None:
    """Warn once per secret field whose raw value is a plain string.

    Values resolved from ``${VAR}`` arrive already wrapped in ``SecretStr``, so
    only literals written into a file or passed as ``str`` in code warn.
    """
    for name in sorted(secret_field_names(model)):
        if isinstance(data.get(name), str):
            warnings.warn(
                f"config field {name!r} of {model.__name__} is a secret given as plain text; "
                f"read it from the environment instead, e.g. {name}: ${{{name.upper()}}}",
                PlainTextSecretWarning,
                stacklevel=2,
            )
