"""The ``wandb`` flavor, registered under the ``trackstack.flavors`` entry point."""

from __future__ import annotations

from typing import ClassVar

from trackstack.experiment_trackers import BaseExperimentTrackerFlavor
from trackstack.stack import StackComponent
from trackstack_wandb.config import WandbExperimentTrackerConfig

__all__ = ["WandbExperimentTrackerFlavor"]


class WandbExperimentTrackerFlavor(BaseExperimentTrackerFlavor):
    """Runs in Weights & Biases: its cloud, a self-hosted server, or offline run files."""

    requirements: ClassVar[tuple[str, ...]] = ("wandb",)
    install_hint: ClassVar[str | None] = "pip install 'trackstack[wandb]'"

    @property
    def name(self) -> str:
        return "wandb"

    @property
    def config_class(self) -> type[WandbExperimentTrackerConfig]:
        return WandbExperimentTrackerConfig

    @property
    def implementation_class(self) -> type[StackComponent]:
        from trackstack_wandb.tracker import WandbExperimentTracker

        return WandbExperimentTracker
