"""The hub's route index: the same targets reach the same devices as the registries change."""

from __future__ import annotations

import itertools
from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.direct_push.const import DOMAIN
from custom_components.direct_push.hub import DirectPushHub

from .apns_server import ApnsServer
from .conftest import (
    ALICE_TOKEN,
    BOB_TOKEN,
    CAROL_TOKEN,
    apns_device,
    ha_device_id,
    notify_entity_id,
    send_rows,
    subentry_id,
)


def _targets(hass: HomeAssistant, entry: MockConfigEntry) -> list[str]:
    """Every way to name each device and group now."""
    targets = ["all", "admin", "everyone", "Admins", "", "nobody"]
    targets += [notify_entity_id(hass, entry, key) for key in ("admins", "everyone")]
    targets.append(ha_device_id(hass, entry, entry.entry_id))
    for device_id, subentry in entry.subentries.items():
        targets += [
            subentry.title,
            subentry.title.upper(),
            device_id,
            ha_device_id(hass, entry, device_id),
            notify_entity_id(hass, entry, device_id),
        ]
    return targets


def _outcome(hub: DirectPushHub, targets: list[str]) -> tuple[str, ...]:
    """The names of the devices reached, or the error's placeholder."""
    try:
        return tuple(device.name for device in hub.resolve(targets))
    except ServiceValidationError as err:
        placeholders = err.translation_placeholders or {}
        return (err.translation_key or "", placeholders.get("targets", ""))


def assert_same_as_fresh(
    hass: HomeAssistant, entry: MockConfigEntry, targets: list[str]
) -> None:
    """The loaded hub's kept index routes as one built from the registries now."""
    hub: DirectPushHub = entry.runtime_data
    fresh = DirectPushHub(hass, entry, hub.backends)
    for target in targets:
        assert _outcome(hub, [target]) == _outcome(fresh, [target]), target
    # And all of them at once, and in pairs.
    assert _outcome(hub, targets) == _outcome(fresh, targets)
    for first, second in itertools.pairwise(targets):
        assert _outcome(hub, [first, second]) == _outcome(fresh, [first, second])


async def _send(hass: HomeAssistant, target: Any) -> list[str]:
    return [row["device"] for row in await send_rows(hass, message="Hi", target=target)]


