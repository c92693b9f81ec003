"""Flavors found through the ``trackstack.flavors`` entry points.

Built-in and third-party flavors are found the same way. Listing loads each
flavor class (cheap: adapters import their SDK only when used) and checks its
requirements with ``find_spec``, which never imports them.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from importlib.metadata import Distribution, EntryPoint, entry_points
from urllib.parse import unquote, urlparse

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


def _install_target(dist: Distribution | None) -> str:
    """What ``pip install`` takes to reinstall ``dist``: its name, or the folder it came from.

    An install from a checkout (``pip install .``) records its folder; the
    extra must come from there, since the name may mean another release or nothing.
    """
    if dist is None:
        return "trackstack"
    try:
        origin = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        origin = {}
    url = origin.get("url", "") if isinstance(origin, dict) else ""
    if url.startswith("file://") and "dir_info" in origin:
        return unquote(urlparse(url).path)
    return str(dist.name)


def _inspect(point: EntryPoint) -> tuple[FlavorInfo, Flavor | None]:
    dist = point.dist
    distribution, version = (dist.name, dist.version) if dist else (None, None)
    extras = (dist.metadata.get_all("Provides-Extra") or []) if dist else []
    target = _install_target(dist)
    hint = f"pip install '{target}[{point.name}]'"
    error: str | None = None
    flavor: Flavor | None = None
    try:
        loaded = point.load()
    except ImportError as exc:
        error = f"cannot import {point.value}: {exc}"
        if point.name not in extras:  # no extra brings what is missing: the install is broken
            hint = f"pip install --force-reinstall '{target}'"
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
        close = difflib.get_close_matches(str(name), list(points), n=1)
        fix = (
            f" (did you mean {close[0]!r}?)"
            if close
            else "; install the adapter that provides it (`trackstack flavors` lists what is here)"
        )
        raise FlavorNotFoundError(f"unknown flavor {name!r}{fix}; installed flavors: {known}")
    info, flavor = _inspect(points[name])
    if flavor is None:
        raise MissingExtraError(
            f"flavor {name!r} is unavailable ({info.error}); {info.install_hint}"
        )
    return flavor
