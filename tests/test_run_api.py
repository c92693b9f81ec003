"""The run API against the local store: logging, read-back, statuses, resume, nesting."""

from __future__ import annotations

import math
from datetime import UTC
from pathlib import Path

import numpy as np
import pytest

import trackstack
from trackstack import RunStatus
from trackstack.errors import InvalidInputError, ParamConflictError, RunNotFoundError
from trackstack.local.tracker import LocalExperimentTracker


def make_model_dir(parent: Path) -> Path:
    model = parent / "model"
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(b"\x00\x01")
    (model / "sub" / "notes.txt").write_text("notes")
    return model


def test_everything_logged_is_read_back(tracker: LocalExperimentTracker, tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"pickle")
    model = make_model_dir(tmp_path)
    with tracker.start_run(experiment="demo", run_name="r1", tags={"team": "a"}) as run:
        run.log_params(
            {"lr": 0.01, "layers": 3, "opt": {"name": "adam", "betas": [0.9, 0.99]}, "x": None}
        )
        run.log_params({"flag": True, "shape": (2, 3), "empty": {}})
        run.log_metrics({"loss": 0.5, "acc": 0.9}, step=0)
        run.log_metrics({"loss": 0.25}, step=1)
        run.set_tags({"stage": "dev"})
        run.log_artifact(tmp_path / "model.pkl")
        run.log_artifact(str(tmp_path / "model.pkl"), artifact_path="copies/best")
        run.log_artifact(model)
        assert tracker.get_run(run.id).status is RunStatus.RUNNING
    assert run.status is RunStatus.FINISHED

    record = tracker.get_run(run.id)
    assert record.id == run.id
    assert record.name == "r1"
    assert record.experiment == "demo"
    assert record.status is RunStatus.FINISHED
    assert record.params == {
        "lr": "0.01",
        "layers": "3",
        "opt.name": "adam",
        "opt.betas": "[0.9, 0.99]",
        "x": "None",
        "flag": "True",
        "shape": "[2, 3]",
        "empty": "{}",
    }
    assert record.tags == {"team": "a", "stage": "dev"}
    assert [(p.step, p.value) for p in record.metrics["loss"]] == [(0, 0.5), (1, 0.25)]
    assert [(p.step, p.value) for p in record.metrics["acc"]] == [(0, 0.9)]
    assert sorted(record.artifacts) == [
        "copies/best/model.pkl",
        "model.pkl",
        "model/sub/notes.txt",
        "model/weights.bin",
    ]
    assert record.start_time is not None
    assert record.start_time.tzinfo is UTC
    assert record.end_time is not None
    assert record.end_time >= record.start_time
    assert record.url == run.url
    assert run.url is not None
    assert record.parent_id is None
    point = record.metrics["loss"][0]
    assert record.start_time.timestamp() - 1 <= point.timestamp <= record.end_time.timestamp()


def test_design_script_with_no_config(isolated_cwd: Path) -> None:
    """What a user who read only DESIGN.md does, with no config anywhere."""
    model = make_model_dir(isolated_cwd)
    tracker = trackstack.load_tracker()
    assert tracker.flavor == "local"
    with tracker.start_run(experiment="design", run_name="ok") as run:
        run.log_params({"lr": 0.1, "epochs": 500, "optimizer": "sgd"})
        for step in range(500):
            run.log_metrics({"loss": 1 / (step + 1), "acc": step / 500}, step=step)
        run.set_tags({"team": "a", "stage": "dev"})
        run.log_artifact(model)
    record = trackstack.load_tracker().get_run(run.id)
    assert record.params == {"lr": "0.1", "epochs": "500", "optimizer": "sgd"}
    assert [p.value for p in record.metrics["loss"]] == [1 / (s + 1) for s in range(500)]
    assert [p.step for p in record.metrics["acc"]] == list(range(500))
    assert record.tags == {"team": "a", "stage": "dev"}
    assert sorted(record.artifacts) == ["model/sub/notes.txt", "model/weights.bin"]
    assert (isolated_cwd / ".trackstack" / "trackstack.db").is_file()

    with pytest.raises(RuntimeError, match="boom"), tracker.start_run(experiment="design") as bad:
        bad.log_metrics({"loss": 1.0})
        raise RuntimeError("boom")
    failed = tracker.get_run(bad.id)
    assert failed.status is RunStatus.FAILED
    assert [p.value for p in failed.metrics["loss"]] == [1.0]


