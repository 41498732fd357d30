"""The outbox against real faults of the local APNs and Web Push servers.

Each case says which pushes arrived and how often, what the caller's rows said
and what the direct_push_delivery events said later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import Event, HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.direct_push.const import DOMAIN

from .apns_server import ApnsServer
from .conftest import (
    ALICE_TOKEN,
    BOB_TOKEN,
    VAPID_PUBLIC_KEY,
    advance,
    apns_device,
    until,
    webpush_device,
)
from .webpush_server import Subscription, WebPushServer

TOKENS = {"Alice": ALICE_TOKEN, "Bob": BOB_TOKEN}


@pytest.fixture
def subs(webpush_server: WebPushServer) -> dict[str, Subscription]:
    """Dana's and Erin's subscriptions, made with the hub's key."""
    return {
        name: webpush_server.subscribe(name, application_server_key=VAPID_PUBLIC_KEY)
        for name in ("Dana", "Erin")
    }


@pytest.fixture
def devices(subs: dict[str, Subscription]) -> list[ConfigSubentryData]:
    """Alice and Bob on iPhones, Dana and Erin on Web Push."""
    return [
        apns_device("Alice", ALICE_TOKEN, admin=True),
        apns_device("Bob", BOB_TOKEN),
        webpush_device("Dana", subs["Dana"], admin=True),
        webpush_device("Erin", subs["Erin"]),
    ]


@pytest.fixture(autouse=True)
def secrets_stay_out_of_logs(
    caplog: pytest.LogCaptureFixture, subs: dict[str, Subscription]
) -> Iterator[None]:
    """No test here logs a device token, an endpoint or a subscription key."""
    caplog.set_level(logging.DEBUG)
    yield
    formatter = logging.Formatter()
    logged = "\n".join(
        formatter.format(record)
        for record in caplog.get_records("call")
        if not record.name.startswith("tests.")
    )
    secrets = [*TOKENS.values()]
    for sub in subs.values():
        secrets += [sub.id, sub.p256dh, sub.auth]
    for secret in secrets:
        assert secret not in logged


async def send(hass: HomeAssistant, **fields: Any) -> dict[str, dict[str, Any]]:
    """Call direct_push.send; return its rows by device name."""
    response = await hass.services.async_call(
        DOMAIN, "send", fields, blocking=True, return_response=True
    )
    assert response is not None
    rows: list[dict[str, Any]] = response["deliveries"]  # type: ignore[assignment]
    return {row["device"]: row for row in rows}


