"""Base entity for Direct Push."""

from __future__ import annotations

from typing import Any, Final, cast

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity

from .backend import Device
from .backends import BACKENDS
from .const import DOMAIN
from .hub import DirectPushConfigEntry, DirectPushHub, entity_unique_id

# HA 2026.8 links a device to its hub by the hub's registry id and deprecates
# the link by identifiers, the only one older versions know.
_LINK_BY_DEVICE_ID: Final = "via_device_id" in DeviceInfo.__optional_keys__


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
def async_behind_hub(
    hass: HomeAssistant, entry: DirectPushConfigEntry, device_info: DeviceInfo
) -> DeviceInfo:
    """Return device_info linked to the hub's device, registering the hub first."""
    link: dict[str, Any]
    if _LINK_BY_DEVICE_ID:
        hub = dr.async_get(hass).async_get_or_create(
            config_entry_id=entry.entry_id, **hub_device_info(entry)
        )
        link = {"via_device_id": hub.id}
    else:
        link = {"via_device": (DOMAIN, entry.entry_id)}
    return cast(DeviceInfo, {**device_info, **link})


@callback
def async_device_info(
    hass: HomeAssistant, entry: DirectPushConfigEntry, device: Device
) -> DeviceInfo:
    """Return a configured device's own HA device, behind the hub's."""
    return async_behind_hub(
        hass,
        entry,
        DeviceInfo(
            identifiers={(DOMAIN, device.device_id)},
            name=device.name,
            manufacturer="Direct Push",
            model=BACKENDS[device.kind].model,
        ),
    )


class DirectPushEntity(Entity):
    """An entity of the hub."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, entry: DirectPushConfigEntry, key: str) -> None:
        """Set the unique id from the entry and a key."""
        self.hub: DirectPushHub = entry.runtime_data
        self._attr_unique_id = entity_unique_id(entry.entry_id, key)
