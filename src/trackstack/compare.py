"""Runs side by side: their params and final metrics, and which of them differ."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trackstack.records import RunRecord

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["RunComparison", "compare_runs"]


def _same(values: list[Any]) -> bool:
    first = values[0]
    if isinstance(first, float) and math.isnan(first):
        return all(isinstance(v, float) and math.isnan(v) for v in values)
    return all(v == first for v in values)


@dataclass(frozen=True)
class RunComparison:
    """Params and final metrics of several runs, keyed by name, then by run id."""

    runs: list[RunRecord]
    params: dict[str, dict[str, str | None]] = field(default_factory=dict)
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    differing: list[str] = field(default_factory=list)
    """Param and metric names whose values are not the same in every run."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (NaN and ±inf stay floats, as ``json`` writes them)."""
        return {
            "runs": [{"id": r.id, "name": r.name, "experiment": r.experiment} for r in self.runs],
            "params": self.params,
            "metrics": self.metrics,
            "differing": list(self.differing),
        }

    def table(self) -> Table:
        """The comparison as a rich ``Table``: a column per run, its name on top, then
        a row each for its id, its experiment and its status, then params and metrics."""
        from rich.table import Table

        table = Table(caption="* differs between runs", caption_justify="left")
        table.add_column("", no_wrap=True)
        table.add_column("", no_wrap=True)
        for index, run in enumerate(self.runs, 1):
            table.add_column(run.name or f"run {index}", overflow="fold")
        blank = [""] * len(self.runs)
        table.add_row("", "run id", *(run.id for run in self.runs))
        table.add_row("", "experiment", *(run.experiment for run in self.runs))
        table.add_row("", "status", *(run.status.value for run in self.runs), end_section=True)
        sections: list[tuple[str, dict[str, dict[str, Any]]]] = [
            ("param", self.params),
            ("metric", self.metrics),
        ]
        for kind, rows in sections:
            for name, values in rows.items():
                cells = ["" if values[r.id] is None else str(values[r.id]) for r in self.runs]
                marker = "*" if name in self.differing else ""
                table.add_row(marker, f"{kind} {name}", *cells or blank)
        return table

    def __str__(self) -> str:
        """The table as text, as wide as it needs to be (at least 80 columns)."""
        from rich.console import Console

        table = self.table()
        measuring = Console(width=10_000, color_system=None, markup=False)
        width = max(80, table.__rich_measure__(measuring, measuring.options).maximum)
        out = io.StringIO()
        Console(file=out, width=width, color_system=None, markup=False).print(table)
        return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def compare_runs(records: Iterable[RunRecord]) -> RunComparison:
    """Put runs side by side; a metric's value is the one at its highest step."""
    runs = list(records)
    param_names = sorted({name for run in runs for name in run.params})
    finals = {run.id: run.final_metrics() for run in runs}
    metric_names = sorted({name for values in finals.values() for name in values})
    params = {name: {run.id: run.params.get(name) for run in runs} for name in param_names}
    metrics = {name: {run.id: finals[run.id].get(name) for run in runs} for name in metric_names}
    differing = [name for name, values in params.items() if not _same(list(values.values()))]
    differing += [name for name, values in metrics.items() if not _same(list(values.values()))]
    return RunComparison(runs=runs, params=params, metrics=metrics, differing=differing)
