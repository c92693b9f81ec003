"""Every public call, given bad input, raises a clear trackstack error and loses nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import trackstack
from trackstack import RunStatus
from trackstack.errors import (
    ArtifactNotFoundError,
    InvalidInputError,
    RunNotFoundError,
    TrackstackError,
    UnsupportedOperationError,
)
from trackstack.local.tracker import LocalExperimentTracker

# Any: these calls break the annotations on purpose, as untyped user code would.
Call = Callable[[Any, Any], object]

CASES: list[tuple[str, Call, type[TrackstackError], str]] = [
    ("start_run experiment", lambda t, r: t.start_run(experiment=3), InvalidInputError, "experim"),
    ("start_run empty name", lambda t, r: t.start_run(run_name=" "), InvalidInputError, "run_name"),
    ("start_run tags list", lambda t, r: t.start_run(tags=["a"]), InvalidInputError, "dict"),
    ("start_run unknown id", lambda t, r: t.start_run(run_id="f" * 32), RunNotFoundError, "f" * 32),
    ("start_run parent", lambda t, r: t.start_run(parent=object()), InvalidInputError, "parent"),
    ("start_run settings", lambda t, r: t.start_run(settings={"x": 1}),
     UnsupportedOperationError, "settings"),
    ("get_run none", lambda t, r: t.get_run(None), InvalidInputError, "run_id"),
    ("list_runs int", lambda t, r: t.list_runs(5), InvalidInputError, "experiment"),
    ("log_params list", lambda t, r: r.log_params([1]), InvalidInputError, "dict"),
    ("log_params int key", lambda t, r: r.log_params({1: 2}), InvalidInputError, "key 1"),
    ("log_params unicode ok, then bad", lambda t, r: r.log_params({"größe": 1, "a//b": 1}),
     InvalidInputError, "path-like"),
    ("log_metrics list", lambda t, r: r.log_metrics([1.0]), InvalidInputError, "dict"),
    ("log_metrics empty key", lambda t, r: r.log_metrics({"": 1.0}), InvalidInputError, "''"),
    ("log_metrics huge int", lambda t, r: r.log_metrics({"big": 10**400}), InvalidInputError,
     "'big'"),
    ("log_metrics step str", lambda t, r: r.log_metrics({"m": 1}, step="3"), InvalidInputError,
     "step"),
    ("set_tags list", lambda t, r: r.set_tags(["a"]), InvalidInputError, "dict"),
    ("set_tags bad key", lambda t, r: r.set_tags({"a b/": 1}), InvalidInputError, "path-like"),
    ("log_artifact int", lambda t, r: r.log_artifact(123), InvalidInputError, "path"),
    ("log_artifact missing", lambda t, r: r.log_artifact("gone.txt"), ArtifactNotFoundError,
     "gone.txt"),
    ("end unknown status", lambda t, r: r.end("DONE"), InvalidInputError, "DONE"),
    ("end running", lambda t, r: r.end("RUNNING"), InvalidInputError, "RUNNING"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "error", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_gets_a_clear_error_and_loses_nothing(
    tracker: LocalExperimentTracker, call: Call, error: type[TrackstackError], message: str
) -> None:
    run = tracker.start_run(experiment="kept", tags={"team": "a"})
    run.log_params({"lr": 0.1})
    run.log_metrics({"loss": 1.0}, step=0)
    with pytest.raises(error, match=message):
        call(tracker, run)
    run.log_metrics({"loss": 0.5})
    run.end()
    record = tracker.get_run(run.id)
    assert record.params == {"lr": "0.1"}
    assert [(p.step, p.value) for p in record.metrics["loss"]] == [(0, 1.0), (1, 0.5)]
    assert record.tags == {"team": "a"}
    assert record.status is RunStatus.FINISHED


def test_empty_dicts_and_unicode_are_fine(tracker: LocalExperimentTracker) -> None:
    with tracker.start_run(tags={}) as run:
        run.log_params({})
        run.log_metrics({})
        run.set_tags({})
        run.log_metrics({"verlust/größe": 1.0, "损失": 2.0})
        run.log_params({"模型": "小"})
    record = tracker.get_run(run.id)
    assert set(record.metrics) == {"verlust/größe", "损失"}
    assert record.params == {"模型": "小"}


def test_closed_runs_and_runs_of_another_tracker(tmp_path: Path) -> None:
    ours, theirs = (
        trackstack.load_tracker({"flavor": "local", "config": {"root": tmp_path / name}})
        for name in ("ours", "theirs")
    )
    with ours.start_run() as run:
        run.log_metrics({"m": 1.0})
    calls: list[Callable[[], Any]] = [
        lambda: run.log_metrics({"m": 2.0}),
        lambda: run.log_params({"p": 1}),
        lambda: run.set_tags({"t": 1}),
        lambda: run.log_artifact(__file__),
    ]
    for closed in calls:
        with pytest.raises(InvalidInputError, match="has ended"):
            closed()
    for foreign in (
        lambda: theirs.get_run(run.id),
        lambda: theirs.start_run(run_id=run.id),
        lambda: theirs.start_run(parent=run.id),
    ):
        with pytest.raises(RunNotFoundError, match=run.id):
            foreign()
    assert [p.value for p in ours.get_run(run.id).metrics["m"]] == [1.0]
