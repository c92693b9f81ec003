"""How trackstack's runs are laid out in W&B, both ways: names, config, history rows, tags.

Written by the tracker, read back by the tracker (from run files or
``wandb.Api``) and by the conformance reader.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from trackstack.enums import RunStatus
from trackstack.errors import InvalidInputError
from trackstack.records import LazyHistories, MetricPoint, RunRecord, summarize
from trackstack.validation import ParamValue, param_text
from trackstack_wandb.runfile import RunState

__all__ = [
    "EXIT_CODES",
    "META_KEY",
    "RESERVED_METRICS",
    "STEP_KEY",
    "config_updates",
    "history_rows",
    "params_from_config",
    "points_from_history",
    "record_from_state",
    "status_from_exit_code",
    "summary_meta",
    "summary_of",
    "tags_from_wandb",
    "timestamp",
    "wandb_tags",
]

STEP_KEY = "trackstack/step"
"""The metric holding trackstack's step in every history row; every metric's x-axis."""
META_KEY = "_trackstack"
"""Config section with what W&B has no field for: exact tags and the parent run's id."""
RESERVED_METRICS = frozenset({"_step", "_runtime", "_timestamp", STEP_KEY})
"""History keys W&B or trackstack write themselves."""
_RESERVED_CONFIG = frozenset({"_wandb", META_KEY})
MAX_WANDB_TAG = 64
EXIT_CODES = {RunStatus.FINISHED: 0, RunStatus.FAILED: 1, RunStatus.KILLED: 130}
_JSON_SCALARS = (str, int, float, bool, type(None))


def history_rows(points: Sequence[tuple[str, MetricPoint]]) -> list[dict[str, Any]]:
    """One ``wandb.log`` row per step, in logging order, each with trackstack's step.

    W&B's own ``_step`` is left to count rows, so no point is dropped for a
    step lower than an earlier one; a key repeated at one step starts a new row.
    """
    rows: list[dict[str, Any]] = []
    row: dict[str, Any] = {}
    for key, point in points:
        if not rows or row[STEP_KEY] != point.step or key in row:
            row = {STEP_KEY: point.step, "_timestamp": point.timestamp}
            rows.append(row)
        row[key] = point.value
    return rows


def points_from_history(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[MetricPoint]]:
    """Every numeric value of every row, at trackstack's step (W&B's ``_step`` if absent)."""
    metrics: dict[str, list[MetricPoint]] = {}
    for row in rows:
        step = row.get(STEP_KEY, row.get("_step", 0))
        timestamp = row.get("_timestamp", 0.0)
        for key, value in row.items():
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if number and key not in RESERVED_METRICS:
                metrics.setdefault(key, []).append(MetricPoint(int(step), value, timestamp))
    return metrics


def config_value(param: ParamValue) -> Any:
    """The value W&B's config holds for a param: its own type where that reads back the same."""
    if type(param.value) in _JSON_SCALARS:
        return param.value
    try:
        candidate = json.loads(param.text)  # lists, tuples, {} and numbers such as numpy's
    except ValueError:
        return param.text
    return candidate if param_text(candidate) == param.text else param.text


def config_updates(
    current: Mapping[str, Any], params: Mapping[str, ParamValue]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The config with ``params`` nested in (dotted names as dicts), and its changed top keys.

    Raises ``InvalidInputError``, changing nothing, for a name W&B's nested
    config cannot hold next to the others (``a`` as a value and ``a.b``).
    """
    tree = copy.deepcopy(dict(current))
    touched: set[str] = set()
    for key, param in params.items():
        path = key.split(".")
        if "" in path:
            path = [key]  # "a..b" or ".a" cannot nest; W&B keeps it as one flat name
        if path[0] in _RESERVED_CONFIG:
            raise InvalidInputError(f"param {key!r}: {path[0]!r} is W&B's; use another name")
        node = tree
        for depth, name in enumerate(path[:-1]):
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                taken = ".".join(path[: depth + 1])
                raise InvalidInputError(
                    f"param {key!r} cannot nest under param {taken!r}, which W&B's config "
                    "already holds as a value; rename one of them"
                )
        if isinstance(node.get(path[-1]), dict):
            raise InvalidInputError(
                f"param {key!r} cannot be a value: W&B's config already holds params "
                f"under {key + '.'!r}; rename one of them"
            )
        node[path[-1]] = config_value(param)
        touched.add(path[0])
    return tree, {top: tree[top] for top in touched}


def params_from_config(config: Mapping[str, Any]) -> dict[str, str]:
    """Config values flattened with dots, as the strings trackstack made of them."""

    def walk(prefix: str, mapping: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        for key, value in mapping.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, Mapping) and value:
                yield from walk(name, value)
            else:
                yield name, param_text(value)

    return dict(walk("", {k: v for k, v in config.items() if k not in _RESERVED_CONFIG}))


def wandb_tags(tags: Mapping[str, str]) -> list[str]:
    """W&B's ``key:value`` tags; W&B holds at most 64 characters, so longer ones stay out."""
    joined = (f"{key}:{value}" for key, value in tags.items())
    return [tag for tag in joined if len(tag) <= MAX_WANDB_TAG]


def tags_from_wandb(tags: Sequence[str]) -> dict[str, str]:
    """``key:value`` tags read back, split at the first colon; a bare tag maps to ``""``."""
    return dict(tag.partition(":")[::2] for tag in tags)


def status_from_exit_code(exit_code: int | None) -> RunStatus:
    if exit_code is None:
        return RunStatus.RUNNING
    if exit_code == 0:
        return RunStatus.FINISHED
    return RunStatus.KILLED if exit_code == 130 else RunStatus.FAILED


def timestamp(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def summary_meta(summary: Mapping[str, MetricPoint]) -> dict[str, Any]:
    """A run's summary as trackstack's config section holds it (JSON: ±inf and NaN as text)."""
    return {
        "summary": {
            key: [p.step, p.value if math.isfinite(p.value) else repr(p.value), p.timestamp]
            for key, p in summary.items()
        }
    }


def summary_of(state: RunState) -> dict[str, MetricPoint]:
    """The summary trackstack wrote into the run's config, else worked out from its history."""
    written = (state.config.get(META_KEY) or {}).get("summary")
    if not isinstance(written, dict):
        return summarize(points_from_history(state.history))
    return {key: MetricPoint(int(step), float(value), float(at)) for key, (step, value, at)
            in written.items()}  # fmt: skip


def record_from_state(state: RunState, url: str | None) -> RunRecord:
    """An offline run as trackstack's record; W&B records its runtime in whole seconds.

    Its histories are decoded only when used: the summary comes from trackstack's
    config section (runs written before there was one decode them at once).
    """
    meta = state.config.get(META_KEY) or {}
    status = status_from_exit_code(state.exit_code)
    ended = None if state.last_start is None else state.last_start + state.runtime
    summary = summary_of(state)
    return RunRecord(
        id=state.run_id,
        name=state.name or None,
        experiment=state.project,
        status=status,
        params=params_from_config(state.config),
        tags=dict(meta.get("tags") or tags_from_wandb(state.tags)),
        metrics=LazyHistories(summary, lambda: points_from_history(state.history)),
        summary=summary,
        artifacts=sorted(set(state.artifacts)),
        start_time=timestamp(state.start_time),
        end_time=None if status is RunStatus.RUNNING else timestamp(ended),
        url=url,
        parent_id=meta.get("parent_id"),
    )
