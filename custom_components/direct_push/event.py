"""Each registered device's last answer to a button, for automations to trigger on."""

from __future__ import annotations

from typing import Any, Final, override

from homeassistant.components.event import EventEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .answers import signal_action
from .backend import Device
from .const import CONF_SECRET_HASH
from .entity import DirectPushEntity, async_add_device_entities
from .hub import DirectPushConfigEntry

EVENT_TYPE_ACTION: Final = "action"


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DirectPushConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add an event entity to each device that can answer: those that registered."""

    def make(
        device_id: str, device: Device, device_info: DeviceInfo
    ) -> list[DirectPushActionEvent]:
        if not device.config.get(CONF_SECRET_HASH):
            return []
        return [DirectPushActionEvent(entry, device_id, device_info)]

    await async_add_device_entities(hass, entry, async_add_entities, make)


class DirectPushActionEvent(DirectPushEntity, EventEntity):
    """A device's answers: the button (its id), the message, any text typed."""

    _attr_translation_key = "action"

    def __init__(
        self, entry: DirectPushConfigEntry, device_id: str, device_info: DeviceInfo
    ) -> None:
        """Attach the entity to the device's own HA device."""
        super().__init__(entry, f"{device_id}_action")
        self._device_id = device_id
        self._attr_device_info = device_info
        self._attr_event_types = [EVENT_TYPE_ACTION]

    @override
    async def async_added_to_hass(self) -> None:
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_action(self.hub.entry.entry_id, self._device_id),
                self._async_answered,
            )
        )

    @callback
    def _async_answered(self, answer: dict[str, Any]) -> None:
        self._trigger_event(
            EVENT_TYPE_ACTION,
            {key: answer[key] for key in ("action", "message_id", "text")},
        )
        self.async_write_ha_state()
