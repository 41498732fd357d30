"""Web Push end to end: the real backend posts to a real local push service.

The receiver (tests/webpush_server.py) checks VAPID and the RFC 8030 headers
and decrypts each push as the phone would, so what a test reads there is what
the app gets.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import timedelta
import json
import logging
import re
import time
from types import MappingProxyType
from typing import Any
from unittest.mock import ANY

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigEntryState,
    ConfigSubentry,
    ConfigSubentryData,
    SubentryFlowContext,
    SubentryFlowResult,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.direct_push import outbox, webpush
from custom_components.direct_push.backend import Outcome
from custom_components.direct_push.const import (
    CONF_ADMIN,
    CONF_AUTH,
    CONF_ENDPOINT,
    CONF_ENVIRONMENT,
    CONF_INTERRUPTION_LEVEL,
    CONF_KEY,
    CONF_KEY_ID,
    CONF_NAME,
    CONF_P256DH,
    CONF_SUBSCRIPTION,
    CONF_TEAM_ID,
    CONF_TOPIC,
    CONF_VAPID_PRIVATE_KEY,
    DOMAIN,
    ENV_PRODUCTION,
    SUBENTRY_APNS,
    SUBENTRY_WEBPUSH,
)
from custom_components.direct_push.hub import entity_unique_id
from custom_components.direct_push.message import (
    DEFAULT_TTL,
    WEBPUSH_MAX_PLAINTEXT,
    InterruptionLevel,
    Message,
    PushKind,
    webpush_topic,
    webpush_urgency,
)
from custom_components.direct_push.webpush import (
    VAPID_SUBJECT,
    SubscriptionError,
    generate_vapid_key,
    parse_subscription,
    parse_subscription_json,
    vapid_public_key,
)

from .apns_server import ApnsServer, ApnsTestCredentials
from .conftest import (
    ALICE_TOKEN,
    BOB_TOKEN,
    VAPID_KEY,
    VAPID_PUBLIC_KEY,
    advance,
    apns_device,
    token_entry_data,
    webpush_device,
)
from .webpush_server import MAX_BODY, ReceivedPush, Subscription, WebPushServer

type Subscribe = Callable[..., Subscription]

EVERYONE = ("Alice", "Bob", "Dana", "Erin")
_TOPIC_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _point(*, compressed: bool = False) -> str:
    """Return a P-256 public key as base64url; fixed, so test ids are stable."""
    key = ec.derive_private_key(0x5EED, ec.SECP256R1()).public_key()
    form = (
        PublicFormat.CompressedPoint if compressed else PublicFormat.UncompressedPoint
    )
    return _b64(key.public_bytes(Encoding.X962, form))


P256DH = _point()
AUTH = _b64(bytes(range(16)))


# Fixtures: Alice and Bob on iPhones, Dana and Erin on Web Push.


@pytest.fixture
def log_secrets() -> list[str]:
    """Secrets that must never reach the log; see secrets_stay_out_of_logs."""
    return [VAPID_KEY]


@pytest.fixture(autouse=True)
def secrets_stay_out_of_logs(
    caplog: pytest.LogCaptureFixture, log_secrets: list[str]
) -> Iterator[None]:
    """Every test here also proves that no subscription secret is logged.

    An endpoint is a capability (whoever has it can push), and its path is the
    secret part: the subscription id. Only the test receiver may log it.
    """
    caplog.set_level(logging.DEBUG)
    yield
    formatter = logging.Formatter()
    logged = "\n".join(
        formatter.format(record)  # with any traceback
        for record in caplog.get_records("call")
        if not record.name.startswith("tests.")
    )
    for secret in log_secrets:
        assert secret not in logged


@pytest.fixture
def subscribe(webpush_server: WebPushServer, log_secrets: list[str]) -> Subscribe:
    """Subscribe as an app does, by default with the test hub's VAPID key."""

    def _subscribe(name: str, *, key: str | None = VAPID_PUBLIC_KEY) -> Subscription:
        sub = webpush_server.subscribe(name, application_server_key=key)
        log_secrets.extend((sub.id, sub.p256dh, sub.auth))
        return sub

    return _subscribe


@pytest.fixture
def subs(subscribe: Subscribe) -> dict[str, Subscription]:
    """Dana's and Erin's subscriptions."""
    return {"Dana": subscribe("Dana"), "Erin": subscribe("Erin")}


