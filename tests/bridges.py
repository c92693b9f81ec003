"""What the framework bridges' tests share: a tracker of each flavor, read back directly."""

from __future__ import annotations

import csv
import math
import re
import warnings
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

import trackstack
from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.records import RunRecord

FLAVORS = ["local", "mlflow", "wandb", "fanout"]
"""Every flavor a bridge is tried with; fan-out is a local store and MLflow together."""

_WANDB_SANDBOX = ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR")


def tracker_config(flavor: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A config of ``flavor`` whose store lives in ``folder`` (W&B: offline, sandboxed)."""
    if flavor == "local":
        return {"flavor": "local", "config": {"root": str(folder / "local")}}
    if flavor == "mlflow":
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        return {"flavor": "mlflow", "config": {"tracking_uri": uri}}
    if flavor == "wandb":
        for variable in _WANDB_SANDBOX:
            monkeypatch.setenv(variable, str(folder / "wandb-home" / variable.lower()))
        for variable in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_PROJECT", "WANDB_ENTITY"):
            monkeypatch.delenv(variable, raising=False)
        return {"flavor": "wandb", "config": {"mode": "offline", "dir": str(folder / "wandb")}}
    assert flavor == "fanout", flavor
    local = tracker_config("local", folder, monkeypatch)
    mlflow = tracker_config("mlflow", folder, monkeypatch)
    return {"experiment_trackers": [{**local, "name": "laptop"}, {**mlflow, "name": "team"}]}


def reader(tracker: BaseExperimentTracker) -> Any:
    """The reader ``tracker``'s flavor registers: it reads the backend directly."""
    (found,) = [p for p in entry_points(group="trackstack.readers") if p.name == tracker.flavor]
    return found.load()(tracker)


def read(tracker: BaseExperimentTracker, run_id: str) -> RunRecord:
    """The run as the backend stores it."""
    return reader(tracker).read(run_id)  # type: ignore[no-any-return]


def points(record: RunRecord) -> set[tuple[str, int, float]]:
    return {(key, p.step, p.value) for key, series in record.metrics.items() for p in series}


def csv_points(path: Path, skip: tuple[str, ...] = ("step",)) -> set[tuple[str, int, float]]:
    """What Lightning's ``CSVLogger`` wrote: every (key, step, value) in ``metrics.csv``."""
    found = set()
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            step = int(row["step"])
            for key, value in row.items():
                if key not in skip and value != "" and not math.isnan(float(value)):
                    found.add((key, step, float(value)))
    return found


def load(config: dict[str, Any]) -> BaseExperimentTracker:
    tracker = trackstack.load_tracker(config)
    tracker.sender_process_after = 10**9  # short trainings: no second Python per test
    return tracker


def readme_example(framework: str) -> str:
    """The README's example for ``framework``: its ```py block importing the bridge."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks: list[str] = re.findall(r"^```py\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    (example,) = [b for b in blocks if f"trackstack.integrations.{framework} import" in b]
    return example


def run_readme_example(framework: str, tmp_path: Path, **names: Any) -> dict[str, Any]:
    """Run it in ``tmp_path`` beside a local-store ``trackstack.yaml``, with ``names`` defined."""
    (tmp_path / "trackstack.yaml").write_text(
        f"experiment_tracker:\n  flavor: local\n  config:\n    root: {tmp_path / 'store'}\n"
    )
    namespace = {"__name__": "readme", **names}
    with warnings.catch_warnings():  # the frameworks' advice on a tiny training is theirs
        warnings.simplefilter("ignore")
        exec(compile(readme_example(framework), "README.md", "exec"), namespace)
    return namespace
