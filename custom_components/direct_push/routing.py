"""Resolve action targets to devices. Plain Python: no Home Assistant here."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

TARGET_ADMIN: Final = "admin"
TARGET_ALL: Final = "all"
# The groups, by the key of their notify entity ("Admins", "Everyone").
GROUPS: Final = {"admins": TARGET_ADMIN, "everyone": TARGET_ALL}
# The words that send to a group, by the group they send to. No device may be
# called so (names.py), or it could not be told from its group.
GROUP_WORDS: Final = {TARGET_ADMIN: TARGET_ADMIN, TARGET_ALL: TARGET_ALL, **GROUPS}


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


def resolve(
    targets: Iterable[str] | None,
    routes: Sequence[Route],
    *,
    groups: Mapping[str, str] | None = None,
    hub: Collection[str] = (),
) -> Resolution:
    """Map targets (group words, names, device or entity ids) to device ids.

    "admins" is the same as "admin", "everyone" as "all"; `groups` gives the
    groups other names (their notify entities' ids). Names match without case.
    Blank targets, and `hub` (the hub's own ids: it is no phone), select no
    device; with nothing else, a message goes to all, as with no targets at
    all. A device named by several targets is selected once.
    """
    words = {**GROUP_WORDS, **(groups or {})}
    wanted = [t for t in targets or () if (key := _key(t)) and key not in hub]
    selected: set[str] = set()
    unknown: list[str] = []
    for target in wanted or [TARGET_ALL]:
        key = _key(target)
        group = words.get(key)
        if group == TARGET_ALL:
            matches = [route.device_id for route in routes]
        elif group == TARGET_ADMIN:
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
