"""Each device's delivery record: last delivery, last failure, and hosts that stay away."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util import dt as dt_util

from .backend import Delivery, Device, Outcome
from .const import DOMAIN, LOGGER

_UNREACHABLE_ISSUE_PREFIX: Final = "device_unreachable_"


def unreachable_issue_id(device_id: str) -> str:
    """Return the repair issue id that says a device's push service stays away."""
    return f"{_UNREACHABLE_ISSUE_PREFIX}{device_id}"


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
        self, hass: HomeAssistant, entry_id: str, unreachable_after: float
    ) -> None:
        """Raise a repair once a device is unreachable for unreachable_after seconds."""
        self._hass = hass
        self._entry_id = entry_id
        self._unreachable_after = unreachable_after
        self._records: dict[str, DeviceHealth] = {}

    def get(self, device_id: str) -> DeviceHealth:
        """Return a device's record; an empty one for a device never tried."""
        return self._records.get(device_id) or DeviceHealth()

    @callback
    def async_load(self, data: dict[str, Any], devices: dict[str, Device]) -> None:
        """Restore the records; forget removed devices and their repairs."""
        for device_id, record in data.items():
            if device_id in devices:
                self._records[device_id] = DeviceHealth(**record)
            else:
                ir.async_delete_issue(
                    self._hass, DOMAIN, unreachable_issue_id(device_id)
                )

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
            ir.async_delete_issue(
                self._hass, DOMAIN, unreachable_issue_id(device.device_id)
            )
        else:
            if not record.failing:
                LOGGER.warning(
                    "Pushes to %s fail (%s); each is kept and retried within its time to live",
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
                if now - record.unreachable_since >= self._unreachable_after:
                    self._async_raise_unreachable(device, record)
        async_dispatcher_send(
            self._hass, signal_device(self._entry_id, device.device_id)
        )

    @callback
    def _async_raise_unreachable(self, device: Device, record: DeviceHealth) -> None:
        placeholders = {
            "device": device.name,
            "days": str(round(self._unreachable_after / 86400)),
        }
        if record.last_delivery is None:
            key = "device_unreachable_never"
        else:
            key = "device_unreachable"
            placeholders["last_delivery"] = dt_util.as_local(
                dt_util.utc_from_timestamp(record.last_delivery)
            ).strftime("%Y-%m-%d")
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            unreachable_issue_id(device.device_id),
            is_fixable=False,
            # Kept until a push gets through or the device is removed.
            is_persistent=True,
            severity=ir.IssueSeverity.WARNING,
            translation_key=key,
            translation_placeholders=placeholders,
        )
