"""Each device's entities: added under its subentry, behind the hub, in slices of the loop."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.direct_push import entity
from custom_components.direct_push.const import DOMAIN

from .apns_server import ApnsServer, ApnsTestCredentials
from .conftest import apns_device, token_entry_data

DEVICES = 40


async def test_every_device_gets_its_entities_behind_the_hub(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Yielding to the loop after every device loses none and mixes none up."""
    monkeypatch.setattr(entity, "_ADD_SLICE", 0.0)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Direct Push",
        data=token_entry_data(apns_credentials),
        subentries_data=[
            apns_device(f"Phone {index}", f"{index:064x}") for index in range(DEVICES)
        ],
        minor_version=2,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    ha_devices = {
        identifier: device
        for device in dr.async_entries_for_config_entry(device_registry, entry.entry_id)
        for _, identifier in device.identifiers
    }
    assert len(ha_devices) == DEVICES + 1
    hub = ha_devices[entry.entry_id]
    for subentry_id, subentry in entry.subentries.items():
        device = ha_devices[subentry_id]
        assert (device.name, device.via_device_id) == (subentry.title, hub.id)
        entities = er.async_entries_for_device(
            entity_registry, device.id, include_disabled_entities=True
        )
        assert {entity.config_subentry_id for entity in entities} == {subentry_id}
        assert sorted(entity.domain for entity in entities) == [
            "notify",
            "sensor",
            "sensor",
        ]
    assert await hass.config_entries.async_unload(entry.entry_id)
