"""Reading W&B's offline run files (``run-<id>.wandb``), which wandb 0.31 has no reader for.

A run file is W&B's transaction log: a 7-byte header (``:W&B``, a magic number,
a version), then LevelDB-log framing in 32 KiB blocks. Each chunk has a header
(CRC-32 of type and data, u32; data length, u16; type, u8) and a record is one
FULL chunk or a FIRST, MIDDLE..., LAST run of chunks; a block's last six or
fewer bytes are padding. Each record is a serialized
``wandb.proto.wandb_internal_pb2.Record``.

``RunLog`` reads a file incrementally, so a run still being written can be
polled cheaply, and folds its records into a ``RunState``.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from trackstack.errors import BackendError

__all__ = ["SYNC_KEY", "RunLog", "RunState", "read_state", "run_files"]

_HEADER = 7
_BLOCK = 32 * 1024
_CHUNK = struct.Struct("<IHB")
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
SYNC_KEY = "_trackstack/sync"
"""A summary value the tracker bumps to learn when all it logged before is in the file."""


@dataclass
class RunState:
    """What a run's records say, folded in order: later records override earlier ones."""

    run_id: str = ""
    project: str = ""
    entity: str = ""
    name: str = ""
    group: str = ""
    tags: list[str] = field(default_factory=list)
    start_time: float | None = None
    """When the run first started."""
    last_start: float | None = None
    """When it last started: a resumed run's runtime counts from here."""
    config: dict[str, Any] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    """The path of every file in every artifact the run logged."""
    artifact_copies: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Each artifact file's base64 MD5 digest and the copy W&B staged for upload."""
    exit_code: int | None = None
    """None while the run has not exited."""
    runtime: int = 0
    """Seconds from start to exit, as W&B records them."""
    # History and summary records, nine in ten of a run file, are decoded only when
    # asked for: waiting for a run's exit need not decode its history.
    _rows: list[dict[str, Any]] = field(default_factory=list)
    _unread_rows: list[bytes] = field(default_factory=list)
    _synced: int = 0
    _unread_summaries: list[bytes] = field(default_factory=list)

    @property
    def history(self) -> list[dict[str, Any]]:
        """One dict per ``log`` call, W&B's own keys (``_step``, ``_timestamp``) included."""
        for raw in self._unread_rows:
            self._rows.append(dict(_items(_parse(raw).history.item)))
        self._unread_rows.clear()
        return self._rows

    @property
    def synced(self) -> int:
        """The last value of trackstack's sync marker in the run's summary."""
        for raw in self._unread_summaries:
            for item in _parse(raw).summary.update:
                if item.key == SYNC_KEY or list(item.nested_key) == [SYNC_KEY]:
                    self._synced = int(item.value_json)
        self._unread_summaries.clear()
        return self._synced

    def resumed(self) -> RunState:
        """This state as a resumed run's next file continues it: no exit, no sync marker yet."""
        _ = self.synced  # what is unread folds in first
        self.exit_code, self._synced = None, 0
        return self

    def add(self, raw: bytes) -> None:
        """Fold in one serialized record; kinds that say nothing about the run are skipped."""
        kind = _kind(raw)
        if kind == "history":
            self._unread_rows.append(raw)
        elif kind == "summary":
            self._unread_summaries.append(raw)
        elif kind == "run":
            self._apply_run(_parse(raw).run)
        elif kind == "config":
            self._apply_config(_parse(raw).config)
        elif kind == "artifact":
            contents = _parse(raw).artifact.manifest.contents
            self.artifacts.extend(entry.path for entry in contents)
            self.artifact_copies.update((e.path, (e.digest, e.local_path)) for e in contents)
        elif kind == "exit":
            exit_record = _parse(raw).exit
            self.exit_code, self.runtime = exit_record.exit_code, exit_record.runtime

    def _apply_run(self, run: Any) -> None:
        self.run_id, self.project, self.entity = run.run_id, run.project, run.entity
        self.name, self.group, self.tags = run.display_name, run.run_group, list(run.tags)
        if run.HasField("start_time"):
            self.last_start = run.start_time.seconds + run.start_time.nanos / 1e9
            self.start_time = self.last_start if self.start_time is None else self.start_time
        self._apply_config(run.config)

    def _apply_config(self, config: Any) -> None:
        for item in config.update:
            _set_nested(self.config, _item_path(item), json.loads(item.value_json))
        for item in config.remove:
            path = _item_path(item)
            parent = _get_nested(self.config, path[:-1])
            if isinstance(parent, dict):
                parent.pop(path[-1], None)