@pytest.mark.parametrize(
    ("exception", "status"),
    [
        (ValueError("bad"), RunStatus.FAILED),
        (KeyboardInterrupt(), RunStatus.KILLED),
        (SystemExit(0), RunStatus.FINISHED),
        (SystemExit(None), RunStatus.FINISHED),
        (SystemExit(3), RunStatus.FAILED),
    ],
)
def test_status_follows_how_the_block_ends(
    tracker: LocalExperimentTracker, exception: BaseException, status: RunStatus
) -> None:
    with pytest.raises(type(exception)), tracker.start_run() as run:
        raise exception
    assert run.status is status
    assert tracker.get_run(run.id).status is status


def test_plain_calls_and_end_by_name(tracker: LocalExperimentTracker) -> None:
    run = tracker.start_run(run_name="plain")
    assert tracker.get_run(run.id).status is RunStatus.RUNNING
    assert tracker.get_run(run.id).end_time is None
    run.log_metrics({"m": 1})
    run.end(status="killed")
    run.end()  # ending an ended run does nothing
    record = tracker.get_run(run.id)
    assert record.status is RunStatus.KILLED
    assert record.experiment == "Default"
    with pytest.raises(InvalidInputError, match="has ended"):
        run.log_metrics({"m": 2})
    assert [p.value for p in tracker.get_run(run.id).metrics["m"]] == [1.0]


@pytest.mark.parametrize("status", ["RUNNING", "done", 3])
def test_end_rejects_unknown_status(tracker: LocalExperimentTracker, status: object) -> None:
    run = tracker.start_run()
    with pytest.raises(InvalidInputError, match="FINISHED, FAILED, KILLED"):
        run.end(status)  # type: ignore[arg-type]
    assert run.status is RunStatus.RUNNING
    run.end()


def test_steps_default_to_one_past_the_last_used(tracker: LocalExperimentTracker) -> None:
    with tracker.start_run() as run:
        run.log_metrics({"a": 1})
        run.log_metrics({"a": 2, "b": 2})
        run.log_metrics({"a": 3}, step=10)
        run.log_metrics({"b": 4})
        run.log_metrics({"a": 5}, step=np.int64(3))
        run.log_metrics({"a": 6})
    record = tracker.get_run(run.id)
    assert [p.step for p in record.metrics["a"]] == [0, 1, 10, 3, 4]
    assert [p.step for p in record.metrics["b"]] == [1, 11]


def test_out_of_order_and_repeated_steps_are_kept(tracker: LocalExperimentTracker) -> None:
    with tracker.start_run() as run:
        for step, value in [(5, 1.0), (2, 2.0), (2, 3.0), (7, 4.0)]:
            run.log_metrics({"m": value}, step=step)
    points = tracker.get_run(run.id).metrics["m"]
    assert [(p.step, p.value) for p in points] == [(5, 1.0), (2, 2.0), (2, 3.0), (7, 4.0)]


def test_special_and_numpy_values_round_trip(tracker: LocalExperimentTracker) -> None:
    values = {
        "nan": math.nan,
        "inf": math.inf,
        "ninf": -math.inf,
        "f32": np.float32(0.5),
        "i64": np.int64(7),
        "arr": np.array(2.5),
        "big": 10**300,
        "neg": -3,
    }
    with tracker.start_run() as run:
        run.log_metrics(values, step=0)
    read = {k: points[0].value for k, points in tracker.get_run(run.id).metrics.items()}
    assert math.isnan(read.pop("nan"))
    assert read == {
        "inf": math.inf,
        "ninf": -math.inf,
        "f32": 0.5,
        "i64": 7.0,
        "arr": 2.5,
        "big": 1e300,
        "neg": -3.0,
    }


