"""Metric curves of several runs: one panel per metric, step on the x-axis.

matplotlib is the optional extra ``plot``: ``pip install 'trackstack[plot]'``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from trackstack.errors import InvalidInputError, MissingExtraError
from trackstack.records import RunRecord

__all__ = ["plot_metrics"]

PANEL_HEIGHT = 2.5
"""Inches per panel: the figure grows with the number of metrics."""


def plot_metrics(records: Sequence[RunRecord], path: Path) -> list[str]:
    """Draw every metric of ``records`` into a PNG at ``path``; return the metric names.

    The PNG's ``Description`` holds the panels' metric names as JSON.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never open a window
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingExtraError(
            f"plotting needs matplotlib ({exc}); pip install 'trackstack[plot]'"
        ) from exc
    names = sorted({name for record in records for name in record.metrics})
    if not names:
        raise InvalidInputError("the runs have no metrics to plot; compare runs that logged some")
    figure, axes = plt.subplots(
        len(names), 1, figsize=(8, PANEL_HEIGHT * len(names)), squeeze=False, sharex=True
    )
    for axis, name in zip(axes[:, 0], names, strict=True):
        for record in records:
            points = sorted(record.metrics.get(name, []), key=lambda p: p.step)
            if points:
                label = f"{record.name or record.id} ({record.id[:8]})"
                axis.plot([p.step for p in points], [p.value for p in points], label=label)
        axis.set_title(name)
        axis.set_ylabel(name)
        axis.legend(fontsize="small")
    axes[-1, 0].set_xlabel("step")
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Description": json.dumps({"panels": names})})
    plt.close(figure)
    return names
