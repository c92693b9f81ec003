"""A third-party adapter as the tests install it: found only through its entry points.

``secretive`` is the local store with secret config fields; ``needs-sdk`` needs
a module that is never installed, like an adapter whose extra is missing.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import SecretStr

from trackstack.local import LocalExperimentTrackerConfig, LocalExperimentTrackerFlavor
from trackstack.stack import StackComponent


class SecretiveConfig(LocalExperimentTrackerConfig):
    token: SecretStr | None = None
    password: SecretStr | None = None
    endpoint: str = "http://127.0.0.1:1"


class SecretiveFlavor(LocalExperimentTrackerFlavor):
    @property
    def name(self) -> str:
        return "secretive"

    @property
    def config_class(self) -> type[SecretiveConfig]:
        return SecretiveConfig

    @property
    def implementation_class(self) -> type[StackComponent]:
        return super().implementation_class


class NeedsSdkFlavor(LocalExperimentTrackerFlavor):
    requirements: ClassVar[tuple[str, ...]] = ("trackstack_test_sdk_never_installed",)

    @property
    def name(self) -> str:
        return "needs-sdk"


NOT_A_FLAVOR: Any = object()
