"""``TrackstackTracker`` as accelerate's ``log_with``, in a real (tiny, CPU) training loop."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from accelerate import Accelerator

import trackstack
from tests.bridges import FLAVORS, load, points, read, run_readme_example, tracker_config
from trackstack.enums import RunStatus
from trackstack.errors import InvalidInputError
from trackstack.integrations.accelerate import TrackstackTracker

REPO = Path(__file__).resolve().parents[2]


def train(accelerator: Accelerator, steps: int = 6) -> set[tuple[str, int, float]]:
    """A tiny loop; returns every (key, step, value) it handed ``accelerator.log``."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model, optimizer = accelerator.prepare(model, optimizer)
    logged = set()
    for step in range(steps):
        loss = model(torch.randn(8, 4)).pow(2).mean()
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        values: dict[str, Any] = {"loss": loss.detach(), "lr": 0.1, "stage": "warmup"}
        accelerator.log(values, step=step)
        logged |= {("loss", step, loss.item()), ("lr", step, 0.1)}
    return logged


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_loop_stores_what_it_logged(
    flavor: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = load(tracker_config(flavor, tmp_path, monkeypatch))
    accelerator = Accelerator(log_with=TrackstackTracker(tracker, experiment="loop"), cpu=True)
    accelerator.init_trackers("ignored", config={"lr": 0.1, "optim": {"name": "sgd"}})
    run = accelerator.get_tracker("trackstack", unwrap=True)
    logged = train(accelerator)
    accelerator.end_training()
    record = read(tracker, run.id)
    assert record.status is RunStatus.FINISHED
    assert points(record) == logged  # "stage" is text: warned about, not a metric
    assert record.params["lr"] == "0.1"
    assert record.params["optim.name"] == "sgd"


def test_end_training_while_an_exception_is_handled_ends_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = load(tracker_config("local", tmp_path, monkeypatch))
    accelerator = Accelerator(log_with=TrackstackTracker(tracker), cpu=True)
    accelerator.init_trackers("loop")
    run = accelerator.get_tracker("trackstack", unwrap=True)
    try:
        train(accelerator, steps=2)
        raise RuntimeError("diverged")
    except RuntimeError:
        accelerator.end_training()
    assert read(tracker, run.id).status is RunStatus.FAILED


def test_a_script_without_end_training_ends_its_run_at_exit(tmp_path: Path) -> None:
    script = tmp_path / "loop.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        import trackstack
        from accelerate import Accelerator
        from tests.accelerate.test_accelerate_tracker import train
        from trackstack.integrations.accelerate import TrackstackTracker
        tracker = trackstack.load_tracker({{"flavor": "local", "config": {{"root": "store"}}}})
        accelerator = Accelerator(log_with=TrackstackTracker(tracker, experiment="loop"), cpu=True)
        accelerator.init_trackers("loop")
        train(accelerator, steps=3)
        if sys.argv[1] == "crash":
            raise RuntimeError("boom")
    """)
    )
    store = {"flavor": "local", "config": {"root": tmp_path / "store"}}
    for how, status in (("exit", RunStatus.FINISHED), ("crash", RunStatus.FAILED)):
        result = subprocess.run([sys.executable, str(script), how], capture_output=True,
                                text=True, cwd=tmp_path)  # fmt: skip
        assert result.returncode == (1 if how == "crash" else 0), result.stderr[-2000:]
        (newest, *_) = trackstack.load_tracker(store).list_runs("loop")
        assert newest.status is status, how
        assert [p.step for p in newest.metrics["loss"]] == [0, 1, 2]


def test_checkpoints_are_uploaded_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidInputError, match="log_checkpoint"):
        TrackstackTracker(log_checkpoints=True)
    tracker = load(tracker_config("local", tmp_path, monkeypatch))
    accelerator = Accelerator(log_with=TrackstackTracker(tracker), cpu=True)
    accelerator.init_trackers("loop")
    train(accelerator, steps=1)
    accelerator.save_state(tmp_path / "state")
    accelerator.get_tracker("trackstack").log_checkpoint(tmp_path / "state")
    run = accelerator.get_tracker("trackstack", unwrap=True)
    accelerator.end_training()
    artifacts = read(tracker, run.id).artifacts
    assert any(path.startswith("checkpoints/state/model") for path in artifacts), artifacts


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_readme_example("accelerate", tmp_path, losses=[0.9, 0.5, 0.25])
    tracker = trackstack.load_tracker(tmp_path / "trackstack.yaml")
    (run,) = tracker.list_runs("loop")
    assert run.status is RunStatus.FINISHED
    assert [(p.step, p.value) for p in run.metrics["loss"]] == [(0, 0.9), (1, 0.5), (2, 0.25)]
    assert run.params["optimizer.name"] == "sgd"
