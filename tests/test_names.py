"""Device names: the one rule every path that names a device follows."""

from __future__ import annotations

import pytest

from custom_components.direct_push.names import (
    NAME_IN_USE,
    RESERVED_NAME,
    DeviceNames,
    is_reserved,
)
from custom_components.direct_push.routing import GROUP_WORDS, Route, RouteIndex
from custom_components.direct_push.validation import InputError


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Plain Python: skip conftest's hass fixture."""


@pytest.mark.parametrize(
    ("taken", "wanted", "given"),
    [
        ((), "Alice", "Alice"),
        (("Alice",), "Alice", "Alice 2"),
        (("alice", "ALICE 2"), "Alice", "Alice 3"),
        # A numbered name goes on from its number.
        (("Alice 2",), "Alice 2", "Alice 3"),
        (("Alice 2", "Alice 3"), "alice 2", "alice 4"),
        (("Alice 9",), "Alice 9", "Alice 10"),
        # Outer spaces are no part of a name.
        (("Bob",), "  bob ", "bob 2"),
        # A group word is never a name.
        ((), "Admin", "Admin 2"),
        ((), "EVERYONE", "EVERYONE 2"),
        (("all 2",), "all", "all 3"),
        # Only a number: there is no name to number.
        (("7",), "7", "7 2"),
    ],
)
def test_claim(taken: tuple[str, ...], wanted: str, given: str) -> None:
    names = DeviceNames(taken)
    assert names.claim(wanted) == given
    # Taken from now on.
    assert names.problem(given) == NAME_IN_USE


def test_claim_in_turn() -> None:
    """Numbers given before stay taken; each search starts where it should."""
    names = DeviceNames(["Alice"])
    assert [names.claim(name) for name in ("Alice", "Alice 5", "alice")] == [
        "Alice 2",
        "Alice 5",
        "alice 3",
    ]
    assert names.claim("Alice 4") == "Alice 4"
    assert names.claim("Alice") == "Alice 6"
    assert names.claim("Alice 2") == "Alice 7"
    assert [names.claim("Bob") for _ in range(1000)][-1] == "Bob 1000"


def test_check() -> None:
    """The one rule for a new name: storable, visible, short, free."""
    names = DeviceNames(["Alice"])
    assert names.check("  Bob ") == "Bob"
    for name, key in [
        ("alice", NAME_IN_USE),
        ("Everyone", RESERVED_NAME),
        ("\u200b", "name_blank"),
        ("B\x00b", "invalid_character"),
        ("B\ud800", "lone_surrogate"),
        ("B" * 65, "name_too_long"),
    ]:
        with pytest.raises(InputError) as err:
            names.check(name, "devices[0].name")
        assert (err.value.field, err.value.key) == ("devices[0].name", key)


def test_problem() -> None:
    names = DeviceNames(["Alice"])
    assert names.problem("Bob") is None
    assert names.problem(" ALICE ") == NAME_IN_USE
    assert names.problem("admins") == RESERVED_NAME
    assert names.in_use("alice")
    assert not names.in_use("admin")


def test_reserved_words_are_the_routing_words() -> None:
    """Each word routing treats as a group is reserved, and nothing else."""
    assert set(GROUP_WORDS) == {"admin", "admins", "all", "everyone"}
    for word in GROUP_WORDS:
        assert is_reserved(word.upper())
        # Routed to a group, never to a device of that name.
        route = Route("01X", word, admin=False)
        assert RouteIndex([route]).resolve([word]).device_ids == (
            () if GROUP_WORDS[word] == "admin" else ("01X",)
        )
    assert not is_reserved("Admin 2")
