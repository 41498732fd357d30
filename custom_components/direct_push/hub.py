"""The hub: a config entry's devices, backends, fan-out and outcome handling."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
import logging
import time
from typing import TYPE_CHECKING, Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er

from .backend import Delivery, Device, Outcome, PushBackend
from .backends import BACKENDS
from .const import (
    CONF_ADMIN,
    CONF_INTERRUPTION_LEVEL,
    CONF_OWNER,
    CONF_PRIVATE,
    CONF_SERVICE_EXTENSION,
    CONF_SOUND,
    CONF_TITLE_FROM_DEVICE,
    CONF_UNREACHABLE_DAYS,
    DEFAULT_SOUND,
    DEFAULT_UNREACHABLE_DAYS,
    DOMAIN,
    LOGGER,
)
from .errors import service_validation_error
from .health import Health
from .issues import (
    async_create_clock_issue,
    async_create_inactive_issue,
    async_delete_clock_issue,
    async_is_inactive,
)
from .jobs import Sent
from .leases import LeaseKeeper, lease_expired
from .mailbox import Mailbox
from .message import InterruptionLevel, Message, MessageError
from .outbox import Outbox
from .routing import GROUPS, Route, RouteIndex

if TYPE_CHECKING:
    from .reporter import Reporter

type DirectPushConfigEntry = ConfigEntry[DirectPushHub]

# A person entity, as a target, names the devices its HA user owns.
PERSON_PREFIX: Final = "person."
ATTR_USER_ID: Final = "user_id"


def _entry_settings(
    entry: ConfigEntry, device_data: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[Any, ...]:
    """Return what a hub is built from: its settings and its devices.

    device_data: devices' new data, where it is about to change.
    """
    changed = device_data or {}
    return (
        entry.title,
        dict(entry.data),
        dict(entry.options),
        {
            subentry_id: (
                subentry.subentry_type,
                subentry.title,
                dict(changed.get(subentry_id, subentry.data)),
            )
            for subentry_id, subentry in entry.subentries.items()
        },
    )


@dataclass(frozen=True, slots=True)
class _Routes:
    """The route index, and the HA ids it was built from."""

    index: RouteIndex
    ids: frozenset[str]
    """HA device and entity ids: when one changes, the index is rebuilt."""


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
        # Built when first needed, and again after a registry change.
        self._routes: _Routes | None = None
        self._settings = _entry_settings(entry)
        days = entry.options.get(CONF_UNREACHABLE_DAYS, DEFAULT_UNREACHABLE_DAYS)
        self.health = Health(hass, entry.entry_id, days)
        self.outbox = Outbox(
            hass,
            entry.entry_id,
            backends,
            self.devices,
            self.health,
            on_attempt=self._async_attempted,
            is_inactive=self.is_inactive,
        )
        self.mailbox = Mailbox(hass, entry.entry_id)
        # This instance's place in a reporter group, when the options name one.
        self.reporter: Reporter | None = None
        self.leases = LeaseKeeper(
            hass,
            self.devices,
            send=self.async_send_notice,
            update=self.async_update_device,
            expired=partial(hass.config_entries.async_schedule_reload, entry.entry_id),
            remove=partial(hass.config_entries.async_remove_subentry, entry),
        )

    async def async_load(self) -> None:
        """Resume the pushes a previous run kept; read the private messages."""
        await self.mailbox.async_load()
        await self.outbox.async_load()

    def runs(self, entry: ConfigEntry) -> bool:
        """Return True when the hub runs with the entry as it is: no reload needed."""
        return _entry_settings(entry) == self._settings

    def is_inactive(self, device_id: str) -> bool:
        """Return True when the device was marked gone, or its lease ended."""
        return async_is_inactive(self.hass, device_id) or self.lease_expired(device_id)

    def lease_expired(self, device_id: str) -> bool:
        """Return True when the device registered itself and stopped renewing."""
        device = self.devices.get(device_id)
        return device is not None and lease_expired(device.config, time.time())

    @callback
    def async_track_registries(self) -> CALLBACK_TYPE:
        """Rebuild the route index when this hub's HA devices or entities change.

        Devices come and go with subentries, which reload the hub; their HA
        device and entity ids may change on their own (an entity renamed).
        Returns the function that stops listening.
        """
        unsubscribe = (
            self.hass.bus.async_listen(
                dr.EVENT_DEVICE_REGISTRY_UPDATED,
                self._async_forget_routes,
                event_filter=self._is_our_device,
            ),
            self.hass.bus.async_listen(
                er.EVENT_ENTITY_REGISTRY_UPDATED,
                self._async_forget_routes,
                event_filter=self._is_our_entity,
            ),
        )

        @callback
        def _async_stop() -> None:
            for stop in unsubscribe:
                stop()

        return _async_stop

    @callback
    def _is_our_device(self, data: dr.EventDeviceRegistryUpdatedData) -> bool:
        if self._routes is None:
            return False
        if data["device_id"] in self._routes.ids:
            return True
        device = dr.async_get(self.hass).async_get(data["device_id"])
        return device is not None and any(
            domain == DOMAIN for domain, _ in device.identifiers
        )

    @callback
    def _is_our_entity(self, data: er.EventEntityRegistryUpdatedData) -> bool:
        if self._routes is None:
            return False
        if data["entity_id"] in self._routes.ids or (
            data["action"] == "update" and data.get("old_entity_id") in self._routes.ids
        ):
            return True
        entity = er.async_get(self.hass).async_get(data["entity_id"])
        return entity is not None and entity.platform == DOMAIN

    @callback
    def _async_forget_routes(self, _: Event[Any]) -> None:
        self._routes = None

    @callback
    def _routes_now(self) -> _Routes:
        """Return the route index, building it after a change."""
        if self._routes is not None:
            return self._routes
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

        def entity_id(key: str) -> str | None:
            return entities.async_get_entity_id(
                Platform.NOTIFY, DOMAIN, entity_unique_id(self.entry.entry_id, key)
            )

        routes = [
            Route(
                device.device_id,
                device.name,
                device.admin,
                frozenset(
                    alias
                    for alias in (
                        ha_device_ids.get(device.device_id),
                        entity_id(device.device_id),
                    )
                    if alias
                ),
                device.config.get(CONF_OWNER),
            )
            for device in self.devices.values()
        ]
        groups = {
            alias: group
            for key, group in GROUPS.items()
            if (alias := entity_id(key)) is not None
        }
        hub = ha_device_ids.get(self.entry.entry_id)
        self._routes = _Routes(
            RouteIndex(routes, groups=groups, hub=() if hub is None else (hub,)),
            frozenset(
                {*ha_device_ids.values(), *groups}.union(
                    *(route.aliases for route in routes)
                )
            ),
        )
        return self._routes

    @callback
    def resolve(self, targets: Iterable[str] | None) -> list[Device]:
        """Return the devices that targets name; unknown targets are an error.

        Besides names and words, a target may be a device's or the hub's HA
        device id, or a device's or group's notify entity id: what device and
        entity selectors give; or a person's entity id, for the devices that
        registered themselves as that person's user.
        """
        wanted = list(targets or ())
        resolution = self._routes_now().index.resolve(wanted, self._people(wanted))
        if resolution.unknown:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_target",
                translation_placeholders={"targets": ", ".join(resolution.unknown)},
            )
        return [self.devices[device_id] for device_id in resolution.device_ids]

    @callback
    def _people(self, targets: list[str]) -> dict[str, str]:
        """Return the HA user of each person the targets name (a state lookup each)."""
        people: dict[str, str] = {}
        for target in targets:
            key = target.strip().casefold()
            if (
                key.startswith(PERSON_PREFIX)
                and (state := self.hass.states.get(key)) is not None
                and isinstance(user_id := state.attributes.get(ATTR_USER_ID), str)
            ):
                people[key] = user_id
        return people

    def check(self, message: Message, devices: Iterable[Device]) -> None:
        """Refuse a message that the push service of any of its devices would refuse.

        Each kind has its own limits: a message for Web Push devices only may
        carry a tag too long for Apple, say.
        """
        kinds = {device.kind for device in devices}
        try:
            for kind in sorted(kinds):
                BACKENDS[kind].check_message(message)
        except MessageError as err:
            raise service_validation_error(err) from err

    def _with_options(self, message: Message) -> Message:
        """Apply the entry's options that are the same for every device."""
        options = self.entry.options
        changes: dict[str, Any] = {}
        # Without options, alerts play the standard sound; an empty option is silent.
        if message.sound is None and (sound := options.get(CONF_SOUND, DEFAULT_SOUND)):
            changes["sound"] = sound
        if message.interruption_level is None and (
            level := options.get(CONF_INTERRUPTION_LEVEL)
        ):
            changes["interruption_level"] = InterruptionLevel(level)
        return replace(message, **changes) if changes else message

    def _personalise(self, device: Device, message: Message) -> Message:
        """Apply what differs per device: its name as title, its private mode."""
        if message.title is None and self.entry.options.get(CONF_TITLE_FROM_DEVICE):
            message = replace(message, title=device.name)
        if device.config.get(CONF_PRIVATE):
            return self.mailbox.keep(
                device.device_id,
                message,
                service_extension=device.config.get(CONF_SERVICE_EXTENSION, False),
            )
        return message

    @callback
    def _async_attempted(self, device: Device, delivery: Delivery) -> None:
        """Log an attempt; act on what it says about the device or the credentials."""
        if LOGGER.isEnabledFor(logging.DEBUG):
            LOGGER.debug(
                "Push to %s (%s): %s%s",
                device.name,
                BACKENDS[device.kind].log_id(device.config),
                delivery.outcome,
                f" ({delivery.reason})" if delivery.reason else "",
            )
        if delivery.device_update:
            self.async_update_device(device.device_id, delivery.device_update)
        if delivery.ok:
            async_delete_clock_issue(self.hass, device.kind)
        elif delivery.outcome is Outcome.DEVICE_GONE:
            async_create_inactive_issue(
                self.hass,
                self.entry.entry_id,
                device.device_id,
                device.name,
                delivery.reason or "",
            )
        elif delivery.outcome is Outcome.AUTH_FAILED:
            self.entry.async_start_reauth(self.hass)
        elif delivery.outcome is Outcome.CLOCK_WRONG:
            async_create_clock_issue(self.hass, device.kind, delivery.reason or "")

    async def async_send(self, devices: Iterable[Device], message: Message) -> Sent:
        """Send to every device at once; one report per device, in order."""
        message = self._with_options(message)
        return await self.outbox.async_send(
            (device, self._personalise(device, message)) for device in devices
        )

    async def async_send_notice(self, device: Device, message: Message) -> Sent:
        """Send Direct Push's own notice (a timeout push) as it is, private mode or not."""
        return await self.outbox.async_send([(device, message)])

    @callback
    def async_update_device(self, device_id: str, changes: Mapping[str, Any]) -> None:
        """Store what a backend learned about a device, such as its environment.

        The hub runs with it at once: the update listener then has nothing to
        reload, so sends in flight carry on. A change made meanwhile by someone
        else still reloads the hub.
        """
        if (subentry := self.entry.subentries.get(device_id)) is None:
            return  # removed while the push was on its way
        data = {**subentry.data, **changes}
        if data == dict(subentry.data):
            return
        if self.runs(self.entry):
            # First: the update listener starts within the update itself.
            self._settings = _entry_settings(self.entry, {device_id: data})
        self.hass.config_entries.async_update_subentry(self.entry, subentry, data=data)
        self.devices[device_id] = replace(
            self.devices[device_id], config=self.entry.subentries[device_id].data
        )

    async def async_close(self) -> None:
        """Keep the pushes still to send, then close every backend's connections."""
        await self._async_leave_group()
        await self.outbox.async_close()
        await self.mailbox.async_save()
        await self._async_close_backends()

    async def async_stop(self) -> None:
        """Home Assistant stops: keep the pushes for the next start, then close."""
        await self._async_leave_group()
        await self.outbox.async_stop()
        await self._async_close_backends()

    async def _async_leave_group(self) -> None:
        """Clear our heartbeat first, so that the next in line reports at once."""
        if self.reporter is not None:
            await self.reporter.async_stop()

    async def _async_close_backends(self) -> None:
        for backend in self.backends.values():
            await backend.async_close()
