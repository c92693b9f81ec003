"""Stack components and flavors, in the shape of ZenML's ``zenml.stack``.

A flavor names a backend and knows its config class and its implementation
class; ``Flavor.create`` turns a name and config values into a ready component.
"""

from __future__ import annotations

import difflib
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID, uuid4, uuid5

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo

from trackstack.enums import StackComponentType
from trackstack.errors import ConfigError, MissingExtraError
from trackstack.secrets import secret_field_names

__all__ = [
    "CONFIG_DIR",
    "DEFAULT_WORKSPACE_ID",
    "Flavor",
    "StackComponent",
    "StackComponentConfig",
    "resolve_path",
]

CONFIG_DIR = "config_dir"
"""Key of the validation context holding the folder of the config file being loaded."""


def resolve_path(path: Path, info: ValidationInfo) -> Path:
    """``path`` made absolute: a relative one against the folder of the config file it was
    written in (``load_tracker(file)``), else against the working directory.

    For the path fields of an adapter's config, in a validator that takes ``info``.
    """
    path = path.expanduser()
    folder = (info.context or {}).get(CONFIG_DIR)
    if folder is not None and not path.is_absolute():
        path = Path(folder) / path
    return path.resolve()


# trackstack has no server of its own that hands out workspaces: every component
# built here belongs to one fixed, well-known workspace.
DEFAULT_WORKSPACE_ID = uuid5(UUID(int=0), "trackstack-default-workspace")


