"""Notify entities and the legacy notify.direct_push service, end to end."""

from __future__ import annotations

from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.notify import ATTR_TITLE_DEFAULT, NotifyEntityFeature
from homeassistant.components.notify.const import DOMAIN as NOTIFY_DOMAIN
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import (
    ATTR_FRIENDLY_NAME,
    ATTR_SUPPORTED_FEATURES,
    STATE_UNKNOWN,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.direct_push.const import DOMAIN

from .apns_server import ApnsServer, ApnsTestCredentials
from .conftest import (
    ALICE_TOKEN,
    BOB_TOKEN,
    apns_device,
    setup_platform_hub,
    snapshot_platform,
)
from .webpush_server import WebPushServer

GROUPS = {
    "notify.direct_push_admins": "Admins",
    "notify.direct_push_everyone": "Everyone",
}


def subentry_id(entry: MockConfigEntry, title: str) -> str:
    """Return the id of the device subentry with this title."""
    subentries: dict[str, ConfigSubentry] = entry.subentries
    return next(s.subentry_id for s in subentries.values() if s.title == title)


async def send_message(hass: HomeAssistant, entity_id: str, **data: Any) -> None:
    """Call notify.send_message on one entity."""
    await hass.services.async_call(
        NOTIFY_DOMAIN,
        "send_message",
        {"entity_id": entity_id, "message": "Ding dong", **data},
        blocking=True,
    )


async def legacy_notify(
    hass: HomeAssistant, service: str = DOMAIN, /, **data: Any
) -> None:
    """Call a legacy notify service."""
    await hass.services.async_call(
        NOTIFY_DOMAIN, service, {"message": "Ding dong", **data}, blocking=True
    )


async def test_entities(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    ha_devices = {
        identifier: device
        for device in dr.async_entries_for_config_entry(
            device_registry, loaded_entry.entry_id
        )
        for _, identifier in device.identifiers
    }
    hub = ha_devices[loaded_entry.entry_id]
    assert hub.entry_type is dr.DeviceEntryType.SERVICE
    assert (hub.manufacturer, hub.model) == ("Direct Push", "Push hub")
    for name in ("Alice", "Bob"):
        device_id = subentry_id(loaded_entry, name)
        entity_id = f"notify.{name.lower()}"
        state = hass.states.get(entity_id)
        assert state is not None
        assert state.state == STATE_UNKNOWN
        assert state.attributes[ATTR_FRIENDLY_NAME] == name
        assert state.attributes[ATTR_SUPPORTED_FEATURES] == NotifyEntityFeature.TITLE
        entity = entity_registry.async_get(entity_id)
        assert entity is not None
        assert entity.config_subentry_id == device_id
        # Each phone is its own HA device, behind the hub.
        device = ha_devices[device_id]
        assert entity.device_id == device.id
        assert device.identifiers == {(DOMAIN, device_id)}
        assert device.name == name
        assert device.model == "Apple push (APNs)"
        assert device.via_device_id == hub.id
    for entity_id, name in GROUPS.items():
        state = hass.states.get(entity_id)
        assert state is not None
        assert state.attributes[ATTR_FRIENDLY_NAME] == f"Direct Push {name}"
        assert state.attributes[ATTR_SUPPORTED_FEATURES] == NotifyEntityFeature.TITLE
        entity = entity_registry.async_get(entity_id)
        assert entity is not None
        assert entity.device_id == hub.id
        assert entity.config_subentry_id is None


async def test_notify_platform(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    webpush_server: WebPushServer,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Every notify entity of a hub with both kinds of device, as core's ntfy does."""
    entry = await setup_platform_hub(
        hass, apns_credentials, webpush_server, Platform.NOTIFY
    )
    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)
    await hass.config_entries.async_unload(entry.entry_id)


async def test_device_entity_sends_and_records_time(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    freezer.move_to("2026-03-04T05:06:07+00:00")
    await send_message(hass, "notify.bob", title="Doorbell")
    [push] = apns_server.pushes
    assert push.token == BOB_TOKEN
    assert push.payload["aps"]["alert"] == {"title": "Doorbell", "body": "Ding dong"}
    state = hass.states.get("notify.bob")
    assert state is not None
    assert state.state == "2026-03-04T05:06:07+00:00"
    alice = hass.states.get("notify.alice")
    assert alice is not None
    assert alice.state == STATE_UNKNOWN


async def test_device_entity_without_title(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    await send_message(hass, "notify.alice")
    [push] = apns_server.pushes
    assert push.payload["aps"]["alert"] == {"body": "Ding dong"}


@pytest.mark.parametrize(
    ("entity_id", "tokens"),
    [
        ("notify.direct_push_admins", [ALICE_TOKEN]),
        ("notify.direct_push_everyone", [ALICE_TOKEN, BOB_TOKEN]),
    ],
)
async def test_group_entity_fans_out(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    entity_id: str,
    tokens: list[str],
) -> None:
    await send_message(hass, entity_id, title="House")
    assert sorted(push.token for push in apns_server.pushes) == sorted(tokens)
    assert all(
        p.payload["aps"]["alert"]["title"] == "House" for p in apns_server.pushes
    )
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.state != STATE_UNKNOWN


async def test_failed_delivery_raises(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    apns_server.script(BOB_TOKEN, 400, "BadTopic")
    with pytest.raises(HomeAssistantError) as err:
        await send_message(hass, "notify.bob")
    assert err.value.translation_key == "send_failed"
    assert err.value.translation_placeholders == {"failures": "Bob (BadTopic)"}


async def test_group_with_one_failure_succeeds(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    apns_server.script(BOB_TOKEN, 400, "BadTopic")
    await send_message(hass, "notify.direct_push_everyone")
    assert [push.token for push in apns_server.pushes] == [ALICE_TOKEN]


@pytest.mark.parametrize("devices", [[apns_device("Bob", BOB_TOKEN)]])
async def test_admins_without_admins(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await send_message(hass, "notify.direct_push_admins")
    assert err.value.translation_key == "no_devices"
    assert err.value.translation_placeholders == {
        "entity_id": "notify.direct_push_admins"
    }
    assert not apns_server.pushes


async def test_legacy_services(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    services = hass.services.async_services_for_domain(NOTIFY_DOMAIN)
    assert {DOMAIN, f"{DOMAIN}_alice", f"{DOMAIN}_bob"} <= services.keys()
    # mobile_app's catch-all name stays free.
    assert "notify" not in services


@pytest.mark.parametrize(
    ("target", "tokens"),
    [
        (None, [ALICE_TOKEN, BOB_TOKEN]),
        (["bob"], [BOB_TOKEN]),
        (["Alice", "BOB"], [ALICE_TOKEN, BOB_TOKEN]),
        (["admin"], [ALICE_TOKEN]),
        (["notify.bob"], [BOB_TOKEN]),
    ],
)
async def test_legacy_targets(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    target: list[str] | None,
    tokens: list[str],
) -> None:
    await legacy_notify(hass, **({"target": target} if target else {}))
    assert sorted(push.token for push in apns_server.pushes) == sorted(tokens)


async def test_legacy_target_by_ha_device_id(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    device_registry: dr.DeviceRegistry,
) -> None:
    # What a device selector in an automation gives.
    [bob] = [
        device
        for device in dr.async_entries_for_config_entry(
            device_registry, loaded_entry.entry_id
        )
        if device.name == "Bob"
    ]
    await legacy_notify(hass, target=[bob.id])
    assert [push.token for push in apns_server.pushes] == [BOB_TOKEN]


async def test_legacy_per_device_service(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    # The service's own device wins over a target in the call, as in HA's legacy notify.
    await legacy_notify(hass, f"{DOMAIN}_bob", target=["Alice"])
    assert [push.token for push in apns_server.pushes] == [BOB_TOKEN]


async def test_legacy_unknown_target(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await legacy_notify(hass, target=["Bob", "Dave"])
    assert err.value.translation_key == "unknown_target"
    assert err.value.translation_placeholders == {"targets": "Dave"}
    assert not apns_server.pushes


async def test_legacy_data_fields(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    await legacy_notify(
        hass,
        target="Alice",
        title="Doorbell",
        data={
            "subtitle": "Front",
            "tag": "door",
            "interruption_level": "time-sensitive",
            "url": "/lovelace/door",
            "badge": "3",
            "data": {"camera": "camera.front"},
        },
    )
    [push] = apns_server.pushes
    assert push.collapse_id == "door"
    assert push.payload == {
        "aps": {
            "alert": {"title": "Doorbell", "subtitle": "Front", "body": "Ding dong"},
            "interruption-level": "time-sensitive",
            "badge": 3,
            # No sound option set: alerts play the standard sound.
            "sound": "default",
        },
        "url": "/lovelace/door",
        "camera": "camera.front",
    }


@pytest.mark.parametrize(
    "data",
    [
        {"colour": "red"},
        {"badge": -1},
        {"interruption_level": "loud"},
        {"data": "not a mapping"},
    ],
)
async def test_legacy_invalid_data(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    data: dict[str, Any],
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await legacy_notify(hass, data=data)
    assert err.value.translation_key == "invalid_data"
    assert not apns_server.pushes


async def test_legacy_message_rules_apply(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await legacy_notify(hass, data={"data": {"aps": {"badge": 1}}})
    assert err.value.translation_key == "reserved_data_key"
    assert not apns_server.pushes


@pytest.mark.parametrize(
    ("title", "alert"),
    [
        # HA's placeholder title is what a caller gets without asking for one.
        (ATTR_TITLE_DEFAULT, {"body": "Ding dong"}),
        ("Doorbell", {"title": "Doorbell", "body": "Ding dong"}),
    ],
)
async def test_legacy_default_title_is_not_sent(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    title: str,
    alert: dict[str, str],
) -> None:
    await legacy_notify(hass, title=title, target="Bob")
    [push] = apns_server.pushes
    assert push.payload["aps"]["alert"] == alert


async def test_legacy_all_failed_raises(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    apns_server.script(ALICE_TOKEN, 400, "BadTopic")
    with pytest.raises(HomeAssistantError) as err:
        await legacy_notify(hass, target="Alice")
    assert err.value.translation_key == "send_failed"


async def test_yaml_notify_group(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    config_entry: MockConfigEntry,
) -> None:
    # YAML notify platforms are read once, when notify sets up: before the hub.
    assert await async_setup_component(
        hass,
        NOTIFY_DOMAIN,
        {
            NOTIFY_DOMAIN: [
                {
                    "platform": "group",
                    "name": "family",
                    "services": [
                        {"action": DOMAIN, "data": {"target": ["Bob"]}},
                        {"action": f"{DOMAIN}_alice"},
                    ],
                }
            ]
        },
    )
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()

    await legacy_notify(hass, "family", title="Dinner", data={"tag": "dinner"})
    assert sorted(push.token for push in apns_server.pushes) == [ALICE_TOKEN, BOB_TOKEN]
    for push in apns_server.pushes:
        assert push.collapse_id == "dinner"
        assert push.payload["aps"]["alert"] == {"title": "Dinner", "body": "Ding dong"}
    await hass.config_entries.async_unload(config_entry.entry_id)


async def test_alert(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    hass.states.async_set("binary_sensor.garage", "off")
    assert await async_setup_component(
        hass,
        "alert",
        {
            "alert": {
                "garage": {
                    "name": "Garage",
                    "entity_id": "binary_sensor.garage",
                    "repeat": 30,
                    "title": "Garage",
                    "message": "The garage is open",
                    "notifiers": [DOMAIN],
                    "data": {"tag": "garage", "interruption_level": "time-sensitive"},
                }
            }
        },
    )
    hass.states.async_set("binary_sensor.garage", "on")
    await hass.async_block_till_done()
    # Closing the garage stops the repeat timer.
    hass.states.async_set("binary_sensor.garage", "off")
    await hass.async_block_till_done()

    # One alert, to every device; none when the garage closes.
    assert sorted(push.token for push in apns_server.pushes) == [ALICE_TOKEN, BOB_TOKEN]
    for push in apns_server.pushes:
        assert push.collapse_id == "garage"
        assert push.payload["aps"]["alert"] == {
            "title": "Garage",
            "body": "The garage is open",
        }
        assert push.payload["aps"]["interruption-level"] == "time-sensitive"
