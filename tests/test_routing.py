"""Target resolution: plain data in, device ids out."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
import random

import pytest

from custom_components.direct_push.routing import (
    GROUP_WORDS,
    TARGET_ADMIN,
    TARGET_ALL,
    Resolution,
    Route,
    RouteIndex,
)

ROUTES = (
    Route("01ALICE", "Alice", admin=True, aliases=frozenset({"notify.alice", "d1"})),
    Route("01BOB", "Bob", admin=False, aliases=frozenset({"notify.bob", "d2"})),
    Route("01CAROL", "Carol Ann", admin=True),
)
GROUP_ALIASES = {
    "notify.direct_push_admins": "admin",
    "notify.direct_push_everyone": "all",
}


def resolve(
    targets: Iterable[str] | None,
    routes: Sequence[Route],
    *,
    groups: Mapping[str, str] | None = None,
    hub: Collection[str] = (),
) -> Resolution:
    return RouteIndex(routes, groups=groups, hub=hub).resolve(targets)


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        (None, ("01ALICE", "01BOB", "01CAROL")),
        ([], ("01ALICE", "01BOB", "01CAROL")),
        (["all"], ("01ALICE", "01BOB", "01CAROL")),
        (["admin"], ("01ALICE", "01CAROL")),
        # The groups' other words, as their notify entities are called.
        (["everyone"], ("01ALICE", "01BOB", "01CAROL")),
        (["Admins"], ("01ALICE", "01CAROL")),
        ([" ADMIN "], ("01ALICE", "01CAROL")),
        (["bob"], ("01BOB",)),
        (["BOB"], ("01BOB",)),
        (["carol ann"], ("01CAROL",)),
        (["01bob"], ("01BOB",)),
        (["notify.bob"], ("01BOB",)),
        (["Notify.Bob"], ("01BOB",)),
        (["d1"], ("01ALICE",)),
        # Config order, whatever order the targets came in.
        (["Carol Ann", "Bob", "Alice"], ("01ALICE", "01BOB", "01CAROL")),
        # A device named several ways is selected once.
        (["admin", "Alice", "notify.alice", "01ALICE"], ("01ALICE", "01CAROL")),
        (["all", "bob"], ("01ALICE", "01BOB", "01CAROL")),
    ],
)
def test_resolve(targets: list[str] | None, expected: tuple[str, ...]) -> None:
    assert resolve(targets, ROUTES) == Resolution(device_ids=expected, unknown=())


def test_unknown_targets_are_reported_as_given() -> None:
    assert resolve(["Bob", "Dave", "notify.eve"], ROUTES) == Resolution(
        device_ids=("01BOB",), unknown=("Dave", "notify.eve")
    )


def test_unknown_targets_after_all_are_reported() -> None:
    """ "all" selects everyone, and what follows it is still checked."""
    assert resolve(["all", " Dave ", "Dave"], ROUTES) == Resolution(
        device_ids=("01ALICE", "01BOB", "01CAROL"), unknown=("Dave", "Dave")
    )


def test_partial_name_is_no_match() -> None:
    assert resolve(["Carol"], ROUTES).unknown == ("Carol",)


@pytest.mark.parametrize("targets", [None, ["all"], ["admin"]])
def test_no_devices(targets: list[str] | None) -> None:
    assert resolve(targets, ()) == Resolution(device_ids=(), unknown=())


def test_admin_with_no_admins() -> None:
    assert resolve(["admin"], ROUTES[1:2]) == Resolution(device_ids=(), unknown=())


def test_aliases_match_as_home_assistant_writes_them() -> None:
    """HA's ids are lower case; an alias is looked up as the target's key."""
    routes = [Route("01X", "X", admin=False, aliases=frozenset({"Upper.Case"}))]
    assert resolve(["Upper.Case"], routes).unknown == ("Upper.Case",)


def test_a_key_shared_by_devices_selects_both() -> None:
    """One device's name may be another's id: both are selected."""
    routes = [
        Route("01A", "01b", admin=False),
        Route("01B", "B", admin=False, aliases=frozenset({"01a"})),
    ]
    assert resolve(["01B"], routes).device_ids == ("01A", "01B")
    assert resolve(["01a"], routes).device_ids == ("01A", "01B")


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        # Blank targets name no one: with nothing else, everyone.
        (["", "  "], ("01ALICE", "01BOB", "01CAROL")),
        (["", "bob"], ("01BOB",)),
        # The hub's own ids are no device: the same.
        (["hub-device"], ("01ALICE", "01BOB", "01CAROL")),
        (["HUB-DEVICE", "d2"], ("01BOB",)),
        # Other names of the groups.
        (["notify.direct_push_admins"], ("01ALICE", "01CAROL")),
        (["notify.direct_push_everyone", "bob"], ("01ALICE", "01BOB", "01CAROL")),
    ],
)
def test_blanks_hub_and_group_aliases(
    targets: list[str], expected: tuple[str, ...]
) -> None:
    assert resolve(
        targets, ROUTES, groups=GROUP_ALIASES, hub=("hub-device",)
    ) == Resolution(device_ids=expected, unknown=())


def linear_resolve(
    targets: Iterable[str] | None,
    routes: Sequence[Route],
    *,
    groups: Mapping[str, str] | None = None,
    hub: Collection[str] = (),
) -> Resolution:
    """The resolution before the index: every target matched against every route.

    Kept here as the reference the index must agree with.
    """

    def key_of(target: str) -> str:
        return target.strip().casefold()

    words = {**GROUP_WORDS, **(groups or {})}
    wanted = [t for t in targets or () if (key := key_of(t)) and key not in hub]
    selected: set[str] = set()
    unknown: list[str] = []
    for target in wanted or [TARGET_ALL]:
        key = key_of(target)
        group = words.get(key)
        if group == TARGET_ALL:
            matches = [route.device_id for route in routes]
        elif group == TARGET_ADMIN:
            matches = [route.device_id for route in routes if route.admin]
        else:
            matches = [
                route.device_id
                for route in routes
                if key in (key_of(route.name), key_of(route.device_id))
                or key in route.aliases
            ]
            if not matches:
                unknown.append(target.strip())
        selected.update(matches)
    return Resolution(
        device_ids=tuple(r.device_id for r in routes if r.device_id in selected),
        unknown=tuple(unknown),
    )


def _random_routes(rng: random.Random, count: int) -> list[Route]:
    names = ["Alice", "Bob", "Carol Ann", "ÉMILE", "straße", "Phone"]
    return [
        Route(
            f"01DEV{index:04d}",
            f"{rng.choice(names)} {index}" if rng.random() < 0.9 else "Shared",
            admin=rng.random() < 0.3,
            aliases=frozenset(
                alias
                for alias in (f"ha{index:04x}", f"notify.phone_{index}")
                if rng.random() < 0.8
            ),
        )
        for index in range(count)
    ]


def _random_target(rng: random.Random, routes: Sequence[Route]) -> str:
    """A target as users and selectors write them, known or not."""
    route = rng.choice(routes) if routes else Route("01NONE", "Nobody", admin=False)
    choice = rng.randrange(9)
    if choice == 0:
        return rng.choice([*GROUP_WORDS, *GROUP_ALIASES, "ALL", " Everyone "])
    if choice == 1:
        return route.name.upper() if rng.random() < 0.5 else f"  {route.name}"
    if choice == 2:
        return route.device_id.lower()
    if choice == 3 and route.aliases:
        return rng.choice(sorted(route.aliases))
    if choice == 4:
        return rng.choice(["", " ", "\t"])
    if choice == 5:
        return rng.choice(["hub-device", "HUB-DEVICE"])
    if choice == 6:
        return f"nobody {rng.randrange(1000)}"
    if choice == 7:
        return "sHARED"
    return route.name.casefold()


@pytest.mark.parametrize("seed", range(200))
def test_index_agrees_with_linear_resolution(seed: int) -> None:
    """Over random hubs and target lists, the index finds what matching each route found."""
    rng = random.Random(seed)
    routes = _random_routes(rng, rng.randrange(40))
    index = RouteIndex(routes, groups=GROUP_ALIASES, hub=("hub-device",))
    for _ in range(20):
        targets = [_random_target(rng, routes) for _ in range(rng.randrange(6))]
        given = None if not targets and rng.random() < 0.5 else targets
        assert index.resolve(given) == linear_resolve(
            given, routes, groups=GROUP_ALIASES, hub=("hub-device",)
        ), targets


def test_a_person_names_the_devices_of_their_user() -> None:
    """person.* selects the devices its user owns; a person without any is unknown."""
    routes = (
        Route("01ALICE", "Alice", admin=True, owner="user-a"),
        Route("01BOB", "Bob", admin=False),
        Route("01ALICE2", "Alice's iPad", admin=False, owner="user-a"),
        Route("01DAN", "Dan", admin=False, owner="user-d"),
    )
    people = {"person.alice": "user-a", "person.bob": "user-b"}
    index = RouteIndex(routes)
    assert index.resolve(["Person.Alice"], people) == Resolution(
        ("01ALICE", "01ALICE2"), ()
    )
    assert index.resolve(["person.alice", "Dan"], people) == Resolution(
        ("01ALICE", "01ALICE2", "01DAN"), ()
    )
    # Bob's devices were added by an admin: they have no owner.
    assert index.resolve(["person.bob", "person.carol"], people) == Resolution(
        (), ("person.bob", "person.carol")
    )
    # Without knowing whose user a person is, nothing matches.
    assert index.resolve(["person.alice"]) == Resolution((), ("person.alice",))
