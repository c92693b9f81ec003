"""Building a tracker from a config file, a dict or the environment.

The file names a flavor and its config::

    experiment_tracker:
      flavor: mlflow
      name: team-mlflow
      config:
        tracking_uri: http://127.0.0.1:5000
        tracking_token: ${MLFLOW_TRACKING_TOKEN}
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, SecretStr

from trackstack.errors import ConfigError, FlavorNotFoundError, MissingExtraError, TrackstackError
from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.ranks import LOG_ON
from trackstack.registry import get_flavor
from trackstack.secrets import secret_field_names
from trackstack.stack import Flavor

__all__ = ["CONFIG_ENV_VAR", "DEFAULT_CONFIG_FILES", "check_config", "interpolate", "load_tracker"]

CONFIG_ENV_VAR = "TRACKSTACK_CONFIG"
DEFAULT_CONFIG_FILES = ("trackstack.yaml", "trackstack.toml")
_SECTION = "experiment_tracker"
_MEMBERS = "experiment_trackers"
_SPEC_KEYS = ("flavor", "name", "config", "log_on")
_REFERENCE = re.compile(r"\$\$|\$\{([^}]*)\}")
# A tracker config is a few dozen values; these bound what a hostile file can cost.
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_VALUES = 10_000
MAX_CONFIG_DEPTH = 32
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def load_tracker(
    source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
) -> BaseExperimentTracker:
    """Build the tracker a config describes.

    ``source`` is a YAML or TOML file, or a dict of the same shape. Without
    it: the file named by ``$TRACKSTACK_CONFIG``, else ``./trackstack.yaml``,
    else ``./trackstack.toml``, else the local store in ``./.trackstack``.
    """
    if source is None:
        source = _default_source()
        if source is None:
            return _build({"flavor": "local"}, "the default config")
    if isinstance(source, Mapping):
        return _build(source, "the config dict")
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        return _build(_read(path), str(path), path.absolute().parent)
    raise ConfigError(f"load_tracker takes a file path or a dict, got a {type(source).__name__}")


def _default_source() -> Path | None:
    named = os.environ.get(CONFIG_ENV_VAR)
    if named:
        if not Path(named).is_file():
            raise ConfigError(
                f"${CONFIG_ENV_VAR} names {named!r}, which is not a file; "
                f"fix the path or unset {CONFIG_ENV_VAR}"
            )
        return Path(named)
    return next((Path(name) for name in DEFAULT_CONFIG_FILES if Path(name).is_file()), None)


def _read(path: Path) -> Any:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"config file {str(path)!r} is larger than {MAX_CONFIG_BYTES:,} bytes; "
            "a tracker config is a few lines: is this the right file?"
        )
    import yaml  # only files need it: a dict or the default config loads without

    try:
        text = data.decode("utf-8")
        if path.suffix == ".toml":
            return tomllib.loads(text)
        return yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        # YAML reads "{" of ${VAR} as a mapping inside a flow {...} or [...]: say so.
        flow = isinstance(exc, yaml.YAMLError) and b"${" in data
        hint = ' (quote a value holding ${VAR} in {...} or [...]: "${VAR}/x")' if flow else ""
        raise ConfigError(f"config file {str(path)!r} is not valid{hint}: {exc}") from None
    except RecursionError:
        raise ConfigError(
            f"config file {str(path)!r} nests deeper than its parser can follow; "
            f"a config nests at most {MAX_CONFIG_DEPTH} levels"
        ) from None


def _check_shape(data: Any, origin: str) -> None:
    """Refuse a config deeper than ``MAX_CONFIG_DEPTH`` or of more than ``MAX_CONFIG_VALUES``.

    Values are counted as they would be copied: a YAML alias (or a dict
    shared twice) counts every time it is used, so an alias bomb stops here,
    after at most ``MAX_CONFIG_VALUES`` steps, instead of expanding.
    """
    budget = MAX_CONFIG_VALUES
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise ConfigError(
                f"{origin}: the config expands to more than {MAX_CONFIG_VALUES:,} values "
                "(YAML aliases used over and over?); a tracker config is a few dozen"
            )
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigError(
                f"{origin}: the config nests deeper than {MAX_CONFIG_DEPTH} levels "
                "(or contains itself)"
            )
        if isinstance(value, Mapping):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list | tuple):
            stack.extend((item, depth + 1) for item in value)


def interpolate(text: str, where: str, problems: list[str] | None = None) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}`` from the environment, ``$$`` with ``$``.

    With ``problems``, each bad reference is added there instead of raised.
    """

    def replace(match: re.Match[str]) -> str:
        try:
            return substitute(match)
        except ConfigError as exc:
            if problems is None:
                raise
            problems.append(str(exc))
            return ""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, has_default, default = match.group(1).partition(":-")
        if not _VARIABLE.fullmatch(name):
            raise ConfigError(
                f"{where}: {match.group(0)!r} is not a valid reference; "
                "write ${VAR} or ${VAR:-default}, and $$ for a literal $"
            )
        value = os.environ.get(name)
        if has_default and not value:
            return default
        if value is None:
            raise ConfigError(
                f"{where}: environment variable {name} is not set; set it, or give a "
                f"default with ${{{name}:-default}}"
            )
        return value

    return _REFERENCE.sub(replace, text)


