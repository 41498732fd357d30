"""The hub: a config entry's devices, backends, fan-out and outcome handling."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import replace
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)

from .backend import Delivery, Device, Outcome, PushBackend
from .const import (
    CONF_ADMIN,
    CONF_INTERRUPTION_LEVEL,
    CONF_SOUND,
    CONF_TITLE_FROM_DEVICE,
    CONF_TOKEN,
    CONF_UNREACHABLE_DAYS,
    DEFAULT_SOUND,
    DEFAULT_UNREACHABLE_DAYS,
    DOMAIN,
    LOGGER,
)
from .health import Health
from .jobs import Sent
from .message import InterruptionLevel, Message
from .outbox import Outbox
from .routing import Route, resolve

type DirectPushConfigEntry = ConfigEntry[DirectPushHub]


def redact_token(token: str) -> str:
    """Show only enough of a device token to tell devices apart in a log."""
    return f"…{token[-4:]}" if len(token) > 8 else "…"


_INACTIVE_ISSUE_PREFIX: Final = "device_inactive_"


def inactive_issue_id(device_id: str) -> str:
    """Return the repair issue id that marks a device inactive."""
    return f"{_INACTIVE_ISSUE_PREFIX}{device_id}"


@callback
def async_delete_inactive_issues(hass: HomeAssistant, keep: Container[str]) -> None:
    """Delete the inactive-device issues of every device not in keep."""
    registry = ir.async_get(hass)
    for domain, issue_id in list(registry.issues):
        if (
            domain == DOMAIN
            and issue_id.startswith(_INACTIVE_ISSUE_PREFIX)
            and issue_id.removeprefix(_INACTIVE_ISSUE_PREFIX) not in keep
        ):
            ir.async_delete_issue(hass, DOMAIN, issue_id)


def entity_unique_id(entry_id: str, key: str) -> str:
    """Return a notify entity's unique id (key: a device id, "admins" or "everyone")."""
    return f"{entry_id}_{key}"


class DirectPushHub:
    """Route messages to a config entry's devices through their backends."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: DirectPushConfigEntry,
        backends: Mapping[str, PushBackend],
    ) -> None:
        """Build the device list from the entry's subentries."""
        self.hass = hass
        self.entry = entry
        self.backends = backends
        self.devices: dict[str, Device] = {
            subentry_id: Device(
                device_id=subentry_id,
                name=subentry.title,
                kind=subentry.subentry_type,
                admin=bool(subentry.data.get(CONF_ADMIN, False)),
                config=subentry.data,
            )
            for subentry_id, subentry in entry.subentries.items()
            if subentry.subentry_type in backends
        }
        days = entry.options.get(CONF_UNREACHABLE_DAYS, DEFAULT_UNREACHABLE_DAYS)
        self.health = Health(hass, entry.entry_id, days * 86400)
        self.outbox = Outbox(
            hass,
            entry.entry_id,
            backends,
            self.health,
            on_attempt=self._async_attempted,
            is_inactive=self.is_inactive,
        )

    async def async_load(self) -> None:
        """Resume the pushes a previous run kept."""
        await self.outbox.async_load(self.devices)

    def is_inactive(self, device_id: str) -> bool:
        """Return True when the device was marked gone; its repair issue is the record."""
        issue = ir.async_get(self.hass).async_get_issue(
            DOMAIN, inactive_issue_id(device_id)
        )
        return issue is not None

    @callback
    def _routes(self) -> list[Route]:
        # This entry's HA devices by our identifier (a device lookup by
        # identifiers alone is deprecated: they are unique per entry only).
        ha_device_ids = {
            identifier: ha_device.id
            for ha_device in dr.async_entries_for_config_entry(
                dr.async_get(self.hass), self.entry.entry_id
            )
            for domain, identifier in ha_device.identifiers
            if domain == DOMAIN
        }
        entities = er.async_get(self.hass)
        routes = []
        for device in self.devices.values():
            aliases = set()
            if ha_device_id := ha_device_ids.get(device.device_id):
                aliases.add(ha_device_id)
            if entity_id := entities.async_get_entity_id(
                Platform.NOTIFY,
                DOMAIN,
                entity_unique_id(self.entry.entry_id, device.device_id),
            ):
                aliases.add(entity_id)
            routes.append(
                Route(device.device_id, device.name, device.admin, frozenset(aliases))
            )
        return routes

    @callback
    def resolve(self, targets: Iterable[str] | None) -> list[Device]:
        """Return the devices that targets name; unknown targets are an error."""
        resolution = resolve(targets, self._routes())
        if resolution.unknown:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_target",
                translation_placeholders={"targets": ", ".join(resolution.unknown)},
            )
        return [self.devices[device_id] for device_id in resolution.device_ids]

    def _personalise(self, device: Device, message: Message) -> Message:
        """Apply the entry's options to a message for one device."""
        options = self.entry.options
        changes: dict[str, Any] = {}
        if message.title is None and options.get(CONF_TITLE_FROM_DEVICE):
            changes["title"] = device.name
        # Without options, alerts play the standard sound; an empty option is silent.
        if message.sound is None and (sound := options.get(CONF_SOUND, DEFAULT_SOUND)):
            changes["sound"] = sound
        if message.interruption_level is None and (
            level := options.get(CONF_INTERRUPTION_LEVEL)
        ):
            changes["interruption_level"] = InterruptionLevel(level)
        return replace(message, **changes) if changes else message

    @callback
    def _async_attempted(self, device: Device, delivery: Delivery) -> None:
        """Log an attempt; act on a gone device or refused credentials."""
        LOGGER.debug(
            "Push to %s (%s): %s%s",
            device.name,
            redact_token(str(device.config.get(CONF_TOKEN, ""))),
            delivery.outcome,
            f" ({delivery.reason})" if delivery.reason else "",
        )
        if delivery.outcome is Outcome.DEVICE_GONE:
            self._async_mark_inactive(device, delivery.reason or "")
        elif delivery.outcome is Outcome.AUTH_FAILED:
            self.entry.async_start_reauth(self.hass)

    async def async_send(self, devices: Iterable[Device], message: Message) -> Sent:
        """Send to every device at once; one report per device, in order."""
        return await self.outbox.async_send(
            (device, self._personalise(device, message)) for device in devices
        )

    @callback
    def _async_mark_inactive(self, device: Device, reason: str) -> None:
        """Stop sending to a device until the user gives it a new token."""
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            inactive_issue_id(device.device_id),
            is_fixable=True,
            # The issue is the record that the device is inactive: keep it across restarts.
            is_persistent=True,
            severity=ir.IssueSeverity.ERROR,
            translation_key="device_inactive",
            translation_placeholders={"device": device.name, "reason": reason},
            data={"entry_id": self.entry.entry_id, "device_id": device.device_id},
        )

    async def async_close(self) -> None:
        """Keep the pushes still to send, then close every backend's connections."""
        await self.outbox.async_close()
        await self._async_close_backends()

    async def async_stop(self) -> None:
        """Home Assistant stops: keep the pushes for the next start, then close."""
        await self.outbox.async_stop()
        await self._async_close_backends()

    async def _async_close_backends(self) -> None:
        for backend in self.backends.values():
            await backend.async_close()
