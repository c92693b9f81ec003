"""Fan-out: one run logged to several trackers at once, each member failing alone.

A ``FanOutTracker`` has the API of any tracker. Each call of its runs is
checked once, against the strictest rules of its members, then handed to a
run of every member; each member journals and delivers it on its own (its own
journal, sender, retries and ``trackstack sync``), so a member that is down or
refuses a call never blocks, slows or fails the training loop or the other
members: it is reported once, and at the end as a summary.

The members' runs share one id, ``run.id``; each holds it as the tag
``trackstack.run_id`` (and its parent's as ``trackstack.parent_run_id``), by
which ``get_run`` finds it in the first member that has it. ``run.ids`` maps
each member's name to its own id. ``verify`` compares what the members hold.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from pydantic import ConfigDict, field_serializer

from trackstack.artifacts import check_artifact_source
from trackstack.backend import Capabilities, RunStart, StartedRun
from trackstack.enums import RunStatus
from trackstack.errors import (
    BackendError,
    InvalidInputError,
    RunNotFoundError,
    TrackstackError,
    UnsupportedOperationError,
)
from trackstack.experiment_trackers import (
    TRACKER_SETTINGS,
    BaseExperimentTracker,
    BaseExperimentTrackerConfig,
    BaseExperimentTrackerFlavor,
    StepRunInfo,
    step_tags,
)
from trackstack.ranks import process_rank
from trackstack.records import MetricPoint, RunRecord
from trackstack.run import Run, check_backend_keys, check_lengths, coerce_status, unset_params
from trackstack.stack import StackComponent
from trackstack.validation import (
    ParamValue,
    check_artifact_path,
    check_key,
    check_step,
    flatten_params,
    metric_value,
    tag_values,
)

__all__ = [
    "RUN_ID_TAG",
    "FanOutConfig",
    "FanOutFlavor",
    "FanOutRun",
    "FanOutTracker",
    "Verification",
    "fan_out",
    "shared_record",
]

logger = logging.getLogger(__name__)

RUN_ID_TAG = "trackstack.run_id"
"""The tag holding a fan-out run's shared id on each member's run."""
PARENT_TAG = "trackstack.parent_run_id"
"""The tag holding the shared id of a fan-out run's parent on each member's run."""
_OWN_TAGS = (RUN_ID_TAG, PARENT_TAG, "trackstack.journal")
"""Tags that are trackstack's bookkeeping on each member (the journal a pending run came from),
left out of a fan-out run's record."""
_SHARED_SETTINGS = TRACKER_SETTINGS
"""Delivery settings that, set on the fan-out tracker, are set on every member."""


class FanOutConfig(BaseExperimentTrackerConfig):
    """The member trackers, in order: reads go to the first that has the run."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    trackers: tuple[Any, ...]
    """The member trackers (built from the ``experiment_trackers:`` list of a config file)."""

    @field_serializer("trackers")
    def _members(self, trackers: tuple[Any, ...]) -> list[dict[str, str]]:
        return [{"flavor": member.flavor, "name": member.name} for member in trackers]


def _strictest(members: Sequence[BaseExperimentTracker]) -> Capabilities:
    """What every member can do, within every member's limits."""
    caps = [member.capabilities for member in members]

    def smallest(values: Iterable[int | None]) -> int | None:
        given = [value for value in values if value is not None]
        return min(given) if given else None

    return Capabilities(
        nested_runs=all(c.nested_runs for c in caps),
        resume=all(c.resume for c in caps),
        sdk_active_run=False,
        max_param_length=smallest(c.max_param_length for c in caps),
        max_tag_length=smallest(c.max_tag_length for c in caps),
        reserved_metric_keys=frozenset().union(*(c.reserved_metric_keys for c in caps)),
        max_step=min(c.max_step for c in caps),
        timestamp_resolution=max(c.timestamp_resolution for c in caps),
        run_time_resolution=max(c.run_time_resolution for c in caps),
    )


