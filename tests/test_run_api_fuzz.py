"""Hypothesis over every public call of the run API on the local store (see tests/fuzzing.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings

from tests.fuzzing import calls, play
from trackstack.local.tracker import LocalExperimentTracker
from trackstack.registry import get_flavor


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=calls)
def test_random_calls_read_back_exactly_or_raise_a_trackstack_error(
    tmp_path: Path, sequence: list[tuple[Any, ...]]
) -> None:
    example = Path(tempfile.mkdtemp(dir=tmp_path))  # tmp_path is shared by the examples
    tracker = get_flavor("local").create("local", root=example / "store")
    assert isinstance(tracker, LocalExperimentTracker)
    tracker.journal_dir = example / "journal"
    workdir = example / "sources"
    workdir.mkdir()
    play(tracker, sequence, workdir, watched=tmp_path, own=[example / "store", example / "journal"])
