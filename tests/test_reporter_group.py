"""The reporter group's logic: who leads, who is gone or missing, what is due."""

from __future__ import annotations

import json

import pytest

from custom_components.direct_push.reporter_group import (
    MAX_MEMBERS,
    Confirmations,
    Group,
    Heartbeat,
    derive_key,
)

KITCHEN = Heartbeat("id-kitchen", "Kitchen", 1, "1.0")
GARAGE = Heartbeat("id-garage", "Garage", 2, "1.0")
ATTIC = Heartbeat("id-attic", "Attic", 2, "1.1")
SHED = Heartbeat("id-shed", "Shed", 5, "1.0")


def names(heartbeats: list[Heartbeat]) -> list[str]:
    return [heartbeat.name for heartbeat in heartbeats]


def test_lowest_rank_leads_and_a_tie_goes_to_the_lower_id() -> None:
    group = Group(SHED)
    for member in (GARAGE, KITCHEN, ATTIC):
        group.seen(member, 0)
    assert names(group.alive(0)) == ["Kitchen", "Attic", "Garage", "Shed"]
    assert group.leader(0) == KITCHEN
    assert not group.is_leader(0)
    # Every member computes the same leader from the same heartbeats.
    views = [Group(me) for me in (KITCHEN, GARAGE, ATTIC, SHED)]
    for view in views:
        for member in (KITCHEN, GARAGE, ATTIC, SHED):
            view.seen(member, 0)
    assert [view.leader(0) for view in views] == [KITCHEN] * 4
    assert [view.is_leader(0) for view in views] == [True, False, False, False]
    # Without Kitchen, Attic and Garage tie on rank 2: "id-attic" < "id-garage".
    assert Group(GARAGE).leader(0) == GARAGE
    tie = Group(GARAGE)
    tie.seen(ATTIC, 0)
    assert tie.leader(0) == ATTIC


def test_a_lone_member_leads_itself() -> None:
    group = Group(SHED)
    assert group.alive(1e9) == [SHED]
    assert group.is_leader(1e9)


def test_a_member_is_gone_after_three_missed_heartbeats() -> None:
    group = Group(GARAGE, interval=30)
    group.seen(KITCHEN, 100)
    assert group.leader(100 + 90) == KITCHEN  # two missed, the third due now
    assert group.leader(100 + 90.5) == GARAGE
    assert group.is_leader(100 + 90.5)
    assert group.alive(100 + 90.5) == [GARAGE]
    # Its next heartbeat makes it the leader again.
    group.seen(KITCHEN, 200)
    assert group.leader(200) == KITCHEN


def test_the_next_in_line_takes_over_when_the_leader_dies() -> None:
    group = Group(SHED, interval=10)
    group.seen(KITCHEN, 0)
    for now in range(0, 60, 10):
        group.seen(GARAGE, now)
        group.seen(ATTIC, now)
    assert group.leader(50) == ATTIC  # Kitchen's last heartbeat was at 0
    for now in range(60, 100, 10):
        group.seen(GARAGE, now)
    assert group.leader(100) == GARAGE
    assert group.leader(200) == SHED


def test_a_clean_stop_leaves_the_lead_at_once_and_is_missing_only_if_it_lasts() -> None:
    group = Group(GARAGE, interval=30, missing_after=180)
    group.seen(KITCHEN, 0)
    group.seen(SHED, 0)
    group.cleared(KITCHEN.instance_id, 10)
    assert group.leader(11) == GARAGE
    assert [m.name for m in group.alive(11)] == ["Garage", "Shed"]
    # Back within missing_after (a restart): nothing to report.
    group.seen(KITCHEN, 100)
    group.seen(SHED, 100)
    assert group.leader(101) == KITCHEN
    assert group.missing_changes(150) == []
    # Stopped for good: missing once its silence outlasts missing_after.
    group.cleared(KITCHEN.instance_id, 200)
    group.seen(SHED, 290)
    assert group.missing_changes(380) == []
    assert group.missing_changes(381) == [(KITCHEN, True)]
    group.cleared("id-never-seen", 400)  # harmless


def test_our_own_heartbeat_echoed_back_changes_nothing() -> None:
    group = Group(GARAGE)
    group.seen(Heartbeat(GARAGE.instance_id, "Impostor", 0, "9"), 0)
    assert group.alive(0) == [GARAGE]
    assert group.missing_changes(1000) == []


