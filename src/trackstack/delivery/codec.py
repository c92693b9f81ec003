"""How journal records are laid out on disk: frames with a checksum and a sequence number.

A frame is ``magic (2 bytes) | length (u32) | crc32 (u32) | body`` where the body
is ``seq (u64) | kind (1 byte) | payload`` and the checksum covers the body. A
reader that meets a frame whose magic, length or checksum is wrong (a torn tail,
flipped bits, garbage) reports the damaged span and looks for the next intact
frame, so one bad record never hides the ones after it.

Metric payloads are packed binary (one ``log_metrics`` call: its step, its
timestamp, then each key and value); every other payload is JSON.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Damage",
    "Entry",
    "Frame",
    "Kind",
    "encode_json",
    "encode_metrics",
    "entry_from_frame",
    "frame",
    "scan",
]

MAGIC = b"\xf3\x7a"
_HEAD = struct.Struct("<2sII")  # magic, body length, crc32 of the body
_BODY = struct.Struct("<QB")  # seq, kind
_METRICS = struct.Struct("<qdH")  # step, timestamp, number of points
_KEY = struct.Struct("<H")
_VALUE = struct.Struct("<d")
MAX_BODY = 64 * 1024 * 1024
"""A length field beyond this is damage, not a record."""


class Kind:
    """The kinds of record, one byte each."""

    START = ord("S")
    """Seq 0 of a journal: the run it belongs to (and, for a pending run, how to create it)."""
    METRICS = ord("M")
    PARAMS = ord("P")
    TAGS = ord("T")
    ARTIFACT = ord("A")
    END = ord("E")
    DETACH = ord("D")
    """The process exited normally with the run still open: sync leaves it open."""
    ACK = ord("a")
    """In the acknowledgement file: how far delivery has got."""


@dataclass(slots=True)
class Entry:
    """A decoded record: ``items`` are what delivery sends, one hook call's worth or less.

    Metrics: ``(key, step, value, timestamp)`` rows; params: ``(key, text, value)``;
    tags: ``(key, value)``; an artifact: one ``(stored path, artifact_path)``;
    an end: one status name; a start: the start record itself.
    """

    seq: int
    kind: int
    items: Sequence[Any]
    """For metrics, a tuple of row tuples: the garbage collector stops tracking those,
    so a cache of 50,000 calls adds one tracked object per call, not a list and its rows."""


@dataclass(frozen=True, slots=True)
class Frame:
    offset: int
    end: int
    """Where the next frame starts."""
    seq: int
    kind: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes that hold no intact frame: ``length`` bytes from ``offset``."""

    offset: int
    length: int


def frame(seq: int, kind: int, payload: bytes) -> bytes:
    body = _BODY.pack(seq, kind) + payload
    return _HEAD.pack(MAGIC, len(body), zlib.crc32(body)) + body


class KeyCache(dict[str, bytes]):
    """Each metric key's encoded form, made once per run."""

    def __missing__(self, key: str) -> bytes:
        data = key.encode("utf-8")
        encoded = self[key] = _KEY.pack(len(data)) + data
        return encoded


def encode_metrics(
    seq: int, step: int, timestamp: float, values: dict[str, float], keys: KeyCache
) -> bytes:
    """One ``log_metrics`` call as a frame: the loop pays for this on every call."""
    pack = _VALUE.pack
    parts = [_METRICS.pack(step, timestamp, len(values))]
    for key, value in values.items():
        parts.append(keys[key])
        parts.append(pack(value))
    return frame(seq, Kind.METRICS, b"".join(parts))


def encode_json(seq: int, kind: int, data: Any) -> bytes:
    return frame(seq, kind, json.dumps(data, ensure_ascii=False, allow_nan=True).encode("utf-8"))


def _decode_metrics(payload: bytes) -> tuple[Any, ...]:
    step, timestamp, count = _METRICS.unpack_from(payload)
    at = _METRICS.size
    rows = []
    for _ in range(count):
        (size,) = _KEY.unpack_from(payload, at)
        at += _KEY.size
        key = payload[at : at + size].decode("utf-8")
        at += size
        (value,) = _VALUE.unpack_from(payload, at)
        at += _VALUE.size
        rows.append((key, step, value, timestamp))
    if at != len(payload):
        raise ValueError("trailing bytes after the last point")
    return tuple(rows)


def entry_from_frame(found: Frame) -> Entry:
    """The entry a frame holds; ``ValueError`` if its payload does not decode."""
    try:
        if found.kind == Kind.METRICS:
            return Entry(found.seq, found.kind, _decode_metrics(found.payload))
        data = json.loads(found.payload)
    except (struct.error, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"record {found.seq} does not decode: {error}") from None
    items: list[Any]
    if found.kind == Kind.PARAMS and isinstance(data, dict):
        items = [(key, text, value) for key, (text, value) in data.items()]
    elif found.kind == Kind.TAGS and isinstance(data, dict):
        items = [(str(key), str(value)) for key, value in data.items()]
    elif found.kind == Kind.ARTIFACT and isinstance(data, list) and len(data) == 2:
        items = [tuple(data)]
    elif found.kind in (Kind.END, Kind.START, Kind.DETACH, Kind.ACK):
        items = [data]
    else:
        raise ValueError(f"record {found.seq} has an unknown kind or shape")
    return Entry(found.seq, found.kind, items)


def scan(data: bytes) -> Iterator[Frame | Damage]:
    """Every intact frame of ``data`` in file order, and a ``Damage`` for each span between."""
    at, size = 0, len(data)
    damaged_from: int | None = None
    while at < size:
        found = _frame_at(data, at)
        if found is None:
            if damaged_from is None:
                damaged_from = at
            next_magic = data.find(MAGIC, at + 1)
            at = size if next_magic < 0 else next_magic
            continue
        if damaged_from is not None:
            yield Damage(damaged_from, at - damaged_from)
            damaged_from = None
        yield found
        at = found.end
    if damaged_from is not None:
        yield Damage(damaged_from, size - damaged_from)


def _frame_at(data: bytes, at: int) -> Frame | None:
    if at + _HEAD.size + _BODY.size > len(data):
        return None
    magic, length, crc = _HEAD.unpack_from(data, at)
    start = at + _HEAD.size
    if magic != MAGIC or not _BODY.size <= length <= MAX_BODY or start + length > len(data):
        return None
    body = data[start : start + length]
    if zlib.crc32(body) != crc:
        return None
    seq, kind = _BODY.unpack_from(body)
    return Frame(at, start + length, seq, kind, body[_BODY.size :])


def json_value(value: Any, fallback: str) -> Any:
    """``value`` if JSON keeps it as it is (W&B stores params with their types), else the text."""
    if isinstance(value, float) and not math.isfinite(value):
        return fallback
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return fallback
    return value
