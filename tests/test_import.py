"""``import trackstack`` stays cheap: no pydantic, no backend SDK until a name is used."""

from __future__ import annotations

import subprocess
import sys

import pytest

import trackstack


def modules_after(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {name.split(".")[0] for name in result.stdout.split()}


def test_import_trackstack_loads_nothing_heavy() -> None:
    loaded = modules_after("import trackstack")
    assert not loaded & {"mlflow", "wandb", "pydantic", "yaml", "rich", "sqlite3", "numpy"}


def test_every_public_name_resolves() -> None:
    for name in trackstack.__all__:
        assert getattr(trackstack, name) is not None
    assert set(trackstack.__all__) <= set(dir(trackstack))


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = trackstack.no_such_name
