"""Notify entities per device and per group, and the legacy notify service."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, override

from homeassistant.components.notify import (
    ATTR_TITLE_DEFAULT,
    NotifyEntity,
    NotifyEntityFeature,
)
from homeassistant.components.notify.const import ATTR_DATA, ATTR_TARGET, ATTR_TITLE
from homeassistant.components.notify.legacy import BaseNotificationService
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import ConfigType, DiscoveryInfoType
from homeassistant.util import slugify
import voluptuous as vol

from .backend import Device
from .const import DOMAIN
from .entity import DirectPushEntity, async_add_device_entities, hub_device_info
from .hub import DirectPushConfigEntry
from .routing import GROUPS
from .services import (
    ATTR_MESSAGE,
    LEGACY_DATA_SCHEMA,
    async_resolve_targets,
    async_send_message,
    async_wait_hub,
    raise_if_all_failed,
)

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DirectPushConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add one entity per device, and the Admins and Everyone groups."""
    async_add_entities(
        DirectPushGroupEntity(entry, key, group) for key, group in GROUPS.items()
    )
    await async_add_device_entities(
        hass,
        entry,
        async_add_entities,
        lambda device_id, _, device_info: [
            DirectPushDeviceEntity(entry, device_id, device_info)
        ],
    )


class _DirectPushNotifyEntity(DirectPushEntity, NotifyEntity):
    _attr_supported_features = NotifyEntityFeature.TITLE

    @abstractmethod
    def _devices(self) -> list[Device]:
        """Return the devices this entity sends to."""

    @override
    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """Send to this entity's devices; raise if none received it."""
        devices = self._devices()
        if not devices:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="no_devices",
                translation_placeholders={"entity_id": self.entity_id},
            )
        sent = await async_send_message(
            self.hub, devices, {ATTR_MESSAGE: message, ATTR_TITLE: title}
        )
        raise_if_all_failed(sent.reports)


class DirectPushDeviceEntity(_DirectPushNotifyEntity):
    """Send to one device."""

    _attr_name = None

    def __init__(
        self, entry: DirectPushConfigEntry, device_id: str, device_info: DeviceInfo
    ) -> None:
        """Attach the entity to the device's own HA device."""
        super().__init__(entry, device_id)
        self._device_id = device_id
        self._attr_device_info = device_info
        # Its lease ended: the hub is set up again when that changes.
        self._attr_available = not self.hub.lease_expired(device_id)

    @override
    def _devices(self) -> list[Device]:
        # Its own device, without resolving a target; as the hub has it now
        # (a backend may have updated its data).
        return [self.hub.devices[self._device_id]]


class DirectPushGroupEntity(_DirectPushNotifyEntity):
    """Send to the admins, or to everyone, at once."""

    def __init__(self, entry: DirectPushConfigEntry, key: str, target: str) -> None:
        """Attach the group to the hub's device."""
        super().__init__(entry, key)
        self._target = target
        self._attr_translation_key = key
        self._attr_device_info = hub_device_info(entry)

    @override
    def _devices(self) -> list[Device]:
        return self.hub.resolve([self._target])


async def async_get_service(
    hass: HomeAssistant,
    config: ConfigType,
    discovery_info: DiscoveryInfoType | None = None,
) -> DirectPushNotificationService:
    """Return the legacy notify.direct_push service."""
    return DirectPushNotificationService()


class DirectPushNotificationService(BaseNotificationService):
    """notify.direct_push, for YAML automations, alert: and notify groups."""

    @property
    @override
    def targets(self) -> dict[str, str]:
        """Return a notify.direct_push_<name> service per device."""
        entries = self.hass.config_entries.async_loaded_entries(DOMAIN)
        return {
            slugify(device.name): device.device_id
            for entry in entries
            for device in entry.runtime_data.devices.values()
        }

    @override
    async def async_send_message(self, message: str = "", **kwargs: Any) -> None:
        """Send to the targets (default all), with the action's fields in data."""
        try:
            fields = LEGACY_DATA_SCHEMA(kwargs.get(ATTR_DATA) or {})
        except vol.Invalid as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_data",
                translation_placeholders={"error": str(err)},
            ) from err
        if (title := kwargs.get(ATTR_TITLE)) not in (None, ATTR_TITLE_DEFAULT):
            fields[ATTR_TITLE] = title
        hub = await async_wait_hub(self.hass)
        devices = async_resolve_targets(hub, kwargs.get(ATTR_TARGET))
        sent = await async_send_message(hub, devices, {**fields, ATTR_MESSAGE: message})
        raise_if_all_failed(sent.reports)
