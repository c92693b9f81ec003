"""Hypothesis over every public call of the run API on MLflow's SQLite store (tests/fuzzing.py)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from trackstack_mlflow.tracker import MLFlowExperimentTracker

from tests.fuzzing import calls, play
from trackstack.registry import get_flavor


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=calls)
def test_random_calls_read_back_exactly_or_raise_a_trackstack_error(
    tmp_path: Path, sqlite_template: Path, sequence: list[tuple[Any, ...]]
) -> None:
    example = Path(tempfile.mkdtemp(dir=tmp_path))  # tmp_path is shared by the examples
    store = example / "store"
    store.mkdir()
    shutil.copyfile(sqlite_template, store / "mlflow.db")
    tracker = get_flavor("mlflow").create(
        "mlflow", tracking_uri=f"sqlite:///{store / 'mlflow.db'}", experiment_name="fuzz"
    )
    assert isinstance(tracker, MLFlowExperimentTracker)
    tracker.journal_dir = example / "journal"
    tracker.send_from_process = False  # one process per example would cost seconds each
    workdir = example / "sources"
    workdir.mkdir()
    # MLflow puts artifacts under ./mlruns of the working directory (the test's own).
    play(tracker, sequence, workdir, watched=example, own=[store, example / "journal"])
