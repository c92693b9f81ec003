"""A conformance reader that reads W&B's own run files, never asking the adapter."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from trackstack.errors import RunNotFoundError
from trackstack.records import RunRecord
from trackstack_wandb.mapping import STEP_KEY, record_from_state, tags_from_wandb
from trackstack_wandb.runfile import RunState, read_state, run_files

__all__ = ["WandbRunFileReader"]


class WandbRunFileReader:
    """Reads an offline run from its ``run-<id>.wandb`` files, tags from W&B's own tag list."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_tracker(cls, tracker: Any) -> WandbRunFileReader:
        """The reader of a W&B tracker's offline run files."""
        return cls(Path(tracker.config.dir))

    @staticmethod
    def log_natively(key: str, value: float, step: int) -> None:
        """Log through wandb's own ``wandb.log``, into its active run, at trackstack's step."""
        import wandb

        wandb.log({key: value, STEP_KEY: step})

    def state(self, run_id: str) -> RunState:
        """Everything the run's files hold, folded in order."""
        files = run_files(self.root, run_id)
        if not files:
            raise RunNotFoundError(f"no W&B run file for run {run_id!r} under {self.root}")
        return read_state(files)

    def read(self, run_id: str) -> RunRecord:
        state = self.state(run_id)
        record = record_from_state(state, str(run_files(self.root, run_id)[-1].parent))
        # W&B's own tag list, not trackstack's exact copy in the config.
        return dataclasses.replace(record, tags=tags_from_wandb(state.tags))
