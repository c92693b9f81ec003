"""Enumerations shared by the stack components and the run API."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RunStatus", "StackComponentType"]


class StackComponentType(StrEnum):
    """The kinds of stack component; trackstack has only experiment trackers."""

    EXPERIMENT_TRACKER = "experiment_tracker"


class RunStatus(StrEnum):
    """Where a run is in its life; every backend's statuses map onto these four."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
