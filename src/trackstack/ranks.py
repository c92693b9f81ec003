"""Which process of a distributed job this is, from the variables launchers set.

``torchrun``, ``accelerate``, DeepSpeed and Lightning set ``RANK`` (the global
rank) and ``LOCAL_RANK``; a process with neither is rank 0 of one.
"""

from __future__ import annotations

import os

from trackstack.errors import ConfigError

__all__ = ["LOG_ON", "process_rank"]

LOG_ON = ("all", "rank0")
"""``all``: every process logs; ``rank0``: only rank 0, the others get runs that discard."""


def process_rank() -> int:
    """``$RANK``, else ``$LOCAL_RANK``, else 0."""
    for name in ("RANK", "LOCAL_RANK"):
        value = os.environ.get(name)
        if value is not None and value != "":
            if not value.isdigit():
                raise ConfigError(f"${name} is {value!r}; a rank is a whole number from 0")
            return int(value)
    return 0
