"""Base entity for Direct Push."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
import time
from typing import Any, Final, cast

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .backend import Device
from .backends import BACKENDS
from .const import DOMAIN
from .hub import DirectPushConfigEntry, DirectPushHub, entity_unique_id

# HA 2026.8 links a device to its hub by the hub's registry id and deprecates
# the link by identifiers, the only one older versions know.
_LINK_BY_DEVICE_ID: Final = "via_device_id" in DeviceInfo.__optional_keys__
# Adding entities runs in the loop: a platform yields after this many seconds.
_ADD_SLICE: Final = 0.004


def hub_device_info(entry: DirectPushConfigEntry) -> DeviceInfo:
    """Return the hub's own device, which the group entities belong to."""
    return DeviceInfo(
        entry_type=DeviceEntryType.SERVICE,
        identifiers={(DOMAIN, entry.entry_id)},
        manufacturer="Direct Push",
        model="Push hub",
        name=entry.title,
    )


@callback
def _async_hub_link(
    hass: HomeAssistant, entry: DirectPushConfigEntry
) -> dict[str, Any]:
    """Return what links a device to the hub's device, registering the hub first."""
    if _LINK_BY_DEVICE_ID:
        hub = dr.async_get(hass).async_get_or_create(
            config_entry_id=entry.entry_id, **hub_device_info(entry)
        )
        return {"via_device_id": hub.id}
    return {"via_device": (DOMAIN, entry.entry_id)}


def _device_info(device: Device, hub_link: dict[str, Any]) -> DeviceInfo:
    """Return a configured device's own HA device, behind the hub's."""
    return cast(
        DeviceInfo,
        {
            "identifiers": {(DOMAIN, device.device_id)},
            "name": device.name,
            "manufacturer": "Direct Push",
            "model": BACKENDS[device.kind].model,
            **hub_link,
        },
    )


async def async_add_device_entities(
    hass: HomeAssistant,
    entry: DirectPushConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    make: Callable[[str, Device, DeviceInfo], Iterable[Entity]],
) -> None:
    """Add each device's entities (make's) under its subentry, in slices of the loop.

    HA adds a subentry's entities in a call of their own, and the work runs at
    once: a hub of a thousand devices would hold the loop for most of a second.
    """
    hub_link = _async_hub_link(hass, entry)
    slice_end = time.monotonic() + _ADD_SLICE
    for device_id, device in entry.runtime_data.devices.items():
        if entities := list(make(device_id, device, _device_info(device, hub_link))):
            async_add_entities(entities, config_subentry_id=device_id)
        if time.monotonic() >= slice_end:
            await asyncio.sleep(0)
            slice_end = time.monotonic() + _ADD_SLICE


class DirectPushEntity(Entity):
    """An entity of the hub."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, entry: DirectPushConfigEntry, key: str) -> None:
        """Set the unique id from the entry and a key."""
        self.hub: DirectPushHub = entry.runtime_data
        self._attr_unique_id = entity_unique_id(entry.entry_id, key)
