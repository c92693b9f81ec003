"""Where a secret could leak from a training process, read as an attacker would read it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


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
    seen: set[int] = set()
    chain: list[BaseException | None] = [error]
    while chain:
        current = chain.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            for name, value in tb.tb_frame.f_locals.items():
                try:
                    yield f"{tb.tb_frame.f_code.co_qualname}.{name} = {value!r}"
                except Exception:  # a value whose repr fails holds nothing we could read
                    continue
            tb = tb.tb_next
        chain += [current.__cause__, current.__context__]
