"""Sensors: the hub's queued and dropped pushes, each device's last delivery and failure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .entity import DirectPushEntity, async_add_device_entities, hub_device_info
from .health import DeviceHealth, signal_device
from .hub import DirectPushConfigEntry
from .outbox import Outbox, signal_queue

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class HubSensorDescription(SensorEntityDescription):
    """A sensor of the hub's outbox."""

    value_fn: Callable[[Outbox], int]


@dataclass(frozen=True, kw_only=True)
class DeviceSensorDescription(SensorEntityDescription):
    """A sensor of one device's delivery record."""

    value_fn: Callable[[DeviceHealth], StateType | datetime]


HUB_SENSORS: tuple[HubSensorDescription, ...] = (
    HubSensorDescription(
        key="queued_pushes",
        translation_key="queued_pushes",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda outbox: outbox.queued,
    ),
    HubSensorDescription(
        key="dropped_pushes",
        translation_key="dropped_pushes",
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda outbox: outbox.dropped,
    ),
)
DEVICE_SENSORS: tuple[DeviceSensorDescription, ...] = (
    DeviceSensorDescription(
        key="last_delivery",
        translation_key="last_delivery",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        # It changes with every push.
        entity_registry_enabled_default=False,
        value_fn=lambda health: (
            None
            if health.last_delivery is None
            else dt_util.utc_from_timestamp(health.last_delivery)
        ),
    ),
    DeviceSensorDescription(
        key="last_failure",
        translation_key="last_failure",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda health: health.last_failure,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DirectPushConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the hub's sensors, and each device's."""
    async_add_entities(
        DirectPushHubSensor(entry, description) for description in HUB_SENSORS
    )
    await async_add_device_entities(
        hass,
        entry,
        async_add_entities,
        lambda device_id, _, device_info: (
            DirectPushDeviceSensor(entry, device_id, device_info, description)
            for description in DEVICE_SENSORS
        ),
    )


class DirectPushHubSensor(DirectPushEntity, SensorEntity):
    """A count of the hub's outbox."""

    entity_description: HubSensorDescription

    def __init__(
        self, entry: DirectPushConfigEntry, description: HubSensorDescription
    ) -> None:
        """Attach the sensor to the hub's device."""
        super().__init__(entry, description.key)
        self.entity_description = description
        self._attr_device_info = hub_device_info(entry)

    @property
    @override
    def native_value(self) -> int:
        return self.entity_description.value_fn(self.hub.outbox)

    @override
    async def async_added_to_hass(self) -> None:
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_queue(self.hub.entry.entry_id),
                self.async_write_ha_state,
            )
        )


class DirectPushDeviceSensor(DirectPushEntity, SensorEntity):
    """What the last attempts to one device did."""

    entity_description: DeviceSensorDescription

    def __init__(
        self,
        entry: DirectPushConfigEntry,
        device_id: str,
        device_info: DeviceInfo,
        description: DeviceSensorDescription,
    ) -> None:
        """Attach the sensor to the device's own HA device."""
        super().__init__(entry, f"{device_id}_{description.key}")
        self.entity_description = description
        self._device_id = device_id
        self._attr_device_info = device_info
        self._attr_available = not self.hub.lease_expired(device_id)
        self._written: StateType | datetime = None

    @property
    @override
    def native_value(self) -> StateType | datetime:
        return self.entity_description.value_fn(self.hub.health.get(self._device_id))

    @override
    async def async_added_to_hass(self) -> None:
        self._written = self.native_value
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_device(self.hub.entry.entry_id, self._device_id),
                self._async_record_changed,
            )
        )

    @callback
    def _async_record_changed(self) -> None:
        # Every attempt changes the record; most leave this sensor's value as it was.
        if (value := self.native_value) != self._written:
            self._written = value
            self.async_write_ha_state()
