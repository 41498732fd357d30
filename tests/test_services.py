"""The direct_push.send action, end to end against the local APNs server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import json
import logging
from pathlib import Path
import time
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    ConfigEntryState,
    ConfigSubentryData,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import issue_registry as ir, selector
from homeassistant.util.yaml import load_yaml_dict
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import voluptuous as vol

from custom_components.direct_push.backend import Outcome
from custom_components.direct_push.const import (
    CONF_INTERRUPTION_LEVEL,
    CONF_SOUND,
    CONF_TITLE_FROM_DEVICE,
    DOMAIN,
)
from custom_components.direct_push.message import (
    APNS_MAX_PAYLOAD,
    DEFAULT_TTL,
    Message,
    json_size,
)

from .apns_server import ApnsServer, ApnsTestCredentials
from .conftest import (
    ALICE_TOKEN,
    BOB_TOKEN,
    CAROL_TOKEN,
    advance,
    apns_device,
    ha_device_id,
    notify_entity_id,
    token_entry_data,
)

SERVICES_YAML = (
    Path(__file__).parent.parent / "custom_components" / DOMAIN / "services.yaml"
)

TOKENS = {"Alice": ALICE_TOKEN, "Bob": BOB_TOKEN, "Carol": CAROL_TOKEN}


@pytest.fixture
def devices() -> list[ConfigSubentryData]:
    """Alice (admin), Bob and Carol."""
    return [
        apns_device("Alice", ALICE_TOKEN, admin=True),
        apns_device("Bob", BOB_TOKEN),
        apns_device("Carol", CAROL_TOKEN),
    ]


@pytest.fixture(autouse=True)
def tokens_stay_out_of_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test here also proves that no device token reaches the log."""
    caplog.set_level(logging.DEBUG, logger="custom_components.direct_push")
    caplog.set_level(logging.DEBUG, logger="aioapns")
    yield
    formatter = logging.Formatter()
    logged = "\n".join(
        formatter.format(record)  # with any traceback
        for record in caplog.get_records("call")
        if record.name.startswith(("custom_components.direct_push", "aioapns"))
    )
    for token in TOKENS.values():
        assert token not in logged


async def _send(hass: HomeAssistant, **fields: Any) -> list[dict[str, Any]]:
    """Call the action and return its delivery rows."""
    response = await hass.services.async_call(
        DOMAIN, "send", fields, blocking=True, return_response=True
    )
    assert response is not None
    rows: list[dict[str, Any]] = response["deliveries"]  # type: ignore[assignment]
    return rows


def _subentry_id(entry: MockConfigEntry, name: str) -> str:
    return next(sid for sid, sub in entry.subentries.items() if sub.title == name)


