"""The conformance suite every trackstack adapter runs, ours and third parties'.

Subclass ``TrackerConformance`` in a test module and supply two fixtures:
``tracker`` (a configured tracker on a fresh store) and ``reader`` (a
``RunReader`` that reads runs back through the backend's own client, never
through the adapter's ``get_run``). Tests skip only for a capability the
adapter declares it lacks.
"""

from trackstack.testing.conformance import TrackerConformance
from trackstack.testing.readers import LocalStoreReader, RunReader

__all__ = ["LocalStoreReader", "RunReader", "TrackerConformance"]