@pytest.fixture
def devices(subs: dict[str, Subscription]) -> list[ConfigSubentryData]:
    """Alice (Apple, admin), Bob (Apple), Dana (Web Push, admin), Erin (Web Push)."""
    return [
        apns_device("Alice", ALICE_TOKEN, admin=True),
        apns_device("Bob", BOB_TOKEN),
        webpush_device("Dana", subs["Dana"], admin=True),
        webpush_device("Erin", subs["Erin"]),
    ]


async def _send(hass: HomeAssistant, **fields: Any) -> list[dict[str, Any]]:
    """Call direct_push.send and return its delivery rows."""
    response = await hass.services.async_call(
        DOMAIN, "send", fields, blocking=True, return_response=True
    )
    assert response is not None
    rows: list[dict[str, Any]] = response["deliveries"]  # type: ignore[assignment]
    return rows


def _statuses(rows: list[dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
    return {row["device"]: (row["status"], row["reason"]) for row in rows}


def _subentry_id(entry: MockConfigEntry, name: str) -> str:
    subentry_id: str = next(
        sid for sid, sub in entry.subentries.items() if sub.title == name
    )
    return subentry_id


def _issue(
    hass: HomeAssistant, entry: MockConfigEntry, name: str
) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(
        DOMAIN, f"device_inactive_{_subentry_id(entry, name)}"
    )


async def _send_one(
    hass: HomeAssistant, server: WebPushServer, sub: Subscription, **fields: Any
) -> ReceivedPush:
    """Send to one Web Push device by name; return what its app received."""
    fields.setdefault("message", "Hello")
    assert _statuses(await _send(hass, target=sub.name, **fields)) == {
        sub.name: ("delivered", None)
    }
    return server.messages_for(sub)[-1]


# Fan-out across both kinds.


async def test_send_to_all_reaches_apple_and_web_push(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    rows = await _send(
        hass,
        target="all",
        message="The front door opened",
        title="Door",
        data={"door": "front"},
    )

    assert _statuses(rows) == dict.fromkeys(EVERYONE, ("delivered", None))
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
    rows = await _send(hass, target="admin", message="Disk almost full")
    assert _statuses(rows) == dict.fromkeys(("Alice", "Dana"), ("delivered", None))
    assert [push.token for push in apns_server.pushes] == [ALICE_TOKEN]
    assert [push.subscription_id for push in webpush_server.messages] == [
        subs["Dana"].id
    ]

    # Names of either kind, case-insensitively.
    rows = await _send(hass, target=["bob", "ERIN"], message="Dinner")
    assert _statuses(rows) == dict.fromkeys(("Bob", "Erin"), ("delivered", None))
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
    push = await _send_one(
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
        "actions": actions,
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
    assert (await _send_one(hass, webpush_server, erin)).headers["ttl"] == str(
        DEFAULT_TTL
    )
    assert (await _send_one(hass, webpush_server, erin, ttl=0)).headers["ttl"] == "0"
    assert (await _send_one(hass, webpush_server, erin, ttl=60)).ttl == 60


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
        push = await _send_one(hass, webpush_server, subs["Erin"], **fields)
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

    alert = await _send_one(hass, webpush_server, erin)
    assert alert.urgency == "high"
    assert alert.json["interruption_level"] == "time-sensitive"
    wake = await _send_one(hass, webpush_server, erin, push_type="background")
    assert wake.urgency == "low"


async def test_topic_header(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    erin = subs["Erin"]
    assert (await _send_one(hass, webpush_server, erin)).topic is None
    assert (await _send_one(hass, webpush_server, erin, tag="door")).topic == "ZG9vcg"

    # Too long for a topic as it is: hashed, the same each time.
    tag = "camera.front_door_motion_" + "x" * 30
    first = await _send_one(hass, webpush_server, erin, tag=tag)
    second = await _send_one(hass, webpush_server, erin, tag=tag)
    assert first.topic is not None
    assert _TOPIC_RE.fullmatch(first.topic)
    assert first.topic == second.topic
    # The app still sees the tag itself.
    assert first.json["tag"] == tag


async def test_long_message_is_cut_to_fit(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    text = "Motion in the garden 🌳. " * 400  # about 10 kB
    assert len(text.encode()) > 10_000
    rows = await _send(hass, target="Erin", message=text, title="Garden")

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
    rows = await _send(hass, target="Erin", message="x" * 3000)
    assert rows[0]["truncated"] is False
    assert webpush_server.messages_for(subs["Erin"])[0].json == {"message": "x" * 3000}


async def test_background_push_reaches_every_kind(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    rows = await _send(hass, push_type="background", data={"refresh": "cameras"})

    assert _statuses(rows) == dict.fromkeys(EVERYONE, ("delivered", None))
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
    rows = await _send(hass, target="Erin", message="Hello")
    assert _statuses(rows) == {"Erin": ("delivered", None)}
    assert webpush_server.requests == 1


@pytest.mark.parametrize("status", [404, 410])
async def test_gone_marks_device_inactive(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    status: int,
) -> None:
    webpush_server.script(subs["Erin"], status)
    rows = await _send(hass, message="Hello")

    statuses = _statuses(rows)
    assert statuses["Erin"] == ("failed", f"endpoint_gone_{status}")
    assert statuses["Dana"] == ("delivered", None)
    issue = _issue(hass, loaded_entry, "Erin")
    assert issue is not None
    assert issue.translation_key == "device_inactive"
    assert issue.is_fixable
    assert webpush_server.requests == 2  # one each: a gone device is not retried

    # The next send skips Erin: her push service hears nothing.
    rows = await _send(hass, message="Again")
    assert _statuses(rows)["Erin"] == ("failed", "device_inactive")
    assert webpush_server.requests == 3
    assert len(webpush_server.messages_for(subs["Dana"])) == 2


async def test_payload_too_large_is_logged_as_error(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    caplog: pytest.LogCaptureFixture,
) -> None:
    webpush_server.script(subs["Erin"], 413)
    rows = await _send(hass, target="Erin", message="Hello")

    assert _statuses(rows) == {"Erin": ("failed", "payload_too_large")}
    assert webpush_server.requests == 1
    assert [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.ERROR and record.name.startswith("custom_")
    ] == ["Web Push service refused a payload as too large (413)"]
    assert _issue(hass, loaded_entry, "Erin") is None


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_zero_is_retried(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    status: int,
) -> None:
    webpush_server.script(subs["Erin"], status, headers={"Retry-After": "0"}, times=1)
    rows = await _send(hass, target="Erin", message="Hello")

    assert _statuses(rows) == {"Erin": ("delivered", None)}
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
    rows = await _send(hass, target="Erin", message="Hello", ttl=3600)

    # Any wait within the TTL is honoured (test_outbox); a later one cannot help.
    assert _statuses(rows) == {"Erin": ("expired", reason)}
    assert webpush_server.requests == 1


async def test_bad_request_is_not_retried(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    webpush_server.script(subs["Erin"], 400)
    rows = await _send(hass, target="Erin", message="Hello")

    assert _statuses(rows) == {"Erin": ("failed", "rejected_400")}
    assert webpush_server.requests == 1
    assert _issue(hass, loaded_entry, "Erin") is None


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
    rows = await _send(hass, target="Erin", message="Hello")

    assert _statuses(rows) == {"Erin": ("queued", f"server_error_{status}")}
    assert webpush_server.requests == 1
    await advance(hass, freezer, 30)
    assert webpush_server.requests == 3
    assert webpush_server.messages_for(subs["Erin"])[0].json == {"message": "Hello"}
    assert _issue(hass, loaded_entry, "Erin") is None


async def test_no_subscriber_keeps_device_active(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    """ntfy answers 507 while no phone listens to the topic; it may come back."""
    webpush_server.script(subs["Erin"], 507, times=1)
    rows = await _send(hass, target="Erin", message="Hello")

    assert _statuses(rows) == {"Erin": ("failed", "no_subscriber")}
    assert webpush_server.requests == 1
    assert _issue(hass, loaded_entry, "Erin") is None
    await _send_one(hass, webpush_server, subs["Erin"])


async def test_redirect_is_refused(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    webpush_server.redirect(subs["Erin"])
    rows = await _send(hass, target="Erin", message="Hello")

    assert _statuses(rows) == {"Erin": ("failed", "redirect_refused")}
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
    rows = await _send(hass, target="Erin", message="Hello")

    # A timeout is worth retrying: kept for later.
    assert _statuses(rows) == {"Erin": ("queued", "timeout")}
    assert webpush_server.requests == 1
    assert _issue(hass, loaded_entry, "Erin") is None


async def test_unreachable_service(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
) -> None:
    await webpush_server.stop()
    rows = await _send(hass, message="Hello")

    statuses = _statuses(rows)
    assert statuses["Erin"] == statuses["Dana"] == ("queued", "connection_error")
    assert statuses["Alice"] == statuses["Bob"] == ("delivered", None)
    assert _issue(hass, loaded_entry, "Erin") is None


async def _add_device(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    name: str,
    sub: Subscription,
    *,
    admin: bool = False,
) -> str:
    """Add a Web Push device through the form, pasting its subscription; return its id."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_WEBPUSH), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_NAME: name,
            CONF_SUBSCRIPTION: json.dumps(sub.as_json()),
            CONF_ADMIN: admin,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    return _subentry_id(entry, name)


async def test_other_vapid_key_is_refused_not_inactive(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subscribe: Subscribe,
) -> None:
    """An app subscribed with another server's key: fixable, so no repair issue."""
    other = subscribe("Finn", key=vapid_public_key(generate_vapid_key()))
    await _add_device(hass, loaded_entry, "Finn", other)
    rows = await _send(hass, target="Finn", message="Hello")

    assert _statuses(rows) == {"Finn": ("failed", "rejected_403")}
    assert webpush_server.rejections == [(other.id, 403)]
    assert _issue(hass, loaded_entry, "Finn") is None


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
                    CONF_P256DH: _point(compressed=True),
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
    rows = await _send(hass, message="Hello")

    statuses = _statuses(rows)
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
    push = await _send_one(hass, webpush_server, subs["Erin"])

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
    rows = await _send(hass, target=["Dana", "Erin"], message="One")
    assert _statuses(rows) == dict.fromkeys(("Dana", "Erin"), ("delivered", None))
    first = token(webpush_server.messages[0])
    assert token(webpush_server.messages[1]) == first
    freezer.tick(timedelta(hours=10, minutes=59))
    assert token(await _send_one(hass, webpush_server, subs["Erin"])) == first

    freezer.tick(timedelta(minutes=1))
    push = await _send_one(hass, webpush_server, subs["Erin"])
    assert token(push) != first
    assert push.vapid_claims["exp"] > time.time() + 11 * 3600

    # A clock set back must not keep a token whose exp is now over 24 h away
    # (the push service would refuse it).
    second = token(push)
    freezer.tick(timedelta(hours=-13))
    assert token(await _send_one(hass, webpush_server, subs["Erin"])) != second


# Adding and editing devices.


async def _start_device_flow(
    hass: HomeAssistant, entry: MockConfigEntry, subentry_id: str | None = None
) -> SubentryFlowResult:
    context = SubentryFlowContext(source=SOURCE_USER)
    if subentry_id is not None:
        context = SubentryFlowContext(
            source=SOURCE_RECONFIGURE, subentry_id=subentry_id
        )
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_WEBPUSH), context=context
    )
    assert result["type"] is FlowResultType.FORM
    return result


def _notify_entity(hass: HomeAssistant, entry: MockConfigEntry, device_id: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        Platform.NOTIFY, DOMAIN, entity_unique_id(entry.entry_id, device_id)
    )
    assert entity_id is not None
    assert hass.states.get(entity_id) is not None
    return entity_id


async def test_add_device_with_pasted_subscription(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subscribe: Subscribe,
) -> None:
    finn = subscribe("Finn")
    result = await _start_device_flow(hass, loaded_entry)
    assert result["step_id"] == "user"
    # Apps subscribe with the hub's public key, so the form shows it.
    assert result["description_placeholders"] == {"vapid_public_key": VAPID_PUBLIC_KEY}

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_NAME: " Finn ",
            # As a browser's JSON.stringify(subscription) gives it.
            CONF_SUBSCRIPTION: json.dumps(
                {**finn.as_json(), "expirationTime": None}, indent=2
            ),
            CONF_ADMIN: True,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Finn"
    assert result["data"] == {
        CONF_NAME: "Finn",
        CONF_ENDPOINT: finn.endpoint,
        CONF_P256DH: finn.p256dh,
        CONF_AUTH: finn.auth,
        CONF_ADMIN: True,
    }
    await hass.async_block_till_done()

    # The new device has its notify entity, and it reaches the app.
    entity_id = _notify_entity(hass, loaded_entry, _subentry_id(loaded_entry, "Finn"))
    await hass.services.async_call(
        Platform.NOTIFY,
        "send_message",
        {"entity_id": entity_id, "message": "Welcome", "title": "Home"},
        blocking=True,
    )
    [push] = webpush_server.messages_for(finn)
    assert push.json == {"message": "Welcome", "title": "Home"}
    # And Finn is an admin now.
    rows = await _send(hass, target="admin", message="Hi admins")
    assert {row["device"] for row in rows} == {"Alice", "Dana", "Finn"}


async def test_add_device_with_separate_fields(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subscribe: Subscribe,
) -> None:
    finn = subscribe("Finn")
    result = await _start_device_flow(hass, loaded_entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_NAME: "Finn",
            CONF_SUBSCRIPTION: "  ",
            # Copied with padding, a line break and stray spaces.
            CONF_ENDPOINT: f" {finn.endpoint} ",
            CONF_P256DH: f"{finn.p256dh[:40]}\n{finn.p256dh[40:]}=",
            CONF_AUTH: f" {finn.auth}== ",
            CONF_ADMIN: False,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_NAME: "Finn",
        CONF_ENDPOINT: finn.endpoint,
        CONF_P256DH: finn.p256dh,
        CONF_AUTH: finn.auth,
        CONF_ADMIN: False,
    }
    await hass.async_block_till_done()
    await _send_one(hass, webpush_server, finn)


async def test_add_device_errors(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    subs: dict[str, Subscription],
) -> None:
    def fields(**changes: str) -> dict[str, Any]:
        return {
            CONF_NAME: "Finn",
            CONF_ENDPOINT: "https://push.example.com/up/abc",
            CONF_P256DH: P256DH,
            CONF_AUTH: AUTH,
            CONF_ADMIN: False,
            **changes,
        }

    erin = subs["Erin"].as_json()
    cases: list[tuple[dict[str, Any], dict[str, str]]] = [
        (fields(subscription="not json"), {CONF_SUBSCRIPTION: "invalid_subscription"}),
        (
            fields(subscription=json.dumps({"endpoint": erin["endpoint"]})),
            {CONF_SUBSCRIPTION: "invalid_subscription"},
        ),
        # A pasted subscription's errors show next to the pasted JSON.
        (
            fields(
                subscription=json.dumps(
                    {**erin, "endpoint": "http://example.com/up/abc"}
                )
            ),
            {CONF_SUBSCRIPTION: "invalid_endpoint"},
        ),
        (
            fields(endpoint="ftp://push.example.com/up"),
            {CONF_ENDPOINT: "invalid_endpoint"},
        ),
        # Plain http only on the home network.
        (
            fields(endpoint="http://example.com/up/abc"),
            {CONF_ENDPOINT: "invalid_endpoint"},
        ),
        (
            fields(endpoint="https://push.example.com/" + "a" * 1000),
            {CONF_ENDPOINT: "invalid_endpoint"},
        ),
        (
            fields(endpoint="https://push.example.com:99999/up"),
            {CONF_ENDPOINT: "invalid_endpoint"},
        ),
        (fields(p256dh="not a key"), {CONF_P256DH: "invalid_p256dh"}),
        # 65 bytes of the right shape, but no point on P-256.
        (fields(p256dh=_b64(b"\x04" + bytes(64))), {CONF_P256DH: "invalid_p256dh"}),
        # A compressed point: valid, but Web Push encrypts to the full form.
        (fields(p256dh=_point(compressed=True)), {CONF_P256DH: "invalid_p256dh"}),
        (fields(auth=_b64(bytes(8))), {CONF_AUTH: "invalid_auth_secret"}),
        (fields(auth="!!!!"), {CONF_AUTH: "invalid_auth_secret"}),
        (fields(endpoint=f" {erin['endpoint']}"), {CONF_ENDPOINT: "endpoint_in_use"}),
        # Names are unique across kinds: an Apple device has this one.
        (fields(name="alice"), {CONF_NAME: "name_in_use"}),
    ]
    result = await _start_device_flow(hass, loaded_entry)
    for user_input, errors in cases:
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], user_input
        )
        assert result["type"] is FlowResultType.FORM, user_input
        assert result["errors"] == errors, user_input
        assert result["description_placeholders"] == {
            "vapid_public_key": VAPID_PUBLIC_KEY
        }
    assert len(loaded_entry.subentries) == 4


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://192.168.1.20:8080/upAbCdEf?up=1",
        "http://ntfy.local/upAbCdEf?up=1",
        "http://[fd00::20]:8080/upAbCdEf",
    ],
)
async def test_plain_http_on_home_network(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    subs: dict[str, Subscription],
    endpoint: str,
) -> None:
    """A self-hosted distributor, such as ntfy, may speak plain http at home."""
    result = await _start_device_flow(hass, loaded_entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_NAME: "Finn",
            CONF_ENDPOINT: endpoint,
            CONF_P256DH: P256DH,
            CONF_AUTH: AUTH,
            CONF_ADMIN: False,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_ENDPOINT] == endpoint
    await hass.async_block_till_done()


async def test_reconfigure_replaces_subscription_and_clears_issue(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    subscribe: Subscribe,
) -> None:
    # Erin reinstalled her app: the old subscription is gone.
    old = subs["Erin"]
    webpush_server.script(old, 410)
    await _send(hass, target="Erin", message="Hello")
    assert _issue(hass, loaded_entry, "Erin") is not None
    erin_id = _subentry_id(loaded_entry, "Erin")
    new = subscribe("Erin")

    result = await _start_device_flow(hass, loaded_entry, erin_id)
    assert result["step_id"] == "reconfigure"
    assert result["description_placeholders"] == {"vapid_public_key": VAPID_PUBLIC_KEY}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_NAME: "Erin",
            CONF_SUBSCRIPTION: json.dumps(new.as_json()),
            CONF_ADMIN: True,
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()

    # Edited in place: same device, new subscription, no issue.
    assert _subentry_id(loaded_entry, "Erin") == erin_id
    assert loaded_entry.subentries[erin_id].data[CONF_ENDPOINT] == new.endpoint
    assert _issue(hass, loaded_entry, "Erin") is None
    rows = await _send(hass, target="admin", message="Back")
    assert _statuses(rows)["Erin"] == ("delivered", None)
    assert webpush_server.messages_for(new)[0].json == {"message": "Back"}
    assert webpush_server.messages_for(old) == []


# Hubs made before Web Push.


async def test_migration_adds_vapid_key(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    webpush_server: WebPushServer,
    log_secrets: list[str],
) -> None:
    data = token_entry_data(apns_credentials)
    del data[CONF_VAPID_PRIVATE_KEY]
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Direct Push",
        data=data,
        subentries_data=[apns_device("Alice", ALICE_TOKEN, admin=True)],
        version=1,
        minor_version=1,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.minor_version == 2
    key = entry.data[CONF_VAPID_PRIVATE_KEY]
    assert key != VAPID_KEY
    assert entry.data == {**data, CONF_VAPID_PRIVATE_KEY: key}
    public_key = vapid_public_key(key)
    log_secrets.append(key)

    # A phone subscribes with the new key, which the form shows ...
    result = await _start_device_flow(hass, entry)
    assert result["description_placeholders"] == {"vapid_public_key": public_key}
    finn = webpush_server.subscribe("Finn", application_server_key=public_key)
    log_secrets.extend((finn.id, finn.p256dh, finn.auth))
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_NAME: "Finn",
            CONF_SUBSCRIPTION: json.dumps(finn.as_json()),
            CONF_ADMIN: False,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    # ... and receives pushes signed with it.
    rows = await _send(hass, message="Hello")
    assert _statuses(rows) == dict.fromkeys(("Alice", "Finn"), ("delivered", None))
    assert webpush_server.messages_for(finn)[0].vapid_key == public_key
    await hass.config_entries.async_unload(entry.entry_id)


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
    await _send(hass, message="One")
    webpush_server.clear_scripts()
    webpush_server.script(subs["Dana"], 413)
    webpush_server.script(subs["Erin"], 410)
    await _send(hass, message="Two")
    monkeypatch.setattr(webpush, "SEND_TIMEOUT", 0.05)
    webpush_server.response_delay = 2
    rows = await _send(hass, message="Three", target="Dana")
    assert _statuses(rows) == {"Dana": ("queued", "connection_error")}

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
        ("", P256DH, AUTH, CONF_ENDPOINT, "invalid_endpoint"),
        ("push.example.com/up", P256DH, AUTH, CONF_ENDPOINT, "invalid_endpoint"),
        ("ftp://push.example.com/up", P256DH, AUTH, CONF_ENDPOINT, "invalid_endpoint"),
        ("http://example.com/up", P256DH, AUTH, CONF_ENDPOINT, "invalid_endpoint"),
        ("http://8.8.8.8/up", P256DH, AUTH, CONF_ENDPOINT, "invalid_endpoint"),
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
            _b64(bytes(17)),
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
    assert (err.value.field, err.value.key) == (CONF_SUBSCRIPTION, "invalid_endpoint")


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
    ("tag", "topic"),
    [
        ("door", "ZG9vcg"),
        ("x" * 24, _b64(b"x" * 24)),  # 32 characters: still as it is
    ],
)
def test_webpush_topic_short(tag: str, topic: str) -> None:
    assert webpush_topic(tag) == topic


@pytest.mark.parametrize("tag", ["x" * 25, "camera.front_door_" * 3, "Tür 🚪" * 10])
def test_webpush_topic_long(tag: str) -> None:
    topic = webpush_topic(tag)
    assert _TOPIC_RE.fullmatch(topic)
    assert topic == webpush_topic(tag)
    assert topic != webpush_topic(tag + "!")


@pytest.mark.parametrize(
    ("fields", "urgency"),
    [
        ({}, "normal"),
        ({"interruption_level": InterruptionLevel.CRITICAL}, "high"),
        ({"interruption_level": InterruptionLevel.TIME_SENSITIVE}, "high"),
        ({"interruption_level": InterruptionLevel.ACTIVE}, "normal"),
        ({"interruption_level": InterruptionLevel.PASSIVE}, "low"),
        ({"priority": 5}, "low"),
        ({"priority": 10}, "normal"),
        ({"interruption_level": InterruptionLevel.CRITICAL, "priority": 5}, "high"),
        ({"push_type": PushKind.BACKGROUND}, "low"),
        (
            {
                "push_type": PushKind.BACKGROUND,
                "interruption_level": InterruptionLevel.TIME_SENSITIVE,
            },
            "low",
        ),
    ],
)
def test_webpush_urgency(fields: dict[str, Any], urgency: str) -> None:
    assert webpush_urgency(Message(message="Hi", **fields)) == urgency


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


# A hub for Web Push devices only, and adding Apple to it later.


async def test_web_push_only_hub_then_add_apple(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    webpush_server: WebPushServer,
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "webpush"}
    )
    assert result["step_id"] == "webpush"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    [entry] = hass.config_entries.async_entries(DOMAIN)
    assert set(entry.data) == {CONF_VAPID_PRIVATE_KEY}
    vapid_private = entry.data[CONF_VAPID_PRIVATE_KEY]
    assert entry.state is ConfigEntryState.LOADED

    # Apple devices need Apple credentials first.
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_APNS), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_apple_credentials"

    # A Web Push device works at once, signed with the hub's own key.
    public_key = vapid_public_key(entry.data[CONF_VAPID_PRIVATE_KEY])
    pixel = webpush_server.subscribe("Pixel", application_server_key=public_key)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_WEBPUSH), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_NAME: "Pixel",
            CONF_SUBSCRIPTION: json.dumps(pixel.as_json()),
            CONF_ADMIN: True,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    response = await hass.services.async_call(
        DOMAIN, "send", {"message": "Hi"}, blocking=True, return_response=True
    )
    assert response == {
        "deliveries": [
            {
                "device": "Pixel",
                "device_id": ANY,
                "message_id": ANY,
                "status": "delivered",
                "reason": None,
                "next_attempt": None,
                "truncated": False,
            }
        ],
        "dropped": 0,
    }

    # Reconfigure offers to add Apple, with the same checks as a new hub.
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": entry.entry_id}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["token", "certificate"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "token"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_KEY: apns_credentials.key_pem,
            CONF_KEY_ID: "BADID",
            CONF_TEAM_ID: apns_credentials.team_id,
            CONF_TOPIC: apns_credentials.topic,
            CONF_ENVIRONMENT: ENV_PRODUCTION,
        },
    )
    assert result["errors"] == {CONF_KEY_ID: "invalid_key_id"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_KEY: apns_credentials.key_pem,
            CONF_KEY_ID: apns_credentials.key_id,
            CONF_TEAM_ID: apns_credentials.team_id,
            CONF_TOPIC: apns_credentials.topic,
            CONF_ENVIRONMENT: ENV_PRODUCTION,
        },
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    # The VAPID identity, and so the Web Push device, are kept.
    assert entry.data[CONF_VAPID_PRIVATE_KEY] == vapid_private
    assert entry.data[CONF_KEY_ID] == apns_credentials.key_id
    assert [s.title for s in entry.subentries.values()] == ["Pixel"]
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_APNS), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    await hass.config_entries.async_unload(entry.entry_id)