def _statuses(rows: list[dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
    return {row["device"]: (row["status"], row["reason"]) for row in rows}


# Every field, as Apple receives it.


async def test_all_fields_reach_apple(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    rows = await _send(
        hass,
        target="Alice",
        message="Someone is at the door",
        title="Doorbell",
        subtitle="Front door",
        sound="chime.caf",
        badge=3,
        interruption_level="time-sensitive",
        thread_id="doorbell",
        tag="door",
        url="/lovelace/cameras",
        image="https://example.com/snapshot.jpg",
        category="DOORBELL",
        ttl=600,
        priority=5,
        data={"camera": "front", "count": 2},
    )
    [push] = apns_server.pushes
    assert rows == [
        {
            "device": "Alice",
            "device_id": _subentry_id(loaded_entry, "Alice"),
            # Sent as the apns-id: the same on a resend, so an app can drop a duplicate.
            "message_id": push.apns_id,
            "status": "delivered",
            "reason": None,
            "next_attempt": None,
            "truncated": False,
        }
    ]
    assert push.token == ALICE_TOKEN
    assert push.payload == {
        "camera": "front",
        "count": 2,
        "url": "/lovelace/cameras",
        "image": "https://example.com/snapshot.jpg",
        "aps": {
            "alert": {
                "title": "Doorbell",
                "subtitle": "Front door",
                "body": "Someone is at the door",
            },
            "sound": "chime.caf",
            "badge": 3,
            "interruption-level": "time-sensitive",
            "thread-id": "doorbell",
            "category": "DOORBELL",
            # The image is fetched by the app's notification service extension.
            "mutable-content": 1,
        },
    }
    assert push.collapse_id == "door"
    assert push.push_type == "alert"
    assert push.priority == 5
    assert push.expiration is not None
    assert abs(push.expiration - (time.time() + 600)) <= 2


@pytest.mark.parametrize(
    ("empty", "aps"),
    [
        # Without options or a sound field, alerts play the standard sound.
        ({}, {"alert": {"body": "Hi"}, "sound": "default"}),
        # An empty sound field asks for silence.
        ({"tag": "", "thread_id": "", "sound": ""}, {"alert": {"body": "Hi"}}),
    ],
)
async def test_defaults(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    empty: dict[str, str],
    aps: dict[str, object],
) -> None:
    await _send(hass, target="Alice", message="Hi", **empty)
    [push] = apns_server.pushes
    assert push.payload == {"aps": aps}
    assert push.priority == 10
    assert push.push_type == "alert"
    assert push.collapse_id is None
    assert push.expiration is not None
    assert abs(push.expiration - (time.time() + DEFAULT_TTL)) <= 2


@pytest.mark.parametrize("level", ["passive", "active", "time-sensitive"])
async def test_interruption_levels(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    level: str,
) -> None:
    await _send(hass, target="Alice", message="Hi", interruption_level=level)
    [push] = apns_server.pushes
    assert push.payload["aps"]["interruption-level"] == level
    # Only critical alerts get the critical sound dictionary.
    assert push.payload["aps"]["sound"] == "default"


@pytest.mark.parametrize(
    ("fields", "sound"),
    [
        ({}, {"critical": 1, "name": "default", "volume": 1.0}),
        ({"sound": "siren.caf"}, {"critical": 1, "name": "siren.caf", "volume": 1.0}),
    ],
)
async def test_critical_alert(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    fields: dict[str, Any],
    sound: dict[str, Any],
) -> None:
    await _send(
        hass, target="Alice", message="Leak", interruption_level="critical", **fields
    )
    [push] = apns_server.pushes
    assert push.payload["aps"]["interruption-level"] == "critical"
    assert push.payload["aps"]["sound"] == sound


@pytest.mark.parametrize("message", ["", "ignored"])
async def test_background_push(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    message: str,
) -> None:
    rows = await _send(
        hass,
        target="Alice",
        message=message,
        title="ignored",
        push_type="background",
        priority=10,
        data={"refresh": "cameras"},
    )
    assert _statuses(rows) == {"Alice": ("delivered", None)}
    [push] = apns_server.pushes
    assert push.push_type == "background"
    # Apple refuses priority 10 for background pushes.
    assert push.priority == 5
    assert push.payload == {"refresh": "cameras", "aps": {"content-available": 1}}


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"message": ""}, "message_required"),
        ({"title": "Only a title"}, "message_required"),
        ({"message": "Hi", "tag": "t" * 65}, "tag_too_long"),
        # 22 euro signs are 66 bytes: the limit is in bytes, not characters.
        ({"message": "Hi", "tag": "€" * 22}, "tag_too_long"),
        ({"message": "Hi", "data": {"aps": {"badge": 1}}}, "reserved_data_key"),
        ({"message": "Hi", "data": {"blob": "z" * 5000}}, "payload_too_large"),
        (
            {"push_type": "background", "data": {"blob": "z" * 5000}},
            "payload_too_large",
        ),
        ({"message": "Hi", "target": "nobody"}, "unknown_target"),
        ({"message": "Hi", "target": ["Alice", "nobody"]}, "unknown_target"),
    ],
)
async def test_invalid_send_sends_nothing(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    fields: dict[str, Any],
    key: str,
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await _send(hass, **fields)
    assert err.value.translation_key == key
    assert apns_server.pushes == []
    assert apns_server.rejections == []
    assert apns_server.connections_made == 0


async def test_tag_of_64_bytes_is_accepted(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    await _send(hass, target="Alice", message="Hi", tag="€" * 21 + "x")
    [push] = apns_server.pushes
    assert push.collapse_id == "€" * 21 + "x"


@pytest.mark.parametrize(
    "fields",
    [
        {"priority": 7},
        {"badge": -1},
        {"interruption_level": "loud"},
        {"push_type": "voip"},
        {"ttl": -5},
        # A target is text, or lists of text.
        {"target": {"device_id": "abc"}},
        {"target": ["Alice", {"entity_id": "notify.alice"}]},
    ],
)
async def test_schema_rejects(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    fields: dict[str, Any],
) -> None:
    with pytest.raises(vol.Invalid):
        await _send(hass, message="Hi", **fields)
    assert apns_server.pushes == []


async def test_entry_options_fill_in_missing_fields(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    hass.config_entries.async_update_entry(
        loaded_entry,
        options={
            CONF_SOUND: "ding.caf",
            CONF_INTERRUPTION_LEVEL: "time-sensitive",
            CONF_TITLE_FROM_DEVICE: True,
        },
    )
    await hass.async_block_till_done()  # the update listener reloads the entry
    await _send(hass, target="Alice", message="Defaults")
    await _send(
        hass,
        target="Alice",
        message="Own fields",
        title="Mine",
        sound="mine.caf",
        interruption_level="passive",
    )
    first, second = (push.payload["aps"] for push in apns_server.pushes)
    assert first == {
        "alert": {"title": "Alice", "body": "Defaults"},
        "sound": "ding.caf",
        "interruption-level": "time-sensitive",
    }
    assert second == {
        "alert": {"title": "Mine", "body": "Own fields"},
        "sound": "mine.caf",
        "interruption-level": "passive",
    }


async def test_too_large_once_personalised(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    hass.config_entries.async_update_entry(
        loaded_entry, options={CONF_TITLE_FROM_DEVICE: True}
    )
    await hass.async_block_till_done()
    # Fits as sent to the action; the device's name as title tips it over.
    room = APNS_MAX_PAYLOAD - json_size({"blob": "", "aps": {"alert": {"body": "…"}}})
    rows = await _send(
        hass, target="Alice", message="Hi", data={"blob": "z" * (room - 5)}
    )
    assert _statuses(rows) == {"Alice": ("failed", "payload_too_large")}
    assert apns_server.pushes == []


# Routing words.


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (None, {"Alice", "Bob", "Carol"}),
        ("all", {"Alice", "Bob", "Carol"}),
        ("admin", {"Alice"}),
        ("bob", {"Bob"}),
        (" CAROL ", {"Carol"}),
        ("device:Carol", {"Carol"}),
        ("entity:Bob", {"Bob"}),
        (["admin", "Bob", "bob", "entity:Alice"], {"Alice", "Bob"}),
        (["device:Bob", "entity:Carol"], {"Bob", "Carol"}),
        ("everyone", {"Alice", "Bob", "Carol"}),
        ("Admins", {"Alice"}),
        # The groups' notify entities.
        ("group:admins", {"Alice"}),
        ("group:everyone", {"Alice", "Bob", "Carol"}),
        # As blueprints pass their inputs: lists of lists, unset ones blank.
        ([["admin"], ["device:Bob"]], {"Alice", "Bob"}),
        ([[], ["device:Carol", ""]], {"Carol"}),
        (["admin", None], {"Alice"}),
        # Naming no one is naming no target: everyone.
        ([[], []], {"Alice", "Bob", "Carol"}),
        ("", {"Alice", "Bob", "Carol"}),
        # The hub's own device is no phone.
        ("hub", {"Alice", "Bob", "Carol"}),
        ([[], ["hub", "device:Bob"]], {"Bob"}),
    ],
)
async def test_targets(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    target: Any,
    expected: set[str],
) -> None:
    def real(word: Any) -> Any:
        # HA ids are only known once the entry is set up.
        if isinstance(word, list):
            return [real(item) for item in word]
        kind, _, name = str(word).partition(":")
        if kind == "device":
            return ha_device_id(hass, loaded_entry, _subentry_id(loaded_entry, name))
        if kind == "entity":
            return notify_entity_id(
                hass, loaded_entry, _subentry_id(loaded_entry, name)
            )
        if kind == "group":
            return notify_entity_id(hass, loaded_entry, name)
        if kind == "hub":
            return ha_device_id(hass, loaded_entry, loaded_entry.entry_id)
        return word

    fields: dict[str, Any] = {"message": "Hi"}
    if target is not None:
        fields["target"] = real(target)
    rows = await _send(hass, **fields)
    assert {row["device"] for row in rows} == expected
    # Each device once, however many words named it.
    assert sorted(push.token for push in apns_server.pushes) == sorted(
        TOKENS[name] for name in expected
    )


# Apple's 4 KB limit.


async def test_long_message_is_cut(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    body = "Motion in the garden. " * 500
    rows = await _send(hass, target="Alice", message=body, title="Camera")
    assert rows[0]["status"] == "delivered"
    assert rows[0]["truncated"] is True
    [push] = apns_server.pushes
    assert len(push.raw) <= APNS_MAX_PAYLOAD
    cut = json.loads(push.raw)["aps"]["alert"]["body"]
    assert cut.endswith("…")
    assert body.startswith(cut.removesuffix("…"))
    assert len(cut) > 4000


@pytest.mark.parametrize("unit", ["😀", "漢", "👍🏽"])
async def test_multibyte_message_is_cut_between_characters(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    unit: str,
) -> None:
    body = unit * 3000
    rows = await _send(hass, target="Alice", message=body)
    assert rows[0]["truncated"] is True
    [push] = apns_server.pushes
    assert len(push.raw) <= APNS_MAX_PAYLOAD
    # The server decoded the body as strict UTF-8; no unit lost a part.
    kept = push.payload["aps"]["alert"]["body"].removesuffix("…")
    assert kept == unit * (len(kept) // len(unit))


# Apple's errors.


@pytest.mark.parametrize(
    "answer",
    [
        (410, "Unregistered"),
        (400, "BadDeviceToken"),
        (400, "DeviceTokenNotForTopic"),
    ],
)
async def test_gone_device_is_marked_inactive(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    caplog: pytest.LogCaptureFixture,
    answer: tuple[int, str],
) -> None:
    status, reason = answer
    apns_server.script(ALICE_TOKEN, status, reason)
    rows = await _send(hass, message="Hi")
    assert _statuses(rows) == {
        "Alice": ("failed", reason),
        "Bob": ("delivered", None),
        "Carol": ("delivered", None),
    }
    # Gone is final: asked once, not retried.
    assert apns_server.rejections == [(ALICE_TOKEN, status, reason)]
    alice = _subentry_id(loaded_entry, "Alice")
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"device_inactive_{alice}")
    assert issue is not None
    assert issue.translation_placeholders == {"device": "Alice", "reason": reason}

    rows = await _send(hass, message="Again")
    assert _statuses(rows)["Alice"] == ("failed", "device_inactive")
    # Alice was not asked again; the others were.
    assert len(apns_server.rejections) == 1
    assert apns_server.pushes_for(ALICE_TOKEN) == []
    assert len(apns_server.pushes_for(BOB_TOKEN)) == 2

    # The log tells devices apart by the tokens' last four digits; the
    # autouse fixture checks that no whole token is logged.
    logged = [record.getMessage() for record in caplog.records]
    assert f"Push to Alice (…{ALICE_TOKEN[-4:]}): device_gone ({reason})" in logged
    assert f"Push to Bob (…{BOB_TOKEN[-4:]}): delivered" in logged


@pytest.mark.parametrize(
    "reason",
    [
        "InvalidProviderToken",
        "MissingProviderToken",
        "UnrelatedKeyIdInToken",
        "BadEnvironmentKeyIdInToken",
    ],
)
async def test_refused_credentials_start_reauth(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    reason: str,
) -> None:
    for token in TOKENS.values():
        apns_server.script(token, 403, reason)
    rows = await _send(hass, message="Hi")
    # Kept until new credentials arrive (test_outbox follows them there).
    assert set(_statuses(rows).values()) == {("queued", reason)}
    await hass.async_block_till_done()
    flows = [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH
    ]
    # One reauth for the hub, however many devices were refused.
    assert len(flows) == 1
    assert flows[0]["context"]["entry_id"] == loaded_entry.entry_id
    # Not a device problem: no device is marked inactive.
    assert not [
        issue
        for (domain, _), issue in ir.async_get(hass).issues.items()
        if domain == DOMAIN
    ]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (429, "TooManyRequests"),
        (500, "InternalServerError"),
        (503, "ServiceUnavailable"),
    ],
)
async def test_transient_errors_are_retried(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    freezer: FrozenDateTimeFactory,
    status: int,
    reason: str,
) -> None:
    apns_server.script(ALICE_TOKEN, status, reason, times=3)
    rows = await _send(hass, target=["Alice", "Bob"], message="Hi")
    assert _statuses(rows) == {
        "Alice": ("queued", reason),
        "Bob": ("delivered", None),
    }
    await advance(hass, freezer, 60)
    # Refused three times, delivered on the third retry.
    assert [token for token, _, _ in apns_server.rejections] == [ALICE_TOKEN] * 3
    assert len(apns_server.pushes_for(ALICE_TOKEN)) == 1


async def test_no_retry_with_ttl_zero(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    apns_server.script(ALICE_TOKEN, 503, "ServiceUnavailable", times=1)
    rows = await _send(hass, target="Alice", message="Now or never", ttl=0)
    assert _statuses(rows) == {"Alice": ("expired", "ServiceUnavailable")}
    assert len(apns_server.rejections) == 1
    assert apns_server.pushes == []


async def test_dropped_connection_is_retried(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    apns_server.drop_next(2)
    rows = await _send(hass, target="Alice", message="Hi")
    assert _statuses(rows) == {"Alice": ("queued", "connection_error")}
    await advance(hass, freezer, 30)
    assert len(apns_server.pushes) == 1
    # One connection per attempt: two were dropped.
    assert apns_server.connections_made == 3


async def test_other_errors_fail_without_retry(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    apns_server.script(ALICE_TOKEN, 400, "BadTopic")
    rows = await _send(hass, message="Hi")
    assert _statuses(rows)["Alice"] == ("failed", "BadTopic")
    assert apns_server.rejections == [(ALICE_TOKEN, 400, "BadTopic")]
    # Neither the device nor the credentials are to blame.
    assert (
        ir.async_get(hass).async_get_issue(
            DOMAIN, f"device_inactive_{_subentry_id(loaded_entry, 'Alice')}"
        )
        is None
    )
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    # The device stays active.
    apns_server.clear_scripts()
    rows = await _send(hass, target="Alice", message="Hi")
    assert _statuses(rows) == {"Alice": ("delivered", None)}


async def test_all_failed_raises_without_return_response(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    apns_server.script(ALICE_TOKEN, 400, "BadTopic")
    apns_server.script(BOB_TOKEN, 400, "BadTopic")
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN,
            "send",
            {"message": "Hi", "target": ["Alice", "Bob"]},
            blocking=True,
        )
    assert err.value.translation_key == "send_failed"
    assert err.value.translation_placeholders == {
        "failures": "Alice (BadTopic), Bob (BadTopic)"
    }
    # With the response, the caller gets the rows instead.
    rows = await _send(hass, target=["Alice", "Bob"], message="Hi")
    assert _statuses(rows) == {
        "Alice": ("failed", "BadTopic"),
        "Bob": ("failed", "BadTopic"),
    }


async def test_partial_failure_does_not_raise(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    apns_server.script(ALICE_TOKEN, 400, "BadTopic")
    await hass.services.async_call(DOMAIN, "send", {"message": "Hi"}, blocking=True)
    assert len(apns_server.pushes) == 2


async def test_not_loaded(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    await hass.config_entries.async_unload(loaded_entry.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await _send(hass, message="Hi")
    assert err.value.translation_key == "not_loaded"


async def test_a_send_during_a_reload_waits_for_the_hub(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    """A device pairing or an option changing reloads the hub: a doorbell then still rings."""
    unloading = asyncio.Event()
    remove = loaded_entry.async_on_state_change(unloading.set)
    reload = hass.async_create_task(
        hass.config_entries.async_reload(loaded_entry.entry_id)
    )
    await unloading.wait()
    remove()
    assert loaded_entry.state is not ConfigEntryState.LOADED
    rows = await _send(hass, message="Doorbell", target="Alice")
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert [row["status"] for row in rows] == ["delivered"]
    assert await reload
    assert [push.payload["aps"]["alert"]["body"] for push in apns_server.pushes] == [
        "Doorbell"
    ]


# Fan-out.


async def test_fan_out_is_concurrent(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
) -> None:
    tokens = [f"{i:02x}" * 32 for i in range(20)]
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Direct Push",
        data=token_entry_data(apns_credentials),
        subentries_data=[
            apns_device(f"Phone {i}", token) for i, token in enumerate(tokens)
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    apns_server.response_delay = 0.2

    rows = await _send(hass, message="Everyone")

    assert [row["status"] for row in rows] == ["delivered"] * 20
    assert sorted(push.token for push in apns_server.pushes) == sorted(tokens)
    # Every push was waiting on Apple at the same time.
    assert apns_server.max_in_flight == 20
    await hass.config_entries.async_unload(entry.entry_id)


async def test_data_that_is_not_json(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    # A template or python_script can hand the action a set.
    with pytest.raises(ServiceValidationError) as err:
        await _send(hass, message="Hi", data={"rooms": {"hall", "attic"}})
    assert err.value.translation_key == "data_not_json"
    assert apns_server.pushes == []


async def test_no_push_after_the_hub_closed(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    hub = loaded_entry.runtime_data
    backend = hub.backends["apns_device"]
    device = hub.devices[_subentry_id(loaded_entry, "Alice")]
    await hass.config_entries.async_unload(loaded_entry.entry_id)
    # An attempt that outlives a reload must not open a new, unowned pool; the
    # push stays in the outbox for the reloaded hub.
    delivery = await backend.async_send(device, Message(message="late"))
    assert (delivery.outcome, delivery.reason) == (Outcome.FAILED, "hub_closed")
    assert delivery.retryable
    assert apns_server.connections_made == 0


async def test_target_field_offers_the_group_words(hass: HomeAssistant) -> None:
    """The action editor offers admin and everyone, and takes any other text."""
    services = await hass.async_add_executor_job(load_yaml_dict, str(SERVICES_YAML))
    field = services["send"]["fields"]["target"]
    select = selector.validate_selector(field["selector"])["select"]
    assert select["options"] == ["admin", "everyone"]
    assert select["multiple"] is True
    assert select["custom_value"] is True
    # What the selector gives is what the action takes.
    assert selector.selector(field["selector"])(["everyone", "Alice"]) == [
        "everyone",
        "Alice",
    ]