def statuses(rows: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
    """Return each row's status and reason."""
    return {name: (row["status"], row["reason"]) for name, row in rows.items()}


def outcomes(events: list[Event]) -> dict[str, tuple[str, str]]:
    """Return each event's message id with its device and outcome."""
    return {
        event.data["message_id"]: (event.data["device"], event.data["outcome"])
        for event in events
    }


def apple_bodies(server: ApnsServer, token: str) -> list[str]:
    """Return the bodies Apple accepted for one device, in order."""
    return [push.payload["aps"]["alert"]["body"] for push in server.pushes_for(token)]


def web_bodies(server: WebPushServer, sub: Subscription) -> list[str]:
    """Return the bodies one Web Push app received, in order."""
    return [push.json["message"] for push in server.messages_for(sub)]


# Outages.


@pytest.mark.parametrize("outage", [30, 300])
async def test_apple_down_then_back(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    delivery_events: list[Event],
    freezer: FrozenDateTimeFactory,
    outage: int,
) -> None:
    """Apple refuses connections for 30 s or 5 min: every push arrives once, in order."""
    await apns_server.go_down()
    sent: list[dict[str, dict[str, Any]]] = []
    for n in range(3):
        rows = await send(hass, target="Alice", message=f"Leak {n}")
        sent.append(rows)
        assert statuses(rows) == {"Alice": ("queued", "connection_error")}
        await advance(hass, freezer, 5)
    # The caller learnt when the next attempt is due.
    next_attempt = datetime.fromisoformat(sent[0]["Alice"]["next_attempt"])
    assert next_attempt > datetime.fromisoformat("2000-01-01T00:00:00+00:00")
    await advance(hass, freezer, outage - 15)
    assert apns_server.pushes == []

    await apns_server.come_up()
    await advance(hass, freezer, 200, step=5)

    assert apple_bodies(apns_server, ALICE_TOKEN) == ["Leak 0", "Leak 1", "Leak 2"]
    message_ids = [rows["Alice"]["message_id"] for rows in sent]
    assert [push.apns_id for push in apns_server.pushes] == message_ids
    assert outcomes(delivery_events) == dict.fromkeys(
        message_ids, ("Alice", "delivered")
    )
    # The first push was tried during the outage, the others waited behind it.
    assert delivery_events[0].data["attempts"] >= 2
    assert hass.states.get("sensor.direct_push_queued_pushes").state == "0"


@pytest.mark.parametrize("outage", [30, 300])
async def test_web_push_down_then_back(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    delivery_events: list[Event],
    freezer: FrozenDateTimeFactory,
    outage: int,
) -> None:
    """A UnifiedPush server refuses connections for a while: delivered once, late."""
    await webpush_server.go_down()
    rows = await send(hass, target=["Dana", "Alice"], message="Water leak")
    assert statuses(rows) == {
        "Dana": ("queued", "connection_error"),
        "Alice": ("delivered", None),
    }
    await advance(hass, freezer, outage, step=5)
    assert webpush_server.messages == []
    assert hass.states.get("sensor.direct_push_queued_pushes").state == "1"
    assert hass.states.get("sensor.dana_last_failure").state == "connection_error"

    await webpush_server.come_up()
    await advance(hass, freezer, 200, step=5)

    assert web_bodies(webpush_server, subs["Dana"]) == ["Water leak"]
    [event] = delivery_events
    assert event.data == {
        "entry_id": loaded_entry.entry_id,
        "device": "Dana",
        "device_id": rows["Dana"]["device_id"],
        "message_id": rows["Dana"]["message_id"],
        "tag": None,
        "outcome": "delivered",
        "reason": None,
        "attempts": event.data["attempts"],
    }
    assert event.data["attempts"] >= 2
    assert hass.states.get("sensor.direct_push_queued_pushes").state == "0"


async def test_tls_handshake_fails_then_fixed(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    delivery_events: list[Event],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Something that is not Apple answers TLS (a proxy in the way), then Apple again."""
    await apns_server.go_down(tls=False)
    rows = await send(hass, target=["Alice", "Dana"], message="Smoke")
    assert statuses(rows) == {
        "Alice": ("queued", "connection_error"),
        "Dana": ("delivered", None),
    }
    await advance(hass, freezer, 60, step=5)
    assert apns_server.connections_made == 0

    await apns_server.come_up()
    await advance(hass, freezer, 200, step=5)
    assert apple_bodies(apns_server, ALICE_TOKEN) == ["Smoke"]
    assert outcomes(delivery_events) == {
        rows["Alice"]["message_id"]: ("Alice", "delivered")
    }


async def run_clock_until_done(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, task: asyncio.Task[Any]
) -> int:
    """Tick the frozen clock a second at a time until task is done; return the seconds."""
    seconds = 0
    while not task.done():
        assert seconds < 60, "never done"
        freezer.tick(1)
        seconds += 1
        async_fire_time_changed(hass)
        for _ in range(50):
            await asyncio.sleep(0)
    return seconds


@pytest.mark.parametrize("hung", ["Alice", "Dana"])
async def test_service_accepts_and_never_answers(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    delivery_events: list[Event],
    freezer: FrozenDateTimeFactory,
    hung: str,
) -> None:
    """TCP is accepted, nothing answers: the action returns within 10 s, queued."""
    hung_server = apns_server if hung == "Alice" else webpush_server
    await hung_server.go_down(hang=True)
    task = hass.async_create_task(send(hass, message="Intruder", tag="alarm"))
    # The other service's devices got their push before any time passed.
    await until(lambda: len(apns_server.pushes) + len(webpush_server.messages) == 2)
    assert await run_clock_until_done(hass, freezer, task) <= 10
    rows = task.result()
    expected = dict.fromkeys(("Alice", "Bob", "Dana", "Erin"), ("delivered", None))
    other = "Bob" if hung == "Alice" else "Erin"
    expected[hung] = expected[other] = ("queued", "timeout")
    assert statuses(rows) == expected

    await hung_server.come_up()
    await advance(hass, freezer, 200, step=5)
    if hung == "Alice":
        assert sorted(push.token for push in apns_server.pushes) == sorted(
            [ALICE_TOKEN, BOB_TOKEN]
        )
    else:
        assert sorted(
            push.subscription_id for push in webpush_server.messages
        ) == sorted([subs["Dana"].id, subs["Erin"].id])
    assert outcomes(delivery_events) == {
        rows[hung]["message_id"]: (hung, "delivered"),
        rows[other]["message_id"]: (other, "delivered"),
    }
