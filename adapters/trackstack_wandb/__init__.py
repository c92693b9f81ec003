"""trackstack's W&B adapter, the ``wandb`` flavor: ``pip install 'trackstack[wandb]'``.

Importing this package does not import wandb; the tracker imports it on its
first call to the backend.
"""

from trackstack_wandb.config import WandbExperimentTrackerConfig, WandbExperimentTrackerSettings
from trackstack_wandb.flavor import WandbExperimentTrackerFlavor

__all__ = [
    "WandbExperimentTrackerConfig",
    "WandbExperimentTrackerFlavor",
    "WandbExperimentTrackerSettings",
]
