"""Recovering, in the background, the runs of processes that died on a tracker's journal folder.

Once per process and folder, when a tracker first starts a run there: a quiet
thread delivers every journal whose writer is gone without ending its run, and
ends those runs KILLED. The run being started is never touched (its lock is
held) and never waits.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from trackstack.delivery.protocol import Backend
from trackstack.delivery.sync import SyncReport, sync_folder

__all__ = ["recover_in_background"]

logger = logging.getLogger(__name__)

_tried: set[tuple[int, Path]] = set()
_tried_lock = threading.Lock()


def recover_in_background(backend: Backend, folder: Path) -> threading.Thread | None:
    """Start the recovery thread for ``folder`` unless this process already did."""
    with _tried_lock:
        key = (os.getpid(), folder)
        if key in _tried:
            return None
        _tried.add(key)
    thread = threading.Thread(
        target=_recover, args=(backend, folder), name="trackstack-recovery", daemon=True
    )
    thread.start()
    return thread


def _recover(backend: Backend, folder: Path) -> None:
    report = SyncReport()
    try:
        sync_folder(backend, folder, report, only_dead=True)
    except Exception as error:  # the next `trackstack sync` tries again; the run goes on
        logger.info("trackstack: recovery of %s stopped: %s", folder, error)
    for run in report.recovered:
        logger.warning(
            "trackstack: delivered run %s of a process that died and ended it KILLED",
            run["run_id"],
        )
