"""The run API on the local store, beyond the conformance suite: defaults and core checks."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest

import trackstack
from trackstack import RunStatus
from trackstack.errors import InvalidInputError, RunNotFoundError
from trackstack.local.tracker import LocalExperimentTracker
from trackstack.testing.checks_artifacts import TREE, make_tree


def test_everything_logged_is_read_back(tracker: LocalExperimentTracker, tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"pickle")
    model = make_tree(tmp_path)
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
        *(f"model/{name}" for name in sorted(TREE)),
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
    model = make_tree(isolated_cwd)
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
    assert sorted(record.artifacts) == [f"model/{name}" for name in sorted(TREE)]
    assert (isolated_cwd / ".trackstack" / "trackstack.db").is_file()

    with pytest.raises(RuntimeError, match="boom"), tracker.start_run(experiment="design") as bad:
        bad.log_metrics({"loss": 1.0})
        raise RuntimeError("boom")
    failed = tracker.get_run(bad.id)
    assert failed.status is RunStatus.FAILED
    assert [p.value for p in failed.metrics["loss"]] == [1.0]


@pytest.mark.parametrize("status", ["RUNNING", "done", 3])
def test_end_rejects_unknown_status(tracker: LocalExperimentTracker, status: object) -> None:
    run = tracker.start_run()
    with pytest.raises(InvalidInputError, match="FINISHED, FAILED, KILLED"):
        run.end(status)  # type: ignore[arg-type]
    assert run.status is RunStatus.RUNNING
    run.end()


def test_resume_errors(tracker: LocalExperimentTracker) -> None:
    with pytest.raises(RunNotFoundError, match="no-such-run"):
        tracker.start_run(run_id="no-such-run")
    with tracker.start_run(experiment="exp") as run:
        pass
    with pytest.raises(InvalidInputError, match="belongs to experiment 'exp'"):
        tracker.start_run(run_id=run.id, experiment="other")
    assert tracker.get_run(run.id).status is RunStatus.FINISHED


def test_start_run_rejects_bad_names(tracker: LocalExperimentTracker) -> None:
    with pytest.raises(InvalidInputError, match="experiment"):
        tracker.start_run(experiment="")
    with pytest.raises(InvalidInputError, match="run_name"):
        tracker.start_run(run_name=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="tag key"):
        tracker.start_run(tags={"bad//key": 1})
    assert tracker.list_runs() == []
