"""Flavors found through the ``trackstack.flavors`` entry points.

Built-in and third-party flavors are found the same way. Listing loads each
flavor class (cheap: adapters import their SDK only when used) and checks its
requirements with ``find_spec``, which never imports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from trackstack.errors import FlavorNotFoundError, MissingExtraError
from trackstack.stack import Flavor

__all__ = ["ENTRY_POINT_GROUP", "FlavorInfo", "get_flavor", "list_flavors"]

ENTRY_POINT_GROUP = "trackstack.flavors"


@dataclass(frozen=True)
class FlavorInfo:
    """What ``list_flavors`` found about one flavor."""

    name: str
    available: bool
    distribution: str | None
    version: str | None
    install_hint: str | None
    """The command that makes an unavailable flavor available."""
    error: str | None
    """Why the flavor is unavailable."""


def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(point.name, point)
    return found


def _inspect(point: EntryPoint) -> tuple[FlavorInfo, Flavor | None]:
    dist = point.dist
    distribution, version = (dist.name, dist.version) if dist else (None, None)
    hint = f"pip install '{distribution or 'trackstack'}[{point.name}]'"
    error: str | None = None
    flavor: Flavor | None = None
    try:
        loaded = point.load()
    except ImportError as exc:
        error = f"cannot import {point.value}: {exc}"
    else:
        candidate = loaded() if isinstance(loaded, type) else loaded
        if isinstance(candidate, Flavor):
            flavor = candidate
            hint = flavor.install_hint or hint
            missing = flavor.missing_requirements()
            if missing:
                error = f"missing {', '.join(missing)}"
        else:
            error = f"entry point {point.value} is a {type(candidate).__name__}, not a Flavor"
            hint = f"report it to the maintainers of {distribution or 'its distribution'}"
    info = FlavorInfo(
        name=point.name,
        available=error is None,
        distribution=distribution,
        version=version,
        install_hint=None if error is None else hint,
        error=error,
    )
    return info, (flavor if error is None else None)


def list_flavors() -> list[FlavorInfo]:
    """Every installed flavor, available or not, sorted by name."""
    return [_inspect(point)[0] for _, point in sorted(_entry_points().items())]


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``, ready to ``create`` trackers."""
    points = _entry_points()
    if name not in points:
        known = ", ".join(sorted(points)) or "none"
        raise FlavorNotFoundError(
            f"unknown flavor {name!r}; installed flavors: {known}. "
            "Install the adapter that provides it, e.g. pip install 'trackstack[mlflow]'"
        )
    info, flavor = _inspect(points[name])
    if flavor is None:
        raise MissingExtraError(
            f"flavor {name!r} is unavailable ({info.error}); {info.install_hint}"
        )
    return flavor
