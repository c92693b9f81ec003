"""``TrackstackLogger``: a Lightning logger that logs through any trackstack tracker.

::

    from lightning.pytorch import Trainer
    from trackstack.integrations.lightning import TrackstackLogger

    trainer = Trainer(logger=TrackstackLogger(config="trackstack.yaml", experiment="mnist"))

Only rank 0 logs (the other ranks get Lightning's dummy experiment), so a DDP job
is one run. ``finalize`` ends the run FINISHED after a fit, FAILED after an
exception, KILLED after Ctrl-C; a SLURM requeue leaves it RUNNING, and the
requeued job (same ``$SLURM_JOB_ID``) resumes it.
"""

from __future__ import annotations

import os
import re
import sys
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trackstack.enums import RunStatus
from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.integrations.bridge import RunBridge, require
from trackstack.run import Run

require("lightning.pytorch", "lightning")

from lightning.fabric.loggers.logger import rank_zero_experiment  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import Logger  # noqa: E402
from lightning.pytorch.utilities import rank_zero_only  # noqa: E402

__all__ = ["TrackstackLogger"]

_PATH_UNSAFE = re.compile(r"[^\w.-]")


class TrackstackLogger(Logger):
    """Logs a Lightning ``Trainer``'s metrics, hyperparameters and checkpoints to one run.

    ``tracker``: a trackstack tracker; without it, ``config`` (a file path or a dict),
    else ``trackstack.load_tracker()``. ``run_id`` resumes that run. With
    ``log_checkpoints``, each checkpoint Lightning saves is uploaded to the run's
    ``checkpoints/`` artifacts in the background.
    """

    def __init__(
        self,
        tracker: BaseExperimentTracker | None = None,
        *,
        config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        experiment: str | None = None,
        run_name: str | None = None,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        log_checkpoints: bool = False,
    ) -> None:
        super().__init__()
        self.bridge = RunBridge(
            "lightning",
            tracker,
            config=config,
            experiment=experiment,
            run_name=run_name,
            run_id=run_id,
            tags=tags,
            log_checkpoints=log_checkpoints,
        )
        self._uploaded: dict[str, int] = {}
        """Checkpoint paths uploaded, to the modification time they had."""

    @property
    @rank_zero_experiment
    def experiment(self) -> Run:
        """The trackstack run (on rank 0; Lightning's dummy experiment elsewhere)."""
        return self.bridge.start()

    @property
    def name(self) -> str:
        """The experiment, path-safe: Lightning puts checkpoints in ``save_dir/name/version``."""
        run = self.bridge.current
        experiment = run.experiment if run is not None else self.bridge.experiment
        return _path_safe(experiment or "trackstack")

    @property
    def version(self) -> str | None:
        """The run's id, path-safe; Lightning asks for it on rank 0 when it places checkpoints,
        which starts the run there (None on the other ranks)."""
        if self.run_id is None:
            _ = self.experiment  # Lightning's dummy experiment on other ranks
        return None if self.run_id is None else _path_safe(self.run_id)

    @property
    def run_id(self) -> str | None:
        """The run's id once this process has started or resumed it (kept after it ends);
        None before, and in a process that launched DDP spawn workers, which log alone."""
        run = self.bridge.current
        return run.id if run is not None and not run.discards else self.bridge.run_id

    @rank_zero_only
    def log_hyperparams(
        self, params: Mapping[str, Any] | Namespace | None, *args: Any, **kwargs: Any
    ) -> None:
        """Nested hyperparameters flattened with dots, never truncated, each set once."""
        if isinstance(params, Namespace):
            params = vars(params)
        self.bridge.log_params(dict(params or {}))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self.bridge.log_metrics(metrics, step)

    def save(self) -> None:
        """Nothing: Lightning calls this after every ``log_metrics``; the run's journal
        already holds each point, and the background sender batches them."""

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        if not self.bridge.log_checkpoints:
            return
        paths = {
            checkpoint_callback.best_model_path,
            checkpoint_callback.last_model_path,
            *checkpoint_callback.best_k_models,
        }
        for path in sorted(p for p in paths if p):
            if "://" in path:
                self.bridge.warn("remote", f"checkpoint {path} is not on this machine's disk; "
                                 "log_checkpoints uploads local checkpoints only")  # fmt: skip
                continue
            try:
                modified = Path(path).stat().st_mtime_ns
            except OSError:  # a checkpoint rotated away before this call
                continue
            if self._uploaded.get(path) != modified:
                self._uploaded[path] = modified
                self.bridge.upload(path, "checkpoints")

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """ "success" -> FINISHED, "failed" -> FAILED (KILLED for Ctrl-C), "finished"
        (a SLURM requeue) -> delivered and left RUNNING for the requeued job."""
        if status == "finished":
            self.bridge.detach()
            return
        final = RunStatus.FINISHED
        if status != "success":
            # Lightning calls this from its exception handler, so the exception is at hand.
            failure = sys.exc_info()[1]
            final = RunStatus.KILLED if isinstance(failure, KeyboardInterrupt) else RunStatus.FAILED
        self.bridge.end(final)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_uploaded"] = {}
        return state


def _path_safe(text: str) -> str:
    return _PATH_UNSAFE.sub("_", text)
