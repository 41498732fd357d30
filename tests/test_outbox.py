"""The outbox against real faults of the local APNs and Web Push servers.

Each case says which pushes arrived and how often, what the caller's rows said
and what the direct_push_delivery events said later.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
import json
import logging
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    ConfigSubentry,
    ConfigSubentryData,
    ConfigSubentryDataWithId,
)
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.loader import DATA_CUSTOM_COMPONENTS
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
    async_test_home_assistant,
)

from custom_components.direct_push import outbox, pacing
from custom_components.direct_push.apns import SUBENTRY_APNS
from custom_components.direct_push.const import (
    CONF_ENDPOINT,
    CONF_KEY,
    DOMAIN,
    EVENT_DELIVERY,
)
from custom_components.direct_push.issues import async_create_inactive_issue
from custom_components.direct_push.message import webpush_topic

from .apns_server import ApnsServer, ApnsTestCredentials
from .conftest import (
    ALICE_TOKEN,
    BOB_TOKEN,
    VAPID_KEY,
    StaticResolver,
    advance,
    delivery_statuses,
    send_rows,
    subentry_id,
    token_entry_data,
    until,
)
from .webpush_server import Subscription, WebPushServer

# Every test here also proves that no device token, endpoint or key is logged.
pytestmark = pytest.mark.usefixtures("secrets_stay_out_of_logs")


@pytest.fixture
def log_secrets() -> list[str]:
    """The hub's key and the Apple tokens; subscribing adds each subscription's."""
    return [VAPID_KEY, ALICE_TOKEN, BOB_TOKEN]


@pytest.fixture
def devices(mixed_devices: list[ConfigSubentryData]) -> list[ConfigSubentryData]:
    """Alice and Bob on iPhones, Dana and Erin on Web Push."""
    return mixed_devices


async def send(hass: HomeAssistant, **fields: Any) -> dict[str, dict[str, Any]]:
    """Call direct_push.send; return its rows by device name."""
    return {row["device"]: row for row in await send_rows(hass, **fields)}


def statuses(rows: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
    """Return each row's status and reason."""
    return delivery_statuses(list(rows.values()))


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


async def test_stream_reset(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    delivery_events: list[Event],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Apple resets the stream: no answer comes, the attempt times out, the resend arrives."""
    apns_server.reset_next()
    task = hass.async_create_task(send(hass, target="Alice", message="Door open"))
    assert await run_clock_until_done(hass, freezer, task) <= 10
    rows = task.result()
    assert statuses(rows) == {"Alice": ("queued", "timeout")}

    await advance(hass, freezer, 60, step=2)
    message_id = rows["Alice"]["message_id"]
    # Sent twice with one apns-id, so the app could drop a duplicate; accepted once.
    assert apns_server.received == [(ALICE_TOKEN, message_id)] * 2
    assert [push.apns_id for push in apns_server.pushes] == [message_id]
    assert outcomes(delivery_events) == {message_id: ("Alice", "delivered")}


async def test_goaway_in_the_middle_of_a_fan_out(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    delivery_events: list[Event],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Apple answers one push, then GOAWAY; a push service drops a connection.

    Every push arrives exactly once; the resends carry the same apns-id and
    Web Push Topic as the first try.
    """
    assert statuses(await send(hass, message="Warm up")) == dict.fromkeys(
        ("Alice", "Bob", "Dana", "Erin"), ("delivered", None)
    )
    apns_server.received.clear()
    webpush_server.received.clear()
    apns_server.goaway_after(1)
    webpush_server.drop_next()

    rows = await send(hass, message="Burglar alarm", tag="alarm")
    queued = {name for name, row in rows.items() if row["status"] == "queued"}
    assert len(queued) == 2  # one Apple device, one Web Push device
    assert {rows[name]["reason"] for name in queued} == {"connection_error"}
    await advance(hass, freezer, 30)

    pushes = [push for push in apns_server.pushes if push.collapse_id == "alarm"]
    assert sorted(push.token for push in pushes) == sorted([ALICE_TOKEN, BOB_TOKEN])
    # The Apple device that met the GOAWAY got the same apns-id twice.
    ids = Counter(apns_id for _, apns_id in apns_server.received)
    assert sorted(ids.values()) == [1, 2]
    assert {rows[name]["message_id"] for name in ("Alice", "Bob")} == set(ids)
    messages = [m for m in webpush_server.messages if m.json["message"] != "Warm up"]
    assert sorted(m.subscription_id for m in messages) == sorted(
        sub.id for sub in subs.values()
    )
    # The dropped Web Push request and its resend had the same Topic.
    topics = Counter(webpush_server.received)
    assert sorted(topics.values()) == [1, 2]
    assert {topic for _, topic in topics} == {webpush_topic("alarm")}
    assert outcomes(delivery_events) == {
        rows[name]["message_id"]: (name, "delivered") for name in queued
    }


def _repoint(
    hass: HomeAssistant, entry: MockConfigEntry, name: str, endpoint: str
) -> None:
    """Give a Web Push device another endpoint, as its Edit form would (a reload)."""
    subentry = next(s for s in entry.subentries.values() if s.title == name)
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, CONF_ENDPOINT: endpoint}
    )


