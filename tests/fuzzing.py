"""Random calls over the whole run API, checked against a model of what must be stored.

Every call either succeeds, and then what it logged reads back exactly after
the run ends, or raises a ``TrackstackError`` and changes nothing. No call may
write outside the store and journal, nor take long.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from trackstack.errors import TrackstackError
from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.run import Run

CALL_BOUND_SECONDS = 30.0  # a hang, not a speed limit: CI machines are loaded

# Keys from anywhere in Unicode, weighted toward the characters the key rule is about.
keys = st.one_of(
    st.text(st.sampled_from("ab/._- :é中\n\\%$\x00"), min_size=0, max_size=12),
    st.text(max_size=20),
    st.just("x" * 251),
)
scalars = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.text(max_size=30),
)
steps = st.one_of(
    st.none(),
    st.integers(min_value=-2, max_value=10),
    st.sampled_from([2**63 - 2, 2**63 - 1, 2**63]),
    st.floats(min_value=0, max_value=5),
)
param_values = st.one_of(scalars, st.lists(scalars, max_size=3))
params = st.dictionaries(
    keys, st.one_of(param_values, st.dictionaries(keys, param_values, max_size=2)), max_size=3
)
calls = st.lists(
    st.one_of(
        st.tuples(st.just("metrics"), st.dictionaries(keys, scalars, max_size=3), steps),
        st.tuples(st.just("params"), params),
        st.tuples(st.just("tags"), st.dictionaries(keys, scalars, max_size=3)),
        st.tuples(st.just("artifact"), st.text(max_size=12), st.binary(max_size=64)),
    ),
    max_size=12,
)


def stored_text(value: Any) -> str:
    """What a param or tag value must read back as (the README's rule, written out)."""
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


@dataclass
class Expected:
    metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: set[str] = field(default_factory=set)
    next_step: int = 0
    refused: int = 0


def files_outside(root: Path, own: list[Path]) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() and not any(p.is_relative_to(o) for o in own)}


def bounded(call: Callable[[], None]) -> None:
    started = time.monotonic()
    try:
        call()
    finally:
        took = time.monotonic() - started
        assert took < CALL_BOUND_SECONDS, f"a call took {took:.0f} s"


def play(
    tracker: BaseExperimentTracker,
    sequence: list[tuple[Any, ...]],
    workdir: Path,
    watched: Path,
    own: list[Path],
) -> Expected:
    """Run ``sequence`` on a fresh run and check the run read back against the model."""
    before = files_outside(watched, own)
    expected = Expected()
    run = tracker.start_run()
    for index, (kind, *arguments) in enumerate(sequence):
        try:
            bounded(functools.partial(apply, run, kind, arguments, workdir, index, expected))
        except TrackstackError:
            expected.refused += 1
    bounded(run.end)
    record = tracker.get_run(run.id)
    assert set(record.metrics) == set(expected.metrics)
    for key, points in expected.metrics.items():
        found = [(p.step, p.value) for p in record.metrics[key]]
        assert len(found) == len(points), key
        for (step, value), (found_step, found_value) in zip(points, found, strict=True):
            assert step == found_step
            assert value == found_value or (math.isnan(value) and math.isnan(found_value))
    assert record.params == expected.params
    assert {k: v for k, v in record.tags.items() if k in expected.tags} == expected.tags
    assert set(record.artifacts) == expected.artifacts
    assert files_outside(watched, own) - before <= {p for p in workdir.rglob("*") if p.is_file()}
    return expected


def apply(run: Run, kind: str, arguments: list[Any], workdir: Path, index: int,
          expected: Expected) -> None:  # fmt: skip
    if kind == "metrics":
        values, step = arguments
        run.log_metrics(values, step=step)
        if values:
            used = expected.next_step if step is None else int(step)
            expected.next_step = used + 1
            for key, value in values.items():
                expected.metrics.setdefault(key, []).append((used, float(value)))
    elif kind == "params":
        run.log_params(arguments[0])
        for key, value in arguments[0].items():
            if isinstance(value, dict) and value:
                for inner, item in value.items():
                    expected.params[f"{key}.{inner}"] = stored_text(item)
            else:
                expected.params[key] = "{}" if value == {} else stored_text(value)
    elif kind == "tags":
        run.set_tags(arguments[0])
        expected.tags.update({k: stored_text(v) for k, v in arguments[0].items()})
    else:
        name, content = arguments
        folder = workdir / f"call-{index}"
        folder.mkdir()
        try:
            path = folder / name
            path.write_bytes(content)
        except (OSError, ValueError):  # a name the file system refuses: nothing to log
            return
        run.log_artifact(path)
        expected.artifacts.add(path.name)
