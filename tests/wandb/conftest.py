"""W&B tests run wandb offline, sandboxed: every folder wandb writes to is the test's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from trackstack_wandb.tracker import WandbExperimentTracker

from trackstack.registry import get_flavor

_SANDBOX = ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR")


@pytest.fixture(autouse=True)
def wandb_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """wandb's folders under the test's tmp_path; no key, mode or project from outside."""
    sandbox = tmp_path / "wandb-home"
    for variable in _SANDBOX:
        monkeypatch.setenv(variable, str(sandbox / variable.lower()))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    for variable in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_PROJECT", "WANDB_ENTITY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("NETRC", str(sandbox / "netrc"))
    return sandbox


def build(**config: Any) -> WandbExperimentTracker:
    tracker = get_flavor("wandb").create("wandb", **config)
    assert isinstance(tracker, WandbExperimentTracker)
    return tracker


@pytest.fixture
def offline(tmp_path: Path) -> WandbExperimentTracker:
    """An offline tracker writing its run files under a fresh folder."""
    return build(mode="offline", dir=tmp_path / "runs")
