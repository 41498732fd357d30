"""Resolve action targets to devices. Plain Python: no Home Assistant here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

TARGET_ADMIN: Final = "admin"
TARGET_ALL: Final = "all"


@dataclass(frozen=True, slots=True)
class Route:
    """What a target can match for one device."""

    device_id: str
    """The device's stable id (its subentry id)."""
    name: str
    admin: bool
    aliases: frozenset[str] = field(default_factory=frozenset)
    """Other names for the device: its HA device id and notify entity id."""


@dataclass(frozen=True, slots=True)
class Resolution:
    """The devices that targets selected, in configuration order."""

    device_ids: tuple[str, ...]
    unknown: tuple[str, ...]


def _key(target: str) -> str:
    return target.strip().casefold()


def resolve(targets: Iterable[str] | None, routes: Sequence[Route]) -> Resolution:
    """Map targets ("admin", "all", names, device or entity ids) to device ids.

    No targets means "all". Names match case-insensitively. A device named by
    several targets is selected once.
    """
    selected: set[str] = set()
    unknown: list[str] = []
    for target in list(targets or ()) or [TARGET_ALL]:
        key = _key(target)
        if key == TARGET_ALL:
            matches = [route.device_id for route in routes]
        elif key == TARGET_ADMIN:
            matches = [route.device_id for route in routes if route.admin]
        else:
            matches = [
                route.device_id
                for route in routes
                if key in (_key(route.name), _key(route.device_id))
                or key in route.aliases
            ]
            if not matches:
                # As the user wrote it, for the error message.
                unknown.append(target.strip())
        selected.update(matches)
    return Resolution(
        device_ids=tuple(r.device_id for r in routes if r.device_id in selected),
        unknown=tuple(unknown),
    )
