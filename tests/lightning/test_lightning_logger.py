"""``TrackstackLogger`` in real (tiny, CPU) Lightning fits, beside Lightning's own CSVLogger."""

from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trackstack
from tests.bridges import (
    FLAVORS,
    csv_points,
    load,
    points,
    read,
    reader,
    run_readme_example,
    tracker_config,
)
from tests.servers import MlflowServer, free_port
from trackstack.enums import RunStatus
from trackstack.integrations.lightning import TrackstackLogger

REPO = Path(__file__).resolve().parents[2]


class Tiny(pl.LightningModule):
    def __init__(self, lr: float = 0.1, fail_at: int | None = None, **extra: Any) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = nn.Linear(4, 1)

    def training_step(self, batch: Any, index: int) -> torch.Tensor:
        if self.hparams["fail_at"] == self.global_step:
            raise RuntimeError("boom")
        x, y = batch
        loss = nn.functional.mse_loss(self.layer(x), y)
        self.log("train/loss", loss)
        self.log("acc", 1.0 - loss.detach(), on_epoch=True)
        return loss

    def validation_step(self, batch: Any, index: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams["lr"])


def data() -> DataLoader[Any]:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(32, 4, generator=generator)
    return DataLoader(TensorDataset(inputs, torch.randn(32, 1, generator=generator)), batch_size=4)


