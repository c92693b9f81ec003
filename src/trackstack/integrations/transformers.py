"""``TrackstackCallback``: a Hugging Face ``Trainer`` logs through any trackstack tracker.

::

    from transformers import Trainer
    from trackstack.integrations.transformers import TrackstackCallback

    trainer = Trainer(model, args, callbacks=[TrackstackCallback(experiment="glue")], ...)

``report_to`` takes only transformers' own names, so the callback goes in
``callbacks`` (set ``report_to="none"`` to keep the others out). Only the main
process logs. The run's id is saved in each checkpoint's ``trainer_state.json``,
so ``trainer.train(resume_from_checkpoint=...)`` continues the same run. A training
that raises ends the run FAILED when the exception ends the program (the Trainer
tells callbacks nothing of it); call ``callback.end("FAILED")`` where you catch it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, cast

from trackstack.enums import RunStatus
from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.integrations.bridge import RunBridge, require
from trackstack.run import Run, coerce_status

require("transformers", "transformers")

from transformers import (  # noqa: E402
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

__all__ = ["STATE_KEY", "TrackstackCallback"]

STATE_KEY = "TrackstackRun"
"""Where the run's id is kept in ``TrainerState.stateful_callbacks`` (and so in checkpoints)."""


class TrackstackCallback(TrainerCallback):
    """Logs a ``Trainer``'s training arguments, model config and logs to one run.

    ``tracker``: a trackstack tracker; without it, ``config`` (a file path or a dict),
    else ``trackstack.load_tracker()``. ``run_id`` resumes that run. With
    ``log_checkpoints``, each checkpoint folder is uploaded to the run's
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
        self.bridge = RunBridge(
            "transformers",
            tracker,
            config=config,
            experiment=experiment,
            run_name=run_name,
            run_id=run_id,
            tags=tags,
            log_checkpoints=log_checkpoints,
        )
        self._saved: str | None = None
        """The checkpoint folder saved last, uploaded at the next step."""

    @property
    def run(self) -> Run:
        """The trackstack run (started on first use)."""
        return self.bridge.start()

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """End the run now, e.g. ``FAILED`` where the training's exception is caught."""
        self.bridge.end(coerce_status(status))

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero:
            return
        # A dict once loaded from a checkpoint's trainer_state.json; saved with every checkpoint.
        stored = cast(dict[str, Any], state.stateful_callbacks)
        saved = stored.get(STATE_KEY)
        if self.bridge.current is None and isinstance(saved, Mapping) and saved.get("run_id"):
            self.bridge.run_id = str(saved["run_id"])  # resuming from a checkpoint
        elif state.is_hyper_param_search and self.bridge.current is None:
            self.bridge.run_id = None  # each trial of a search is a run of its own
        run = self.bridge.start()
        stored[STATE_KEY] = {"run_id": run.id}
        params: dict[str, Any] = args.to_dict()  # type: ignore[no-untyped-call]  # masks *_token
        model_config = getattr(getattr(model, "config", None), "to_dict", None)
        if callable(model_config):
            params.update(model_config())
        self.bridge.log_params(params)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if state.is_world_process_zero and logs:
            self.bridge.log_metrics(logs, step=state.global_step)

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.is_world_process_zero and self.bridge.log_checkpoints:
            # Taken at the next step (or the end): by then every rank has written its part
            # of the folder (its RNG state, its shards), which on_save does not wait for.
            self._saved = os.path.join(args.output_dir or ".", f"checkpoint-{state.global_step}")

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._upload_saved()

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.is_world_process_zero:
            self._upload_saved()
            self.bridge.end(RunStatus.FINISHED)

    def _upload_saved(self) -> None:
        folder, self._saved = self._saved, None
        if folder is not None and os.path.isdir(folder):
            self.bridge.upload(folder, "checkpoints")
