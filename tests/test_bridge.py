"""What every framework bridge shares (``trackstack.integrations.bridge``), without a framework."""

from __future__ import annotations

import dataclasses
import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import trackstack
from trackstack.enums import RunStatus
from trackstack.errors import InvalidInputError
from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.integrations.bridge import MASKED, RunBridge, is_secret_key
from trackstack.testing.readers import LocalStoreReader


@pytest.fixture
def tracker(tmp_path: Path) -> BaseExperimentTracker:
    return trackstack.load_tracker({"flavor": "local", "config": {"root": tmp_path / "store"}})


def bridge(tracker: BaseExperimentTracker, **options: Any) -> RunBridge:
    return RunBridge("testing", tracker, experiment="bridged", **options)


def test_numbers_are_logged_at_the_frameworks_steps_and_the_rest_is_warned_about_once(
    tracker: BaseExperimentTracker, caplog: pytest.LogCaptureFixture
) -> None:
    logging_bridge = bridge(tracker)
    with caplog.at_level(logging.WARNING, "trackstack.integrations"):
        for step in (5, 3, 9):  # frameworks log out of order too (eval after train)
            logging_bridge.log_metrics(
                {"loss": np.float32(0.5), "flag": True, "note": "text", "top@1": 1,
                 "n": np.int64(2), "vector": np.array([1.0, 2.0]), "nan": float("nan")},
                step=step,
            )  # fmt: skip
    logging_bridge.end(RunStatus.FINISHED)
    record = tracker.get_run(str(logging_bridge.run_id))
    assert sorted(record.metrics) == ["flag", "loss", "n", "nan", "top_1"]
    assert sorted(p.step for p in record.metrics["loss"]) == [3, 5, 9]
    assert record.metrics["flag"][0].value == 1.0
    assert caplog.text.count("'note' has a str value") == 1
    assert caplog.text.count("'vector' has a ndarray value") == 1
    assert caplog.text.count("'top@1' is logged as 'top_1'") == 1
    assert record.status is RunStatus.FINISHED


