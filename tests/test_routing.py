"""Target resolution: plain data in, device ids out."""

from __future__ import annotations

import pytest

from custom_components.direct_push.routing import Resolution, Route, resolve

ROUTES = (
    Route("01ALICE", "Alice", admin=True, aliases=frozenset({"notify.alice", "d1"})),
    Route("01BOB", "Bob", admin=False, aliases=frozenset({"notify.bob", "d2"})),
    Route("01CAROL", "Carol Ann", admin=True),
)


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


def test_partial_name_is_no_match() -> None:
    assert resolve(["Carol"], ROUTES).unknown == ("Carol",)


@pytest.mark.parametrize("targets", [None, ["all"], ["admin"]])
def test_no_devices(targets: list[str] | None) -> None:
    assert resolve(targets, ()) == Resolution(device_ids=(), unknown=())


def test_admin_with_no_admins() -> None:
    assert resolve(["admin"], ROUTES[1:2]) == Resolution(device_ids=(), unknown=())


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
        targets,
        ROUTES,
        groups={
            "notify.direct_push_admins": "admin",
            "notify.direct_push_everyone": "all",
        },
        hub=("hub-device",),
    ) == Resolution(device_ids=expected, unknown=())
