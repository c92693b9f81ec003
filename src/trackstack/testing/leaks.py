"""Where a secret could leak from a training process, read as an attacker would read it.

Used by the conformance suite's secret check, and by tests of an adapter's own.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from trackstack.secrets import exception_chain

__all__ = ["descendants", "process_texts", "revealed", "traceback_locals"]


def descendants(parent: int | None = None) -> list[int]:
    """Every live process below ``parent`` (this one by default), from ``/proc``."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [os.getpid() if parent is None else parent]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def process_texts(pid: int) -> bytes:
    """A process's environment and command line, as anyone with its uid can read them."""
    texts = b""
    for name in ("environ", "cmdline"):
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to read
            texts += Path(f"/proc/{pid}/{name}").read_bytes()
    return texts


def traceback_locals(error: BaseException) -> Iterator[str]:
    """The repr of every local of every frame in ``error``'s tracebacks and causes."""
    for linked in exception_chain(error):
        tb = linked.__traceback__
        while tb is not None:
            for name, value in tb.tb_frame.f_locals.items():
                try:
                    yield f"{tb.tb_frame.f_code.co_qualname}.{name} = {value!r}"
                except Exception:  # a value whose repr fails holds nothing we could read
                    continue
            tb = tb.tb_next


_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
_DECODED_UP_TO = 1 << 20
"""Texts longer than this (a store's files) are searched as they are, not decoded."""


def revealed(text: str, secrets: Iterable[str]) -> str | None:
    """The first of ``secrets`` that ``text`` shows, as it is or inside base64 (an HTTP
    basic-auth header, say), else None."""
    chosen = [secret for secret in secrets if secret]
    for secret in chosen:
        if secret in text:
            return secret
    if len(text) > _DECODED_UP_TO:
        return None
    for found in _BASE64.finditer(text):
        chunk = found.group()
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                plain = decode(chunk + "=" * (-len(chunk) % 4)).decode("utf-8", "replace")
            except ValueError:  # binascii.Error: not base64 after all
                continue
            for secret in chosen:
                if secret in plain:
                    return secret
    return None