@pytest.mark.parametrize("delivered_before", [False, True])
async def test_host_that_does_not_resolve(
    hass: HomeAssistant,
    dns: StaticResolver,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    delivery_events: list[Event],
    freezer: FrozenDateTimeFactory,
    delivered_before: bool,
) -> None:
    """A home distributor's name stops resolving: retried, a repair after 3 days, then fixed."""
    if delivered_before:
        assert statuses(await send(hass, target="Dana", message="Day -1")) == {
            "Dana": ("delivered", None)
        }
    _repoint(
        hass,
        loaded_entry,
        "Dana",
        subs["Dana"].endpoint.replace("127.0.0.1", "ntfy.home.arpa"),
    )
    await hass.async_block_till_done()
    dana = next(s for s in loaded_entry.subentries.values() if s.title == "Dana")
    issue_id = f"device_unreachable_{dana.subentry_id}"
    first_day = dt_util.now().strftime("%Y-%m-%d")
    message_ids = []
    for day in range(3):
        rows = await send(hass, target="Dana", message=f"Day {day}", ttl=2 * 86400)
        assert statuses(rows) == {"Dana": ("queued", "dns_error")}
        message_ids.append(rows["Dana"]["message_id"])
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
        await advance(hass, freezer, 86400, step=3600)
    assert hass.states.get("sensor.dana_last_failure").state == "dns_error"

    # Three days of failures: the repair names the device and its last delivery.
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders["device"] == "Dana"
    if delivered_before:
        assert issue.translation_key == "device_unreachable"
        assert issue.translation_placeholders["last_delivery"] == first_day
    else:
        assert issue.translation_key == "device_unreachable_never"
    # Day 0's and day 1's pushes outlived their two days; neither arrived late.
    assert outcomes(delivery_events) == {
        message_ids[0]: ("Dana", "expired"),
        message_ids[1]: ("Dana", "expired"),
    }
    assert {event.data["reason"] for event in delivery_events} == {"dns_error"}

    # The name resolves again: the pushes kept go out at the next attempt.
    dns.table["ntfy.home.arpa"] = ["127.0.0.1"]
    await advance(hass, freezer, 200, step=5)
    assert web_bodies(webpush_server, subs["Dana"])[-1] == "Day 2"
    assert "Day 0" not in web_bodies(webpush_server, subs["Dana"])
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert outcomes(delivery_events)[message_ids[2]] == ("Dana", "delivered")


