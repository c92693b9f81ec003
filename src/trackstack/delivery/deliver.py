"""Sending a run's journal entries to its backend in order, exactly once, poison set aside.

``Delivery`` is shared by the live sender and by sync. It turns entries into
hook calls (metric rows merged up to ``max_metrics_per_call``, params and tags
chunked) and records the position reached after every call that succeeded, so
whatever restarts delivery (a retry, a new process, a second sync) starts
after what the backend already took.

What the backend refuses is isolated by halving the refused call until the
refused item stands alone; it is set aside with its reason and everything
else goes on. An unreachable backend or refused credentials are not a
refusal: the position stays and the caller retries later.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trackstack.backend import RunStart
from trackstack.delivery.codec import Entry, Kind
from trackstack.delivery.protocol import Backend
from trackstack.enums import RunStatus
from trackstack.errors import (
    AuthenticationError,
    BackendError,
    BackendUnavailableError,
    RunNotFoundError,
    TrackstackError,
)
from trackstack.validation import ParamValue

__all__ = ["JOURNAL_TAG", "RECOVERY_TAG", "TRANSIENT", "Delivery", "Refusal"]

logger = logging.getLogger(__name__)

JOURNAL_TAG = "trackstack.journal"
"""Set on a run created from a journal: a replay finds the run instead of making a second."""
RECOVERY_TAG = "trackstack.recovery"
TRANSIENT = (BackendUnavailableError, AuthenticationError)
"""Failures that say nothing about the data: it is kept and sent again."""
_REFUSED_IN_A_ROW = 64
"""More single refusals than this with no success between: the backend refuses everything."""
_WHAT = {Kind.METRICS: "metric", Kind.PARAMS: "param", Kind.TAGS: "tag",
         Kind.ARTIFACT: "artifact", Kind.END: "end"}  # fmt: skip


@dataclass(frozen=True)
class Refusal:
    """Items the backend refused, set aside with its reason."""

    what: str
    keys: list[str]
    reason: str

    def describe(self) -> str:
        return f"{self.what} {', '.join(repr(k) for k in self.keys)} ({self.reason})"


Position = tuple[int, int]
"""(sequence number, items of that record delivered): everything before it is acknowledged."""


class Delivery:
    """One run's delivery state: where it got to and what was refused."""

    def __init__(
        self,
        backend: Backend,
        start: dict[str, Any],
        acked: dict[str, Any],
        *,
        on_ack: Callable[[dict[str, Any]], None],
        files: Path | None = None,
        refused_file: Path | None = None,
    ) -> None:
        self.backend = backend
        self.start = start
        self.pending_id: str | None = start["run_id"] if start.get("pending") else None
        acked_id = acked.get("run_id")
        self.run_id: str | None = acked_id if isinstance(acked_id, str) else None
        if self.run_id is None and self.pending_id is None:
            self.run_id = start["run_id"]
        first = 0 if self.run_id is None else 1
        self.position: Position = (_int(acked.get("seq"), first), _int(acked.get("part"), 0))
        self.starting = bool(acked.get("starting"))
        self.on_ack = on_ack
        self.files = files
        self.refused_file = refused_file
        self.refusals: list[Refusal] = []
        self.points = 0
        self.ended = False
        self._reattached = False
        self._refused_in_a_row = 0

    @property
    def state(self) -> dict[str, Any]:
        seq, part = self.position
        return {"seq": seq, "part": part, "run_id": self.run_id, "starting": self.starting}

    def done_with(self, entry: Entry) -> bool:
        """Whether every item of ``entry`` is acknowledged."""
        seq, part = self.position
        return entry.seq < seq or (entry.seq == seq and part >= len(entry.items))

    def deliver(self, entries: Iterable[Entry]) -> None:
        """Send every entry not yet acknowledged, in order; raises ``TRANSIENT`` errors."""
        limit = max(1, self.backend.capabilities.max_metrics_per_call)
        rows: list[Any] = []
        positions: list[Position] = []
        for entry in entries:
            seq, part = self.position
            if entry.seq < seq:
                continue
            skip = part if entry.seq == seq else 0
            if entry.kind == Kind.METRICS:
                for index in range(skip, len(entry.items)):
                    rows.append(entry.items[index])
                    positions.append((entry.seq, index + 1))
                    if len(rows) == limit:
                        self._send(Kind.METRICS, rows, positions)
                        rows, positions = [], []
                continue
            if rows:
                self._send(Kind.METRICS, rows, positions)
                rows, positions = [], []
            self._deliver_entry(entry, skip)
        if rows:
            self._send(Kind.METRICS, rows, positions)

    def recover(self, host: str, pid: object) -> None:
        """End a run whose writing process died: tagged to say so, then KILLED."""
        reason = f"ended KILLED by trackstack after its process {pid} on {host} died"
        end = len(self.refusals)
        self._send(Kind.TAGS, [(RECOVERY_TAG, reason)], [self.position], ack=False)
        self._send(Kind.END, [RunStatus.KILLED.value], [self.position], ack=False)
        if len(self.refusals) > end:
            raise BackendError(
                f"could not end run {self.run_id} KILLED: {self.refusals[-1].reason}"
            )

    # -- internals ------------------------------------------------------------------

    def _deliver_entry(self, entry: Entry, skip: int) -> None:
        after = (entry.seq, len(entry.items))
        if entry.kind == Kind.START:
            if self.run_id is None:
                self._create(entry.items[0])
            self._advance(after)
        elif entry.kind in (Kind.PARAMS, Kind.TAGS):
            caps = self.backend.capabilities
            size = caps.max_params_per_call if entry.kind == Kind.PARAMS else caps.max_tags_per_call
            for at in range(skip, len(entry.items), max(1, size)):
                chunk = entry.items[at : at + size]
                positions = [(entry.seq, at + i + 1) for i in range(len(chunk))]
                self._send(entry.kind, chunk, positions)
        elif entry.kind in (Kind.ARTIFACT, Kind.END):
            self._send(entry.kind, entry.items, [after])
        else:  # DETACH: the process left the run open; nothing to send
            self._advance(after)

    def _send(
        self, kind: int, items: Sequence[Any], positions: list[Position], ack: bool = True
    ) -> None:
        try:
            self._invoke(kind, items)
        except TRANSIENT:
            raise
        except RunNotFoundError as error:
            if self._reattach():
                self._send(kind, items, positions, ack)
                return
            self._refuse(kind, items, error)
        except TrackstackError as error:
            if len(items) > 1:
                # Halve until the refused item stands alone; each half acknowledged as it goes.
                half = len(items) // 2
                self._send(kind, items[:half], positions[:half], ack)
                self._send(kind, items[half:], positions[half:], ack)
                return
            self._refuse(kind, items, error)
        else:
            self._refused_in_a_row = 0
            if kind == Kind.METRICS:
                self.points += len(items)
            elif kind == Kind.END:
                self.ended = True
        if ack:
            self._advance(positions[-1])

    def _invoke(self, kind: int, items: Sequence[Any]) -> None:
        backend, run_id = self.backend, self.run_id
        if run_id is None:
            raise BackendError("the run's start record was not delivered first")
        call = backend._call_backend
        if kind == Kind.METRICS:
            backend._store_metrics(str(run_id), list(items))
        elif kind == Kind.PARAMS:
            params = {key: ParamValue(text, value) for key, text, value in items}
            call("log params", backend.backend_log_params, run_id, params)
        elif kind == Kind.TAGS:
            call("set tags", backend.backend_set_tags, run_id, dict(items))
        elif kind == Kind.ARTIFACT:
            stored, artifact_path = items[0]
            local = Path(stored)
            if not local.is_absolute() and self.files is not None:
                local = self.files / local
            if not local.exists():
                raise BackendError(f"the journal's copy {local} of the artifact is gone")
            call("log artifact", backend.backend_log_artifact, run_id, local, artifact_path)
        elif kind == Kind.END:
            call("end run", backend.backend_end_run, run_id, RunStatus(items[0]))

    def _create(self, start: dict[str, Any]) -> None:
        """Create a run started while the backend was unreachable, once whatever happens."""
        journal = str(start.get("journal"))
        found = self._find_created(start, journal) if self.starting else None
        if found is None:
            self.starting = True
            self.on_ack(self.state)  # from here a replay looks for the run before making one
            backend = self.backend
            request = RunStart(
                str(start["experiment"]),
                start.get("run_name"),
                {**start.get("tags", {}), JOURNAL_TAG: journal},
                start.get("parent_id"),
                None,
                backend.validate_settings(start.get("settings")),
            )
            found = backend._call_backend("start run", backend.backend_start_run, request).id
        self.run_id, self.starting = found, False

    def _find_created(self, start: dict[str, Any], journal: str) -> str | None:
        backend = self.backend
        runs = backend._call_backend("list runs", backend.backend_list_runs, start["experiment"])
        return next((run.id for run in runs if run.tags.get(JOURNAL_TAG) == journal), None)

    def _reattach(self) -> bool:
        """Reopen the run in this process once (a W&B run lives in the process that made it)."""
        if self._reattached or not self.backend.capabilities.resume:
            return False
        self._reattached = True
        backend, start = self.backend, self.start
        request = RunStart(
            str(start["experiment"]), start.get("run_name"), {}, start.get("parent_id"),
            self.run_id, backend.validate_settings(start.get("settings")),
        )  # fmt: skip
        try:
            backend._call_backend("reopen run", backend.backend_start_run, request)
        except RunNotFoundError:
            return False
        return True

    def _refuse(self, kind: int, items: Sequence[Any], error: TrackstackError) -> None:
        self._refused_in_a_row += 1
        if self._refused_in_a_row > _REFUSED_IN_A_ROW:
            raise BackendError(
                f"the {self.backend.flavor} backend refuses every call for run {self.run_id} "
                f"({error}); what is left stays in the journal and is sent again later"
            ) from error
        keys = [str(item[0]) for item in items] if kind != Kind.END else [str(items[0])]
        if kind == Kind.ARTIFACT:
            keys = [str(items[0][0])]
        refusal = Refusal(_WHAT.get(kind, "record"), keys, str(error))
        self.refusals.append(refusal)
        logger.debug("trackstack: set aside %s", refusal.describe())
        if self.refused_file is None:
            return
        line = {"run_id": self.run_id or self.pending_id, "what": refusal.what,
                "items": items, "reason": refusal.reason}  # fmt: skip
        try:
            self.refused_file.parent.mkdir(parents=True, exist_ok=True)
            with self.refused_file.open("a", encoding="utf-8") as file:
                file.write(json.dumps(line, default=str, allow_nan=True) + "\n")
        except OSError as problem:
            logger.warning("trackstack: cannot keep refused items in %s: %s", self.refused_file,
                           problem)  # fmt: skip

    def _advance(self, position: Position) -> None:
        self.position = position
        self.on_ack(self.state)


def _int(value: Any, default: int) -> int:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default
    )
