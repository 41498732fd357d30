"""Leases of the devices that registered themselves (device_api).

Such a device holds a lease, which its app renews. A day before the lease
ends the device gets a timeout push telling its app to renew. When it ends,
the device gets no more pushes, its entities become unavailable and a repair
says so; a week later the device is removed. A renewal undoes all of that.

One timer per hub, set for the soonest of these moments: nothing runs per
device between them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
import time
from typing import Any, Final

from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time

from .backend import Device
from .const import CONF_LEASE_EXPIRES, CONF_LEASE_WARNED, LOGGER
from .issues import async_create_lease_issue
from .message import Message, PushKind

DAY: Final = 86400.0
WARN_BEFORE: Final = DAY
GRACE: Final = 7 * DAY


def lease_expires(config: Mapping[str, Any]) -> float | None:
    """Return when a device's lease ends; None for a device an admin added."""
    expires = config.get(CONF_LEASE_EXPIRES)
    return float(expires) if isinstance(expires, int | float) else None


def lease_expired(config: Mapping[str, Any], now: float) -> bool:
    """Return whether the device's lease has ended."""
    return (expires := lease_expires(config)) is not None and now >= expires


def next_moment(config: Mapping[str, Any], now: float) -> float | None:
    """Return when something next happens to this device's lease, if ever."""
    if (expires := lease_expires(config)) is None:
        return None
    warn = expires - WARN_BEFORE
    if config.get(CONF_LEASE_WARNED) == expires:
        warn = now  # announced already: not a moment to wait for
    return min(
        (moment for moment in (warn, expires, expires + GRACE) if moment > now),
        default=None,
    )


def iso(moment: float) -> str:
    """Return a POSIX time as the API and the repairs show it."""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


def timeout_message(device_id: str, reason: str, expires: float | None) -> Message:
    """Return the background push that tells an app its registration ends or ended."""
    data: dict[str, Any] = {"type": "timeout", "device_id": device_id, "reason": reason}
    if expires is not None:
        data["lease_expires_at"] = iso(expires)
    return Message(message="", push_type=PushKind.BACKGROUND, data=data)


class LeaseKeeper:
    """Acts on one hub's leases at their moments."""

    def __init__(
        self,
        hass: HomeAssistant,
        devices: Mapping[str, Device],
        *,
        send: Callable[[Device, Message], Awaitable[object]],
        update: Callable[[str, Mapping[str, Any]], None],
        expired: Callable[[], None],
        remove: Callable[[str], object],
    ) -> None:
        """Use the hub's devices, and its ways to send, store, reload and remove."""
        self._hass = hass
        self._devices = devices
        self._send = send
        self._update = update
        self._expired = expired
        self._remove = remove
        self._timer: CALLBACK_TYPE | None = None
        self._loaded_at = time.time()
        self._job = HassJob(
            self._async_fire, "direct_push lease", cancel_on_shutdown=True
        )

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Act on what is due now and set the timer; return the way to stop."""
        self._hass.async_create_background_task(self._async_run(), "direct_push leases")
        return self._async_stop

    @callback
    def _async_stop(self) -> None:
        if self._timer is not None:
            self._timer()
            self._timer = None

    @callback
    def async_reschedule(self) -> None:
        """A lease changed: set the timer for the soonest moment again."""
        self._async_stop()
        now = time.time()
        moments = [
            moment
            for device in self._devices.values()
            if (moment := next_moment(device.config, now)) is not None
        ]
        if moments:
            self._timer = async_track_point_in_utc_time(
                self._hass, self._job, datetime.fromtimestamp(min(moments), UTC)
            )

    async def _async_fire(self, _: datetime) -> None:
        self._timer = None
        await self._async_run()

    async def _async_run(self) -> None:
        """Announce, expire and remove what is due; then wait for the next moment."""
        now = time.time()
        newly_expired = False
        for device in list(self._devices.values()):
            if (expires := lease_expires(device.config)) is None:
                continue
            if now >= expires + GRACE:
                LOGGER.info("%s did not renew its registration: removed", device.name)
                self._remove(device.device_id)
            elif now >= expires:
                async_create_lease_issue(
                    self._hass, device.device_id, device.name, iso(expires + GRACE)
                )
                # Its entities were set up available: they need setting up again.
                newly_expired |= expires > self._loaded_at
            elif (
                now >= expires - WARN_BEFORE
                and device.config.get(CONF_LEASE_WARNED) != expires
            ):
                self._update(device.device_id, {CONF_LEASE_WARNED: expires})
                await self._send(
                    device, timeout_message(device.device_id, "expiring", expires)
                )
        if newly_expired:
            self._expired()
        else:
            self.async_reschedule()