def test_same_param_again_is_a_no_op_and_another_value_conflicts(
    tracker: LocalExperimentTracker,
) -> None:
    with tracker.start_run() as run:
        run.log_params({"lr": 0.1, "nested": {"a": 1}})
        run.log_params({"lr": 0.1, "nested.a": 1})
        with pytest.raises(ParamConflictError, match=r"'lr' .* '0\.1'.* '0\.2'"):
            run.log_params({"other": 1, "lr": 0.2})
    assert tracker.get_run(run.id).params == {"lr": "0.1", "nested.a": "1"}


def test_tags_overwrite(tracker: LocalExperimentTracker) -> None:
    with tracker.start_run(tags={"stage": "dev", "keep": 1}) as run:
        run.set_tags({"stage": "prod"})
    assert tracker.get_run(run.id).tags == {"stage": "prod", "keep": "1"}


def test_resume_continues_the_run(tracker: LocalExperimentTracker) -> None:
    with tracker.start_run(experiment="exp", run_name="first") as run:
        run.log_params({"lr": 0.1})
        run.log_metrics({"loss": 1.0})
        run.log_metrics({"loss": 0.9}, step=4)
    with tracker.start_run(run_id=run.id, tags={"resumed": "yes"}) as again:
        assert again.id == run.id
        assert again.experiment == "exp"
        assert tracker.get_run(run.id).status is RunStatus.RUNNING
        again.log_params({"lr": 0.1})
        with pytest.raises(ParamConflictError, match="'lr'"):
            again.log_params({"lr": 0.5})
        again.log_metrics({"loss": 0.8})
    record = tracker.get_run(run.id)
    assert record.status is RunStatus.FINISHED
    assert record.name == "first"
    assert record.tags == {"resumed": "yes"}
    assert [(p.step, p.value) for p in record.metrics["loss"]] == [(0, 1.0), (4, 0.9), (5, 0.8)]


def test_resume_errors(tracker: LocalExperimentTracker) -> None:
    with pytest.raises(RunNotFoundError, match="no-such-run"):
        tracker.start_run(run_id="no-such-run")
    with tracker.start_run(experiment="exp") as run:
        pass
    with pytest.raises(InvalidInputError, match="belongs to experiment 'exp'"):
        tracker.start_run(run_id=run.id, experiment="other")
    assert tracker.get_run(run.id).status is RunStatus.FINISHED


def test_nested_runs(tracker: LocalExperimentTracker) -> None:
    with tracker.start_run(experiment="pipe", run_name="parent") as parent:
        with tracker.start_run(experiment="pipe", parent=parent) as child:
            child.log_metrics({"m": 1})
        with tracker.start_run(experiment="pipe", parent=parent.id) as second:
            pass
    assert tracker.get_run(child.id).parent_id == parent.id
    assert tracker.get_run(second.id).parent_id == parent.id
    with pytest.raises(RunNotFoundError):
        tracker.start_run(parent="missing-parent")


def test_list_runs_newest_first_every_status(tracker: LocalExperimentTracker) -> None:
    ids = []
    for status in ("FINISHED", "FAILED", "KILLED"):
        run = tracker.start_run(experiment="listed")
        run.end(status)
        ids.append(run.id)
    running = tracker.start_run(experiment="listed", parent=ids[0])
    tracker.start_run(experiment="elsewhere").end()
    listed = tracker.list_runs(experiment="listed")
    assert [r.id for r in listed] == [running.id, *reversed(ids)]
    assert [r.status for r in listed] == [
        RunStatus.RUNNING,
        RunStatus.KILLED,
        RunStatus.FAILED,
        RunStatus.FINISHED,
    ]
    assert len(tracker.list_runs()) == 5
    running.end()


def test_start_run_rejects_bad_names(tracker: LocalExperimentTracker) -> None:
    with pytest.raises(InvalidInputError, match="experiment"):
        tracker.start_run(experiment="")
    with pytest.raises(InvalidInputError, match="run_name"):
        tracker.start_run(run_name=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="tag key"):
        tracker.start_run(tags={"bad//key": 1})
    assert tracker.list_runs() == []
