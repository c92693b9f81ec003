"""The local store: one SQLite file for runs and an artifact folder per run.

Every operation opens its own short-lived connection, so the store is safe to
use from several threads and processes at once (SQLite serialises writers).
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trackstack.enums import RunStatus
from trackstack.errors import (
    BackendUnavailableError,
    InvalidInputError,
    ParamConflictError,
    RunNotFoundError,
)
from trackstack.records import MetricPoint, RunRecord

__all__ = ["LocalStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT,
    experiment TEXT NOT NULL,
    status TEXT NOT NULL,
    start_time REAL NOT NULL,
    end_time REAL,
    parent_id TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs (experiment);
CREATE TABLE IF NOT EXISTS params (
    run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS tags (
    run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS metrics (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    step INTEGER NOT NULL,
    value REAL,
    timestamp REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics (run_id, seq);
"""
_UNIQUE_POINTS = """
CREATE UNIQUE INDEX IF NOT EXISTS metrics_once
    ON metrics (run_id, key, step, timestamp, ifnull(value, 'nan'))
"""
"""A point delivered twice (a replay after a crash, a retry after a timeout) is stored once."""
_DROP_REPEATS = """
DELETE FROM metrics WHERE seq NOT IN (
    SELECT min(seq) FROM metrics GROUP BY run_id, key, step, timestamp, ifnull(value, 'nan')
)
"""


@contextmanager
def _unavailable_on_failure(where: Path) -> Iterator[None]:
    try:
        yield
    except (sqlite3.OperationalError, OSError) as error:
        if isinstance(error, OSError) and error.errno not in _DISK_TROUBLE:
            raise
        raise BackendUnavailableError(f"the local store cannot use {where}: {error}") from error


_DISK_TROUBLE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EAGAIN}