def test_a_param_is_set_once_long_ones_become_artifacts_secrets_are_masked(
    tracker: BaseExperimentTracker,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limited = dataclasses.replace(tracker.capabilities, max_param_length=100)
    monkeypatch.setattr(type(tracker), "capabilities", limited)
    logging_bridge = bridge(tracker)
    with caplog.at_level(logging.WARNING, "trackstack.integrations"):
        logging_bridge.log_params({
            "lr": 0.1, "model": {"layers": [64, 64], "act": len}, "db_password": "hunter2",
            "hub_token": "hf_abc", "pad_token": "<pad>", "pad_token_id": 0, "notes": "n" * 150,
        })  # fmt: skip
        logging_bridge.log_params({"lr": 0.2, "epochs": 3})
        logging_bridge.log_params({"lr": 0.3})
    logging_bridge.end(RunStatus.FINISHED)
    record = tracker.get_run(str(logging_bridge.run_id))
    assert record.params == {
        "lr": "0.1", "model.layers": "[64, 64]", "model.act": "builtins.len",
        "db_password": MASKED, "hub_token": MASKED, "pad_token": "<pad>", "pad_token_id": "0",
        "epochs": "3",
    }  # fmt: skip
    assert "hunter2" not in caplog.text
    assert caplog.text.count("'lr' is already '0.1'") == 1
    assert "'notes' has 150 characters" in caplog.text
    reader = LocalStoreReader.for_tracker(tracker)
    assert reader.read_artifact(str(logging_bridge.run_id), "params/notes.txt") == b"n" * 150


def test_secret_key_names() -> None:
    for key in ("password", "db.PASSWORD", "api_key", "wandb_apikey", "aws_secret_access_key",
                "hub_token", "token", "auth_token", "credentials"):  # fmt: skip
        assert is_secret_key(key), key
    for key in ("pad_token", "eos_token", "pad_token_id", "tokenizer", "max_tokens", "lr"):
        assert not is_secret_key(key), key


def test_a_call_after_the_end_resumes_the_run_and_detach_leaves_it_running(
    tracker: BaseExperimentTracker,
) -> None:
    logging_bridge = bridge(tracker)
    logging_bridge.log_metrics({"loss": 1.0}, step=0)
    logging_bridge.end(RunStatus.FINISHED)
    first = logging_bridge.run_id
    logging_bridge.log_metrics({"loss": 0.5}, step=1)
    assert logging_bridge.run_id == first
    logging_bridge.detach()
    record = tracker.get_run(str(first))
    assert record.status is RunStatus.RUNNING
    assert [p.step for p in record.metrics["loss"]] == [0, 1]
    resumed = tracker.start_run(run_id=first)
    resumed.end()
    assert tracker.get_run(str(first)).status is RunStatus.FINISHED


def test_a_detached_run_takes_no_more_calls(tracker: BaseExperimentTracker) -> None:
    run = tracker.start_run()
    run.detach()
    with pytest.raises(InvalidInputError, match="was detached; resume it"):
        run.log_metrics({"loss": 1.0})
    run.end()  # nothing: the run is another process's now
    assert tracker.get_run(run.id).status is RunStatus.RUNNING


def test_bridges_and_trackers_pickle_as_their_config(tracker: BaseExperimentTracker) -> None:
    tracker.buffer_size = 7
    logging_bridge = bridge(tracker, tags={"team": "a"})
    logging_bridge.log_metrics({"loss": 1.0}, step=0)
    copy = pickle.loads(pickle.dumps(logging_bridge))
    assert copy.current is None
    assert copy.run_id == logging_bridge.run_id
    assert copy.tracker.buffer_size == 7
    assert copy.tracker.config == tracker.config
    logging_bridge.end(RunStatus.FINISHED)
    copy.log_metrics({"loss": 0.5}, step=1)  # the copy resumes the same run
    copy.end(RunStatus.FINISHED)
    assert [p.step for p in tracker.get_run(str(copy.run_id)).metrics["loss"]] == [0, 1]


def test_a_fan_out_tracker_pickles_with_its_members(tmp_path: Path) -> None:
    members = [
        trackstack.load_tracker({"flavor": "local", "name": n, "config": {"root": tmp_path / n}})
        for n in ("a", "b")
    ]
    copy = pickle.loads(pickle.dumps(trackstack.fan_out(members)))
    assert [m.name for m in copy.trackers] == ["a", "b"]
    with copy.start_run() as run:
        run.log_metrics({"loss": 1.0})
    run.detach()  # ended already: nothing
    assert copy.get_run(run.id).status is RunStatus.FINISHED


def test_bad_options_are_refused_when_the_bridge_is_made(tracker: BaseExperimentTracker) -> None:
    with pytest.raises(InvalidInputError, match="a tracker or a config, not both"):
        RunBridge("testing", tracker, config={"flavor": "local"})
    with pytest.raises(InvalidInputError, match="tracker must be a trackstack tracker"):
        RunBridge("testing", "mlflow")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="run_id must be a non-empty string"):
        RunBridge("testing", run_id="")
    with pytest.raises(InvalidInputError, match="log_checkpoints is True or False"):
        RunBridge("testing", log_checkpoints="yes")  # type: ignore[arg-type]


def test_a_config_builds_the_tracker_on_first_use(tmp_path: Path) -> None:
    logging_bridge = RunBridge(
        "testing", config={"flavor": "local", "config": {"root": str(tmp_path / "s")}}
    )
    logging_bridge.log_metrics({"loss": 1.0}, step=0)
    logging_bridge.end(RunStatus.FINISHED)
    assert logging_bridge.tracker.get_run(str(logging_bridge.run_id)).status is RunStatus.FINISHED


def test_a_checkpoint_is_uploaded_as_it_was_when_reported(tracker: BaseExperimentTracker,
                                                          tmp_path: Path) -> None:  # fmt: skip
    checkpoint = tmp_path / "last.ckpt"
    checkpoint.write_bytes(b"epoch 1")
    logging_bridge = bridge(tracker)
    logging_bridge.upload(checkpoint, "checkpoints")
    checkpoint.unlink()  # the framework's next save replaces it
    checkpoint.write_bytes(b"epoch 2")
    logging_bridge.end(RunStatus.FINISHED)  # waits for the upload
    reader = LocalStoreReader.for_tracker(tracker)
    assert reader.read_artifact(str(logging_bridge.run_id), "checkpoints/last.ckpt") == b"epoch 1"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".trackstack")] == []
