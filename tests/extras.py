"""Which extras the test environment installs, and so which adapters' tests run."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from typing import Any

import pytest

ADAPTER_EXTRAS = {"mlflow": "mlflow", "wandb": "wandb", "plot": "matplotlib"}
"""Each extra in ``trackstack[all]``, and the module it installs; tests/<extra>/ holds the
tests that need it."""
BRIDGE_EXTRAS = {
    "lightning": "lightning",
    "transformers": "transformers",
    "accelerate": "accelerate",
    "zenml": "zenml",
}
"""The framework bridges' extras (not in ``all``: each brings its framework); tests/<extra>/
holds each one's tests too."""


def add_extras_option(parser: pytest.Parser) -> None:
    parser.addoption(
        "--extras",
        default=None,
        help="extras this environment installs (none, mlflow, wandb, plot, all, lightning, "
        "transformers, accelerate, zenml; comma-separated); "
        "their adapters' tests run, the others' missing-extra errors are tested instead. "
        "Default: the extras whose SDK is importable.",
    )


def installed_extras(config: pytest.Config) -> set[str]:
    option = config.getoption("--extras")
    known = {**ADAPTER_EXTRAS, **BRIDGE_EXTRAS}
    if option is None:
        return {e for e, module in known.items() if importlib.util.find_spec(module)}
    chosen = {part.strip() for part in option.split(",")} - {"none", ""}
    if "all" in chosen:
        chosen = (chosen - {"all"}) | set(ADAPTER_EXTRAS)
    unknown = chosen - set(known)
    if unknown:
        raise pytest.UsageError(f"--extras: unknown extra(s) {sorted(unknown)}")
    return chosen


def sdk_imported_around_a_run(adapter: str, sdk: str, tracker: dict[str, Any]) -> list[str]:
    """In a fresh process: whether ``sdk`` is imported once ``adapter`` is and the tracker
    built (``"False"`` expected), then once a run has logged (``"True"``)."""
    code = textwrap.dedent(
        f"""
        import sys, trackstack, {adapter}
        tracker = trackstack.load_tracker({tracker!r})
        print({sdk!r} in sys.modules)
        with tracker.start_run() as run:
            run.log_metrics({{"m": 1}})
        print({sdk!r} in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()
