"""A small training loop logged through trackstack, then read back and compared.

With no config it logs to the local store in ./.trackstack; put a
trackstack.yaml in the working folder to log to MLflow or W&B instead.
"""

from __future__ import annotations

import json
import math
import random
import tempfile
from pathlib import Path

import trackstack
from trackstack.experiment_trackers import BaseExperimentTracker


def train(tracker: BaseExperimentTracker, lr: float, epochs: int = 50) -> str:
    """Fit y = 3x + 1 by gradient descent, logging as a training script would."""
    rng = random.Random(0)
    data = [(x, 3 * x + 1 + rng.gauss(0, 0.1)) for x in (i / 20 for i in range(20))]
    weight = bias = 0.0
    with tracker.start_run(experiment="quickstart", run_name=f"lr={lr}") as run:
        run.log_params({"lr": lr, "epochs": epochs, "model": {"kind": "linear", "inputs": 1}})
        run.set_tags({"example": "quickstart"})
        for epoch in range(epochs):
            grad_w = sum(2 * (weight * x + bias - y) * x for x, y in data) / len(data)
            grad_b = sum(2 * (weight * x + bias - y) for x, y in data) / len(data)
            weight, bias = weight - lr * grad_w, bias - lr * grad_b
            mse = sum((weight * x + bias - y) ** 2 for x, y in data) / len(data)
            run.log_metrics({"mse": mse, "rmse": math.sqrt(mse)}, step=epoch)
        with tempfile.TemporaryDirectory() as folder:
            model = Path(folder) / "model"
            model.mkdir()
            (model / "weights.json").write_text(json.dumps({"weight": weight, "bias": bias}))
            run.log_artifact(model)
    return run.id


def main() -> None:
    tracker = trackstack.load_tracker()
    print(f"logging to the {tracker.flavor!r} tracker {tracker.name!r}")
    first, second = train(tracker, lr=0.1), train(tracker, lr=0.5)

    record = tracker.get_run(first)
    final = record.metrics["mse"][-1]
    print(f"\nrun {record.name} ({record.id}): {record.status.value}")
    print(f"  params:    {record.params}")
    print(f"  tags:      {record.tags}")
    print(f"  mse:       {len(record.metrics['mse'])} points, last {final.value:.4f}")
    print(f"  artifacts: {record.artifacts}")
    print(f"  url:       {record.url}\n")

    print(trackstack.compare_runs([record, tracker.get_run(second)]))


if __name__ == "__main__":
    main()
