"""Each adapter's flavor is available exactly when its extra is installed."""

from __future__ import annotations

import subprocess
import sys

import pytest

import trackstack
from tests.extras import ADAPTER_EXTRAS, BRIDGE_EXTRAS, installed_extras
from trackstack.errors import MissingExtraError


def test_flavors_match_the_installed_extras(pytestconfig: pytest.Config) -> None:
    installed = installed_extras(pytestconfig)
    infos = {info.name: info for info in trackstack.list_flavors()}
    for extra in ADAPTER_EXTRAS:
        if extra not in infos:
            continue  # its adapter has not landed yet
        info = infos[extra]
        if extra in installed:
            assert info.available, info
            assert trackstack.get_flavor(extra).name == extra
        else:
            assert not info.available
            assert info.install_hint == f"pip install 'trackstack[{extra}]'"
            assert info.error == f"missing {ADAPTER_EXTRAS[extra]}"
            with pytest.raises(MissingExtraError, match=rf"pip install 'trackstack\[{extra}\]'"):
                trackstack.load_tracker({"flavor": extra})
    assert "mlflow" in infos


@pytest.mark.parametrize("bridge", sorted(BRIDGE_EXTRAS))
def test_a_bridge_without_its_framework_names_its_extra(
    bridge: str, pytestconfig: pytest.Config
) -> None:
    code = f"import trackstack.integrations.{bridge}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if bridge in installed_extras(pytestconfig):
        assert result.returncode == 0, result.stderr
    else:
        assert "MissingExtraError" in result.stderr
        assert f"pip install 'trackstack[{bridge}]'" in result.stderr
