"""Device names: unique in the hub, and never a word that sends to a group.

Plain Python: no Home Assistant here. Every path that names a device (the
device forms, the folder and upload imports, the YAML, and whatever comes next)
goes through DeviceNames, so the rule is written once: a name is text that
HA can store and show (validation.check_name: not blank, at most
MAX_NAME_LENGTH characters, no control character), names compare without
case, a group word (admin, all, ...) is no name, and a name that is taken
gets the next free number ("Alice" → "Alice 2"; "Alice 2" → "Alice 3").
"""

from __future__ import annotations

from collections.abc import Iterable
import re
from typing import Final

from .routing import GROUP_WORDS
from .validation import InputError, check_name

RESERVED_NAME: Final = "reserved_name"
NAME_IN_USE: Final = "name_in_use"
_NUMBERED_RE: Final = re.compile(r"^(?P<base>.*\S)\s+(?P<number>\d+)$")


def name_key(name: str) -> str:
    """Return what makes two names the same: case and outer spaces do not count."""
    return name.strip().casefold()


def is_reserved(name: str) -> bool:
    """Return True for a word that sends to a group of devices."""
    return name_key(name) in GROUP_WORDS


class DeviceNames:
    """The names already taken in a hub, and the rule for one more."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        """Start from the names of the hub's other devices."""
        self._taken = {name_key(name) for name in taken}
        # Where the search for a free number went on from last time, per
        # name and first number: names are never given back, so the numbers
        # below it are still taken, and a thousand "Alice"s cost no more
        # than one each.
        self._next: dict[tuple[str, int], int] = {}

    def in_use(self, name: str) -> bool:
        """Return True when another device has this name."""
        return name_key(name) in self._taken

    def check(self, name: str, field: str = "name") -> str:
        """Return a new device's name as stored, or raise InputError saying why not."""
        name = check_name(name, field)
        if problem := self.problem(name):
            raise InputError(field, problem)
        return name

    def problem(self, name: str) -> str | None:
        """Return why a checked name is not free, as a translation key."""
        if is_reserved(name):
            return RESERVED_NAME
        if self.in_use(name):
            return NAME_IN_USE
        return None

    def take(self, name: str) -> None:
        """Record a name as taken."""
        self._taken.add(name_key(name))

    def claim(self, name: str) -> str:
        """Take a checked name, or the next free number after it; return the one taken."""
        free = name.strip()
        if self.problem(free) is not None:
            base, number = free, 2
            if (numbered := _NUMBERED_RE.match(free)) is not None:
                base, number = numbered["base"], int(numbered["number"]) + 1
            search = (name_key(base), number)
            number = self._next.get(search, number)
            while self.problem(free := f"{base} {number}") is not None:
                number += 1
            self._next[search] = number + 1
        self.take(free)
        return free