def fit(
    loggers: list[Any], module: pl.LightningModule, folder: Path, epochs: int = 2
) -> pl.Trainer:
    trainer = pl.Trainer(
        max_epochs=epochs, logger=loggers, log_every_n_steps=2, default_root_dir=folder,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(module, data(), data())
    return trainer


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_fit_stores_what_lightnings_csv_logger_saw(
    flavor: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = load(tracker_config(flavor, tmp_path, monkeypatch))
    logger = TrackstackLogger(tracker, experiment="tiny", tags={"team": "vision"})
    csv_logger = CSVLogger(tmp_path / "csv", name="tiny")
    fit([logger, csv_logger], Tiny(lr=0.05, optimizer={"name": "sgd", "betas": [0.9, 0.99]}),
        tmp_path)  # fmt: skip
    assert logger.run_id is not None
    record = read(tracker, logger.run_id)
    assert record.status is RunStatus.FINISHED
    seen = csv_points(Path(csv_logger.log_dir) / "metrics.csv")
    assert {key for key, _, _ in seen} == {
        "train/loss",
        "acc_step",
        "acc_epoch",
        "val_loss",
        "epoch",
    }
    assert points(record) == seen
    assert record.params["lr"] == "0.05"
    assert record.params["optimizer.name"] == "sgd"
    assert record.params["optimizer.betas"] == "[0.9, 0.99]"
    assert record.tags["team"] == "vision"


def test_keys_values_and_params_a_backend_refuses_never_stop_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = load(tracker_config("mlflow", tmp_path, monkeypatch))
    logger = TrackstackLogger(tracker, experiment="odd")
    long = "x" * 7000  # MLflow stores 6000 characters in a param
    with caplog.at_level(logging.WARNING, "trackstack.integrations"):
        fit([logger], Tiny(note=long), tmp_path, epochs=1)
        logger.log_metrics({"acc@1": 0.5, "text": "n/a", "ok": torch.tensor(2.0)}, step=3)
        logger.log_hyperparams({"lr": 0.2, "new": 1})  # lr was 0.1
    assert read(tracker, str(logger.run_id)).status is RunStatus.RUNNING  # resumed for them
    logger.finalize("success")  # as a trainer.test() after the fit would
    record = read(tracker, str(logger.run_id))
    assert record.status is RunStatus.FINISHED
    assert ("acc_1", 3, 0.5) in points(record)
    assert ("ok", 3, 2.0) in points(record)
    assert "text" not in record.metrics
    assert record.params["lr"] == "0.1"  # the first value stays
    assert record.params["new"] == "1"
    assert "note" not in record.params
    assert "params/note.txt" in record.artifacts
    assert reader(tracker).read_artifact(logger.run_id, "params/note.txt").decode() == long
    warned = caplog.text
    for fragment in ("'acc@1' is logged as 'acc_1'", "'text' has a str value",
                     "'lr' is already '0.1'", "'note' has 7000 characters"):  # fmt: skip
        assert fragment in warned, warned


def test_a_failed_fit_ends_failed_and_ctrl_c_ends_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = load(tracker_config("local", tmp_path, monkeypatch))
    failing = TrackstackLogger(tracker, experiment="crash")
    with pytest.raises(RuntimeError, match="boom"):
        fit([failing], Tiny(fail_at=3), tmp_path)
    assert read(tracker, str(failing.run_id)).status is RunStatus.FAILED

    class CtrlC(Tiny):
        def training_step(self, batch: Any, index: int) -> torch.Tensor:
            if self.global_step == 2:
                raise KeyboardInterrupt
            return super().training_step(batch, index)

    interrupted = TrackstackLogger(tracker, experiment="crash")
    previous = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):  # Lightning exits after a graceful Ctrl-C
            fit([interrupted], CtrlC(), tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)
    record = read(tracker, str(interrupted.run_id))
    assert record.status is RunStatus.KILLED
    assert {p.step for p in record.metrics["train/loss"]} == {1}  # what came before Ctrl-C


def test_checkpoints_are_uploaded_and_the_logger_and_trainer_pickle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = load(tracker_config("local", tmp_path, monkeypatch))
    logger = TrackstackLogger(tracker, experiment="ckpt", log_checkpoints=True)
    trainer = fit([logger], Tiny(), tmp_path)
    record = read(tracker, str(logger.run_id))
    assert sorted(record.artifacts) == ["checkpoints/epoch=0-step=8.ckpt",
                                        "checkpoints/epoch=1-step=16.ckpt"]  # fmt: skip
    saved = Path(trainer.checkpoint_callback.best_model_path)  # type: ignore[union-attr]
    assert saved.parent.parent.name == logger.version == logger.run_id
    assert not [p for p in saved.parent.iterdir() if p.name.startswith(".trackstack")]

    copy = pickle.loads(pickle.dumps(trainer)).loggers[0]
    assert isinstance(copy, TrackstackLogger)
    assert copy.run_id == logger.run_id
    copy.log_metrics({"after": 1.0}, step=99)  # the copy resumes the run
    copy.finalize("success")
    assert read(tracker, str(logger.run_id)).metrics["after"][0].step == 99


def test_a_requeued_slurm_job_continues_its_run(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(SLURM_JOB.format(tests=str(REPO), store=str(tmp_path / "store")))
    env = {**os.environ, "SLURM_JOB_ID": "4242", "PYTHONPATH": str(REPO)}
    first = subprocess.run([sys.executable, str(script), "requeue"], env=env,
                           capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert first.returncode != 0, first.stderr  # stopped by the SIGTERM
    tracker = trackstack.load_tracker({"flavor": "local", "config": {"root": tmp_path / "store"}})
    (left,) = tracker.list_runs()
    assert left.status is RunStatus.RUNNING
    assert left.tags["slurm.job_id"] == "4242"
    second = subprocess.run([sys.executable, str(script), "resume"],
                            env={**env, "SLURM_RESTART_COUNT": "1"},
                            capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert second.returncode == 0, second.stderr
    (run,) = tracker.list_runs()
    assert run.id == left.id
    assert run.status is RunStatus.FINISHED
    assert {p.step for p in run.metrics["train/loss"]} == {1, 3, 5, 7, 9, 11, 13, 15}


SLURM_JOB = """
import os, signal, sys
sys.path.insert(0, {tests!r})
import trackstack
from tests.lightning.test_lightning_logger import Tiny, fit
from trackstack.integrations.lightning import TrackstackLogger
tracker = trackstack.load_tracker({{"flavor": "local", "config": {{"root": {store!r}}}}})
logger = TrackstackLogger(tracker, experiment="slurm")
class Requeued(Tiny):
    def on_train_batch_end(self, *args):
        if sys.argv[1] == "requeue" and self.global_step == 4:
            # What Lightning's SLURM handler does on the requeue signal, then SLURM's SIGTERM.
            logger.finalize("finished")
            os.kill(os.getpid(), signal.SIGTERM)
fit([logger], Requeued(), ".", epochs=2)
"""


def test_ddp_on_two_cpu_processes_logs_one_run_from_rank_0(tmp_path: Path) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        import lightning.pytorch as pl
        import trackstack
        from lightning.pytorch.loggers import CSVLogger
        from tests.lightning.test_lightning_logger import Tiny, data
        from trackstack.integrations.lightning import TrackstackLogger
        tracker = trackstack.load_tracker({{"flavor": "local", "config": {{"root": "store"}}}})
        logger = TrackstackLogger(tracker, experiment="ddp")
        trainer = pl.Trainer(max_epochs=2, logger=[logger, CSVLogger("csv")], log_every_n_steps=1,
                             strategy="ddp", devices=2, accelerator="cpu",
                             enable_progress_bar=False, enable_model_summary=False)
        trainer.fit(Tiny(), data(), data())
    """)
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    tracker = trackstack.load_tracker({"flavor": "local", "config": {"root": tmp_path / "store"}})
    (run,) = tracker.list_runs()
    assert run.status is RunStatus.FINISHED
    (csv_file,) = (tmp_path / "csv").rglob("metrics.csv")
    assert points(run) == csv_points(csv_file)


def test_a_backend_down_for_the_whole_fit_costs_nothing_and_sync_delivers_it(
    tmp_path: Path,
) -> None:
    port = free_port()
    tracker = load({"flavor": "mlflow", "config": {
        "tracking_uri": f"http://127.0.0.1:{port}", "request_retries": 0, "request_timeout": 5,
    }})  # fmt: skip
    tracker.retry_initial, tracker.end_timeout = 0.1, 1.0
    logger = TrackstackLogger(tracker, experiment="outage")
    csv_logger = CSVLogger(tmp_path / "csv")
    fit([logger, csv_logger], Tiny(), tmp_path)  # nothing listens on the port
    server = MlflowServer(tmp_path / "server", f"sqlite:///{tmp_path / 'server.db'}", port=port)
    try:
        server.wait_until_healthy()
        report = trackstack.sync(tracker)
        assert report.runs >= 1
        (run,) = tracker.list_runs("outage")
        assert run.status is RunStatus.FINISHED
        assert points(read(tracker, run.id)) == csv_points(Path(csv_logger.log_dir) / "metrics.csv")
        assert run.params["lr"] == "0.1"
    finally:
        server.stop()


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    names = run_readme_example("lightning", tmp_path, model=Tiny(), train_loader=data(),
                               val_loader=data())  # fmt: skip
    tracker = trackstack.load_tracker(tmp_path / "trackstack.yaml")
    record = tracker.get_run(names["logger"].run_id)
    assert record.status is RunStatus.FINISHED
    assert record.experiment == "mnist"
    assert len(record.artifacts) == 2  # a checkpoint per epoch
