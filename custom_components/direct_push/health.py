"""Each device's delivery record: last delivery, last failure, and hosts that stay away."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util import dt as dt_util

from .backend import Delivery, Device, Outcome
from .const import DOMAIN, LOGGER
from .issues import async_create_unreachable_issue, async_delete_unreachable_issue


def signal_device(entry_id: str, device_id: str) -> str:
    """Return the signal that a device's record changed."""
    return f"{DOMAIN}_{entry_id}_{device_id}_health"


@dataclass(slots=True)
class DeviceHealth:
    """What the last attempts to one device did."""

    last_delivery: float | None = None
    last_failure: str | None = None
    last_failure_at: float | None = None
    unreachable_since: float | None = None
    """The first of an unbroken run of connection, DNS or TLS failures, or timeouts."""

    @property
    def failing(self) -> bool:
        """Return True when the last attempt failed."""
        return self.last_failure_at is not None and (
            self.last_delivery is None or self.last_failure_at > self.last_delivery
        )


class Health:
    """The delivery records of one hub's devices."""

    def __init__(
        self, hass: HomeAssistant, entry_id: str, unreachable_days: int
    ) -> None:
        """Raise a repair once a device has been unreachable for unreachable_days."""
        self._hass = hass
        self._entry_id = entry_id
        self._unreachable_days = unreachable_days
        self._records: dict[str, DeviceHealth] = {}

    def get(self, device_id: str) -> DeviceHealth:
        """Return a device's record; an empty one for a device never tried."""
        return self._records.get(device_id) or DeviceHealth()

    @callback
    def async_load(self, data: dict[str, Any], devices: Mapping[str, Device]) -> None:
        """Restore the records; forget removed devices and their repairs."""
        for device_id, record in data.items():
            if device_id in devices:
                self._records[device_id] = DeviceHealth(**record)
            else:
                async_delete_unreachable_issue(self._hass, device_id)

    def as_dict(self) -> dict[str, Any]:
        """Return the records as stored."""
        return {
            device_id: asdict(record) for device_id, record in self._records.items()
        }

    @callback
    def async_record(self, device: Device, delivery: Delivery, now: float) -> None:
        """Note an attempt's outcome; log a device going and coming back once each."""
        record = self._records.setdefault(device.device_id, DeviceHealth())
        if delivery.ok:
            if record.failing:
                LOGGER.info("%s receives pushes again", device.name)
            record.last_delivery = now
            record.unreachable_since = None
            async_delete_unreachable_issue(self._hass, device.device_id)
        else:
            if not record.failing:
                LOGGER.warning(
                    "Pushes to %s fail (%s); those worth retrying are kept and "
                    "retried within their time to live",
                    device.name,
                    delivery.reason,
                )
            record.last_failure = delivery.reason
            record.last_failure_at = now
            if delivery.outcome is not Outcome.UNREACHABLE:
                # The service answered: its host is there.
                record.unreachable_since = None
            else:
                if record.unreachable_since is None:
                    record.unreachable_since = now
                if now - record.unreachable_since >= self._unreachable_days * 86400:
                    async_create_unreachable_issue(
                        self._hass,
                        device.device_id,
                        device.name,
                        self._unreachable_days,
                        None
                        if record.last_delivery is None
                        else dt_util.as_local(
                            dt_util.utc_from_timestamp(record.last_delivery)
                        ).strftime("%Y-%m-%d"),
                    )
        async_dispatcher_send(
            self._hass, signal_device(self._entry_id, device.device_id)
        )
