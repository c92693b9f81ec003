"""The rules every backend agrees on: keys, metric values, steps, params, paths.

All checks run before anything is buffered or sent, so an invalid call is
rejected whole and what was logged earlier stays as it was.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import operator
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from trackstack.errors import InvalidInputError, ParamConflictError

__all__ = [
    "KEY_RULE",
    "MAX_KEY_LENGTH",
    "MAX_STEP",
    "ParamValue",
    "check_artifact_path",
    "check_key",
    "check_step",
    "flatten_params",
    "metric_value",
    "param_text",
    "tag_values",
]

MAX_KEY_LENGTH = 250
# Steps are stored as signed 64-bit integers by MLflow's SQL stores and by W&B.
MAX_STEP = 2**63 - 1
KEY_RULE = (
    "keys are Unicode letters and digits, '_', '-', '.', '/', ':' and spaces, "
    f"at most {MAX_KEY_LENGTH} characters, not starting or ending with '/', "
    "with no '//' and no '.' or '..' path segment"
)
# \w is Unicode-aware: letters, digits and the underscore.
_KEY_CHARS = re.compile(r"[\w\-./: ]+")


class ParamValue(NamedTuple):
    """A param as the backend receives it: the stored text and the value it came from."""

    text: str
    value: Any


def _shown(value: object) -> str:
    try:
        text = repr(value)
    except Exception:  # a value whose __repr__ raises is named by its type alone
        return f"<a {type(value).__name__} that cannot be shown>"
    size = len(value) if isinstance(value, str) else len(text)
    return text if len(text) <= 80 else f"{text[:60]}...' ({size} characters)"


def check_key(key: object, kind: str) -> str:
    """Return ``key`` if every backend accepts it; never rewrite it."""
    if not isinstance(key, str):
        raise InvalidInputError(
            f"{kind} key {_shown(key)} is a {type(key).__name__}; keys must be strings"
        )
    problem = None
    if not key:
        problem = "it is empty"
    elif len(key) > MAX_KEY_LENGTH:
        problem = f"it has {len(key)} characters"
    elif not _KEY_CHARS.fullmatch(key):
        bad = sorted({c for c in key if not _KEY_CHARS.fullmatch(c)})
        problem = "it contains " + ", ".join(repr(c) for c in bad)
    elif any(segment in ("", ".", "..") for segment in key.split("/")):
        problem = "it is path-like"
    if problem:
        raise InvalidInputError(f"invalid {kind} key {_shown(key)}: {problem}; {KEY_RULE}")
    return key


def metric_value(key: str, value: object) -> float:
    """Convert a metric value to float, accepting real numbers and numpy scalars only."""
    if type(value) is float:  # the common case, without the ABC checks below
        return value
    converted: float | None = None
    # A value's own __float__ may raise anything; that is a bad value, not a crash.
    with contextlib.suppress(Exception):
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            converted = float(value)  # OverflowError: an int beyond float's range
        else:
            # numpy scalars of non-Real kinds and 0-d arrays, without importing numpy.
            dtype_kind = getattr(getattr(value, "dtype", None), "kind", None)
            if dtype_kind in ("i", "u", "f") and getattr(value, "shape", None) == ():
                converted = float(value)  # type: ignore[arg-type]
    if converted is None:
        raise InvalidInputError(
            f"metric {key!r} has value {_shown(value)} of type {type(value).__name__}; "
            "metric values must be real numbers (int, float, a numpy scalar or 0-d array; "
            "NaN and ±inf are allowed, bool, None and strings are not)"
        )
    return converted


def check_step(step: object) -> int:
    """Return ``step`` as an int if it is a whole number from 0 to 2**63 - 1."""
    is_bool = isinstance(step, bool) or getattr(getattr(step, "dtype", None), "kind", "") == "b"
    try:
        whole = None if is_bool else operator.index(step)  # type: ignore[arg-type]
    except TypeError:
        whole = None
    if whole is None:
        hint = ""
        if isinstance(step, float) and math.isfinite(step) and step.is_integer():
            hint = f" (pass int({step!r}))"
        raise InvalidInputError(
            f"step {_shown(step)} of type {type(step).__name__} is not allowed{hint}; "
            "steps are integers (int or a numpy integer), since backends round, reject "
            "or corrupt fractional steps"
        )
    if not 0 <= whole <= MAX_STEP:
        raise InvalidInputError(f"step {whole} is out of range; steps run from 0 to 2**63 - 1")
    return whole


def param_text(value: object, key: str = "", kind: str = "param") -> str:
    """The string a param or tag value is stored as: ``str()``, JSON for lists and tuples.

    A value that cannot become text (circular, too deeply nested, a ``__str__``
    that raises or returns no string) is an ``InvalidInputError`` naming ``key``.
    """
    if isinstance(value, str):
        return str.__str__(value)  # a str subclass's own __str__ is not the stored text
    try:
        if isinstance(value, list | tuple) or (isinstance(value, Mapping) and not value):
            return json.dumps(value, default=str, ensure_ascii=False)
        text = str(value)
    except RecursionError:
        problem = "it is nested too deeply (or contains itself)"
    except Exception as error:  # whatever the value's own __str__ raises
        problem = f"turning it into text raised {type(error).__name__}"
        if isinstance(error, ValueError) and "Circular reference" in str(error):
            problem = "it contains itself"
    else:
        if isinstance(text, str):
            return str.__str__(text)
        problem = f"its __str__ returned a {type(text).__name__}"
    raise InvalidInputError(
        f"{kind} {key!r} cannot be stored: {problem}; pass a string, number, bool, "
        "or a list or dict of those"
    )


def flatten_params(params: Mapping[str, Any]) -> dict[str, ParamValue]:
    """Flatten nested dicts with dots and turn each value into its stored text."""
    if not isinstance(params, Mapping):
        raise InvalidInputError(
            f"log_params takes a dict of name to value, got a {type(params).__name__}"
        )
    flat: dict[str, ParamValue] = {}

    def walk(prefix: str, mapping: Mapping[Any, Any], inside: tuple[int, ...]) -> None:
        for raw_key, value in mapping.items():
            if not isinstance(raw_key, str):
                check_key(raw_key, "param")
            name = f"{prefix}.{raw_key}" if prefix else raw_key
            if isinstance(value, Mapping) and value:
                if id(value) in inside:
                    raise InvalidInputError(f"param {name!r} contains itself; pass a tree of dicts")
                if len(name) > MAX_KEY_LENGTH:  # stops a deep tree before Python's recursion limit
                    check_key(name, "param")
                walk(name, value, (*inside, id(value)))
                continue
            check_key(name, "param")
            text = param_text(value, name)
            if name in flat and flat[name].text != text:
                raise ParamConflictError(
                    f"param {name!r} is given twice in one call, as {flat[name].text!r} "
                    f"and {text!r}; give each flattened name once"
                )
            flat[name] = ParamValue(text, value)

    walk("", params, (id(params),))
    return flat


def tag_values(tags: Mapping[str, Any]) -> dict[str, str]:
    """Check tag keys and turn every value into a string."""
    if not isinstance(tags, Mapping):
        raise InvalidInputError(f"tags must be a dict of name to value, got {type(tags).__name__}")
    return {check_key(key, "tag"): param_text(value, key, "tag") for key, value in tags.items()}


def check_artifact_path(artifact_path: str | None) -> str | None:
    """Return a relative ``/``-separated folder inside the run's artifacts, or None."""
    if artifact_path is None or artifact_path == "":
        return None
    if not isinstance(artifact_path, str):
        raise InvalidInputError(
            f"artifact_path must be a string, got {type(artifact_path).__name__}"
        )
    segments = artifact_path.split("/")
    if "\\" in artifact_path or any(s in ("", ".", "..") for s in segments):
        raise InvalidInputError(
            f"artifact_path {artifact_path!r} must be a relative folder with '/' separators, "
            "no empty, '.' or '..' segment and no leading or trailing '/', e.g. 'models/best'"
        )
    return artifact_path
