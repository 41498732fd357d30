"""Base entity for Direct Push."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity

from .const import DOMAIN
from .hub import DirectPushConfigEntry, DirectPushHub, entity_unique_id


def hub_device_info(entry: DirectPushConfigEntry) -> DeviceInfo:
    """Return the hub's own device, which the group entities belong to."""
    return DeviceInfo(
        entry_type=DeviceEntryType.SERVICE,
        identifiers={(DOMAIN, entry.entry_id)},
        manufacturer="Direct Push",
        name=entry.title,
    )


class DirectPushEntity(Entity):
    """An entity of the hub."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, entry: DirectPushConfigEntry, key: str) -> None:
        """Set the unique id from the entry and a key."""
        self.hub: DirectPushHub = entry.runtime_data
        self._attr_unique_id = entity_unique_id(entry.entry_id, key)
