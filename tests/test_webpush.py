"""The Web Push backend end to end: it posts to a real local push service.

The receiver (tests/webpush_server.py) checks VAPID and the RFC 8030 headers
and decrypts each push as the phone would, so what a test reads there is what
the app gets. Adding Web Push devices is in test_webpush_device_flow.py, and
their repairs in test_webpush_repairs.py.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta
import json
import logging
import re
import time
from types import MappingProxyType
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigSubentry, ConfigSubentryData
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.direct_push import outbox, webpush
from custom_components.direct_push.backend import Device, Outcome
from custom_components.direct_push.const import (
    CONF_ADMIN,
    CONF_AUTH,
    CONF_ENDPOINT,
    CONF_INTERRUPTION_LEVEL,
    CONF_NAME,
    CONF_P256DH,
    CONF_SUBSCRIPTION,
    CONF_VAPID_PRIVATE_KEY,
    DOMAIN,
)
from custom_components.direct_push.endpoint_policy import EndpointPolicy, Trust
from custom_components.direct_push.hub import entity_unique_id
from custom_components.direct_push.message import (
    DEFAULT_TTL,
    WEBPUSH_MAX_PLAINTEXT,
    Message,
)
from custom_components.direct_push.webpush import (
    SUBENTRY_WEBPUSH,
    VAPID_SUBJECT,
    SubscriptionError,
    generate_vapid_key,
    parse_subscription,
    parse_subscription_json,
    vapid_public_key,
)

from .apns_server import ApnsServer
from .conftest import (
    ALICE_TOKEN,
    AUTH,
    BOB_TOKEN,
    P256DH,
    VAPID_KEY,
    VAPID_PUBLIC_KEY,
    Subscribe,
    add_webpush_device,
    advance,
    b64url,
    delivery_statuses,
    inactive_issue,
    p256_point,
    send_one,
    send_rows,
)
from .webpush_server import MAX_BODY, ReceivedPush, Subscription, WebPushServer

EVERYONE = ("Alice", "Bob", "Dana", "Erin")
_TOPIC_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


# Every test also proves that no subscription secret is logged.
pytestmark = pytest.mark.usefixtures("secrets_stay_out_of_logs")


@pytest.fixture
def devices(mixed_devices: list[ConfigSubentryData]) -> list[ConfigSubentryData]:
    """Alice (Apple, admin), Bob (Apple), Dana (Web Push, admin), Erin (Web Push)."""
    return mixed_devices


# Fan-out across both kinds.


async def test_send_to_all_reaches_apple_and_web_push(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    rows = await send_rows(
        hass,
        target="all",
        message="The front door opened",
        title="Door",
        data={"door": "front"},
    )

    assert delivery_statuses(rows) == dict.fromkeys(EVERYONE, ("delivered", None))
    # Apple gets its JSON, with the hub's default sound ...
    assert {push.token: push.payload for push in apns_server.pushes} == {
        token: {
            "door": "front",
            "aps": {
                "alert": {"title": "Door", "body": "The front door opened"},
                "sound": "default",
            },
        }
        for token in (ALICE_TOKEN, BOB_TOKEN)
    }
    # ... and each Web Push app decrypts its own copy.
    for sub in subs.values():
        [push] = webpush_server.messages_for(sub)
        assert push.json == {
            "message": "The front door opened",
            "title": "Door",
            "data": {"door": "front"},
        }
    assert webpush_server.rejections == []


async def test_routing_spans_both_kinds(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    # Admins: Alice (Apple) and Dana (Web Push).
    rows = await send_rows(hass, target="admin", message="Disk almost full")
    assert delivery_statuses(rows) == dict.fromkeys(
        ("Alice", "Dana"), ("delivered", None)
    )
    assert [push.token for push in apns_server.pushes] == [ALICE_TOKEN]
    assert [push.subscription_id for push in webpush_server.messages] == [
        subs["Dana"].id
    ]

    # Names of either kind, case-insensitively.
    rows = await send_rows(hass, target=["bob", "ERIN"], message="Dinner")
    assert delivery_statuses(rows) == dict.fromkeys(
        ("Bob", "Erin"), ("delivered", None)
    )
    assert webpush_server.messages_for(subs["Erin"])[0].json == {"message": "Dinner"}

    # The Admins group entity sends to both kinds too.
    admins = er.async_get(hass).async_get_entity_id(
        Platform.NOTIFY, DOMAIN, entity_unique_id(loaded_entry.entry_id, "admins")
    )
    await hass.services.async_call(
        Platform.NOTIFY,
        "send_message",
        {"entity_id": admins, "message": "Backup done", "title": "Backup"},
        blocking=True,
    )
    assert apns_server.pushes[-1].token == ALICE_TOKEN
    assert webpush_server.messages[-1].subscription_id == subs["Dana"].id
    assert webpush_server.messages[-1].json == {
        "message": "Backup done",
        "title": "Backup",
    }
    assert len(webpush_server.messages) == 3


# What the app receives: payload and headers.


async def test_all_fields_reach_web_push(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    actions = [
        {"action": "open", "title": "Open", "url": "/lovelace/door"},
        {"action": "ignore", "title": "Ignore"},
    ]
    push = await send_one(
        hass,
        webpush_server,
        subs["Erin"],
        message="Someone is at the door",
        title="Doorbell",
        subtitle="Front door",
        tag="door",
        url="/lovelace/cameras",
        image="https://example.com/snapshot.jpg",
        interruption_level="time-sensitive",
        actions=actions,
        data={"camera": "front", "count": 2},
        ttl=600,
        # Apple-only fields: no part of a Web Push payload.
        sound="chime.caf",
        badge=3,
        thread_id="doorbell",
        category="DOORBELL",
    )
    assert push.json == {
        "message": "Someone is at the door",
        "title": "Doorbell",
        "subtitle": "Front door",
        "tag": "door",
        "url": "/lovelace/cameras",
        "image": "https://example.com/snapshot.jpg",
        "interruption_level": "time-sensitive",
        # Each button under "id" too, its newer name; and the message's id to answer with.
        "actions": [{"id": action["action"], **action} for action in actions],
        "id": push.json["id"],
        "data": {"camera": "front", "count": 2},
    }
    assert push.ttl == 600
    assert push.urgency == "high"
    assert push.topic == "ZG9vcg"  # base64url("door")
    assert push.headers["content-encoding"] == "aes128gcm"


async def test_ttl_header(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    erin = subs["Erin"]
    # Always sent: RFC 8030 makes TTL mandatory.
    assert (await send_one(hass, webpush_server, erin)).headers["ttl"] == str(
        DEFAULT_TTL
    )
    assert (await send_one(hass, webpush_server, erin, ttl=0)).headers["ttl"] == "0"
    assert (await send_one(hass, webpush_server, erin, ttl=60)).ttl == 60


async def test_urgency_header(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "normal"),
        ({"interruption_level": "critical"}, "high"),
        ({"interruption_level": "time-sensitive"}, "high"),
        ({"interruption_level": "active"}, "normal"),
        ({"interruption_level": "passive"}, "low"),
        ({"priority": 5}, "low"),
        ({"priority": 10}, "normal"),
        ({"push_type": "background", "message": ""}, "low"),
    ]
    for fields, urgency in cases:
        push = await send_one(hass, webpush_server, subs["Erin"], **fields)
        assert push.urgency == urgency, fields


async def test_background_stays_low_with_urgent_default(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    """The hub's default level shapes alerts, never a silent wake-up."""
    hass.config_entries.async_update_entry(
        loaded_entry, options={CONF_INTERRUPTION_LEVEL: "time-sensitive"}
    )
    await hass.async_block_till_done()
    erin = subs["Erin"]

    alert = await send_one(hass, webpush_server, erin)
    assert alert.urgency == "high"
    assert alert.json["interruption_level"] == "time-sensitive"
    wake = await send_one(hass, webpush_server, erin, push_type="background")
    assert wake.urgency == "low"