class StackComponentConfig(BaseModel):
    """Base of every component config: unknown fields are errors, values are frozen."""

    # Field docstrings become descriptions: `trackstack flavors show` and the JSON schema.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class StackComponent:
    """A configured piece of a stack, with ZenML's identity fields."""

    def __init__(
        self,
        name: str,
        id: UUID,
        config: StackComponentConfig,
        flavor: str,
        type: StackComponentType,
        user: UUID | None,
        workspace: UUID,
        created: datetime,
        updated: datetime,
        labels: dict[str, Any] | None = None,
        connector_requirements: Any | None = None,
        connector: UUID | None = None,
        connector_resource_id: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self.name = name
        self.id = id
        self._config = config
        self.flavor = flavor
        self.type = type
        self.user = user
        self.workspace = workspace
        self.created = created
        self.updated = updated
        self.labels = labels
        self.connector_requirements = connector_requirements
        self.connector = connector
        self.connector_resource_id = connector_resource_id

    @property
    def config(self) -> StackComponentConfig:
        """Returns the config of the component."""
        return self._config

    def identity(self) -> dict[str, Any]:
        """The constructor's arguments: what makes an equal component in another process."""
        return {
            "name": self.name,
            "id": self.id,
            "config": self._config,
            "flavor": self.flavor,
            "type": self.type,
            "user": self.user,
            "workspace": self.workspace,
            "created": self.created,
            "updated": self.updated,
            "labels": self.labels,
            "connector_requirements": self.connector_requirements,
            "connector": self.connector,
            "connector_resource_id": self.connector_resource_id,
        }

    def __repr__(self) -> str:
        # The config's repr masks SecretStr fields, so this never shows a secret.
        return (
            f"{type(self).__name__}(name={self.name!r}, flavor={self.flavor!r}, "
            f"id={self.id}, config={self._config!r})"
        )


class Flavor(ABC):
    """Names a backend and builds components for it."""

    requirements: ClassVar[tuple[str, ...]] = ()
    """Top-level modules the implementation needs; checked without importing them."""
    install_hint: ClassVar[str | None] = None
    """How to install the requirements; by default ``pip install '<distribution>[<name>]'``."""

    @property
    @abstractmethod
    def name(self) -> str:
        """The flavor's name, as written in config files."""

    @property
    @abstractmethod
    def config_class(self) -> type[StackComponentConfig]:
        """The pydantic model of this flavor's config."""

    @property
    @abstractmethod
    def implementation_class(self) -> type[StackComponent]:
        """The component class this flavor builds."""

    # Declared after the properties above: in the class body, `type` shadows the builtin.
    @property
    @abstractmethod
    def type(self) -> StackComponentType:
        """The kind of component this flavor builds."""

    def create(
        self,
        name: str,
        config: StackComponentConfig | Mapping[str, Any] | None = None,
        **config_fields: Any,
    ) -> StackComponent:
        """Build a ready component: config validated, id and timestamps filled in.

        ``config`` is a config instance or a dict; ``config_fields`` override it.
        """
        self.check_requirements()
        if isinstance(config, StackComponentConfig) and not config_fields:
            if not isinstance(config, self.config_class):
                raise ConfigError(
                    f"flavor {self.name!r} takes a {self.config_class.__name__}, "
                    f"got a {type(config).__name__}"
                )
            built = config
        else:
            if isinstance(config, StackComponentConfig):
                data = dict(config)
            elif config is None or isinstance(config, Mapping):
                data = dict(config or {})
            else:
                raise ConfigError(
                    f"config for flavor {self.name!r} must be a dict or a "
                    f"{self.config_class.__name__}, got a {type(config).__name__}"
                )
            data.update(config_fields)
            built = self.validate_config(data)
        now = datetime.now(UTC)
        return self.implementation_class(
            name=name,
            id=uuid4(),
            config=built,
            flavor=self.name,
            type=self.type,
            user=None,
            workspace=DEFAULT_WORKSPACE_ID,
            created=now,
            updated=now,
        )

    def missing_requirements(self) -> list[str]:
        """The modules in ``requirements`` that are not installed (none are imported)."""
        return [module for module in self.requirements if importlib.util.find_spec(module) is None]

    def check_requirements(self) -> None:
        """Raise ``MissingExtraError`` with the install line if a requirement is missing."""
        missing = self.missing_requirements()
        if missing:
            hint = self.install_hint or f"install {', '.join(missing)}"
            raise MissingExtraError(
                f"flavor {self.name!r} needs {', '.join(missing)}, which is not installed; {hint}"
            )

    def validate_config(
        self,
        data: Mapping[str, Any],
        hidden: Collection[str] = (),
        config_dir: Path | None = None,
    ) -> StackComponentConfig:
        """Validate config values, turning pydantic's errors into one ``ConfigError``.

        The error never shows the value of a field in ``hidden`` (nor of a secret).
        Relative paths resolve against ``config_dir``, the folder of the file the
        values come from (see ``resolve_path``), else the working directory.
        """
        model = self.config_class
        context = {} if config_dir is None else {CONFIG_DIR: config_dir}
        try:
            return model.model_validate(dict(data), context=context)
        except ValidationError as exc:
            message = describe_config_errors(self.name, model, exc, hidden=hidden)
            raise ConfigError(message) from None


def describe_config_errors(
    flavor: str,
    model: type[BaseModel],
    exc: ValidationError,
    subject: str = "config",
    hidden: Collection[str] = (),
) -> str:
    """One message naming the flavor, each bad field and the valid fields.

    Built by hand rather than from ``str(exc)``, which would print the input of
    a secret field given with the wrong type; nor is the input of a field in
    ``hidden`` shown (a value read from the environment).
    """
    secrets = {*secret_field_names(model), *hidden}
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(config)"
        if error["type"] == "extra_forbidden":
            close = difflib.get_close_matches(field, list(model.model_fields), n=1)
            problems.append(
                f"unknown field {field!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            )
        elif error["type"] == "missing":
            problems.append(f"field {field!r} is required")
        else:
            # Echo the input only for a plain field: a whole-model error's input is
            # every value given, secrets included.
            plain = bool(error["loc"]) and error["loc"][0] not in secrets
            shown = f" (got {error['input']!r})" if plain else ""
            problems.append(f"field {field!r}: {error['msg']}{shown}")
    fields = ", ".join(sorted(model.model_fields)) or "(none)"
    return f"invalid {subject} for flavor {flavor!r}: {'; '.join(problems)}. Valid fields: {fields}"
