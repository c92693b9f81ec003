"""Each adapter's flavor is available exactly when its extra is installed."""

from __future__ import annotations

import pytest

import trackstack
from tests.extras import ADAPTER_EXTRAS, installed_extras
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