def test_missing_is_reported_once_and_back_once() -> None:
    group = Group(KITCHEN, interval=30, missing_after=180)
    group.seen(GARAGE, 0)
    assert group.missing_changes(90) == []
    assert group.missing_changes(180) == []  # not longer than missing_after yet
    assert group.missing_changes(181) == [(GARAGE, True)]
    assert group.missing_changes(500) == []
    assert group.missing_changes(5000) == []
    renamed = Heartbeat(GARAGE.instance_id, "Garage 2", 2, "1.1")
    group.seen(renamed, 5001)
    assert group.missing_changes(5001) == [(renamed, False)]
    assert group.missing_changes(5002) == []
    assert group.missing_changes(5001 + 181) == [(renamed, True)]


def test_a_retained_heartbeat_proves_nothing_about_a_known_member() -> None:
    group = Group(KITCHEN, interval=30, missing_after=180)
    group.seen(GARAGE, 0)
    assert group.missing_changes(200) == [(GARAGE, True)]
    # Our connection to the broker dropped; resubscribing replays the
    # retained heartbeat Garage left when it died.
    group.seen(GARAGE, 300, retained=True)
    assert group.missing_changes(300) == []
    assert group.alive(300) == [KITCHEN]


def test_a_retained_heartbeat_of_a_stranger_counts_but_is_not_reported() -> None:
    group = Group(GARAGE, interval=30, missing_after=180)
    # Starting up: the broker hands us every member's retained heartbeat,
    # Kitchen's from a machine that died last week.
    group.seen(KITCHEN, 0, retained=True)
    assert group.leader(0) == KITCHEN  # a live leader is known at once
    assert group.leader(91) == GARAGE
    assert group.missing_changes(10_000) == []  # never heard live


def test_hostile_members_cannot_grow_the_group_without_bound() -> None:
    group = Group(KITCHEN)
    for number in range(MAX_MEMBERS * 3):
        group.seen(Heartbeat(f"id-{number:04}", "x", 9, "1"), number)
    alive = group.alive(MAX_MEMBERS * 3)
    assert len(alive) == MAX_MEMBERS + 1
    assert alive[-1].instance_id == f"id-{MAX_MEMBERS * 3 - 1:04}"  # the newest stay


def test_heartbeat_payload_round_trip() -> None:
    payload = KITCHEN.to_payload()
    assert " " not in payload
    assert json.loads(payload) == {
        "instance_id": "id-kitchen",
        "name": "Kitchen",
        "rank": 1,
        "version": "1.0",
    }
    assert Heartbeat.from_payload(payload) == KITCHEN
    assert Heartbeat.from_payload(payload.encode()) == KITCHEN
    unicode = Heartbeat("ü-1", "Küche ☕", 0, "2026.1")
    assert Heartbeat.from_payload(unicode.to_payload().encode()) == unicode
    # A newer member may add fields.
    newer = json.dumps({**json.loads(payload), "zone": "home"})
    assert Heartbeat.from_payload(newer) == KITCHEN


def _with(**changes: object) -> str:
    return json.dumps({**json.loads(KITCHEN.to_payload()), **changes})


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param(b"", id="empty-bytes"),
        pytest.param("not json", id="not-json"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param("[1, 2]", id="list"),
        pytest.param('"Kitchen"', id="string"),
        pytest.param("null", id="null"),
        pytest.param("[" * 5000 + "]" * 5000, id="deep-nesting"),
        pytest.param("[" * 500 + "]" * 500, id="nesting-within-size"),
        pytest.param(_with(rank=True), id="bool-rank"),
        pytest.param(_with(rank=1.0), id="float-rank"),
        pytest.param(_with(rank="1"), id="string-rank"),
        pytest.param(_with(rank=-1), id="negative-rank"),
        pytest.param(_with(rank=1001), id="rank-too-high"),
        pytest.param(_with(rank=10**400), id="huge-rank"),
        pytest.param(_with(name="x" * 65), id="long-name"),
        pytest.param(_with(name=""), id="empty-name"),
        pytest.param(_with(name="   "), id="blank-name"),
        pytest.param(_with(name="Kit\nchen"), id="newline-in-name"),
        pytest.param(_with(name="Kit\x00chen"), id="nul-in-name"),
        pytest.param(_with(name="Kit\u202echen"), id="bidi-override-in-name"),
        pytest.param(_with(name="Kit\ud800chen"), id="lone-surrogate-in-name"),
        pytest.param(_with(name=["Kitchen"]), id="list-name"),
        pytest.param(_with(instance_id=7), id="int-id"),
        pytest.param(_with(instance_id="a" * 65), id="long-id"),
        pytest.param(_with(version=None), id="null-version"),
        pytest.param(_with(version="1\t0"), id="tab-in-version"),
        pytest.param(_with(zone="x" * 1000), id="over-1-kb"),
        pytest.param('{"name": "Kitchen", "rank": 1, "version": "1"}', id="no-id"),
    ],
)
def test_hostile_payloads_are_rejected(raw: str | bytes) -> None:
    assert Heartbeat.from_payload(raw) is None


