"""The rank policy: with ``log_on: rank0`` only rank 0 logs; other ranks check, then drop."""

from __future__ import annotations

from pathlib import Path

import pytest

import trackstack
from trackstack import StepRunInfo
from trackstack.errors import ConfigError, InvalidInputError


def tracker_at(
    folder: Path, log_on: str | None
) -> trackstack.experiment_trackers.BaseExperimentTracker:
    document: dict[str, object] = {"flavor": "local", "config": {"root": str(folder / "store")}}
    if log_on is not None:
        document["log_on"] = log_on
    return trackstack.load_tracker({"experiment_tracker": document})


def test_other_ranks_accept_every_call_and_store_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANK", "3")
    tracker = tracker_at(tmp_path, "rank0")
    (tmp_path / "f.txt").write_text("x")
    with tracker.start_run(experiment="ddp", tags={"a": 1}) as run:
        assert run.discards
        run.log_params({"lr": 0.1})
        run.log_metrics({"loss": 1.0}, step=0)
        run.set_tags({"b": 2})
        run.log_artifact(tmp_path / "f.txt")
        with pytest.raises(InvalidInputError):
            run.log_metrics({"../x": 1.0})  # still checked: the bug shows on every rank
    info = StepRunInfo(pipeline_name="p", run_name="p-1", step_name="s", run_id="1")
    tracker.prepare_step_run(info)
    tracker.step_run(info).log_metrics({"m": 1.0})
    assert tracker.get_step_run_metadata(info) == {
        "experiment_tracker_url": None,
        "trackstack_rank": 3,
    }
    tracker.cleanup_step_run(info, step_failed=False)
    assert tracker.list_runs() == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"tags": {"../t": 1}}, "invalid tag key"),
        ({"experiment": " "}, "experiment must be a non-empty string"),
        ({"run_name": 3}, "run_name must be a non-empty string"),
        ({"parent": ""}, "parent must be a run or a run id"),
        ({"run_id": 7}, "run_id must be a non-empty string"),
    ],
)
def test_other_ranks_check_start_run_as_rank_0_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arguments: dict[str, object], message: str
) -> None:
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(InvalidInputError, match=message):
        tracker_at(tmp_path, "rank0").start_run(**arguments)  # type: ignore[arg-type]
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(InvalidInputError, match=message):
        tracker_at(tmp_path, "rank0").start_run(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("log_on", "variables", "logs"),
    [
        ("rank0", {"RANK": "0", "LOCAL_RANK": "1"}, True),
        ("rank0", {"LOCAL_RANK": "2"}, False),
        ("rank0", {}, True),
        ("all", {"RANK": "5"}, True),
        (None, {"RANK": "5"}, True),
    ],
)
def test_which_ranks_log(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    log_on: str | None,
    variables: dict[str, str],
    logs: bool,
) -> None:
    for name in ("RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    tracker = tracker_at(tmp_path, log_on)
    with tracker.start_run() as run:
        run.log_metrics({"m": 1.0})
    assert run.discards is not logs
    assert len(tracker.list_runs()) == int(logs)


def test_bad_policy_or_rank_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="log_on is 'rank1'; use one of all, rank0"):
        tracker_at(tmp_path, "rank1")
    monkeypatch.setenv("RANK", "first")
    tracker = tracker_at(tmp_path, "rank0")
    with pytest.raises(ConfigError, match=r"\$RANK is 'first'"):
        tracker.start_run()
