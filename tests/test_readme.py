"""The README's examples run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import trackstack
from trackstack.errors import MissingExtraError
from trackstack.local.tracker import LocalExperimentTracker

README = Path(__file__).resolve().parents[1] / "README.md"
QUICKSTART = README.parent / "examples" / "quickstart.py"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("code", blocks("python"), ids=lambda code: code.splitlines()[0][:40])
def test_python_example_runs(code: str) -> None:
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})


def test_local_config_example_loads(monkeypatch: pytest.MonkeyPatch, isolated_cwd: Path) -> None:
    (example,) = [text for text in blocks("yaml") if "flavor: local\n  name: team-store" in text]
    Path("trackstack.yaml").write_text(example)
    monkeypatch.setenv("TRACKSTACK_ROOT", str(isolated_cwd / "shared"))
    tracker = trackstack.load_tracker()
    assert isinstance(tracker, LocalExperimentTracker)
    assert tracker.name == "team-store"
    assert tracker.config.root == isolated_cwd / "shared"
    assert tracker.config.warn_about_plain_text_secrets


def test_entry_point_example_is_the_example_adapter_own() -> None:
    (example,) = blocks("toml")
    example_pyproject = README.parent / "examples" / "trackstack-memory" / "pyproject.toml"
    assert example.strip() in example_pyproject.read_text()
    assert example.splitlines()[0] in (README.parent / "pyproject.toml").read_text()


def test_yaml_examples_are_valid_yaml() -> None:
    for text in blocks("yaml"):
        assert set(yaml.safe_load(text)) in ({"experiment_tracker"}, {"experiment_trackers"})


def test_the_fan_out_example_loads(isolated_cwd: Path) -> None:
    (example,) = [text for text in blocks("yaml") if "experiment_trackers:" in text]
    Path("trackstack.yaml").write_text(example)
    mlflow = next(info for info in trackstack.list_flavors() if info.name == "mlflow")
    if not mlflow.available:  # the first member is MLflow: the file says what to install
        with pytest.raises(MissingExtraError, match=r"tracker 1: .*\[mlflow\]'"):
            trackstack.load_tracker()
        return
    tracker = trackstack.load_tracker()
    assert tracker.flavor == "fanout"
    assert [member.name for member in tracker.trackers] == ["team-mlflow", "laptop"]  # type: ignore[attr-defined]


def test_quickstart_prints_the_run_and_the_comparison(isolated_cwd: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(QUICKSTART)], capture_output=True, text=True, check=True
    )
    assert "logging to the 'local' tracker 'local'" in result.stdout
    assert "FINISHED" in result.stdout
    assert "artifacts: ['model/weights.json']" in result.stdout
    assert re.search(r"│ \* │ param lr +│ 0\.1 +│ 0\.5", result.stdout)
    assert (isolated_cwd / ".trackstack" / "trackstack.db").is_file()
