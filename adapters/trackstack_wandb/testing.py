"""A conformance reader that reads W&B's own run files, never asking the adapter."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from trackstack.errors import RunNotFoundError
from trackstack.records import RunRecord
from trackstack_wandb.mapping import MAX_WANDB_TAG, STEP_KEY, record_from_state
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

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """The copy W&B staged for the file (kept offline until ``wandb sync``), checked
        against the MD5 digest W&B recorded for it."""
        digest, copy = self.state(run_id).artifact_copies[path]
        data = Path(copy).read_bytes()
        if base64.b64encode(hashlib.md5(data).digest()).decode() != digest:
            raise AssertionError(f"W&B's copy of {path!r} ({copy}) does not match its digest")
        return data

    def read(self, run_id: str) -> RunRecord:
        state = self.state(run_id)
        record = record_from_state(state, str(run_files(self.root, run_id)[-1].parent))
        return dataclasses.replace(record, tags=_tags_as_wandb_lists_them(state.tags, record.tags))


def _tags_as_wandb_lists_them(listed: list[str], exact: dict[str, str]) -> dict[str, str]:
    """The tags in W&B's own tag list (``key:value``).

    A key with a colon makes its entry ambiguous, so an entry is read as the
    tag of trackstack's exact copy (in the run's config) it spells, if any;
    a tag too long for W&B's list counts as the copy has it.
    """
    spelled = {f"{key}:{value}": (key, value) for key, value in exact.items()}
    tags = dict(item for item in exact.items() if len(":".join(item)) > MAX_WANDB_TAG)
    for entry in listed:
        key, value = spelled.get(entry) or entry.partition(":")[::2]
        tags[key] = value
    return tags