@cache
def _record_kinds() -> dict[int, str]:
    """The field numbers of Record's ``record_type`` kinds."""
    from wandb.proto.wandb_internal_pb2 import Record  # type: ignore[attr-defined]

    return {f.number: f.name for f in Record.DESCRIPTOR.oneofs_by_name["record_type"].fields}


def _parse(raw: bytes) -> Any:
    from wandb.proto.wandb_internal_pb2 import Record  # type: ignore[attr-defined]

    record = Record()
    record.ParseFromString(raw)
    return record


def _kind(raw: bytes) -> str | None:
    """The record's kind, found by walking its top-level field tags, not decoding it."""
    kinds, position = _record_kinds(), 0
    while position < len(raw):
        tag, position = _varint(raw, position)
        number, wire_type = tag >> 3, tag & 7
        if number in kinds:
            return kinds[number]
        if wire_type == 0:
            _, position = _varint(raw, position)
        elif wire_type == 2:
            length, position = _varint(raw, position)
            position += length
        else:
            position += 8 if wire_type == 1 else 4
    return None


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def _items(items: Any) -> Iterator[tuple[str, Any]]:
    return ((_item_key(item), json.loads(item.value_json)) for item in items)


def _item_path(item: Any) -> list[str]:
    return list(item.nested_key) or [item.key]


def _item_key(item: Any) -> str:
    # History keys are flat ("a/b", "x.y"); a nested dict logged through
    # wandb.log arrives as a path, which W&B shows joined with dots.
    return item.key or ".".join(item.nested_key)


def _set_nested(target: dict[str, Any], path: list[str], value: Any) -> None:
    for name in path[:-1]:
        target = target.setdefault(name, {})
    target[path[-1]] = value


def _get_nested(source: dict[str, Any], path: list[str]) -> Any:
    for name in path:
        if not isinstance(source, dict):
            return None
        source = source.get(name)  # type: ignore[assignment]
    return source


class RunLog:
    """One run file, read as far as it has been written and re-read from there on ``refresh``."""

    def __init__(self, path: Path, state: RunState | None = None) -> None:
        self.path = path
        self.state = RunState() if state is None else state
        """Folded into; pass another file's state to continue it (a resumed run's next file)."""
        self._offset = _HEADER

    def refresh(self) -> RunState:
        """Fold the records written since the last call into ``state`` and return it."""
        try:
            with self.path.open("rb") as file:
                file.seek(self._offset)
                data = file.read()
        except FileNotFoundError:
            return self.state
        for end, raw in _records(data, self._offset, self.path):
            self.state.add(raw)
            self._offset = end
        return self.state


def _records(data: bytes, offset: int, path: Path) -> Iterator[tuple[int, bytes]]:
    """Each complete record in ``data`` (read from ``offset``) and the offset after it.

    A record still being written, at the end, is left for the next read.
    """
    position, parts = 0, bytearray()
    while True:
        left_in_block = _BLOCK - (offset + position) % _BLOCK
        if left_in_block < _CHUNK.size:
            position += left_in_block
            continue
        if position + _CHUNK.size > len(data):
            return
        crc, length, kind = _CHUNK.unpack_from(data, position)
        start = position + _CHUNK.size
        if crc == 0 and length == 0 and kind == 0:
            return  # zeros: the writer has reserved space it has not filled yet
        if start + length > len(data):
            return
        chunk = data[start : start + length]
        if zlib.crc32(bytes([kind]) + chunk) != crc:
            raise BackendError(
                f"W&B run file {path} is corrupt at byte {offset + position} (checksum mismatch)"
            )
        position = start + length
        if kind == _FULL:
            yield offset + position, bytes(chunk)
        elif kind == _FIRST:
            parts = bytearray(chunk)
        elif kind == _MIDDLE:
            parts += chunk
        elif kind == _LAST:
            yield offset + position, bytes(parts + chunk)
            parts = bytearray()


def run_files(root: Path, run_id: str = "*") -> list[Path]:
    """The offline run files under ``<root>/wandb`` (of one run id, or all), oldest first.

    A resumed run writes a new folder, ``offline-run-<time>-<id>-<n>``, each time.
    """

    def order(path: Path) -> tuple[str, int]:
        folder = path.parent.name.removeprefix("offline-run-")
        started, _, rest = folder.partition("-")
        resumed = rest.removeprefix(path.stem.removeprefix("run-")).removeprefix("-")
        return started, int(resumed) if resumed.isdigit() else 0

    return sorted((root / "wandb").glob(f"offline-run-*/run-{run_id}.wandb"), key=order)


def read_state(files: list[Path]) -> RunState:
    """One run's state from its run files, oldest first (a resumed run has several)."""
    state = RunState()
    for path in files:
        state.exit_code = None  # a later file means the run was resumed after it exited
        RunLog(path, state).refresh()
    return state