def _resolve(value: Any, where: str, problems: list[str] | None = None) -> Any:
    if isinstance(value, str):
        return interpolate(value, where, problems)
    if isinstance(value, Mapping):
        return {k: _resolve(item, f"{where}.{k}", problems) for k, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, f"{where}[{i}]", problems) for i, item in enumerate(value)]
    return value


def _build(data: Any, origin: str, config_dir: Path | None = None) -> BaseExperimentTracker:
    """The tracker ``data`` describes; relative paths in it resolve against ``config_dir``."""
    members = _members(data, origin)
    if members is not None:
        from trackstack.fanout import fan_out

        trackers = [_build(member, f"{origin}, tracker {index + 1}", config_dir)
                    for index, member in enumerate(members)]  # fmt: skip
        try:
            return fan_out(trackers)
        except TrackstackError as exc:
            raise ConfigError(f"{origin}: {exc}") from None
    spec = _spec(data, origin)
    flavor = _flavor(spec.flavor, origin)
    config, from_env = _config_values(flavor.config_class, spec.config, origin)
    try:
        flavor.check_requirements()
        built = flavor.validate_config(config, hidden=from_env, config_dir=config_dir)
        tracker = flavor.create(spec.name or flavor.name, config=built)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    if not isinstance(tracker, BaseExperimentTracker):
        raise ConfigError(f"{origin}: flavor {spec.flavor!r} does not build an experiment tracker")
    tracker.log_on = spec.log_on
    return tracker


def _flavor(name: str, origin: str) -> Flavor:
    """``get_flavor``, its error naming where the flavor was asked for."""
    try:
        return get_flavor(name)
    except (FlavorNotFoundError, MissingExtraError) as exc:
        raise type(exc)(f"{origin}: {exc}") from None


def _members(data: Any, origin: str) -> list[Any] | None:
    """The ``experiment_trackers:`` list of a fan-out config, else None."""
    if not isinstance(data, Mapping) or _MEMBERS not in data:
        return None
    extra = sorted(set(data) - {_MEMBERS})
    if extra:
        raise ConfigError(
            f"{origin}: unknown top-level key(s) {extra} beside {_MEMBERS!r}; give either "
            f"{_SECTION!r} (one tracker) or {_MEMBERS!r} (a list of them)"
        )
    members = data[_MEMBERS]
    if not isinstance(members, list) or not members:
        raise ConfigError(
            f"{origin}: {_MEMBERS!r} must be a list of trackers, each as the {_SECTION!r} "
            "section is (flavor, name, config)"
        )
    return members


class _Spec(NamedTuple):
    flavor: str
    name: str | None
    config: Mapping[str, Any]
    log_on: str