async def test_topic_header(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    erin = subs["Erin"]
    assert (await send_one(hass, webpush_server, erin)).topic is None
    assert (await send_one(hass, webpush_server, erin, tag="door")).topic == "ZG9vcg"

    # Too long for a topic as it is: hashed, the same each time.
    tag = "camera.front_door_motion_" + "x" * 30
    first = await send_one(hass, webpush_server, erin, tag=tag)
    second = await send_one(hass, webpush_server, erin, tag=tag)
    assert first.topic is not None
    assert _TOPIC_RE.fullmatch(first.topic)
    assert first.topic == second.topic
    # The app still sees the tag itself.
    assert first.json["tag"] == tag


async def test_limits_are_those_of_the_devices_sent_to(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    erin = subs["Erin"]
    # Longer than Apple's 64-byte collapse ID: fine for Web Push alone, which
    # hashes it into the Topic header.
    tag = "camera.front_door_" + "x" * 80
    push = await send_one(hass, webpush_server, erin, tag=tag)
    assert push.json["tag"] == tag
    assert push.topic is not None
    assert _TOPIC_RE.fullmatch(push.topic)
    # "aps" is Apple's part of its payload; a Web Push app gets data as it is.
    push = await send_one(hass, webpush_server, erin, data={"aps": 1})
    assert push.json["data"] == {"aps": 1}

    # With an Apple device among the targets, Apple's limits apply too.
    for fields, key in (
        ({"tag": tag}, "tag_too_long"),
        ({"data": {"aps": 1}}, "reserved_data_key"),
    ):
        with pytest.raises(ServiceValidationError) as err:
            await send_rows(hass, target=["Erin", "Alice"], message="Hi", **fields)
        assert err.value.translation_key == key
    # Web Push's own limit is its plaintext: less than Apple's 4096 bytes.
    with pytest.raises(ServiceValidationError) as err:
        await send_rows(hass, target="Erin", message="Hi", data={"blob": "z" * 3990})
    assert err.value.translation_key == "payload_too_large"
    assert err.value.translation_placeholders is not None
    assert err.value.translation_placeholders["limit"] == str(WEBPUSH_MAX_PLAINTEXT)
    assert len(webpush_server.messages_for(erin)) == 2
    assert apns_server.pushes == []
    assert await send_rows(
        hass, target="Alice", message="Hi", data={"blob": "z" * 3990}
    )


async def test_long_message_is_cut_to_fit(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    text = "Motion in the garden 🌳. " * 400  # about 10 kB
    assert len(text.encode()) > 10_000
    rows = await send_rows(hass, target="Erin", message=text, title="Garden")

    assert rows[0]["status"] == "delivered"
    assert rows[0]["truncated"] is True
    [push] = webpush_server.messages_for(subs["Erin"])
    assert push.json["message"].endswith("…")
    assert text.startswith(push.json["message"][:-1].rstrip())
    # As much as fits: the plaintext limit, and the body within RFC 8030's 4096.
    assert WEBPUSH_MAX_PLAINTEXT - 30 < len(push.plaintext) <= WEBPUSH_MAX_PLAINTEXT
    assert len(push.body) <= MAX_BODY


async def test_short_message_is_not_truncated(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    rows = await send_rows(hass, target="Erin", message="x" * 3000)
    assert rows[0]["truncated"] is False
    assert webpush_server.messages_for(subs["Erin"])[0].json == {"message": "x" * 3000}


async def test_background_push_reaches_every_kind(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    rows = await send_rows(hass, push_type="background", data={"refresh": "cameras"})

    assert delivery_statuses(rows) == dict.fromkeys(EVERYONE, ("delivered", None))
    for apple in apns_server.pushes:
        assert apple.push_type == "background"
        assert apple.payload == {"refresh": "cameras", "aps": {"content-available": 1}}
    for sub in subs.values():
        [push] = webpush_server.messages_for(sub)
        assert push.json == {"background": True, "data": {"refresh": "cameras"}}
        assert push.urgency == "low"


# What the push service answers.


@pytest.mark.parametrize("status", [201, 202])
async def test_accepted(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    status: int,
) -> None:
    if status != 201:  # the receiver's own answer is 201 Created
        webpush_server.script(subs["Erin"], status)
    rows = await send_rows(hass, target="Erin", message="Hello")
    assert delivery_statuses(rows) == {"Erin": ("delivered", None)}
    assert webpush_server.requests == 1


async def test_payload_too_large_is_logged_as_error(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    caplog: pytest.LogCaptureFixture,
) -> None:
    webpush_server.script(subs["Erin"], 413)
    rows = await send_rows(hass, target="Erin", message="Hello")

    assert delivery_statuses(rows) == {"Erin": ("failed", "payload_too_large")}
    assert webpush_server.requests == 1
    assert [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.ERROR and record.name.startswith("custom_")
    ] == ["Web Push service refused a payload as too large (413)"]
    assert inactive_issue(hass, loaded_entry, "Erin") is None


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_zero_is_retried(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    status: int,
) -> None:
    webpush_server.script(subs["Erin"], status, headers={"Retry-After": "0"}, times=1)
    rows = await send_rows(hass, target="Erin", message="Hello")

    assert delivery_statuses(rows) == {"Erin": ("delivered", None)}
    assert webpush_server.requests == 2
    assert len(webpush_server.messages) == 1


@pytest.mark.parametrize(
    ("status", "reason"), [(429, "too_many_requests"), (503, "server_error_503")]
)
async def test_retry_after_past_the_ttl_expires_at_once(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    *,
    status: int,
    reason: str,
) -> None:
    webpush_server.script(subs["Erin"], status, headers={"Retry-After": "7200"})
    rows = await send_rows(hass, target="Erin", message="Hello", ttl=3600)

    # Any wait within the TTL is honoured (test_outbox); a later one cannot help.
    assert delivery_statuses(rows) == {"Erin": ("expired", reason)}
    assert webpush_server.requests == 1


async def test_bad_request_is_not_retried(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    webpush_server.script(subs["Erin"], 400)
    rows = await send_rows(hass, target="Erin", message="Hello")

    assert delivery_statuses(rows) == {"Erin": ("failed", "rejected_400")}
    assert webpush_server.requests == 1
    assert inactive_issue(hass, loaded_entry, "Erin") is None


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_retried(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    freezer: FrozenDateTimeFactory,
    status: int,
) -> None:
    webpush_server.script(subs["Erin"], status, times=2)
    rows = await send_rows(hass, target="Erin", message="Hello")

    assert delivery_statuses(rows) == {"Erin": ("queued", f"server_error_{status}")}
    assert webpush_server.requests == 1
    await advance(hass, freezer, 30)
    assert webpush_server.requests == 3
    assert webpush_server.messages_for(subs["Erin"])[0].json == {"message": "Hello"}
    assert inactive_issue(hass, loaded_entry, "Erin") is None


async def test_no_subscriber_keeps_device_active(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    """ntfy answers 507 while no phone listens to the topic; it may come back."""
    webpush_server.script(subs["Erin"], 507, times=1)
    rows = await send_rows(hass, target="Erin", message="Hello")

    assert delivery_statuses(rows) == {"Erin": ("failed", "no_subscriber")}
    assert webpush_server.requests == 1
    assert inactive_issue(hass, loaded_entry, "Erin") is None
    await send_one(hass, webpush_server, subs["Erin"])


async def test_redirect_is_refused(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    webpush_server.redirect(subs["Erin"])
    rows = await send_rows(hass, target="Erin", message="Hello")

    assert delivery_statuses(rows) == {"Erin": ("failed", "redirect_refused")}
    # The encrypted push never went where the redirect pointed.
    assert webpush_server.other_requests == []
    assert webpush_server.requests == 1


async def test_slow_service_times_out(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Long enough that the try surely reaches the service, even on a busy CI.
    monkeypatch.setattr(outbox, "ATTEMPT_TIMEOUT", 0.2)
    webpush_server.response_delay = 5
    rows = await send_rows(hass, target="Erin", message="Hello")

    # A timeout is worth retrying: kept for later.
    assert delivery_statuses(rows) == {"Erin": ("queued", "timeout")}
    assert webpush_server.requests == 1
    assert inactive_issue(hass, loaded_entry, "Erin") is None


async def test_unreachable_service(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    await webpush_server.stop()
    rows = await send_rows(hass, message="Hello")

    statuses = delivery_statuses(rows)
    assert statuses["Erin"] == statuses["Dana"] == ("queued", "connection_error")
    assert statuses["Alice"] == statuses["Bob"] == ("delivered", None)
    assert inactive_issue(hass, loaded_entry, "Erin") is None


async def test_other_vapid_key_is_refused_not_inactive(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subscribe: Subscribe,
) -> None:
    """An app subscribed with another server's key: fixable, so no repair issue."""
    other = subscribe("Finn", key=vapid_public_key(generate_vapid_key()))
    await add_webpush_device(hass, loaded_entry, "Finn", other)
    rows = await send_rows(hass, target="Finn", message="Hello")

    assert delivery_statuses(rows) == {"Finn": ("failed", "rejected_403")}
    assert webpush_server.rejections == [(other.id, 403)]
    assert inactive_issue(hass, loaded_entry, "Finn") is None


async def test_stored_compressed_key_fails_only_that_device(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subscribe: Subscribe,
) -> None:
    """A key the form accepted before it checked the point's form cannot break a send."""
    sub = subscribe("Finn")
    hass.config_entries.async_add_subentry(
        loaded_entry,
        ConfigSubentry(
            data=MappingProxyType(
                {
                    CONF_NAME: "Finn",
                    CONF_ENDPOINT: sub.endpoint,
                    CONF_P256DH: p256_point(compressed=True),
                    CONF_AUTH: sub.auth,
                    CONF_ADMIN: False,
                }
            ),
            subentry_type=SUBENTRY_WEBPUSH,
            title="Finn",
            unique_id=None,
        ),
    )
    await hass.async_block_till_done()
    rows = await send_rows(hass, message="Hello")

    statuses = delivery_statuses(rows)
    assert statuses.pop("Finn") == ("failed", "invalid_subscription")
    assert statuses == dict.fromkeys(EVERYONE, ("delivered", None))
    assert webpush_server.messages_for(sub) == []


# VAPID (RFC 8292).


async def test_vapid_claims(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    push = await send_one(hass, webpush_server, subs["Erin"])

    claims = push.vapid_claims
    assert claims["aud"] == webpush_server.origin
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    assert claims["sub"] == VAPID_SUBJECT
    assert push.vapid_key == VAPID_PUBLIC_KEY
    assert push.headers["authorization"].startswith("vapid t=")


async def test_vapid_token_is_reused_then_refreshed(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Signed once per push service origin; re-signed after 11 h.

    freezer comes last: time freezes once the servers and hub are up.
    """

    def token(push: ReceivedPush) -> str:
        return push.headers["authorization"]

    # One origin: both apps share a token, and a later send reuses it.
    rows = await send_rows(hass, target=["Dana", "Erin"], message="One")
    assert delivery_statuses(rows) == dict.fromkeys(
        ("Dana", "Erin"), ("delivered", None)
    )
    first = token(webpush_server.messages[0])
    assert token(webpush_server.messages[1]) == first
    freezer.tick(timedelta(hours=10, minutes=59))
    assert token(await send_one(hass, webpush_server, subs["Erin"])) == first

    freezer.tick(timedelta(minutes=1))
    push = await send_one(hass, webpush_server, subs["Erin"])
    assert token(push) != first
    assert push.vapid_claims["exp"] > time.time() + 11 * 3600

    # A clock set back must not keep a token whose exp is now over 24 h away
    # (the push service would refuse it).
    second = token(push)
    freezer.tick(timedelta(hours=-13))
    assert token(await send_one(hass, webpush_server, subs["Erin"])) != second


# Diagnostics and logs.


async def test_diagnostics_redact_web_push_secrets(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, loaded_entry
    )

    assert diagnostics["vapid_public_key"] == VAPID_PUBLIC_KEY
    assert diagnostics["entry"]["data"][CONF_VAPID_PRIVATE_KEY] == "**REDACTED**"
    web_push = [d for d in diagnostics["devices"] if d["kind"] == SUBENTRY_WEBPUSH]
    assert web_push == [
        {
            "name": name,
            "kind": SUBENTRY_WEBPUSH,
            "admin": name == "Dana",
            "inactive": False,
            "queued": 0,
            "config": {
                CONF_NAME: name,
                CONF_ENDPOINT: "**REDACTED**",
                CONF_P256DH: "**REDACTED**",
                CONF_AUTH: "**REDACTED**",
                CONF_ADMIN: name == "Dana",
            },
        }
        for name in ("Dana", "Erin")
    ]
    text = json.dumps(diagnostics)
    for sub in subs.values():
        for secret in (sub.id, sub.p256dh, sub.auth):
            assert secret not in text
    assert VAPID_KEY not in text


async def test_failures_log_no_subscription_secrets(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    *,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each failure path logs; secrets_stay_out_of_logs checks what it logged."""
    webpush_server.script(subs["Dana"], 500)
    webpush_server.redirect(subs["Erin"])
    await send_rows(hass, message="One")
    webpush_server.clear_scripts()
    webpush_server.script(subs["Dana"], 413)
    webpush_server.script(subs["Erin"], 410)
    await send_rows(hass, message="Two")
    monkeypatch.setattr(webpush, "SEND_TIMEOUT", 0.05)
    webpush_server.response_delay = 2
    rows = await send_rows(hass, message="Three", target="Dana")
    assert delivery_statuses(rows) == {"Dana": ("queued", "connection_error")}

    # The check below is not vacuous: the sends were logged, at every level.
    logged = [r for r in caplog.records if r.name.startswith("custom_components")]
    assert {r.levelno for r in logged} >= {
        logging.DEBUG,
        logging.WARNING,
        logging.ERROR,
    }
    assert any("Erin" in r.getMessage() for r in logged)


# Pure logic.


def test_parse_subscription_cleans_keys() -> None:
    standard = base64.b64encode(base64.urlsafe_b64decode(P256DH + "=")).decode()
    assert parse_subscription(
        " https://push.example.com/up/abc ", standard, f"{AUTH}=="
    ) == {
        CONF_ENDPOINT: "https://push.example.com/up/abc",
        CONF_P256DH: P256DH,
        CONF_AUTH: AUTH,
    }


@pytest.mark.parametrize(
    ("endpoint", "p256dh", "auth", "field", "key"),
    [
        ("", P256DH, AUTH, CONF_ENDPOINT, "endpoint_scheme"),
        ("push.example.com/up", P256DH, AUTH, CONF_ENDPOINT, "endpoint_scheme"),
        ("ftp://push.example.com/up", P256DH, AUTH, CONF_ENDPOINT, "endpoint_scheme"),
        ("http://example.com/up", P256DH, AUTH, CONF_ENDPOINT, "endpoint_insecure"),
        ("http://8.8.8.8/up", P256DH, AUTH, CONF_ENDPOINT, "endpoint_insecure"),
        ("https:///up", P256DH, AUTH, CONF_ENDPOINT, "invalid_endpoint"),
        ("https://a.example:0x50/", P256DH, AUTH, CONF_ENDPOINT, "invalid_endpoint"),
        (
            "https://push.example.com/" + "a" * 976,
            P256DH,
            AUTH,
            CONF_ENDPOINT,
            "invalid_endpoint",
        ),
        ("https://push.example.com/up", "", AUTH, CONF_P256DH, "invalid_p256dh"),
        ("https://push.example.com/up", "A" * 87, AUTH, CONF_P256DH, "invalid_p256dh"),
        ("https://push.example.com/up", "AB=CD", AUTH, CONF_P256DH, "invalid_p256dh"),
        (
            "https://push.example.com/up",
            P256DH[:-1],
            AUTH,
            CONF_P256DH,
            "invalid_p256dh",
        ),
        ("https://push.example.com/up", P256DH, "", CONF_AUTH, "invalid_auth_secret"),
        ("https://push.example.com/up", P256DH, "A", CONF_AUTH, "invalid_auth_secret"),
        (
            "https://push.example.com/up",
            P256DH,
            b64url(bytes(17)),
            CONF_AUTH,
            "invalid_auth_secret",
        ),
    ],
)
def test_parse_subscription_errors(
    endpoint: str, p256dh: str, auth: str, field: str, key: str
) -> None:
    with pytest.raises(SubscriptionError) as err:
        parse_subscription(endpoint, p256dh, auth)
    assert (err.value.field, err.value.key) == (field, key)


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://push.example.com/up",
        "https://push.example.com/" + "a" * 975,  # 1000 characters
        "http://192.168.1.20:8080/up",
        "http://10.0.0.2/up",
        "http://127.0.0.1:2586/up",
        "http://[fd00::1]/up",
        "http://ntfy.local/up",
        "http://ntfy.home.arpa/up",
        "http://ntfy/up",
    ],
)
def test_parse_subscription_endpoints(endpoint: str) -> None:
    assert parse_subscription(endpoint, P256DH, AUTH)[CONF_ENDPOINT] == endpoint


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "null",
        "[]",
        '"https://push.example.com/up"',
        '{"endpoint": "https://push.example.com/up"}',
        '{"endpoint": "https://push.example.com/up", "keys": []}',
        '{"endpoint": "https://push.example.com/up", "keys": {"p256dh": "x"}}',
        json.dumps({"endpoint": 1, "keys": {"p256dh": P256DH, "auth": AUTH}}),
        json.dumps(
            {
                "endpoint": "https://push.example.com/up",
                "keys": {"p256dh": P256DH, "auth": None},
            }
        ),
    ],
)
def test_parse_subscription_json_invalid(text: str) -> None:
    with pytest.raises(SubscriptionError) as err:
        parse_subscription_json(text)
    assert (err.value.field, err.value.key) == (
        CONF_SUBSCRIPTION,
        "invalid_subscription",
    )


def test_parse_subscription_json() -> None:
    text = json.dumps(
        {
            "endpoint": "https://push.example.com/up",
            "expirationTime": None,
            "keys": {"p256dh": P256DH, "auth": AUTH},
        }
    )
    assert parse_subscription_json(text) == {
        CONF_ENDPOINT: "https://push.example.com/up",
        CONF_P256DH: P256DH,
        CONF_AUTH: AUTH,
    }
    # Checked as the separate fields are; the error is the pasted field's.
    with pytest.raises(SubscriptionError) as err:
        parse_subscription_json(text.replace(AUTH, "short"))
    assert (err.value.field, err.value.key) == (
        CONF_SUBSCRIPTION,
        "invalid_auth_secret",
    )
    with pytest.raises(SubscriptionError) as err:
        parse_subscription_json(text.replace("https:", "ftp:"))
    assert (err.value.field, err.value.key) == (CONF_SUBSCRIPTION, "endpoint_scheme")
    # Within limits, and plain JSON only: each says what is wrong.
    for bad, key, placeholders in (
        ("[" * 100_000, "json_too_large", {"limit": "16384"}),
        (" " * (16 * 1024) + text, "json_too_large", {"limit": "16384"}),
        ("[" * 33 + "]" * 33, "json_too_deep", {"limit": "32"}),
        (text.replace("null", "NaN"), "json_not_finite", {}),
        (text.replace("null", "9" * 5000), "json_number_too_large", {}),
        (
            text.replace("/up", "/up\\ud800"),
            "lone_surrogate",
            {"field": "subscription"},
        ),
    ):
        with pytest.raises(SubscriptionError) as err:
            parse_subscription_json(bad)
        assert (err.value.field, err.value.key, err.value.placeholders) == (
            CONF_SUBSCRIPTION,
            key,
            placeholders,
        ), bad[:40]
    # A self-registered device's subscription meets the stricter policy.
    with pytest.raises(SubscriptionError) as err:
        parse_subscription_json(
            text.replace("push.example.com", "192.168.1.5"),
            EndpointPolicy(trust=Trust.SELF_REGISTERED),
        )
    assert err.value.key == "endpoint_local_network"


@pytest.mark.parametrize(
    ("endpoint", "origin"),
    [
        ("https://push.example.com/up/abc", "https://push.example.com"),
        ("https://Push.Example.com:443/up", "https://push.example.com"),
        ("https://user:secret@push.example.com/up", "https://push.example.com"),
        ("https://push.example.com:8443/up", "https://push.example.com:8443"),
        ("http://192.168.1.20:80/up", "http://192.168.1.20"),
        ("http://[fd00::1]:8080/up", "http://[fd00::1]:8080"),
    ],
)
def test_vapid_audience_is_the_origin(endpoint: str, origin: str) -> None:
    assert webpush._origin(endpoint) == origin


def test_vapid_keys() -> None:
    private = generate_vapid_key()
    assert len(base64.urlsafe_b64decode(private + "=")) == 32
    public = base64.urlsafe_b64decode(vapid_public_key(private) + "=")
    assert len(public) == 65
    assert public[0] == 4
    assert vapid_public_key(private) != VAPID_PUBLIC_KEY


@pytest.mark.parametrize(
    ("status", "retry_after", "outcome", "reason", "retryable", "wait"),
    [
        (201, None, Outcome.DELIVERED, None, False, None),
        (202, None, Outcome.DELIVERED, None, False, None),
        (404, None, Outcome.DEVICE_GONE, "endpoint_gone_404", False, None),
        (410, None, Outcome.DEVICE_GONE, "endpoint_gone_410", False, None),
        (413, None, Outcome.FAILED, "payload_too_large", False, None),
        (429, "7", Outcome.FAILED, "too_many_requests", True, 7.0),
        (429, "-3", Outcome.FAILED, "too_many_requests", True, 0.0),
        # An HTTP date: the usual backoff instead.
        (
            429,
            "Wed, 21 Oct 2015 07:28:00 GMT",
            Outcome.FAILED,
            "too_many_requests",
            True,
            None,
        ),
        (429, None, Outcome.FAILED, "too_many_requests", True, None),
        (400, None, Outcome.FAILED, "rejected_400", False, None),
        (401, None, Outcome.FAILED, "rejected_401", False, None),
        (403, None, Outcome.FAILED, "rejected_403", False, None),
        (507, None, Outcome.FAILED, "no_subscriber", False, None),
        (301, None, Outcome.FAILED, "redirect_refused", False, None),
        (307, None, Outcome.FAILED, "redirect_refused", False, None),
        (500, None, Outcome.FAILED, "server_error_500", True, None),
        (503, "30", Outcome.FAILED, "server_error_503", True, 30.0),
    ],
)
def test_delivery_mapping(
    *,
    status: int,
    retry_after: str | None,
    outcome: Outcome,
    reason: str | None,
    retryable: bool,
    wait: float | None,
) -> None:
    delivery = webpush._delivery(status, retry_after, truncated=False)
    assert delivery.outcome is outcome
    assert delivery.reason == reason
    assert delivery.retryable is retryable
    assert delivery.retry_after == wait
    assert delivery.status == status


def _browser(number: str, sub: Subscription) -> Device:
    """Return a Web Push device as the hub holds it, for the backend alone."""
    return Device(
        device_id=f"browser{number}",
        name=f"Browser {number}".strip(),
        kind=SUBENTRY_WEBPUSH,
        admin=False,
        config={
            CONF_ENDPOINT: sub.endpoint,
            CONF_P256DH: sub.p256dh,
            CONF_AUTH: sub.auth,
        },
    )


async def test_connections_are_limited_per_push_service(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each push service gets its own connections; none gets more than its share."""
    monkeypatch.setattr(webpush, "CONNECTIONS_PER_HOST", 3)
    backend = loaded_entry.runtime_data.backends[SUBENTRY_WEBPUSH]
    async with WebPushServer() as other:
        servers = (webpush_server, other)
        devices = [
            _browser(f"{index}", sub)
            for index, sub in enumerate(
                server.subscribe(application_server_key=VAPID_PUBLIC_KEY)
                for server in servers
                for _ in range(5)
            )
        ]
        for server in servers:
            server.response_delay = 0.2
        both = 0

        async def watch() -> None:
            nonlocal both
            while True:
                both = max(both, webpush_server.in_flight + other.in_flight)
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch())
        deliveries = await asyncio.gather(
            *(backend.async_send(device, Message(message="Hi")) for device in devices)
        )
        watcher.cancel()

    assert all(delivery.ok for delivery in deliveries)
    assert [server.max_in_flight for server in servers] == [3, 3]
    # At the same time: the services do not share one pool.
    assert both == 6


async def test_a_new_subscription_is_used_at_once(
    loaded_entry: MockConfigEntry, webpush_server: WebPushServer
) -> None:
    """The backend keeps each device's checked subscription until it changes."""
    backend = loaded_entry.runtime_data.backends[SUBENTRY_WEBPUSH]
    first, second = (
        webpush_server.subscribe(application_server_key=VAPID_PUBLIC_KEY)
        for _ in range(2)
    )
    for sub in (first, first, second):
        device = _browser("", sub)
        assert (await backend.async_send(device, Message(message="Hi"))).ok

    # Each push was decrypted with the keys of the subscription it went to.
    assert [push.subscription_id for push in webpush_server.messages] == [
        first.id,
        first.id,
        second.id,
    ]
