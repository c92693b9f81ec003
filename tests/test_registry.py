"""Flavors come from entry points, built-in and third-party alike."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import trackstack
from trackstack.errors import FlavorNotFoundError, MissingExtraError
from trackstack.local import LocalExperimentTrackerFlavor


def test_local_is_listed_from_its_entry_point() -> None:
    (local,) = [info for info in trackstack.list_flavors() if info.name == "local"]
    assert local.available
    assert local.distribution == "trackstack"
    assert local.version == trackstack.__version__
    assert local.install_hint is None
    assert local.error is None
    assert isinstance(trackstack.get_flavor("local"), LocalExperimentTrackerFlavor)


@pytest.mark.usefixtures("fake_adapter")
def test_third_party_flavors_and_why_some_are_unavailable() -> None:
    infos = {info.name: info for info in trackstack.list_flavors()}
    assert list(infos) == sorted(infos)
    assert infos["secretive"].available
    assert infos["secretive"].distribution == "fake-trackstack-adapter"
    assert infos["secretive"].version == "1.2.0"

    needs = infos["needs-sdk"]
    assert not needs.available
    assert needs.error == "missing trackstack_test_sdk_never_installed"
    assert needs.install_hint == "pip install 'fake-trackstack-adapter[needs-sdk]'"

    broken = infos["broken"]
    assert not broken.available
    assert broken.error is not None
    assert "fake_trackstack_adapter_gone" in broken.error

    assert not infos["not-a-flavor"].available
    assert "not a Flavor" in str(infos["not-a-flavor"].error)


@pytest.mark.usefixtures("fake_adapter")
def test_get_flavor_explains_a_missing_extra() -> None:
    with pytest.raises(
        MissingExtraError, match=r"pip install 'fake-trackstack-adapter\[needs-sdk\]'"
    ):
        trackstack.get_flavor("needs-sdk")
    with pytest.raises(ImportError, match="'broken' is unavailable"):
        trackstack.get_flavor("broken")
    with pytest.raises(MissingExtraError):
        trackstack.load_tracker({"flavor": "needs-sdk"})


@pytest.mark.usefixtures("fake_adapter")
def test_create_checks_requirements_before_building() -> None:
    from fake_trackstack_adapter import NeedsSdkFlavor

    with pytest.raises(MissingExtraError, match="needs trackstack_test_sdk_never_installed"):
        NeedsSdkFlavor().create("direct")


@pytest.mark.usefixtures("fake_adapter")
def test_unknown_flavor_lists_every_installed_one() -> None:
    with pytest.raises(FlavorNotFoundError) as caught:
        trackstack.get_flavor("nope")
    assert re.search(
        r"installed flavors: broken, fanout, local, .*needs-sdk, not-a-flavor, secretive",
        str(caught.value),
    )
    assert isinstance(caught.value, LookupError)


def test_listing_flavors_imports_no_backend_sdk() -> None:
    code = (
        "import sys, trackstack\n"
        "infos = trackstack.list_flavors()\n"
        "tracker = trackstack.load_tracker({'flavor': 'local', 'config': {'root': 's'}})\n"
        "with tracker.start_run() as run: run.log_metrics({'m': 1})\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'wandb'))\n"
        "print(len(infos), heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path.cwd()
    )
    count, heavy = result.stdout.split(" ", 1)
    assert int(count) >= 1
    assert heavy.strip() == "[]"
