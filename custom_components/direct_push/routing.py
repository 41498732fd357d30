"""Resolve action targets to devices. Plain Python: no Home Assistant here."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
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
    owner: str | None = None
    """The HA user the device belongs to (it registered itself as that user)."""


@dataclass(frozen=True, slots=True)
class Resolution:
    """The devices that targets selected, in configuration order."""

    device_ids: tuple[str, ...]
    unknown: tuple[str, ...]


def _key(target: str) -> str:
    return target.strip().casefold()


class RouteIndex:
    """Targets (group words, names, device or entity ids) to device ids, by lookup.

    Built once from the routes, so that resolving costs a dictionary lookup per
    target, however many devices there are.

    "admins" is the same as "admin", "everyone" as "all"; `groups` gives the
    groups other names (their notify entities' ids). Names and device ids match
    without case; aliases match as given, in lower case as Home Assistant's ids
    are. A person's entity id selects the devices its HA user owns (the caller
    says whose user each person is). Blank targets, and `hub` (the hub's own ids: it is no phone), select no
    device; with nothing else, a message goes to all, as with no targets at
    all. A device named by several targets is selected once.
    """

    def __init__(
        self,
        routes: Iterable[Route],
        *,
        groups: Mapping[str, str] | None = None,
        hub: Collection[str] = (),
    ) -> None:
        """Index the routes, kept in configuration order."""
        routes = tuple(routes)
        self._device_ids = tuple(route.device_id for route in routes)
        self._admins = tuple(
            position for position, route in enumerate(routes) if route.admin
        )
        self._words = {**GROUP_WORDS, **(groups or {})}
        self._hub = frozenset(hub)
        # Each key to the positions of the devices it names.
        self._keys: dict[str, list[int]] = {}
        # Each HA user to the positions of the devices they own.
        self._owners: dict[str, list[int]] = {}
        for position, route in enumerate(routes):
            for key in {_key(route.name), _key(route.device_id), *route.aliases}:
                self._keys.setdefault(key, []).append(position)
            if route.owner is not None:
                self._owners.setdefault(route.owner, []).append(position)

    def resolve(
        self, targets: Iterable[str] | None, people: Mapping[str, str] | None = None
    ) -> Resolution:
        """Map targets to device ids, in configuration order, and report the unknown.

        people: person entity ids (lower case) to their HA user's id.
        """
        wanted = [
            (target, key)
            for target in targets or ()
            if (key := _key(target)) and key not in self._hub
        ]
        everyone = not wanted
        positions: set[int] = set()
        unknown: list[str] = []
        for target, key in wanted:
            group = self._words.get(key)
            if group == TARGET_ALL:
                everyone = True
            elif group == TARGET_ADMIN:
                positions.update(self._admins)
            elif (found := self._keys.get(key)) is not None:
                positions.update(found)
            elif people and (owned := self._owners.get(people.get(key, ""))):
                positions.update(owned)
            else:
                # As the user wrote it, for the error message.
                unknown.append(target.strip())
        return Resolution(
            self._device_ids
            if everyone
            else tuple(self._device_ids[position] for position in sorted(positions)),
            tuple(unknown),
        )