async def test_renamed_entity_ids(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    """A notify entity renamed in the registry is a target by its new id only."""
    bob = subentry_id(loaded_entry, "Bob")
    old = notify_entity_id(hass, loaded_entry, bob)
    old_admins = notify_entity_id(hass, loaded_entry, "admins")
    before = _targets(hass, loaded_entry)
    assert await _send(hass, old) == ["Bob"]

    registry = er.async_get(hass)
    registry.async_update_entity(old, new_entity_id="notify.bobs_phone")
    registry.async_update_entity(old_admins, new_entity_id="notify.the_admins")
    await hass.async_block_till_done()

    assert await _send(hass, "notify.bobs_phone") == ["Bob"]
    assert await _send(hass, "notify.the_admins") == ["Alice"]
    for gone in (old, old_admins):
        with pytest.raises(ServiceValidationError) as err:
            await _send(hass, gone)
        assert err.value.translation_key == "unknown_target"
    assert [push.token for push in apns_server.pushes] == [
        BOB_TOKEN,
        BOB_TOKEN,
        ALICE_TOKEN,
    ]
    assert_same_as_fresh(hass, loaded_entry, before + _targets(hass, loaded_entry))


async def test_devices_added_renamed_and_removed(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    """Each device change reloads the hub; its index follows."""
    seen = _targets(hass, loaded_entry)
    assert await _send(hass, "Bob") == ["Bob"]

    carol = apns_device("Carol", CAROL_TOKEN, admin=True)
    hass.config_entries.async_add_subentry(
        loaded_entry,
        ConfigSubentry(
            data=MappingProxyType(carol["data"]),
            subentry_type=carol["subentry_type"],
            title=carol["title"],
            unique_id=None,
        ),
    )
    await hass.async_block_till_done()
    carol_id = subentry_id(loaded_entry, "Carol")
    seen += _targets(hass, loaded_entry)
    assert await _send(hass, "carol") == ["Carol"]
    assert await _send(hass, ha_device_id(hass, loaded_entry, carol_id)) == ["Carol"]
    assert await _send(hass, "admin") == ["Alice", "Carol"]
    assert_same_as_fresh(hass, loaded_entry, seen)

    hass.config_entries.async_update_subentry(
        loaded_entry, loaded_entry.subentries[carol_id], title="Caroline"
    )
    await hass.async_block_till_done()
    seen += _targets(hass, loaded_entry)
    assert await _send(hass, "Caroline") == ["Caroline"]
    with pytest.raises(ServiceValidationError):
        await _send(hass, "Carol")
    assert_same_as_fresh(hass, loaded_entry, seen)

    bob_id = subentry_id(loaded_entry, "Bob")
    bob_ha_id = ha_device_id(hass, loaded_entry, bob_id)
    assert hass.config_entries.async_remove_subentry(loaded_entry, bob_id)
    await hass.async_block_till_done()
    for gone in ("Bob", bob_id, bob_ha_id):
        with pytest.raises(ServiceValidationError):
            await _send(hass, gone)
    assert await _send(hass, None) == ["Alice", "Caroline"]
    assert_same_as_fresh(hass, loaded_entry, seen)
    assert [push.token for push in apns_server.pushes] == [
        BOB_TOKEN,
        CAROL_TOKEN,
        CAROL_TOKEN,
        ALICE_TOKEN,
        CAROL_TOKEN,
        CAROL_TOKEN,
        ALICE_TOKEN,
        CAROL_TOKEN,
    ]


async def test_ha_device_removed_from_the_registry(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    """A device removed in Home Assistant is no longer a target by its HA ids."""
    alice_id = subentry_id(loaded_entry, "Alice")
    alice_ha_id = ha_device_id(hass, loaded_entry, alice_id)
    alice_entity = notify_entity_id(hass, loaded_entry, alice_id)
    before = _targets(hass, loaded_entry)
    assert await _send(hass, alice_ha_id) == ["Alice"]

    dr.async_get(hass).async_remove_device(alice_ha_id)
    await hass.async_block_till_done()

    for gone in (alice_ha_id, alice_entity):
        with pytest.raises(ServiceValidationError):
            await _send(hass, gone)
    # By name, as the hub still has the device.
    assert await _send(hass, "Alice") == ["Alice"]
    assert_same_as_fresh(hass, loaded_entry, before)

    # Back in the registry (Home Assistant gives it its old id back).
    again = dr.async_get(hass).async_get_or_create(
        config_entry_id=loaded_entry.entry_id,
        identifiers={(DOMAIN, alice_id)},
        manufacturer="Direct Push",
        name="Alice",
    )
    await hass.async_block_till_done()
    assert await _send(hass, again.id) == ["Alice"]
    # And its notify entity, as the registry records it.
    entity = er.async_get(hass).async_get_or_create(
        Platform.NOTIFY,
        DOMAIN,
        f"{loaded_entry.entry_id}_{alice_id}",
        config_entry=loaded_entry,
        device_id=again.id,
        suggested_object_id="alice_again",
    )
    await hass.async_block_till_done()
    assert await _send(hass, entity.entity_id) == ["Alice"]
    assert_same_as_fresh(hass, loaded_entry, [*before, again.id, entity.entity_id])
    assert [push.token for push in apns_server.pushes] == [ALICE_TOKEN] * 4


def _index_in_use(entry: MockConfigEntry) -> tuple[DirectPushHub, object]:
    """Send once, so the hub builds its index; return the hub and the index."""
    hub: DirectPushHub = entry.runtime_data
    hub.resolve(["Alice"])
    assert hub._routes is not None
    return hub, hub._routes


async def test_other_integrations_leave_the_index(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Registry changes elsewhere cost no rebuild; ours do."""
    hub, routes = _index_in_use(loaded_entry)

    other = MockConfigEntry(domain="other")
    other.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=other.entry_id, identifiers={("other", "lamp")}
    )
    entity = er.async_get(hass).async_get_or_create(
        "light", "other", "lamp", config_entry=other, device_id=device.id
    )
    er.async_get(hass).async_update_entity(
        entity.entity_id, new_entity_id="light.lamp_2"
    )
    er.async_get(hass).async_remove("light.lamp_2")
    dr.async_get(hass).async_remove_device(device.id)
    await hass.async_block_till_done()
    assert hub._routes is routes

    # Our own entity's change, even one that changes no id, rebuilds.
    er.async_get(hass).async_update_entity(
        notify_entity_id(hass, loaded_entry, subentry_id(loaded_entry, "Bob")),
        name="Bob's phone",
    )
    await hass.async_block_till_done()
    assert hub._routes is None
    assert hub.resolve(["Bob"])[0].name == "Bob"
    assert hub._routes is not None


async def test_index_is_built_once_between_changes(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    hub, routes = _index_in_use(loaded_entry)
    for target in ("Bob", "all", "admin"):
        hub.resolve([target])
    assert hub._routes is routes


async def test_unloaded_hub_stops_listening(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    hub, routes = _index_in_use(loaded_entry)
    alice_entity = notify_entity_id(
        hass, loaded_entry, subentry_id(loaded_entry, "Alice")
    )
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    er.async_get(hass).async_update_entity(alice_entity, name="Alice's phone")
    await hass.async_block_till_done()
    assert hub._routes is routes