async def test_retry_after_is_honoured(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    delivery_events: list[Event],
    freezer: FrozenDateTimeFactory,
) -> None:
    """429 with Retry-After: 120: not a request before, delivered right after."""
    webpush_server.script(subs["Dana"], 429, headers={"Retry-After": "120"}, times=1)
    asked_at = dt_util.utcnow()
    rows = await send(hass, target="Dana", message="Front door", tag="door")
    assert statuses(rows) == {"Dana": ("queued", "too_many_requests")}
    assert datetime.fromisoformat(rows["Dana"]["next_attempt"]) == asked_at + timedelta(
        seconds=120
    )
    # A newer push with the same tag replaces the queued one, and waits too.
    newer = await send(hass, target="Dana", message="Front door again", tag="door")
    assert statuses(newer) == {"Dana": ("queued", "too_many_requests")}
    await advance(hass, freezer, 119)
    assert webpush_server.requests == 1

    await advance(hass, freezer, 2)
    assert web_bodies(webpush_server, subs["Dana"]) == ["Front door again"]
    assert webpush_server.requests == 2
    assert outcomes(delivery_events) == {
        rows["Dana"]["message_id"]: ("Dana", "replaced"),
        newer["Dana"]["message_id"]: ("Dana", "delivered"),
    }


@pytest.mark.parametrize(
    ("name", "status", "reason"),
    [
        ("Alice", 500, "InternalServerError"),
        ("Alice", 503, "ServiceUnavailable"),
        ("Dana", 500, "server_error_500"),
        ("Dana", 503, "server_error_503"),
    ],
)
async def test_server_error_storm_then_recovery(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    delivery_events: list[Event],
    freezer: FrozenDateTimeFactory,
    name: str,
    status: int,
    reason: str,
) -> None:
    """Ten minutes of 5xx answers: retried with growing waits, then delivered once."""
    if name == "Alice":
        apns_server.script(ALICE_TOKEN, status, reason)
    else:
        webpush_server.script(subs["Dana"], status)
    rows = await send(hass, target=name, message="Freezer is warm")
    assert statuses(rows) == {name: ("queued", reason)}
    await advance(hass, freezer, 600, step=5)
    refused = (
        len(apns_server.rejections)
        if name == "Alice"
        else len(webpush_server.rejections)
    )
    # Backoff up to three minutes: some retries, no hammering.
    assert 4 <= refused <= 60

    apns_server.clear_scripts()
    webpush_server.clear_scripts()
    await advance(hass, freezer, 200, step=5)
    if name == "Alice":
        assert apple_bodies(apns_server, ALICE_TOKEN) == ["Freezer is warm"]
    else:
        assert web_bodies(webpush_server, subs["Dana"]) == ["Freezer is warm"]
    [event] = delivery_events
    assert event.data["outcome"] == "delivered"
    # (An attempt may also have met aioapns closing an idle connection.)
    assert event.data["attempts"] >= refused + 1


async def test_ttl_ends_before_the_service_is_back(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    delivery_events: list[Event],
    freezer: FrozenDateTimeFactory,
) -> None:
    """A push past its time to live is given up, never delivered late."""
    await apns_server.go_down()
    rows = await send(hass, target="Alice", message="Garage open", ttl=60)
    assert statuses(rows) == {"Alice": ("queued", "connection_error")}
    # "Now or never": ttl 0 is not kept.
    now_or_never = await send(hass, target="Bob", message="Ring", ttl=0)
    assert statuses(now_or_never) == {"Bob": ("expired", "connection_error")}
    await advance(hass, freezer, 61)
    assert outcomes(delivery_events) == {
        rows["Alice"]["message_id"]: ("Alice", "expired")
    }
    assert delivery_events[0].data["reason"] == "connection_error"

    await apns_server.come_up()
    await advance(hass, freezer, 300, step=10)
    assert apns_server.pushes == []
    assert hass.states.get("sensor.direct_push_queued_pushes").state == "0"