def test_a_payload_of_exactly_1_kb_is_accepted() -> None:
    padding = 1024 - len(_with(zone=""))
    payload = _with(zone="z" * padding)
    assert len(payload.encode()) == 1024
    assert Heartbeat.from_payload(payload) == KITCHEN
    assert Heartbeat.from_payload(_with(zone="z" * (padding + 1))) is None


def test_a_held_key_is_due_when_nobody_confirms_it() -> None:
    confirmations: Confirmations[str] = Confirmations(window=600)
    assert confirmations.hold("k1", "Door open", 10)
    assert confirmations.due(40, grace=60) == []
    assert confirmations.due(70, grace=60) == [("k1", "Door open")]
    assert confirmations.due(80, grace=60) == []  # returned once


def test_a_held_key_confirmed_in_time_is_never_due() -> None:
    confirmations: Confirmations[str] = Confirmations(window=600)
    confirmations.hold("k1", "Door open", 10)
    confirmations.hold("k2", "Window open", 10)
    confirmations.confirm("k1", 30)
    assert confirmations.due(70, grace=60) == [("k2", "Window open")]


def test_holding_again_does_not_prolong_the_grace() -> None:
    confirmations: Confirmations[str] = Confirmations()
    confirmations.hold("k1", "first", 0)
    confirmations.hold("k1", "second", 50)
    assert confirmations.due(60, grace=60) == [("k1", "first")]


def test_a_confirmed_key_is_not_sent_again_within_the_window() -> None:
    confirmations: Confirmations[str] = Confirmations(window=600)
    confirmations.confirm("k1", 100)
    # A follower that saw the event after the leader's confirmation arrived.
    assert not confirmations.hold("k1", "Door open", 120)
    assert confirmations.due(10_000, grace=60) == []
    # A new leader checks before sending.
    assert confirmations.is_confirmed("k1", 700)
    assert not confirmations.is_confirmed("k1", 701)
    assert not confirmations.is_confirmed("k2", 100)
    confirmations.expire(700)
    assert len(confirmations) == 1
    confirmations.expire(701)
    assert len(confirmations) == 0


def test_a_failover_end_to_end() -> None:
    """Kitchen leads and dies; Garage's held event is sent by Garage, once."""
    garage = Group(GARAGE, interval=30)
    held: Confirmations[str] = Confirmations(window=600)
    grace = garage.timeout + garage.interval  # longer than it takes to see a death
    garage.seen(KITCHEN, 0)
    key = derive_key("door", "Door open", 1_700_000_005, 600)
    assert not garage.is_leader(5)
    held.hold(key, "Door open", 5)
    sent = [
        item
        for now in range(5, 400, 5)
        for item in held.due(now, grace)
        if garage.is_leader(now) and not held.is_confirmed(item[0], now)
    ]
    assert sent == [(key, "Door open")]


def test_memory_is_capped_dropping_the_oldest() -> None:
    confirmations: Confirmations[int] = Confirmations(window=600, cap=1000)
    for number in range(1500):
        confirmations.confirm(f"c{number}", number / 10)
        confirmations.hold(f"h{number}", number, number / 10)
    assert len(confirmations) == 2000
    assert not confirmations.is_confirmed("c499", 150)
    assert confirmations.is_confirmed("c500", 150)
    assert confirmations.is_confirmed("c1499", 150)
    due = confirmations.due(10_000, grace=60)
    assert [payload for _, payload in due] == list(range(500, 1500))
    # Confirming an old key again makes it the newest.
    small: Confirmations[int] = Confirmations(cap=2)
    small.confirm("a", 0)
    small.confirm("b", 1)
    small.confirm("a", 2)
    small.confirm("c", 3)
    assert small.is_confirmed("a", 3)
    assert not small.is_confirmed("b", 3)


def test_derive_key() -> None:
    key = derive_key("door", "Door open", 1200.0, 600)
    assert len(key) == 32
    assert int(key, 16) >= 0
    assert derive_key("door", "Door open", 1799.9, 600) == key  # same bucket
    assert derive_key("door", "Door open", 1800.0, 600) != key  # next bucket
    assert derive_key("door", "Door closed", 1200.0, 600) != key
    assert derive_key(None, "Door open", 1200.0, 600) != derive_key(
        "", "Door open", 1200.0, 600
    )
    # A separator inside the text cannot make two events collide.
    assert derive_key("a", "b\0c", 0, 600) != derive_key("a\0b", "c", 0, 600)
