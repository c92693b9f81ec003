"""compare_runs: params and final metrics side by side, and what differs."""

from __future__ import annotations

import math

from trackstack import RunRecord, RunStatus, compare_runs
from trackstack.records import MetricPoint


def record(
    run_id: str, params: dict[str, str], metrics: dict[str, list[tuple[int, float]]]
) -> RunRecord:
    return RunRecord(
        id=run_id,
        name=f"name-{run_id}",
        experiment="e",
        status=RunStatus.FINISHED,
        params=params,
        metrics={k: [MetricPoint(s, v, 0.0) for s, v in pts] for k, pts in metrics.items()},
    )


def test_final_metric_is_at_the_highest_step_last_logged_on_ties() -> None:
    a = record("a", {}, {"loss": [(0, 1.0), (5, 0.2), (3, 0.1), (5, 0.3)]})
    assert compare_runs([a]).metrics == {"loss": {"a": 0.3}}


def test_side_by_side_and_differing() -> None:
    a = record("a", {"lr": "0.1", "opt": "sgd"}, {"loss": [(0, 0.5)], "acc": [(0, math.nan)]})
    b = record("b", {"lr": "0.2", "opt": "sgd"}, {"loss": [(0, 0.5)], "acc": [(0, math.nan)]})
    c = record("c", {"lr": "0.1"}, {"loss": [(0, 0.5)], "acc": [(0, math.nan)], "f1": [(1, 1.0)]})
    comparison = compare_runs([a, b, c])
    assert comparison.params == {
        "lr": {"a": "0.1", "b": "0.2", "c": "0.1"},
        "opt": {"a": "sgd", "b": "sgd", "c": None},
    }
    assert comparison.metrics["loss"] == {"a": 0.5, "b": 0.5, "c": 0.5}
    assert comparison.metrics["f1"] == {"a": None, "b": None, "c": 1.0}
    assert comparison.differing == ["lr", "opt", "f1"]
    as_dict = comparison.to_dict()
    assert as_dict["runs"] == [
        {"id": run_id, "name": f"name-{run_id}", "experiment": "e"} for run_id in "abc"
    ]
    assert as_dict["differing"] == ["lr", "opt", "f1"]
    table = str(comparison)
    lines = {line.split("│")[2].strip(): line for line in table.splitlines() if line.count("│") > 3}
    assert lines["param lr"].split("│")[1].strip() == "*"
    assert lines["metric loss"].split("│")[1].strip() == ""
    assert "name-a" in table
    assert "* differs between runs" in table
