"""``TrackstackTracker``: accelerate's ``log_with`` logs through any trackstack tracker.

::

    from accelerate import Accelerator
    from trackstack.integrations.accelerate import TrackstackTracker

    accelerator = Accelerator(log_with=TrackstackTracker(experiment="mnist"))
    accelerator.init_trackers("mnist", config={"lr": 0.1})
    accelerator.log({"loss": loss}, step=step)
    accelerator.end_training()

Only the main process logs. accelerate gives a tracker object no project name, so
the experiment is the tracker's own (``experiment=``, else the flavor's config).
``end_training()`` ends the run FINISHED, or FAILED when called while an exception
is being handled; a script that never calls it ends the run at exit.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from trackstack.enums import RunStatus
from trackstack.errors import InvalidInputError
from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.integrations.bridge import RunBridge, require
from trackstack.run import Run

require("accelerate", "accelerate")

from accelerate.tracking import GeneralTracker, on_main_process  # noqa: E402

__all__ = ["TrackstackTracker"]


class TrackstackTracker(GeneralTracker):  # type: ignore[misc]  # accelerate is untyped
    """An accelerate tracker named ``"trackstack"`` that logs to one trackstack run.

    ``tracker``: a trackstack tracker; without it, ``config`` (a file path or a dict),
    else ``trackstack.load_tracker()``. ``run_id`` resumes that run.
    ``log_checkpoints=True`` is refused: accelerate tells trackers nothing when it
    saves state; upload a folder after ``accelerator.save_state(folder)`` with
    ``accelerator.get_tracker("trackstack").log_checkpoint(folder)`` on the main process
    (elsewhere accelerate's ``get_tracker`` returns a blank tracker).
    """

    name = "trackstack"
    requires_logging_directory = False
    main_process_only = True

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
        if log_checkpoints:
            raise InvalidInputError(
                "accelerate tells trackers nothing when it saves state, so log_checkpoints "
                "cannot work here; after accelerator.save_state(folder), on the main process "
                "(if accelerator.is_main_process:) call "
                'accelerator.get_tracker("trackstack").log_checkpoint(folder)'
            )
        super().__init__()
        self.bridge = RunBridge(
            "accelerate",
            tracker,
            config=config,
            experiment=experiment,
            run_name=run_name,
            run_id=run_id,
            tags=tags,
        )

    @property
    def tracker(self) -> Run:
        """The trackstack run (what ``get_tracker("trackstack", unwrap=True)`` returns)."""
        return self.bridge.start()

    @on_main_process  # type: ignore[untyped-decorator]
    def start(self) -> None:
        self.bridge.start()

    @on_main_process  # type: ignore[untyped-decorator]
    def store_init_configuration(self, values: Mapping[str, Any]) -> None:
        """The run's params: nested dicts flattened with dots, each set once."""
        self.bridge.log_params(values)

    @on_main_process  # type: ignore[untyped-decorator]
    def log(self, values: Mapping[str, Any], step: int | None = None, **kwargs: Any) -> None:
        """The numbers among ``values`` at ``step`` (one past the last step when None)."""
        self.bridge.log_metrics(values, step)

    @on_main_process  # type: ignore[untyped-decorator]
    def log_checkpoint(self, folder: str | os.PathLike[str]) -> None:
        """Upload a saved state (a file or folder) to ``checkpoints/`` in the background."""
        self.bridge.upload(folder, "checkpoints")

    @on_main_process  # type: ignore[untyped-decorator]
    def finish(self) -> None:
        failed = sys.exc_info()[1] is not None
        self.bridge.end(RunStatus.FAILED if failed else RunStatus.FINISHED)