def _spec(data: Any, origin: str) -> _Spec:
    """The flavor's name, the tracker's name, the raw config and the rank policy."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{origin}: expected a mapping with an {_SECTION!r} section")
    _check_shape(data, origin)
    if _SECTION in data:
        extra = sorted(set(data) - {_SECTION})
        if extra:
            raise ConfigError(
                f"{origin}: unknown top-level key(s) {extra}; only {_SECTION!r} "
                f"(or {_MEMBERS!r}, a list of trackers)"
            )
        spec = data[_SECTION]
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{origin}: {_SECTION!r} must be a mapping")
    else:
        spec = data
    unknown = sorted(set(spec) - set(_SPEC_KEYS))
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), _SPEC_KEYS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"{origin}: unknown key(s) {unknown} in the tracker section{hint}; "
            f"valid keys: {', '.join(_SPEC_KEYS)}"
        )
    flavor_name = _resolve(spec.get("flavor"), "flavor")
    if not isinstance(flavor_name, str) or not flavor_name:
        raise ConfigError(f"{origin}: 'flavor' is required and must be a name, e.g. flavor: local")
    if _has_reference(spec.get("flavor")):
        try:
            get_flavor(flavor_name)
        except FlavorNotFoundError:  # say which variable, never what it holds
            raise FlavorNotFoundError(
                f"{origin}: flavor {spec['flavor']!r} names no installed flavor "
                "(`trackstack flavors` lists them); check the variable"
            ) from None
    raw_config = spec.get("config") or {}
    if not isinstance(raw_config, Mapping):
        raise ConfigError(f"{origin}: 'config' must be a mapping of field to value")
    name = _resolve(spec.get("name"), "name")
    log_on = _resolve(spec.get("log_on", "all"), "log_on")
    if log_on not in LOG_ON:
        shown = spec["log_on"] if _has_reference(spec.get("log_on")) else log_on
        raise ConfigError(f"{origin}: log_on is {shown!r}; use one of {', '.join(LOG_ON)}")
    return _Spec(flavor_name, None if name is None else str(name), raw_config, log_on)


def _has_reference(raw: Any) -> bool:
    """Whether ``raw`` (or a string anywhere in it) reads a ``${VAR}``."""
    if isinstance(raw, str):
        return _REFERENCE.search(raw.replace("$$", "")) is not None
    if isinstance(raw, Mapping):
        return any(_has_reference(item) for item in raw.values())
    if isinstance(raw, list):
        return any(_has_reference(item) for item in raw)
    return False


def _config_values(
    model: type[BaseModel],
    raw_config: Mapping[str, Any],
    origin: str,
    problems: list[str] | None = None,
) -> tuple[dict[str, Any], set[str]]:
    """The config with ``${VAR}`` replaced, and the fields that read one (never echoed)."""
    secrets = secret_field_names(model)
    config: dict[str, Any] = {}
    from_env = {field for field, raw in raw_config.items() if _has_reference(raw)}
    for field, raw in raw_config.items():
        value = _resolve(raw, f"{origin}: config.{field}", problems)
        # A secret read through ${VAR} is not plain text: hand it over already wrapped.
        wrap = field in secrets and field in from_env and isinstance(raw, str)
        config[field] = SecretStr(value) if wrap else value
    return config, from_env


def _check_members(
    members: list[Any], origin: str, config_dir: Path
) -> tuple[list[str], list[str]]:
    import warnings

    errors: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for index, member in enumerate(members):
            try:
                _build(member, f"{origin}, tracker {index + 1}", config_dir)
            except TrackstackError as exc:
                errors.append(str(exc))
    return errors, [f"{origin}: {warning.message}" for warning in caught]


def describe_config(source: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The config in effect (``trackstack config show``): where it was found, the tracker it
    builds, and each config field's value and where that came from (the file, the
    environment through ``${VAR}``, or the default). Secrets are masked; a value read
    through ``${VAR}`` is shown as its reference, never as what the variable holds."""
    if source is not None:
        path: Path | None = Path(source)
        found = f"{path} (given)"
    else:
        path = _default_source()
        named = os.environ.get(CONFIG_ENV_VAR)
        found = f"{path} (from ${CONFIG_ENV_VAR})" if named else f"{path} (found here)"
    if path is None:
        data: Any = {"flavor": "local"}
        found = (
            f"none (${CONFIG_ENV_VAR} is unset and there is no {' or '.join(DEFAULT_CONFIG_FILES)} "
            "here): the default local store"
        )
        tracker = _build(data, "the default config")
    else:
        data = _read(path)
        tracker = _build(data, str(path), path.absolute().parent)
    shown = {"source": found, "file": None if path is None else str(path)}
    members = _members(data, str(path))
    if members is None:
        return {**shown, **_described(tracker, _spec(data, str(path)).config)}
    trackers = getattr(tracker, "trackers", [])
    described = [
        _described(member, _spec(raw, str(path)).config)
        for member, raw in zip(trackers, members, strict=True)
    ]
    return {**shown, "flavor": tracker.flavor, "name": tracker.name, "log_on": tracker.log_on,
            "members": described}  # fmt: skip


def _described(tracker: BaseExperimentTracker, raw: Mapping[str, Any]) -> dict[str, Any]:
    """One tracker's flavor, name and each field's value and where it came from."""
    secrets = secret_field_names(type(tracker.config))
    dumped = tracker.config.model_dump(mode="json")
    fields: dict[str, dict[str, str]] = {}
    for field in type(tracker.config).model_fields:
        given = raw.get(field)
        origin = "default" if field not in raw else "file"
        if _has_reference(given):
            origin = f"environment: {given}"
        if field in secrets:
            value = "**********" if dumped[field] is not None else "null"
        elif _has_reference(given):
            value = str(given)
        else:
            value = dumped[field] if isinstance(dumped[field], str) else json.dumps(dumped[field])
        fields[field] = {"value": value, "from": origin}
    return {
        "flavor": tracker.flavor,
        "name": tracker.name,
        "log_on": tracker.log_on,
        "journal": str(tracker.journal_folder()),
        "config": fields,
    }


def check_config(path: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """Every problem of a config file at once, as ``load_tracker`` would meet them one by one.

    Returns the errors (unreadable file, bad shape, unknown flavor, missing
    ``${VAR}``, unknown fields, wrong types) and the warnings (plain-text secrets).
    """
    import warnings

    origin = str(path)
    try:
        data = _read(Path(path))
        members = _members(data, origin)
        if members is not None:  # a fan-out: each member checked as a file of its own
            return _check_members(members, origin, Path(path).absolute().parent)
        spec = _spec(data, origin)
        flavor = _flavor(spec.flavor, origin)
    except TrackstackError as exc:
        return [str(exc)], []
    errors: list[str] = []
    config, from_env = _config_values(flavor.config_class, spec.config, origin, errors)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            flavor.check_requirements()
            built = flavor.validate_config(config, from_env, Path(path).absolute().parent)
            flavor.create(spec.name or flavor.name, config=built)
        except ConfigError as exc:
            errors.append(f"{origin}: {exc}")
    return errors, [f"{origin}: {warning.message}" for warning in caught]