def _move_into(source: Path, target: Path) -> None:
    """Move a staged copy to ``target``, merging a folder into one already there."""
    if source.is_dir() and target.is_dir():
        for entry in source.iterdir():
            _move_into(entry, target / entry.name)
        return
    if target.is_dir():  # a file logged where a folder of its name is goes inside it, as cp does
        _move_into(source, target / source.name)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def _utc(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


class LocalStore:
    """Runs under ``root``: ``trackstack.db`` and ``artifacts/<run id>/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.database = root / "trackstack.db"
        self._ready = False

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # A locked, full or vanished database is an outage, not a refusal: kept and retried.
        with _unavailable_on_failure(self.database):
            if not self._ready:
                self.root.mkdir(parents=True, exist_ok=True)
            with self._open() as conn:
                yield conn

    @contextmanager
    def _open(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.database, timeout=60)) as conn, conn:
            if not self._ready:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
                try:
                    conn.execute(_UNIQUE_POINTS)
                except sqlite3.IntegrityError:  # a store written before points were kept once
                    conn.execute(_DROP_REPEATS)
                    conn.execute(_UNIQUE_POINTS)
                self._ready = True
            yield conn

    def artifact_dir(self, run_id: str) -> Path:
        return self.root / "artifacts" / run_id

    def create_run(
        self, experiment: str, name: str | None, parent_id: str | None, tags: Mapping[str, str]
    ) -> str:
        run_id = uuid.uuid4().hex
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO runs (id, name, experiment, status, start_time, parent_id) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, name, experiment, RunStatus.RUNNING.value, time.time(), parent_id),
            )
            self._set_tags(conn, run_id, tags)
        return run_id

    def reopen_run(self, run_id: str, name: str | None, tags: Mapping[str, str]) -> None:
        with self._connect() as conn:
            updated = conn.execute(
                "UPDATE runs SET status = ?, end_time = NULL, name = COALESCE(?, name) "
                "WHERE id = ?",
                (RunStatus.RUNNING.value, name, run_id),
            )
            if not updated.rowcount:
                raise RunNotFoundError(f"the local store at {self.root} has no run {run_id!r}")
            self._set_tags(conn, run_id, tags)

    def end_run(self, run_id: str, status: RunStatus) -> None:
        with self._connect() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, end_time = ? WHERE id = ?",
                (status.value, time.time(), run_id),
            )

    def add_params(self, run_id: str, params: Mapping[str, str]) -> None:
        with self._connect() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO params (run_id, key, value) VALUES (?, ?, ?)",
                [(run_id, key, value) for key, value in params.items()],
            )
            # Another process may have logged the same key first: never overwrite it.
            stored = self._pairs(conn, "params", run_id)
            for key, value in params.items():
                if stored[key] != value:
                    raise ParamConflictError(
                        f"param {key!r} of run {run_id} is already {stored[key]!r}; "
                        f"it cannot change to {value!r}"
                    )

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        with self._connect() as conn:
            self._set_tags(conn, run_id, tags)

    @staticmethod
    def _set_tags(conn: sqlite3.Connection, run_id: str, tags: Mapping[str, str]) -> None:
        conn.executemany(
            "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
            [(run_id, key, value) for key, value in tags.items()],
        )

    def add_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        # SQLite stores NaN as NULL; reading maps NULL back to NaN.
        with self._connect() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO metrics (run_id, key, step, value, timestamp) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (run_id, key, p.step, None if math.isnan(p.value) else p.value, p.timestamp)
                    for key, p in points
                ],
            )

    def add_artifact(self, run_id: str, local_path: Path, artifact_path: str | None) -> None:
        """Copy a file or folder to ``<artifact_path>/<its name>`` in the run's folder.

        The copy is made in a staging folder outside every run and moved into
        place file by file, so a copy that fails half-way leaves nothing a
        record would list.
        """
        run_folder = self.artifact_dir(run_id).resolve()
        target = run_folder.joinpath(*(artifact_path or "").split("/"), local_path.name)
        if not target.resolve().is_relative_to(run_folder):
            raise InvalidInputError(
                f"artifact {local_path.name!r} under {artifact_path!r} would land outside "
                f"run {run_id}'s artifacts; give a plain name and a relative artifact_path"
            )
        if local_path.is_dir() and target.resolve().is_relative_to(local_path.resolve()):
            raise InvalidInputError(
                f"artifact folder {str(local_path)!r} holds its own destination {target}; "
                "log it into another run or folder"
            )
        staging_root = self.root / "artifacts" / ".staging"
        with _unavailable_on_failure(target.parent):
            staging_root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=staging_root))
            try:
                copied = staging / local_path.name
                if local_path.is_dir():
                    shutil.copytree(local_path, copied)
                else:
                    shutil.copy2(local_path, copied)
                _move_into(copied, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    def get_run(self, run_id: str) -> RunRecord:
        with self._connect() as conn:
            rows = conn.execute(_RUN_COLUMNS + " WHERE id = ?", (run_id,)).fetchall()
            if not rows:
                raise RunNotFoundError(f"the local store at {self.root} has no run {run_id!r}")
            return self._record(conn, rows[0])

    def list_runs(self, experiment: str | None) -> list[RunRecord]:
        where, args = ("WHERE experiment = ?", (experiment,)) if experiment else ("", ())
        with self._connect() as conn:
            rows = conn.execute(
                f"{_RUN_COLUMNS} {where} ORDER BY start_time DESC, rowid DESC", args
            ).fetchall()
            return [self._record(conn, row) for row in rows]

    def _record(self, conn: sqlite3.Connection, row: Any) -> RunRecord:
        run_id, name, experiment, status, start, end, parent_id = row
        metrics: dict[str, list[MetricPoint]] = {}
        for key, step, value, timestamp in conn.execute(
            "SELECT key, step, value, timestamp FROM metrics WHERE run_id = ? ORDER BY seq",
            (run_id,),
        ):
            metrics.setdefault(key, []).append(
                MetricPoint(step, math.nan if value is None else value, timestamp)
            )
        return RunRecord(
            id=run_id,
            name=name,
            experiment=experiment,
            status=RunStatus(status),
            params=self._pairs(conn, "params", run_id),
            tags=self._pairs(conn, "tags", run_id),
            metrics=metrics,
            artifacts=self._artifact_files(run_id),
            start_time=_utc(start),
            end_time=_utc(end),
            url=self.artifact_dir(run_id).as_uri(),
            parent_id=parent_id,
        )

    @staticmethod
    def _pairs(conn: sqlite3.Connection, table: str, run_id: str) -> dict[str, str]:
        query = f"SELECT key, value FROM {table} WHERE run_id = ? ORDER BY key"
        return dict(conn.execute(query, (run_id,)).fetchall())

    def _artifact_files(self, run_id: str) -> list[str]:
        folder = self.artifact_dir(run_id)
        if folder.is_dir():
            return sorted(
                p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
            )
        return []


_RUN_COLUMNS = "SELECT id, name, experiment, status, start_time, end_time, parent_id FROM runs"
