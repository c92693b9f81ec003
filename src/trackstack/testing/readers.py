"""Reading runs back without the adapter under test.

A reader answers what the backend really holds, so an adapter cannot agree
with itself about a wrong answer. Readers for MLflow and W&B ship with their
adapters (``trackstack_mlflow.testing``, ``trackstack_wandb.testing``).
"""

from __future__ import annotations

import math
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from trackstack.enums import RunStatus
from trackstack.records import MetricPoint, RunRecord

__all__ = ["FanOutReader", "LocalStoreReader", "RunReader"]


class RunReader(Protocol):
    """Reads one run back through the backend's own client or files.

    A flavor registers a factory ``(tracker) -> RunReader`` under the entry-point
    group ``trackstack.readers`` so that the suite can run on a configured tracker
    with no code (``pytest --pyargs trackstack.testing --trackstack-config FILE``).
    """

    def read(self, run_id: str) -> RunRecord:
        """The run as the backend holds it."""
        ...

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """The bytes the backend holds for the artifact file ``path`` of the run."""
        ...


class LocalStoreReader:
    """Reads the local flavor's SQLite file and artifact folder with plain SQL."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_tracker(cls, tracker: Any) -> LocalStoreReader:
        """The reader of a local tracker's store."""
        return cls(Path(tracker.config.root))

    def read_artifact(self, run_id: str, path: str) -> bytes:
        return (self.root / "artifacts" / run_id).joinpath(*path.split("/")).read_bytes()

    def read(self, run_id: str) -> RunRecord:
        with closing(sqlite3.connect(self.root / "trackstack.db")) as conn:
            (row,) = conn.execute(
                "SELECT name, experiment, status, start_time, end_time, parent_id "
                "FROM runs WHERE id = ?",
                (run_id,),
            ).fetchall()
            params = conn.execute("SELECT key, value FROM params WHERE run_id = ?", (run_id,))
            tags = conn.execute("SELECT key, value FROM tags WHERE run_id = ?", (run_id,))
            metrics: dict[str, list[MetricPoint]] = {}
            for key, step, value, timestamp in conn.execute(
                "SELECT key, step, value, timestamp FROM metrics WHERE run_id = ? ORDER BY seq",
                (run_id,),
            ):
                point = MetricPoint(step, math.nan if value is None else value, timestamp)
                metrics.setdefault(key, []).append(point)
            param_map, tag_map = dict(params.fetchall()), dict(tags.fetchall())
        name, experiment, status, start, end, parent_id = row
        folder = self.root / "artifacts" / run_id
        files = folder.rglob("*") if folder.is_dir() else []
        return RunRecord(
            id=run_id,
            name=name,
            experiment=experiment,
            status=RunStatus(status),
            params=param_map,
            tags=tag_map,
            metrics=metrics,
            artifacts=sorted(p.relative_to(folder).as_posix() for p in files if p.is_file()),
            start_time=datetime.fromtimestamp(start, UTC),
            end_time=None if end is None else datetime.fromtimestamp(end, UTC),
            parent_id=parent_id,
        )


class FanOutReader:
    """Reads a fan-out run from its first member's backend, with that member's own reader."""

    def __init__(self, member: Any, reader: RunReader) -> None:
        self.member = member
        self.reader = reader

    @classmethod
    def for_tracker(cls, tracker: Any) -> FanOutReader:
        """The reader of a fan-out tracker's first member, found as the suite finds any."""
        from importlib.metadata import entry_points

        member = tracker.trackers[0]
        found = [p for p in entry_points(group="trackstack.readers") if p.name == member.flavor]
        if not found:
            raise LookupError(f"flavor {member.flavor!r} registers no trackstack.readers entry")
        return cls(member, found[0].load()(member))

    def _member_id(self, shared: str) -> str:
        from trackstack.fanout import RUN_ID_TAG

        (record,) = self.member.list_runs(tags={RUN_ID_TAG: shared}, limit=1)
        return str(record.id)

    def read(self, run_id: str) -> RunRecord:
        from trackstack.fanout import shared_record

        return shared_record(self.reader.read(self._member_id(run_id)), run_id)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        return self.reader.read_artifact(self._member_id(run_id), path)
