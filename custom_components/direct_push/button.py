"""The hub's button that makes a pairing code, for people who prefer a button to an action."""

from __future__ import annotations

from typing import override

from homeassistant.components import persistent_notification
from homeassistant.components.button import ButtonEntity
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .device_api import async_create_pairing_code
from .entity import DirectPushEntity, hub_device_info
from .hub import DirectPushConfigEntry

PAIRING_NOTIFICATION = "direct_push_pairing_code"


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DirectPushConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the hub's pairing button."""
    async_add_entities([PairingCodeButton(entry)])


class PairingCodeButton(DirectPushEntity, ButtonEntity):
    """Makes a one-time pairing code and shows it as a notification."""

    _attr_translation_key = "create_pairing_code"
    _attr_entity_category = EntityCategory.CONFIG

    def __init__(self, entry: DirectPushConfigEntry) -> None:
        """Belong to the hub's own device."""
        super().__init__(entry, "create_pairing_code")
        self._attr_device_info = hub_device_info(entry)

    @override
    async def async_press(self) -> None:
        made = await async_create_pairing_code(self.hass, self._context)
        # Shown to whoever pressed it: only admins can (the code's own check).
        persistent_notification.async_create(
            self.hass,
            f"Pairing code: **{made['code']}**, valid once until {made['expires_at']}.\n\n"
            f"Link for a QR code: `{made['url']}`",
            title="Direct Push pairing code",
            notification_id=PAIRING_NOTIFICATION,
        )
