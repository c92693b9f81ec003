"""The ``mlflow`` flavor, registered under the ``trackstack.flavors`` entry point."""

from __future__ import annotations

from typing import ClassVar

from trackstack.experiment_trackers import BaseExperimentTrackerFlavor
from trackstack.stack import StackComponent
from trackstack_mlflow.config import MLFlowExperimentTrackerConfig

__all__ = ["MLFlowExperimentTrackerFlavor"]


class MLFlowExperimentTrackerFlavor(BaseExperimentTrackerFlavor):
    """Runs in MLflow: a tracking server or a database store."""

    requirements: ClassVar[tuple[str, ...]] = ("mlflow",)
    install_hint: ClassVar[str | None] = "pip install 'trackstack[mlflow]'"

    @property
    def name(self) -> str:
        return "mlflow"

    @property
    def config_class(self) -> type[MLFlowExperimentTrackerConfig]:
        return MLFlowExperimentTrackerConfig

    @property
    def implementation_class(self) -> type[StackComponent]:
        from trackstack_mlflow.tracker import MLFlowExperimentTracker

        return MLFlowExperimentTracker