class FanOutTracker(BaseExperimentTracker):
    """Logs each run to every member tracker; reads from the first member that has it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.capabilities = _strictest(self.trackers)  # type: ignore[misc]
        self._live: dict[str, FanOutRun] = {}

    @property
    def config(self) -> FanOutConfig:
        return cast(FanOutConfig, self._config)

    @property
    def trackers(self) -> list[BaseExperimentTracker]:
        """The member trackers, in order."""
        return list(self.config.trackers)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in _SHARED_SETTINGS and "_config" in self.__dict__:
            for member in self.trackers:
                setattr(member, name, value)

    def protected_paths(self) -> list[Path]:
        return [path for member in self.trackers for path in member.protected_paths()]

    def journal_folder(self, root: Path | None = None) -> Path:
        """The first member's journal folder (each member journals its own runs)."""
        return self.trackers[0].journal_folder(root)

    def missing_store(self) -> str | None:
        missing = [found for m in self.trackers if (found := m.missing_store()) is not None]
        return missing[0] if len(missing) == len(self.trackers) else None

    # -- the run API ------------------------------------------------------------------

    def start_run(
        self,
        experiment: str | None = None,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        parent: Run | str | None = None,
        settings: Any = None,
    ) -> FanOutRun:
        """Start a run in every member (or resume ``run_id``, or nest under ``parent``).

        ``settings`` maps a member's name to that member's per-run settings.
        """
        chosen = self._member_settings(settings)
        tag_map, parent_id = self._checked_start(experiment, run_name, tags, run_id, parent)
        discarding = self.log_on == "rank0" and process_rank() != 0
        shared = run_id or uuid.uuid4().hex
        own = {RUN_ID_TAG: shared, **({PARENT_TAG: parent_id} if parent_id else {})}
        members: list[tuple[BaseExperimentTracker, Run]] = []
        errors: list[tuple[str, TrackstackError]] = []
        next_step, params = 0, {}
        for member in self.trackers:
            try:
                member_parent = None if parent_id is None else self._member_id(member, parent_id)
                member_id = None if run_id is None else self._member_id(member, run_id)
                run = member.start_run(
                    experiment=experiment, run_name=run_name, tags={**tag_map, **own},
                    run_id=member_id, parent=member_parent, settings=chosen.get(member.name),
                )  # fmt: skip
            except TrackstackError as error:  # this member's trouble; the others go on
                errors.append((member.name, error))
                logger.warning("trackstack: fan-out member %s could not start run %s: %s",
                               member.name, shared, error)  # fmt: skip
                continue
            members.append((member, run))
            next_step = max(next_step, run._next_step)
            params.update(run._params)
        if not members:
            raise errors[0][1]
        first = members[0][1]
        fan = FanOutRun(
            self,
            shared,
            members,
            experiment=first.experiment,
            name=first.name,
            parent_id=parent_id,
            next_step=next_step,
            params=params,
            discard=discarding,
        )
        fan.problems.extend(f"{name}: {error}" for name, error in errors)
        self._live[shared] = fan
        return fan

    def _member_settings(self, settings: Any) -> dict[str, Any]:
        """Per-run settings by member name; each member checks its own."""
        if not settings:
            return {}
        names = [member.name for member in self.trackers]
        if not isinstance(settings, Mapping) or not set(settings) <= set(names):
            raise InvalidInputError(
                f"a fan-out tracker's settings map a member's name ({', '.join(names)}) to "
                f"that member's per-run settings, got {settings!r}"
            )
        for member in self.trackers:
            member.validate_settings(settings.get(member.name))
        return dict(settings)

    def _member_id(self, member: BaseExperimentTracker, shared: str) -> str:
        """The member's own id of the fan-out run ``shared``."""
        live = self._live.get(shared)
        if live is not None and member.name in live.ids:
            return live.ids[member.name]
        found = member.list_runs(tags={RUN_ID_TAG: shared}, limit=1)
        if not found:
            raise RunNotFoundError(
                f"member {member.name!r} ({member.flavor}) has no run {shared!r} "
                f"(no run tagged {RUN_ID_TAG}={shared})"
            )
        return found[0].id

    def get_run(self, run_id: str) -> RunRecord:
        """The run as the first member that has it holds it, under its shared id."""
        if not isinstance(run_id, str) or not run_id:
            raise InvalidInputError(f"run_id must be a non-empty string, got {run_id!r}")
        live = self._live.get(run_id)
        if live is not None:
            live.flush_quietly()
        problems = []
        for member in self.trackers:
            try:
                return shared_record(member.get_run(self._member_id(member, run_id)), run_id)
            except RunNotFoundError as error:
                problems.append(f"{member.name}: {error}")
            except TrackstackError as error:  # a member down: the next may answer
                problems.append(f"{member.name}: {error}")
        raise RunNotFoundError(f"no member tracker has run {run_id!r}: {'; '.join(problems)}")

    def get_runs(self, run_ids: Iterable[str]) -> list[RunRecord]:
        return [self.get_run(run_id) for run_id in run_ids]

    def list_runs(
        self,
        experiment: str | None = None,
        *,
        status: Any = None,
        tags: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Each fan-out run once, as the first member that lists it holds it, newest first."""
        for live in list(self._live.values()):
            live.flush_quietly()
        found: dict[str, RunRecord] = {}
        answered = False
        for member in self.trackers:
            try:
                records = member.list_runs(experiment, status=status, tags=tags)
            except TrackstackError as error:
                logger.warning("trackstack: fan-out member %s cannot list runs: %s",
                               member.name, error)  # fmt: skip
                continue
            answered = True
            for record in records:
                shared = record.tags.get(RUN_ID_TAG)
                if shared is not None and shared not in found:
                    found[shared] = shared_record(record, shared)
        if not answered:
            raise BackendError("no member tracker could list its runs")
        ordered = sorted(found.values(), key=lambda r: r.start_time.timestamp()
                         if r.start_time else 0.0, reverse=True)  # fmt: skip
        return ordered if limit is None else ordered[:limit]

    def verify(self, run_id: str) -> Verification:
        """What every member holds for the run, compared: params, tags, every metric point,
        artifacts and status. ``agree`` only if no member differs from the first."""
        held: dict[str, RunRecord] = {}
        missing: dict[str, str] = {}
        live = self._live.get(run_id)
        if live is not None:
            live.flush_quietly()
        for member in self.trackers:
            try:
                held[member.name] = shared_record(
                    member.get_run(self._member_id(member, run_id)), run_id
                )
            except TrackstackError as error:
                missing[member.name] = str(error)
        return Verification.of(run_id, held, missing)

    # -- ZenML's step lifecycle --------------------------------------------------------------

    def prepare_step_run(self, info: StepRunInfo) -> None:
        run = self.start_run(
            experiment=info.pipeline_name,
            run_name=f"{info.run_name}/{info.step_name}",
            tags=step_tags(info),
            settings=info.settings,
        )
        self._step_runs[(info.run_id, info.step_name)] = run
        for member, member_run in run.members:
            try:
                member.enter_step_run(info, member_run)
            except TrackstackError as error:
                run.note(member, error)

    def cleanup_step_run(self, info: StepRunInfo, step_failed: bool) -> None:
        run = cast(FanOutRun, self.step_run(info))
        status = RunStatus.FAILED if step_failed else RunStatus.FINISHED
        try:
            run.end(status)
        finally:
            for member, member_run in run.members:
                try:
                    member.exit_step_run(info, member_run, status)
                except TrackstackError as error:
                    logger.warning("trackstack: fan-out member %s: %s", member.name, error)

    def get_step_run_metadata(self, info: StepRunInfo) -> dict[str, Any]:
        run = cast(FanOutRun, self.step_run(info))
        metadata: dict[str, Any] = {"experiment_tracker_url": run.url, "fanout_run_id": run.id}
        for member, member_run in run.members:
            metadata.update(member.run_metadata(member_run))
        return metadata

    def _forget_live(self, run: FanOutRun) -> None:
        self._live.pop(run.id, None)

    # -- backend hooks: a fan-out tracker delivers through its members -------------------------

    def _no_hook(self, *args: Any) -> Any:
        raise UnsupportedOperationError("a fan-out tracker delivers through its member trackers")

    def backend_start_run(self, request: RunStart) -> StartedRun:
        return cast(StartedRun, self._no_hook(request))

    def backend_end_run(self, run_id: str, status: RunStatus) -> None:
        self._no_hook(run_id, status)

    def backend_log_params(self, run_id: str, params: Mapping[str, ParamValue]) -> None:
        self._no_hook(run_id, params)

    def backend_log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        self._no_hook(run_id, points)

    def backend_set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self._no_hook(run_id, tags)

    def backend_log_artifact(
        self, run_id: str, local_path: Path, artifact_path: str | None
    ) -> None:
        self._no_hook(run_id, local_path, artifact_path)

    def backend_get_run(self, run_id: str) -> RunRecord:
        return cast(RunRecord, self._no_hook(run_id))

    def backend_list_runs(self, experiment: str | None) -> list[RunRecord]:
        return cast(list[RunRecord], self._no_hook(experiment))


def shared_record(record: RunRecord, shared: str) -> RunRecord:
    """A member's record as the fan-out run's: its shared id and parent, without our tags."""
    tags = {key: value for key, value in record.tags.items() if key not in _OWN_TAGS}
    return replace(record, id=shared, tags=tags, parent_id=record.tags.get(PARENT_TAG))


class FanOutRun(Run):
    """A run of a fan-out tracker: every call checked once, then given to each member's run."""

    def __init__(  # a facade over the members' runs, none of a Run's own delivery
        self,
        tracker: FanOutTracker,
        shared: str,
        members: list[tuple[BaseExperimentTracker, Run]],
        *,
        experiment: str,
        name: str | None,
        parent_id: str | None,
        next_step: int,
        params: Mapping[str, str],
        discard: bool = False,
    ) -> None:
        self.id = shared
        self.members = members
        self.url = members[0][1].url
        self.name = name
        self.experiment = experiment
        self.parent_id = parent_id
        self.pending = all(run.pending for _, run in members)
        self.discards = discard
        self.problems: list[str] = []
        """What members refused or could not do, each once: ``end()`` names them."""
        self._fan = tracker
        self._caps = tracker.capabilities
        self._next_step = next_step
        self._params = dict(params)
        self._status = RunStatus.RUNNING
        self._detached = False
        self._warned: set[str] = set()

    @property
    def ids(self) -> dict[str, str]:
        """Each member tracker's name, to its own id of this run."""
        return {member.name: run.id for member, run in self.members}

    @property
    def status(self) -> RunStatus:
        return self._status

    @property
    def buffered_points(self) -> int:
        return max((run.buffered_points for _, run in self.members), default=0)

    @property
    def journal(self) -> str | None:
        return "; ".join(str(run.journal) for _, run in self.members)

    def __repr__(self) -> str:
        return f"FanOutRun(id={self.id!r}, ids={self.ids!r}, status={self._status.value})"

    # -- calls, checked once --------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        flat = flatten_params(params)
        check_lengths({k: v.text for k, v in flat.items()}, self._caps.max_param_length, "param")
        self._check_open()
        new = unset_params(self.id, self._params, flat)
        for member, _ in self.members:
            member.check_params(self._params, new)
        self._params.update((key, param.text) for key, param in new.items())
        if new:
            self._each(lambda run: run.log_params({k: p.value for k, p in new.items()}))

    def log_metrics(self, metrics: Mapping[str, Any], step: Any = None) -> None:
        if not isinstance(metrics, Mapping):
            raise InvalidInputError(
                f"log_metrics takes a dict of name to value, got a {type(metrics).__name__}"
            )
        values = {}
        for key, value in metrics.items():
            name = self.check_metric_key(key)
            values[name] = metric_value(name, value)
        given = None if step is None else check_step(step)
        self._check_open()
        if not values:
            return
        used = self._next_step if given is None else given
        if used > self._caps.max_step:
            raise InvalidInputError(
                f"step {used} is beyond the largest step a member stores ({self._caps.max_step})"
            )
        self._next_step = used + 1
        self._each(lambda run: run.log_metrics(values, step=used))

    def check_metric_key(self, key: object) -> str:
        name = check_key(key, "metric")
        if name in self._caps.reserved_metric_keys:
            raise InvalidInputError(f"metric name {name!r} is reserved by a member's backend")
        for member, _ in self.members:
            pattern = member.capabilities.key_pattern
            if pattern is not None:
                check_backend_keys([name], pattern, member.flavor, "metric")
        return name

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        values = tag_values(tags)
        check_lengths(values, self._caps.max_tag_length, "tag")
        taken = sorted(set(values) & set(_OWN_TAGS))
        if taken:
            raise InvalidInputError(f"tag(s) {taken} are fan-out's own; use another name")
        self._check_open()
        self._each(lambda run: run.set_tags(values))

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        check_artifact_source(path, self._fan.protected_paths())
        check_artifact_path(artifact_path)
        self._check_open()
        self._each(lambda run: run.log_artifact(path, artifact_path))

    def flush(self) -> None:
        self._each(lambda run: run.flush())

    def flush_quietly(self) -> None:
        """Flush for a read: a member's trouble is noted, not raised."""
        if self._status is RunStatus.RUNNING:
            self.flush()

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """End every member's run; what members refused is named once by a ``BackendError``."""
        final = coerce_status(status)
        if self._status is not RunStatus.RUNNING or self._detached:
            return
        self._status = final
        self._each(lambda run: run.end(final), ended=True)
        self._fan._forget_live(self)
        if self.problems:
            raise BackendError(
                f"fan-out run {self.id}: {len(self.problems)} member problem(s), everything else "
                f"delivered: {'; '.join(self.problems[:5])}"
            )

    def detach(self) -> None:
        if self._status is not RunStatus.RUNNING or self._detached:
            return
        self._each(lambda run: run.detach(), ended=True)
        self._detached = True
        self._fan._forget_live(self)

    def _abandon(self) -> None:
        for _, run in self.members:
            run._abandon()
        self._status = RunStatus.KILLED
        self._fan._forget_live(self)

    def __enter__(self) -> FanOutRun:
        return self

    # -- internals ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._status is not RunStatus.RUNNING or self._detached:
            ended = "was detached" if self._detached else f"has ended ({self._status.value})"
            raise InvalidInputError(
                f"run {self.id} {ended}; resume it with start_run(run_id={self.id!r}) to log more"
            )

    def _each(self, call: Any, ended: bool = False) -> None:
        """Give the call to every member's run; a member's trouble stays its own."""
        if self.discards:
            return
        for member, run in self.members:
            try:
                call(run)
            except TrackstackError as error:
                self.note(member, error)

    def note(self, member: BaseExperimentTracker, error: TrackstackError) -> None:
        """A member's problem: warned once per member, and kept for ``end()``."""
        self.problems.append(f"{member.name}: {error}")
        if member.name not in self._warned:
            self._warned.add(member.name)
            logger.warning("trackstack: fan-out member %s (run %s): %s; the other members go "
                           "on", member.name, self.id, error)  # fmt: skip


@dataclass
class Verification:
    """What the members of a fan-out tracker hold for one run, compared."""

    run_id: str
    members: list[str]
    differences: list[str] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        return not self.differences

    @classmethod
    def of(
        cls, run_id: str, held: Mapping[str, RunRecord], missing: Mapping[str, str]
    ) -> Verification:
        found = cls(run_id, [*held, *missing])
        found.differences += [f"{name} has no run {run_id}: {why}" for name, why in missing.items()]
        if not held:
            return found
        base_name, base = next(iter(held.items()))
        for name, other in list(held.items())[1:]:
            found.differences += _compare(base_name, base, name, other)
        return found


def _points(record: RunRecord) -> dict[str, list[tuple[int, float]]]:
    return {key: [(p.step, p.value) for p in points] for key, points in record.metrics.items()}


def _same_value(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _compare(a_name: str, a: RunRecord, b_name: str, b: RunRecord) -> list[str]:
    differences = []
    for what in ("status", "params", "tags"):
        mine, theirs = getattr(a, what), getattr(b, what)
        if mine != theirs:
            differences.append(f"{what}: {a_name} has {mine!r}, {b_name} has {theirs!r}")
    if sorted(a.artifacts) != sorted(b.artifacts):
        differences.append(
            f"artifacts: {a_name} has {sorted(a.artifacts)}, {b_name} has {sorted(b.artifacts)}"
        )
    mine_points, their_points = _points(a), _points(b)
    for key in sorted(set(mine_points) | set(their_points)):
        left, right = mine_points.get(key, []), their_points.get(key, [])
        same = len(left) == len(right) and all(
            s1 == s2 and _same_value(v1, v2) for (s1, v1), (s2, v2) in zip(left, right, strict=True)
        )
        if not same:
            differences.append(
                f"metric {key!r}: {a_name} has {len(left)} points, {b_name} has {len(right)}"
                + ("" if len(left) != len(right) else " with other steps or values")
            )
    return differences


def fan_out(trackers: Sequence[BaseExperimentTracker], name: str | None = None) -> FanOutTracker:
    """One tracker logging every run to each of ``trackers``; reads from the first that has it."""
    members = list(trackers)
    if not members or not all(isinstance(m, BaseExperimentTracker) for m in members):
        raise InvalidInputError("fan_out takes a list of one or more trackers")
    names = [member.name for member in members]
    if len(set(names)) != len(names):
        raise InvalidInputError(
            f"member trackers need distinct names (run.ids is by name), got {names}"
        )
    built = FanOutFlavor().create(
        name or "+".join(names), config=FanOutConfig(trackers=tuple(members))
    )
    return cast(FanOutTracker, built)


class FanOutFlavor(BaseExperimentTrackerFlavor):
    """Several trackers as one: ``experiment_trackers:`` in a config file, or ``fan_out``."""

    @property
    def name(self) -> str:
        return "fanout"

    @property
    def config_class(self) -> type[FanOutConfig]:
        return FanOutConfig

    @property
    def implementation_class(self) -> type[StackComponent]:
        return FanOutTracker
