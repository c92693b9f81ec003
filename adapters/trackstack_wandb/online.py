"""Reading online runs back through ``wandb.Api``, W&B's public read API.

What this path returns: id, name, project, status (W&B's run state: finished;
failed and crashed as FAILED; killed and preempted as KILLED; running,
pending and preempting as RUNNING), params from the run config, exact tags
(from trackstack's config section, else W&B's ``key:value`` tags), every
history row through ``scan_history``, the files of every artifact the run
logged, start time (``created_at``), end time (the last heartbeat), URL and
parent run id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from trackstack.enums import RunStatus
from trackstack.records import RunRecord
from trackstack_wandb.mapping import (
    META_KEY,
    params_from_config,
    points_from_history,
    tags_from_wandb,
)

__all__ = ["record_from_api"]

_STATES = {
    "finished": RunStatus.FINISHED,
    "failed": RunStatus.FAILED,
    "crashed": RunStatus.FAILED,
    "killed": RunStatus.KILLED,
    "preempted": RunStatus.KILLED,
}


def _when(iso: str | None) -> datetime | None:
    if not iso:
        return None
    moment = datetime.fromisoformat(iso)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def record_from_api(run: Any) -> RunRecord:
    """A ``wandb.apis.public.Run`` as trackstack's record."""
    config: Mapping[str, Any] = run.config
    meta = config.get(META_KEY) or {}
    status = _STATES.get(run.state, RunStatus.RUNNING)
    files = {path for artifact in run.logged_artifacts() for path in artifact.manifest.entries}
    return RunRecord(
        id=run.id,
        name=run.name,
        experiment=run.project,
        status=status,
        params=params_from_config(config),
        tags=dict(meta.get("tags") or tags_from_wandb(run.tags)),
        metrics=points_from_history(list(run.scan_history())),
        artifacts=sorted(files),
        start_time=_when(run.created_at),
        end_time=None if status is RunStatus.RUNNING else _when(run.heartbeat_at),
        url=run.url,
        parent_id=meta.get("parent_id"),
    )
