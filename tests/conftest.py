from __future__ import annotations

from pathlib import Path

import pytest

from tests.extras import ADAPTER_EXTRAS, BRIDGE_EXTRAS, add_extras_option, installed_extras
from trackstack.local.tracker import LocalExperimentTracker
from trackstack.registry import get_flavor

REPO = Path(__file__).resolve().parents[1]
FAKE_ADAPTER_DIR = Path(__file__).resolve().parent / "fake_adapter"


pytest_plugins = ["pytester"]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_extras_option(parser)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    here = Path(__file__).resolve().parent
    for extra in {*ADAPTER_EXTRAS, *BRIDGE_EXTRAS} - installed_extras(config):
        if collection_path.is_relative_to(here / extra):
            return True
    return None


@pytest.fixture(autouse=True)
def isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs in its own empty folder with no trackstack config in sight."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("TRACKSTACK_CONFIG", raising=False)
    return work


@pytest.fixture
def tracker(tmp_path: Path) -> LocalExperimentTracker:
    built = get_flavor("local").create("local", root=tmp_path / "store")
    assert isinstance(built, LocalExperimentTracker)
    return built


@pytest.fixture
def fake_adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install tests/fake_adapter as a distribution with entry points, for this test only."""
    site = tmp_path / "site"
    info = site / "fake_trackstack_adapter-1.2.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fake-trackstack-adapter\nVersion: 1.2.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[trackstack.flavors]\n"
        "secretive = fake_trackstack_adapter:SecretiveFlavor\n"
        "needs-sdk = fake_trackstack_adapter:NeedsSdkFlavor\n"
        "broken = fake_trackstack_adapter_gone:Flavor\n"
        "not-a-flavor = fake_trackstack_adapter:NOT_A_FLAVOR\n"
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(FAKE_ADAPTER_DIR))
    return site
