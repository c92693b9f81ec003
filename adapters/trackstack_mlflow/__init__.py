"""trackstack's MLflow adapter, the ``mlflow`` flavor: ``pip install 'trackstack[mlflow]'``.

Importing this package does not import MLflow; the tracker imports it on its
first call to the backend.
"""

from trackstack_mlflow.config import MLFlowExperimentTrackerConfig, MLFlowExperimentTrackerSettings
from trackstack_mlflow.flavor import MLFlowExperimentTrackerFlavor

__all__ = [
    "MLFlowExperimentTrackerConfig",
    "MLFlowExperimentTrackerFlavor",
    "MLFlowExperimentTrackerSettings",
]
