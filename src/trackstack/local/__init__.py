"""The ``local`` flavor: trackstack's reference adapter, with no dependency of its own.

It registers through the ``trackstack.flavors`` entry point like any adapter.
The tracker class loads with the flavor's ``implementation_class``.
"""

from trackstack.local.flavor import (
    DEFAULT_ROOT,
    LocalExperimentTrackerConfig,
    LocalExperimentTrackerFlavor,
)

__all__ = ["DEFAULT_ROOT", "LocalExperimentTrackerConfig", "LocalExperimentTrackerFlavor"]
