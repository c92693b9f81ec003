"""``trackstack.sync()``: deliver what waits in run journals, for one tracker or for all.

Without a tracker, every tracker folder under the journal root is delivered
with a tracker rebuilt from its ``tracker.json`` (flavor and non-secret config).
Secrets come from the configured tracker when it is the same one
(``load_tracker()``), else from the backend SDK's own environment variables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trackstack.delivery.journal import default_root
from trackstack.delivery.sync import SyncReport, sync_folder
from trackstack.errors import TrackstackError

if TYPE_CHECKING:
    from trackstack.experiment_trackers import BaseExperimentTracker

__all__ = ["SyncReport", "sync"]


def sync(
    tracker: BaseExperimentTracker | None = None,
    journal: Path | str | None = None,
    *,
    outbox: Path | str | None = None,
) -> SyncReport:
    """Deliver every journaled run not yet acknowledged, and recover runs of dead processes.

    ``tracker``: only its journals (else every tracker's under the root);
    ``journal``: the journal root (default ``$TRACKSTACK_JOURNAL``, else
    ``$TRACKSTACK_OUTBOX``, else ``./.trackstack/journal``). Syncing again sends
    nothing. Raises ``BackendUnavailableError`` while a backend cannot be reached.
    """
    chosen = journal if journal is not None else outbox
    root = Path(chosen) if chosen is not None else None
    report = SyncReport()
    if tracker is not None:
        # A fan-out tracker's runs are journaled by each member, in the member's folder.
        for member in getattr(tracker, "trackers", [tracker]):
            sync_folder(member, member.journal_folder(root), report)
        return report
    base = root or default_root()
    configured = _configured()
    members = [] if configured is None else getattr(configured, "trackers", [configured])
    known = {member.journal_folder(base): member for member in members}
    for folder in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
        if folder in known:
            sync_folder(known[folder], folder, report)
            continue
        rebuilt = _rebuild(folder)
        if isinstance(rebuilt, str):
            report.failed.append({"journal": str(folder), "error": rebuilt})
        else:
            sync_folder(rebuilt, folder, report)
    return report


def _configured() -> BaseExperimentTracker | None:
    from trackstack.config import load_tracker

    try:
        return load_tracker()
    except TrackstackError:
        return None


def _rebuild(folder: Path) -> BaseExperimentTracker | str:
    """The tracker a folder's journals belong to, or why it cannot be built."""
    from trackstack.experiment_trackers import BaseExperimentTracker
    from trackstack.registry import get_flavor

    try:
        described: Any = json.loads((folder / "tracker.json").read_text(encoding="utf-8"))
        flavor, name, config = described["flavor"], described["name"], described["config"]
        built = get_flavor(str(flavor)).create(str(name), **dict(config))
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"its tracker.json does not describe a tracker ({type(error).__name__}: {error})"
    except TrackstackError as error:
        return f"cannot rebuild its tracker: {error}"
    if not isinstance(built, BaseExperimentTracker):
        return f"flavor {flavor!r} is not an experiment tracker"
    built.journal_dir = folder.parent
    return built
