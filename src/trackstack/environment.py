"""Handing credentials to an SDK through environment variables, and taking them back.

SDKs such as MLflow's client and wandb read credentials from environment
variables, so adapters set them only around their own calls (under a lock,
since the environment is process-wide) and, during a pipeline step, for the
step; both restore the variables exactly as they were. ZenML leaves them set
for good.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

__all__ = ["restored_environment", "scoped_environment"]

_LOCK = threading.RLock()


@contextmanager
def restored_environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` in ``os.environ``; afterwards put back exactly what was there."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous


@contextmanager
def scoped_environment(values: Mapping[str, str]) -> Iterator[None]:
    """``restored_environment`` for one call, serialised with other threads' calls."""
    if not values:
        yield
        return
    with _LOCK, restored_environment(values):
        yield
