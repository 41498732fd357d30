"""The reporter group's members, one connectivity sensor each, on the hub's device."""

from __future__ import annotations

import time
from typing import Any, override

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import DirectPushEntity, hub_device_info
from .hub import DirectPushConfigEntry
from .reporter import Reporter, signal_members

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DirectPushConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a sensor for each member of the group as it is first heard."""
    if (reporter := entry.runtime_data.reporter) is None:
        return
    known: set[str] = set()

    @callback
    def _async_add_new() -> None:
        new = [m for m in reporter.group.members() if m.instance_id not in known]
        known.update(m.instance_id for m in new)
        if new:
            async_add_entities(
                MemberSensor(entry, reporter, m.instance_id, m.name) for m in new
            )

    _async_add_new()
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_members(entry.entry_id), _async_add_new)
    )


class MemberSensor(DirectPushEntity, BinarySensorEntity):
    """On while a member's heartbeats arrive."""

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_translation_key = "member"

    def __init__(
        self,
        entry: DirectPushConfigEntry,
        reporter: Reporter,
        instance_id: str,
        name: str,
    ) -> None:
        """Belong to the hub's device; named after the member."""
        super().__init__(entry, f"member_{instance_id}")
        self._reporter = reporter
        self._instance_id = instance_id
        self._attr_device_info = hub_device_info(entry)
        self._attr_translation_placeholders = {"name": name}

    @override
    async def async_added_to_hass(self) -> None:
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_members(self._reporter.me.instance_id),
                self.async_write_ha_state,
            )
        )

    @property
    @override
    def is_on(self) -> bool:
        now = time.monotonic()
        return any(
            m.instance_id == self._instance_id for m in self._reporter.group.alive(now)
        )

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        member = next(
            m
            for m in self._reporter.group.members()
            if m.instance_id == self._instance_id
        )
        now = time.monotonic()
        return {
            "rank": member.rank,
            "reporting": self._reporter.group.leader(now).instance_id
            == self._instance_id,
        }