async def test_full_queue_drops_the_oldest_least_important(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    delivery_events: list[Event],
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At the bound, the oldest of the least important push goes, loudly."""
    monkeypatch.setattr("custom_components.direct_push.jobs.MAX_JOBS_PER_DEVICE", 3)
    webpush_server.script(subs["Erin"], 503, headers={"Retry-After": "600"}, times=1)
    first = await send(
        hass, target="Erin", message="Critical 1", interruption_level="critical"
    )
    passive = await send(
        hass, target="Erin", message="Passive", interruption_level="passive"
    )
    active = await send(hass, target="Erin", message="Active")
    assert {rows["Erin"]["status"] for rows in (first, passive, active)} == {"queued"}

    response = await hass.services.async_call(
        DOMAIN,
        "send",
        {"target": "Erin", "message": "Critical 2", "interruption_level": "critical"},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["dropped"] == 1
    assert response["deliveries"][0]["status"] == "queued"
    assert outcomes(delivery_events) == {
        passive["Erin"]["message_id"]: ("Erin", "dropped")
    }
    assert "3 pushes wait for Erin, the most Direct Push keeps" in caplog.text
    await hass.async_block_till_done()
    assert hass.states.get("sensor.direct_push_dropped_pushes").state == "1"

    # A passive push cannot push out more important ones: it is the one dropped.
    response = await hass.services.async_call(
        DOMAIN,
        "send",
        {"target": "Erin", "message": "Passive 2", "interruption_level": "passive"},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["dropped"] == 1
    assert response["deliveries"][0]["status"] == "failed"
    assert response["deliveries"][0]["reason"] == "queue_full"

    await advance(hass, freezer, 601, step=10)
    assert web_bodies(webpush_server, subs["Erin"]) == [
        "Critical 1",
        "Active",
        "Critical 2",
    ]
    assert hass.states.get("sensor.direct_push_dropped_pushes").state == "2"
    assert hass.states.get("sensor.direct_push_queued_pushes").state == "0"


# Isolation.


async def test_unexpected_error_fails_only_that_device(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A device stored without its token (an old bug, a hand-edited file)."""
    hass.config_entries.async_add_subentry(
        loaded_entry,
        ConfigSubentry(
            data=MappingProxyType({"name": "Finn", "admin": False}),
            subentry_type=SUBENTRY_APNS,
            title="Finn",
            unique_id=None,
        ),
    )
    await hass.async_block_till_done()
    rows = await send(hass, message="Fire")
    assert statuses(rows) == {
        "Alice": ("delivered", None),
        "Bob": ("delivered", None),
        "Dana": ("delivered", None),
        "Erin": ("delivered", None),
        "Finn": ("failed", "internal_error"),
    }
    [error] = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert error.getMessage() == "Unexpected error sending a push to Finn"
    assert error.exc_info is not None
    assert len(apns_server.pushes) + len(webpush_server.messages) == 4


# Refused credentials.


async def test_refused_credentials_hold_pushes_until_reauth(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
    apns_credentials: ApnsTestCredentials,
    devices: list[ConfigSubentryData],
    delivery_events: list[Event],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Apple refuses the hub's key: Apple pushes wait, Web Push ones go; a new key sends them."""
    unknown_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    entry = MockConfigEntry(
        domain=DOMAIN,
        data=token_entry_data(apns_credentials) | {CONF_KEY: unknown_key.decode()},
        subentries_data=devices,
        minor_version=2,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    rows = await send(hass, message="Alarm")
    assert statuses(rows) == {
        "Alice": ("queued", "InvalidProviderToken"),
        "Bob": ("queued", "InvalidProviderToken"),
        "Dana": ("delivered", None),
        "Erin": ("delivered", None),
    }
    # No next attempt: they wait for a new key.
    assert rows["Alice"]["next_attempt"] is None
    refused = len(apns_server.rejections)
    later = await send(hass, target="Alice", message="Alarm, still")
    assert statuses(later) == {"Alice": ("queued", "InvalidProviderToken")}
    await advance(hass, freezer, 3600, step=60)
    # Held: Apple was not asked again, however long it took.
    assert len(apns_server.rejections) == refused
    assert apns_server.pushes == []

    [flow] = entry.async_get_active_flows(hass, {SOURCE_REAUTH})
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_KEY: apns_credentials.key_pem}
    )
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    # The flow's probe push proved the key; then the held pushes went out.
    await until(lambda: len(delivery_events) == 3)
    assert apple_bodies(apns_server, ALICE_TOKEN) == ["Alarm", "Alarm, still"]
    assert apple_bodies(apns_server, BOB_TOKEN) == ["Alarm"]
    assert outcomes(delivery_events) == {
        rows["Alice"]["message_id"]: ("Alice", "delivered"),
        rows["Bob"]["message_id"]: ("Bob", "delivered"),
        later["Alice"]["message_id"]: ("Alice", "delivered"),
    }
    await hass.config_entries.async_unload(entry.entry_id)


# Reload, unload and stop.


@pytest.fixture(params=[pacing.TURN_BUDGET, 0.0], ids=["paced", "a_push_a_turn"])
def turn_budget(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop time sends share per turn; with none, each push joins its lane in a turn of its own."""
    monkeypatch.setattr(pacing, "TURN_BUDGET", request.param)


async def test_reload_with_100_sends_in_flight(
    hass: HomeAssistant,
    turn_budget: None,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    delivery_events: list[Event],
) -> None:
    """Options change mid-burst: all 100 pushes arrive, each once.

    A push a turn, the reload also finds calls still waiting for their turn.
    """
    apns_server.response_delay = webpush_server.response_delay = 0.01
    names = ["Alice", "Bob", "Dana", "Erin"]
    tasks = [
        hass.async_create_task(send(hass, target=names[n % 4], message=f"Push {n}"))
        for n in range(100)
    ]
    await until(lambda: len(apns_server.pushes) + len(webpush_server.messages) >= 10)
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    results = [await task for task in tasks]
    queued = {
        row["message_id"]
        for rows in results
        for row in rows.values()
        if row["status"] == "queued"
    }
    assert queued  # some were in flight or waiting when the hub closed
    assert {row["status"] for rows in results for row in rows.values()} <= {
        "delivered",
        "queued",
    }
    assert {rows[name]["reason"] for rows in results for name in rows} <= {
        None,
        "hub_closed",
    }

    await until(lambda: len(apns_server.pushes) + len(webpush_server.messages) == 100)
    received = [push.payload["aps"]["alert"]["body"] for push in apns_server.pushes]
    received += [push.json["message"] for push in webpush_server.messages]
    assert sorted(received) == sorted(f"Push {n}" for n in range(100))
    await until(lambda: len(delivery_events) == len(queued))
    assert outcomes(delivery_events) == {
        message_id: (outcomes(delivery_events)[message_id][0], "delivered")
        for message_id in queued
    }


async def test_calls_returning_together_find_their_pushes_on_disk(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
) -> None:
    """Forty calls answered queued at once share writes, and each call's pushes are on disk."""
    await apns_server.go_down()
    key = f"{DOMAIN}.{loaded_entry.entry_id}.outbox"
    missing: list[str] = []

    async def call(n: int) -> None:
        rows = await send(hass, target=["Alice", "Bob"], message=f"Leak {n}")
        stored = {job["id"] for job in hass_storage[key]["data"]["jobs"]}
        missing.extend(
            row["message_id"]
            for row in rows.values()
            if row["message_id"] not in stored
        )

    await asyncio.gather(*(call(n) for n in range(40)))
    assert missing == []
    assert len(hass_storage[key]["data"]["jobs"]) == 80


async def test_stored_jobs_follow_their_attempts(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    """What is on disk is each job as it is now, though its JSON is made once."""
    await apns_server.go_down()
    key = f"{DOMAIN}.{loaded_entry.entry_id}.outbox"
    rows = await send(hass, target=["Alice", "Bob"], title="Door", message="Ring")

    def stored() -> dict[str, dict[str, Any]]:
        return {job["id"]: job for job in hass_storage[key]["data"]["jobs"]}

    # One message for both, each job with its own id.
    assert set(stored()) == {row["message_id"] for row in rows.values()}
    for job in stored().values():
        assert (job["attempts"], job["reason"]) == (1, "connection_error")
        assert (job["message"]["title"], job["message"]["message"]) == ("Door", "Ring")

    # Retried: written again with the attempts made, not as first made.
    await advance(hass, freezer, 5)
    assert all(job["attempts"] > 1 for job in stored().values())

    # The longest backoff after a few attempts is 16 s.
    await apns_server.come_up()
    await advance(hass, freezer, 40)
    assert stored() == {}
    assert sorted(push.apns_id for push in apns_server.pushes) == sorted(
        row["message_id"] for row in rows.values()
    )


async def test_unloaded_hub_refuses_sends(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    """An entity whose hub is gone raises a translated error, not a silent no-op."""
    entity = hass.data["entity_components"]["notify"].get_entity("notify.alice")
    assert entity is not None
    await hass.config_entries.async_unload(loaded_entry.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await entity.async_send_message("Hi")
    assert err.value.translation_key == "not_loaded"
    assert apns_server.received == []


async def test_stop_then_start_again(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Pushes queued, and one in flight, when Home Assistant stops arrive after it starts."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    await apns_server.go_down()
    await webpush_server.go_down(hang=True)
    queued = await send(hass, target=["Alice", "Bob"], message="Queued")
    assert statuses(queued) == dict.fromkeys(
        ("Alice", "Bob"), ("queued", "connection_error")
    )
    in_flight = hass.async_create_task(send(hass, target="Dana", message="In flight"))
    await until(lambda: webpush_server._blackhole.connections == 1)
    shutdown_rows: list[dict[str, dict[str, Any]]] = []

    async def _notify_shutdown(_: Event) -> None:
        # An automation triggered by the shutdown, after the hub stopped sending.
        shutdown_rows.append(await send(hass, target="Erin", message="Stopping"))

    hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _notify_shutdown)

    await hass.async_stop()

    # The caller heard "queued", not a raw error from a closed session.
    assert statuses(await in_flight) == {"Dana": ("queued", "hub_closed")}
    assert [statuses(rows) for rows in shutdown_rows] == [
        {"Erin": ("queued", "hub_closed")}
    ]
    stored = hass_storage[f"{DOMAIN}.{config_entry.entry_id}.outbox"]["data"]
    assert sorted(job["device_name"] for job in stored["jobs"]) == [
        "Alice",
        "Bob",
        "Dana",
        "Erin",
    ]
    # Jobs name devices by id: no token, endpoint or key is written.
    written = json.dumps(stored)
    for secret in (ALICE_TOKEN, BOB_TOKEN, subs["Dana"].endpoint, subs["Dana"].auth):
        assert secret not in written
    assert not [
        record
        for record in caplog.records
        if record.exc_info
        and record.name.startswith(("custom_components", "homeassistant"))
    ]

    await apns_server.come_up()
    await webpush_server.come_up()
    async with async_test_home_assistant() as restarted:
        restarted.data.pop(DATA_CUSTOM_COMPONENTS)
        events = async_capture_events(restarted, EVENT_DELIVERY)
        entry = MockConfigEntry(
            domain=DOMAIN,
            entry_id=config_entry.entry_id,
            data=config_entry.data,
            subentries_data=[
                ConfigSubentryDataWithId(
                    data=subentry.data,
                    subentry_id=subentry_id,
                    subentry_type=subentry.subentry_type,
                    title=subentry.title,
                    unique_id=None,
                )
                for subentry_id, subentry in config_entry.subentries.items()
            ],
            minor_version=2,
        )
        entry.add_to_hass(restarted)
        assert await restarted.config_entries.async_setup(entry.entry_id)
        await until(lambda: len(events) == 4)
        assert apple_bodies(apns_server, ALICE_TOKEN) == ["Queued"]
        assert apple_bodies(apns_server, BOB_TOKEN) == ["Queued"]
        assert web_bodies(webpush_server, subs["Dana"]) == ["In flight"]
        assert web_bodies(webpush_server, subs["Erin"]) == ["Stopping"]
        assert {event.data["outcome"] for event in events} == {"delivered"}
        assert await restarted.config_entries.async_unload(entry.entry_id)
        await restarted.async_stop(force=True)


# Scheduling details.


async def test_a_new_push_tries_a_backing_off_device_now(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    delivery_events: list[Event],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Our own backoff gives way to a new push; the order stays."""
    apns_server.script(ALICE_TOKEN, 503, "ServiceUnavailable")
    first = await send(hass, target="Alice", message="First")
    assert statuses(first) == {"Alice": ("queued", "ServiceUnavailable")}
    # No time passed: the new push makes the first one go again at once.
    second = await send(hass, target="Alice", message="Second")
    assert statuses(second) == {"Alice": ("queued", "ServiceUnavailable")}
    assert len(apns_server.rejections) == 2

    apns_server.clear_scripts()
    await advance(hass, freezer, 30)
    assert apple_bodies(apns_server, ALICE_TOKEN) == ["First", "Second"]
    assert [event.data["message_id"] for event in delivery_events] == [
        first["Alice"]["message_id"],
        second["Alice"]["message_id"],
    ]


async def test_retry_after_holds_across_a_reload(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    delivery_events: list[Event],
    freezer: FrozenDateTimeFactory,
) -> None:
    webpush_server.script(subs["Dana"], 503, headers={"Retry-After": "120"}, times=1)
    rows = await send(hass, target="Dana", message="Boiler")
    assert statuses(rows) == {"Dana": ("queued", "server_error_503")}
    await advance(hass, freezer, 60)
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await advance(hass, freezer, 58)
    assert webpush_server.requests == 1
    await advance(hass, freezer, 3)
    assert web_bodies(webpush_server, subs["Dana"]) == ["Boiler"]
    assert outcomes(delivery_events) == {
        rows["Dana"]["message_id"]: ("Dana", "delivered")
    }


async def test_the_action_returns_by_its_deadline(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    delivery_events: list[Event],
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever the attempt timeout, the caller waits no longer than the deadline."""
    monkeypatch.setattr(outbox, "ACTION_DEADLINE", 2.0)
    await webpush_server.go_down(hang=True)
    task = hass.async_create_task(send(hass, target="Dana", message="Doorbell"))
    assert await run_clock_until_done(hass, freezer, task) <= 3
    rows = task.result()
    assert statuses(rows) == {"Dana": ("queued", "in_progress")}

    await webpush_server.come_up()
    await advance(hass, freezer, 60)
    assert web_bodies(webpush_server, subs["Dana"]) == ["Doorbell"]
    assert outcomes(delivery_events) == {
        rows["Dana"]["message_id"]: ("Dana", "delivered")
    }


async def test_a_newer_tag_replaces_a_push_still_waiting_its_turn(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    freezer: FrozenDateTimeFactory,
) -> None:
    await webpush_server.go_down(hang=True)
    first = hass.async_create_task(send(hass, target="Dana", message="1", tag="a"))
    await until(lambda: webpush_server._blackhole.connections == 1)
    waiting = hass.async_create_task(send(hass, target="Dana", message="2", tag="b"))
    newer = hass.async_create_task(send(hass, target="Dana", message="3", tag="b"))
    await until(waiting.done)
    assert statuses(waiting.result()) == {"Dana": ("failed", "replaced")}
    await run_clock_until_done(hass, freezer, newer)
    assert statuses(first.result()) == {"Dana": ("queued", "timeout")}
    assert statuses(newer.result()) == {"Dana": ("queued", "timeout")}

    await webpush_server.come_up()
    await advance(hass, freezer, 60)
    assert web_bodies(webpush_server, subs["Dana"]) == ["1", "3"]


async def test_pushes_of_a_removed_or_inactive_device_end_with_an_event(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    delivery_events: list[Event],
) -> None:
    await apns_server.go_down()
    rows = await send(hass, target=["Alice", "Bob"], message="Kept")
    assert {row["status"] for row in rows.values()} == {"queued"}
    # Marked gone (a push of an earlier run met Unregistered, say) while this one waited.
    async_create_inactive_issue(
        hass,
        loaded_entry.entry_id,
        subentry_id(loaded_entry, "Alice"),
        "Alice",
        "Unregistered",
    )
    bob = next(s for s in loaded_entry.subentries.values() if s.title == "Bob")
    assert hass.config_entries.async_remove_subentry(loaded_entry, bob.subentry_id)
    await hass.async_block_till_done()

    assert outcomes(delivery_events) == {
        rows["Alice"]["message_id"]: ("Alice", "failed"),
        rows["Bob"]["message_id"]: ("Bob", "failed"),
    }
    assert {
        event.data["device"]: event.data["reason"] for event in delivery_events
    } == {
        "Alice": "device_inactive",
        "Bob": "device_removed",
    }
    await apns_server.come_up()
