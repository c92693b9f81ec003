"""Which extras the test environment installs, and so which adapters' tests run."""

from __future__ import annotations

import importlib.util

import pytest

ADAPTER_EXTRAS = {"mlflow": "mlflow", "wandb": "wandb", "plot": "matplotlib"}
"""Each extra, and the module it installs; tests/<extra>/ holds the tests that need it."""


def add_extras_option(parser: pytest.Parser) -> None:
    parser.addoption(
        "--extras",
        default=None,
        help="extras this environment installs (none, mlflow, wandb, plot, all; comma-separated); "
        "their adapters' tests run, the others' missing-extra errors are tested instead. "
        "Default: the extras whose SDK is importable.",
    )


def installed_extras(config: pytest.Config) -> set[str]:
    option = config.getoption("--extras")
    if option is None:
        return {e for e, module in ADAPTER_EXTRAS.items() if importlib.util.find_spec(module)}
    chosen = {part.strip() for part in option.split(",")} - {"none", ""}
    if "all" in chosen:
        return set(ADAPTER_EXTRAS)
    unknown = chosen - set(ADAPTER_EXTRAS)
    if unknown:
        raise pytest.UsageError(f"--extras: unknown extra(s) {sorted(unknown)}")
    return chosen
