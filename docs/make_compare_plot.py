"""Draw docs/compare.png, the README's picture of ``trackstack runs compare --plot``.

Run from the repository root: ``python docs/make_compare_plot.py``. It logs two
small training runs to a throw-away local store and calls the real command.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
from pathlib import Path

import trackstack

OUTPUT = Path(__file__).with_name("compare.png")


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "trackstack.yaml"
        config.write_text(f"experiment_tracker:\n  flavor: local\n  config:\n    root: {scratch}\n")
        tracker = trackstack.load_tracker(config)
        ids = []
        for lr in (0.1, 0.03):
            with tracker.start_run(experiment="readme", run_name=f"lr={lr}") as run:
                run.log_params({"lr": lr, "epochs": 50})
                for step in range(50):
                    loss = 2.0 * math.exp(-lr * step) + 0.05
                    run.log_metrics({"loss": loss, "accuracy": 1 - loss / 2.1}, step=step)
            ids.append(run.id)
        command = [sys.executable, "-m", "trackstack", "runs", "compare", *ids]
        subprocess.run([*command, "--config", str(config), "--plot", str(OUTPUT)], check=True)


if __name__ == "__main__":
    main()
