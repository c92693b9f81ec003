"""What every framework bridge shares (``trackstack.integrations.bridge``), without a framework."""

from __future__ import annotations

import dataclasses
import logging
import pickle
import threading
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


def test_a_tracker_that_cannot_start_a_run_never_stops_training(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = RunBridge("testing", config=tmp_path / "no-such.yaml")
    with caplog.at_level(logging.WARNING, "trackstack.integrations"):
        missing.log_params({"lr": 0.1})
        missing.log_metrics({"loss": 1.0}, step=0)
        missing.end(RunStatus.FINISHED)
    assert "no tracker to log to" in caplog.text
    assert "no-such.yaml" in caplog.text
    assert missing.run_id is None


def test_a_run_that_cannot_be_resumed_goes_on_in_a_new_one(
    tracker: BaseExperimentTracker, caplog: pytest.LogCaptureFixture
) -> None:
    resuming = bridge(tracker, run_id="0123456789abcdef")
    with caplog.at_level(logging.WARNING, "trackstack.integrations"):
        resuming.log_metrics({"loss": 1.0}, step=7)
    resuming.end(RunStatus.FINISHED)
    assert "cannot resume run 0123456789abcdef" in caplog.text
    record = tracker.get_run(str(resuming.run_id))
    assert record.tags["trackstack.continues"] == "0123456789abcdef"
    assert record.metrics["loss"][0].step == 7


def test_one_refused_param_costs_only_itself(
    tracker: BaseExperimentTracker,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(known: Any, new: Any) -> None:
        if "a.b" in new:
            raise InvalidInputError("the backend takes no 'a.b' beside 'a'")

    monkeypatch.setattr(tracker, "check_params", refuse)
    logging_bridge = bridge(tracker)
    deep: dict[str, Any] = {"lr": 0.1, "a": {"b": 1}, "batch": 32}
    node = deep
    for _ in range(40):  # a key path of more than 250 characters
        node["nested_level_name"] = node = {}
    node["leaf"] = 1
    with caplog.at_level(logging.WARNING, "trackstack.integrations"):
        logging_bridge.log_params(deep)
    logging_bridge.end(RunStatus.FINISHED)
    params = tracker.get_run(str(logging_bridge.run_id)).params
    assert params["lr"] == "0.1"
    assert params["batch"] == "32"
    assert "a.b" not in params
    assert "'a.b' not logged" in caplog.text
    (long_key,) = [key for key in params if key.startswith("nested_level_name.")]
    assert len(long_key) == 250  # named close to the original, warned about


def test_secrets_are_masked_under_any_part_of_their_key(tracker: BaseExperimentTracker) -> None:
    logging_bridge = bridge(tracker)
    logging_bridge.log_params({
        "credentials": {"pass": "pw1", "user": "alice"}, "secrets": {"openai": "sk-1"},
        "auth": {"bearer": "tok"}, "api_key": 1234567, "db": {"password": {"value": "pw2"}},
        "timeout": None,
    })  # fmt: skip
    logging_bridge.end(RunStatus.FINISHED)
    params = tracker.get_run(str(logging_bridge.run_id)).params
    assert params == {
        "credentials": MASKED, "secrets": MASKED, "auth": MASKED, "api_key": MASKED,
        "db.password": MASKED, "timeout": "None",
    }  # fmt: skip


def test_a_long_param_keeps_its_first_value(
    tracker: BaseExperimentTracker,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    limited = dataclasses.replace(tracker.capabilities, max_param_length=10)
    monkeypatch.setattr(type(tracker), "capabilities", limited)
    logging_bridge = bridge(tracker)
    with caplog.at_level(logging.WARNING, "trackstack.integrations"):
        logging_bridge.log_params({"notes": "first value"})
        logging_bridge.log_params({"notes": "first value"})
        logging_bridge.log_params({"notes": "second value"})
    logging_bridge.end(RunStatus.FINISHED)
    reader = LocalStoreReader.for_tracker(tracker)
    assert reader.read_artifact(str(logging_bridge.run_id), "params/notes.txt") == b"first value"
    assert "'notes' is already 'first value'" in caplog.text
    assert caplog.text.count("has 11 characters") == 1


def test_after_a_requeue_nothing_more_is_logged_nor_resumed(
    tracker: BaseExperimentTracker,
) -> None:
    logging_bridge = bridge(tracker)
    logging_bridge.log_metrics({"loss": 1.0}, step=0)
    run_id = logging_bridge.run_id
    logging_bridge.detach()
    logging_bridge.log_metrics({"loss": 0.5}, step=1)  # Lightning trains on until SIGTERM
    logging_bridge.end(RunStatus.FAILED)  # then finalize("failed")
    record = tracker.get_run(str(run_id))
    assert record.status is RunStatus.RUNNING
    assert [p.step for p in record.metrics["loss"]] == [0]


def test_a_forked_process_resumes_the_run_by_its_id(tracker: BaseExperimentTracker) -> None:
    logging_bridge = bridge(tracker)
    logging_bridge.log_metrics({"loss": 1.0}, step=0)
    parents = logging_bridge.current
    logging_bridge._pid = -1  # as a fork's child sees it: the run is its parent's
    parents.detach()  # type: ignore[union-attr]  # the parent's process lets it go
    logging_bridge.log_metrics({"loss": 0.5}, step=1)
    assert logging_bridge.current is not parents
    assert logging_bridge.run_id == parents.id  # type: ignore[union-attr]
    logging_bridge.end(RunStatus.FINISHED)
    record = tracker.get_run(str(logging_bridge.run_id))
    assert [p.step for p in record.metrics["loss"]] == [0, 1]


def test_an_upload_in_progress_never_holds_up_log_metrics(
    tracker: BaseExperimentTracker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uploading, release = threading.Event(), threading.Event()
    upload = tracker.backend_log_artifact

    def slow_upload(*args: Any) -> None:
        uploading.set()
        assert release.wait(120)
        upload(*args)

    monkeypatch.setattr(tracker, "backend_log_artifact", slow_upload)
    (tmp_path / "big.ckpt").write_bytes(b"weights")
    logging_bridge = bridge(tracker)
    logging_bridge.upload(tmp_path / "big.ckpt", "checkpoints")
    assert uploading.wait(120)
    logged = threading.Thread(target=logging_bridge.log_metrics, args=({"loss": 1.0}, 0))
    logged.start()
    logged.join(60)
    stuck = logged.is_alive()
    release.set()
    logging_bridge.end(RunStatus.FINISHED)
    assert not stuck, "log_metrics waited for the upload"
    assert tracker.get_run(str(logging_bridge.run_id)).artifacts == ["checkpoints/big.ckpt"]
