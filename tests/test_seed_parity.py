"""The names, signatures and config settings of ZenML's experiment-tracker API hold."""

from __future__ import annotations

import inspect
from abc import ABC
from datetime import UTC
from uuid import UUID

import pytest
from pydantic import ValidationError

from trackstack.enums import StackComponentType
from trackstack.errors import ConfigError
from trackstack.experiment_trackers import (
    BaseExperimentTracker,
    BaseExperimentTrackerConfig,
    BaseExperimentTrackerFlavor,
)
from trackstack.local import LocalExperimentTrackerConfig, LocalExperimentTrackerFlavor
from trackstack.stack import Flavor, StackComponent, StackComponentConfig

SEED_INIT = [
    "self",
    "name",
    "id",
    "config",
    "flavor",
    "type",
    "user",
    "workspace",
    "created",
    "updated",
    "labels",
    "connector_requirements",
    "connector",
    "connector_resource_id",
    "args",
    "kwargs",
]


def test_component_type() -> None:
    assert StackComponentType.EXPERIMENT_TRACKER.value == "experiment_tracker"
    assert isinstance(StackComponentType.EXPERIMENT_TRACKER, str)
    assert StackComponentType("experiment_tracker") is StackComponentType.EXPERIMENT_TRACKER


def test_config_settings() -> None:
    assert issubclass(BaseExperimentTrackerConfig, StackComponentConfig)
    assert BaseExperimentTrackerConfig.model_config["extra"] == "forbid"
    assert BaseExperimentTrackerConfig.model_config["frozen"] is True
    assert list(BaseExperimentTrackerConfig.model_fields) == ["warn_about_plain_text_secrets"]
    assert BaseExperimentTrackerConfig().warn_about_plain_text_secrets is False
    signature = inspect.signature(BaseExperimentTrackerConfig)
    assert str(signature) == "(*, warn_about_plain_text_secrets: bool = False) -> None"
    config = BaseExperimentTrackerConfig()
    with pytest.raises(ValidationError):
        config.warn_about_plain_text_secrets = True  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        BaseExperimentTrackerConfig(unknown=1)  # type: ignore[call-arg]


def test_tracker_signature_and_bases() -> None:
    assert issubclass(BaseExperimentTracker, StackComponent)
    assert ABC in BaseExperimentTracker.__mro__
    assert inspect.isabstract(BaseExperimentTracker)
    for cls in (StackComponent, BaseExperimentTracker):
        params = inspect.signature(cls.__init__).parameters
        assert list(params) == SEED_INIT, cls
        defaults = {
            n: p.default for n, p in params.items() if p.default is not inspect.Parameter.empty
        }
        assert defaults == {
            "labels": None,
            "connector_requirements": None,
            "connector": None,
            "connector_resource_id": None,
        }
    config_property = BaseExperimentTracker.__dict__["config"]
    assert isinstance(config_property, property)


def test_flavor_properties() -> None:
    assert issubclass(BaseExperimentTrackerFlavor, Flavor)
    assert inspect.isabstract(BaseExperimentTrackerFlavor)
    assert BaseExperimentTrackerFlavor.__abstractmethods__ == {"implementation_class", "name"}
    flavor = LocalExperimentTrackerFlavor()
    assert flavor.type is StackComponentType.EXPERIMENT_TRACKER
    assert flavor.config_class is LocalExperimentTrackerConfig
    assert BaseExperimentTrackerFlavor.config_class.fget(flavor) is BaseExperimentTrackerConfig  # type: ignore[attr-defined]


def test_create_fills_in_a_ready_component() -> None:
    tracker = LocalExperimentTrackerFlavor().create("mine", root="store")
    assert isinstance(tracker, BaseExperimentTracker)
    assert tracker.name == "mine"
    assert isinstance(tracker.id, UUID)
    assert tracker.flavor == "local"
    assert tracker.type is StackComponentType.EXPERIMENT_TRACKER
    assert tracker.user is None
    assert isinstance(tracker.workspace, UUID)
    assert tracker.created.tzinfo is UTC
    assert tracker.updated == tracker.created
    assert tracker.labels is None
    assert isinstance(tracker.config, LocalExperimentTrackerConfig)
    other = LocalExperimentTrackerFlavor().create("mine")
    assert other.id != tracker.id
    assert other.workspace == tracker.workspace


def test_create_takes_a_config_a_dict_and_overrides() -> None:
    flavor = LocalExperimentTrackerFlavor()
    config = LocalExperimentTrackerConfig(root="a")
    assert flavor.create("x", config=config).config is config
    overridden = flavor.create("x", config=config, root="b").config
    assert isinstance(overridden, LocalExperimentTrackerConfig)
    assert overridden.root.name == "b"
    from_dict = flavor.create("x", config={"root": "c"}, warn_about_plain_text_secrets=True).config
    assert from_dict == LocalExperimentTrackerConfig(root="c", warn_about_plain_text_secrets=True)
    with pytest.raises(ConfigError, match="takes a LocalExperimentTrackerConfig"):
        flavor.create("x", config=BaseExperimentTrackerConfig())
    with pytest.raises(ConfigError, match="must be a dict"):
        flavor.create("x", config="root=a")  # type: ignore[arg-type]
