"""What an adapter declares and exchanges with the core through its backend hooks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from trackstack.errors import TrackstackError

__all__ = ["Capabilities", "ResumeState", "RunStart", "StartedRun", "translating"]


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; the core and the conformance suite read these.

    Limits left at ``None`` mean the backend has none the core must enforce.
    """

    nested_runs: bool = True
    resume: bool = True
    artifact_directories: bool = True
    """False: the core uploads a directory file by file through the artifact hook."""
    sdk_active_run: bool = False
    """``prepare_step_run`` makes the run the backend SDK's active run (``mlflow.log_metric``)."""
    max_param_length: int | None = None
    """Longest param value the backend stores whole; longer ones are rejected."""
    max_tag_length: int | None = None
    max_metrics_per_call: int = 1000
    """Most points the core passes to one ``backend_log_metrics`` call."""
    max_params_per_call: int = 100
    max_tags_per_call: int = 100
    reserved_metric_keys: frozenset[str] = frozenset()
    """Metric names the backend keeps for itself; logging one is an ``InvalidInputError``."""
    max_step: int = 2**63 - 1
    """The largest step the backend stores; a step beyond it is an ``InvalidInputError``."""
    key_pattern: str | None = None
    """A regular expression every metric name must match in full (beyond trackstack's own
    key rules), so a name the backend would refuse is rejected at the call."""
    timestamp_resolution: float = 0.001
    """Seconds: a point's stored timestamp is within this of when it was logged."""
    run_time_resolution: float = 0.001
    """Seconds: a run's stored start and end times are within this of the real instants."""
    sender_process: bool = False
    """``backend_log_metrics`` works on a copy of the tracker built from the same config
    in another process, for runs this one started: the core may then store metric
    batches from a sender process (``trackstack.delivery.sender_process``)."""


@dataclass(frozen=True)
class RunStart:
    """What the core asks of ``backend_start_run``: a new run, or an existing one resumed."""

    experiment: str
    run_name: str | None
    tags: dict[str, str] = field(default_factory=dict)
    parent_id: str | None = None
    resume_id: str | None = None
    """Set when resuming: the backend reopens this run instead of creating one."""
    settings: Any = None
    """The run's settings, an instance of the tracker's ``settings_class``, or None."""


@dataclass(frozen=True)
class StartedRun:
    """What ``backend_start_run`` answers: the backend's id for the run and its link."""

    id: str
    url: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class ResumeState:
    """What resuming a run needs from the backend: not its metric histories."""

    experiment: str
    name: str | None
    parent_id: str | None
    params: dict[str, str]
    last_step: int | None
    """The highest step any metric of the run reached; the resumed run goes on after it."""


@contextmanager
def translating(
    translate: Callable[[Exception, str], TrackstackError], where: str
) -> Iterator[None]:
    """Raise ``translate(exc, where)``, chained, for an SDK exception raised inside.

    ``where`` says what was being done ("log metrics to run 123"); trackstack's
    own errors pass through unchanged.
    """
    try:
        yield
    except TrackstackError:
        raise
    except Exception as exc:
        raise translate(exc, where) from exc
