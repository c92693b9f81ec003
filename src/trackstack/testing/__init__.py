"""The conformance suite every trackstack adapter runs, ours and third parties'.

Subclass ``TrackerConformance`` in a test module and supply two fixtures:
``tracker`` (a configured tracker on a fresh store) and ``reader`` (a
``RunReader`` that reads runs back through the backend's own client, never
through the adapter's ``get_run``). Tests skip only for a capability the
adapter declares it lacks.

Names load on first use, so that the pytest plugin (``trackstack.testing.plugin``,
loaded by every pytest run) can have pytest rewrite the suite's asserts first.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trackstack.testing.conformance import TrackerConformance
    from trackstack.testing.readers import LocalStoreReader, RunReader

__all__ = ["LocalStoreReader", "RunReader", "TrackerConformance"]

_HOMES = {
    "TrackerConformance": "trackstack.testing.conformance",
    "LocalStoreReader": "trackstack.testing.readers",
    "RunReader": "trackstack.testing.readers",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'trackstack.testing' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
