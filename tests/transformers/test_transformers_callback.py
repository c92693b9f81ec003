"""``TrackstackCallback`` in real (tiny, CPU) ``Trainer`` runs, beside a recording callback."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

import trackstack
from tests.bridges import FLAVORS, load, points, read, run_readme_example, tracker_config
from trackstack.enums import RunStatus
from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.integrations.transformers import STATE_KEY, TrackstackCallback

REPO = Path(__file__).resolve().parents[2]


class Recording(TrainerCallback):
    """What the Trainer handed its callbacks' ``on_log``, as (step, logs)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, dict[str, Any]]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        self.seen.append((state.global_step, dict(logs or {})))

    def points(self) -> set[tuple[str, int, float]]:
        return {(key, step, float(value)) for step, logs in self.seen
                for key, value in logs.items() if isinstance(value, int | float)}  # fmt: skip


class Tokens(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, 50, (32, 8), generator=generator)
        self.labels = torch.randint(0, 2, (32,), generator=generator)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[index], "labels": self.labels[index]}


def model() -> BertForSequenceClassification:
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=16,
    ))  # fmt: skip


def trainer(folder: Path, callbacks: list[Any], max_steps: int = 8, **args: Any) -> Trainer:
    arguments = TrainingArguments(
        str(folder / "out"), max_steps=max_steps, per_device_train_batch_size=4, logging_steps=2,
        save_steps=4, eval_strategy="steps", eval_steps=4, report_to="none", use_cpu=True,
        disable_tqdm=True, **args,
    )  # fmt: skip
    return Trainer(model=model(), args=arguments, train_dataset=Tokens(), eval_dataset=Tokens(),
                   callbacks=callbacks)  # fmt: skip


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_training_stores_what_a_recording_callback_saw(
    flavor: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = load(tracker_config(flavor, tmp_path, monkeypatch))
    callback, recording = TrackstackCallback(tracker, experiment="glue"), Recording()
    trainer(tmp_path, [callback, recording], hub_token="hf_not_for_logs").train()
    record = read(tracker, str(callback.bridge.run_id))
    assert record.status is RunStatus.FINISHED
    assert recording.seen, "the Trainer logged nothing"
    assert points(record) == recording.points()
    assert record.params["learning_rate"] == "5e-05"
    assert record.params["hidden_size"] == "16"  # from the model's config
    assert record.params["id2label.0"] == "LABEL_0"  # nested, flattened
    assert record.params["hub_token"] == "<masked>"
    assert "hf_not_for_logs" not in repr(record)


def test_resume_from_checkpoint_continues_the_same_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = load(tracker_config("local", tmp_path, monkeypatch))
    first = TrackstackCallback(tracker, experiment="glue")
    trainer(tmp_path, [first]).train()
    state = (tmp_path / "out" / "checkpoint-8" / "trainer_state.json").read_text()
    assert first.bridge.run_id is not None
    assert first.bridge.run_id in state
    second, recording = TrackstackCallback(tracker, experiment="glue"), Recording()
    with caplog.at_level(logging.WARNING, "trackstack.integrations"):
        trainer(tmp_path, [second, recording], max_steps=12).train(resume_from_checkpoint=True)
    assert second.bridge.run_id == first.bridge.run_id
    (run,) = tracker.list_runs("glue")
    assert run.status is RunStatus.FINISHED
    assert run.params["max_steps"] == "8"  # the first value stays, and a warning says so
    assert "'max_steps' is already '8'" in caplog.text
    assert {p.step for p in run.metrics["loss"]} == {2, 4, 6, 8, 10, 12}
    assert recording.points() <= points(read(tracker, run.id))
    assert STATE_KEY in state


def test_evaluate_after_train_logs_to_the_same_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = load(tracker_config("local", tmp_path, monkeypatch))
    callback = TrackstackCallback(tracker, experiment="glue")
    hf = trainer(tmp_path, [callback])
    hf.train()
    hf.evaluate()
    callback.end()
    (run,) = tracker.list_runs("glue")
    assert run.status is RunStatus.FINISHED
    assert [p.step for p in run.metrics["eval_loss"]] == [4, 8, 8]


def test_checkpoints_upload_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = load(tracker_config("local", tmp_path, monkeypatch))
    callback = TrackstackCallback(tracker, experiment="glue", log_checkpoints=True)
    trainer(tmp_path, [callback], save_total_limit=1).train()
    record = read(tracker, str(callback.bridge.run_id))
    folders = {path.split("/")[1] for path in record.artifacts}
    assert folders == {"checkpoint-4", "checkpoint-8"}  # checkpoint-4 rotated away, kept here
    assert "checkpoints/checkpoint-8/model.safetensors" in record.artifacts


def test_a_training_that_raises_ends_failed(tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        import trackstack
        from transformers import TrainerCallback
        from tests.transformers.test_transformers_callback import trainer
        from pathlib import Path
        from trackstack.integrations.transformers import TrackstackCallback

        class Boom(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == 5:
                    raise RuntimeError("boom")

        tracker = trackstack.load_tracker({{"flavor": "local", "config": {{"root": "store"}}}})
        trainer(Path("."), [TrackstackCallback(tracker, experiment="crash"), Boom()]).train()
    """)
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    assert "boom" in result.stderr
    tracker = trackstack.load_tracker({"flavor": "local", "config": {"root": tmp_path / "store"}})
    (run,) = tracker.list_runs("crash")
    assert run.status is RunStatus.FAILED
    assert {p.step for p in run.metrics["loss"]} == {2, 4}


def test_only_the_main_process_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tracker: BaseExperimentTracker = load(tracker_config("local", tmp_path, monkeypatch))
    callback = TrackstackCallback(tracker, experiment="glue")
    hf = trainer(tmp_path, [callback])
    hf.state.is_world_process_zero = False
    callback.on_train_begin(hf.args, hf.state, hf.control, model=hf.model)
    callback.on_log(hf.args, hf.state, hf.control, logs={"loss": 1.0})
    assert callback.bridge.current is None
    assert tracker.list_runs() == []


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    names = run_readme_example("transformers", tmp_path, model=model(), train_set=Tokens())
    tracker = trackstack.load_tracker(tmp_path / "trackstack.yaml")
    (run,) = tracker.list_runs("glue")
    assert run.id == names["callback"].bridge.run_id
    assert run.status is RunStatus.FINISHED
    assert {p.step for p in run.metrics["loss"]} == {2, 4, 6, 8}
