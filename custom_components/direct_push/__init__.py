"""Direct Push: push notifications from Home Assistant straight to phones."""

from __future__ import annotations

from homeassistant.components.notify.legacy import (
    async_reload as async_reload_legacy_notify,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_NAME, EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import config_validation as cv, discovery
from homeassistant.helpers.typing import ConfigType

from .apns import ApnsBackend, CredentialError
from .backend import PushBackend
from .const import (
    CONF_AUTH_METHOD,
    CONF_VAPID_PRIVATE_KEY,
    DOMAIN,
    SUBENTRY_APNS,
    SUBENTRY_WEBPUSH,
)
from .hub import DirectPushConfigEntry, DirectPushHub, async_delete_inactive_issues
from .services import async_setup_services
from .webpush import WebPushBackend, generate_vapid_key

PLATFORMS: list[Platform] = [Platform.NOTIFY]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, which outlive any config entry."""
    async_setup_services(hass)
    # The legacy notify.direct_push service, for alert:, notify groups and old
    # automations; like mobile_app's, it finds the loaded hub when called. The
    # name makes it notify.direct_push: without one it would be notify.notify.
    hass.async_create_task(
        discovery.async_load_platform(
            hass, Platform.NOTIFY, DOMAIN, {CONF_NAME: DOMAIN}, config
        ),
        eager_start=True,
    )
    return True


async def async_setup_entry(hass: HomeAssistant, entry: DirectPushConfigEntry) -> bool:
    """Build the hub's backends and notify entities."""
    backends: dict[str, PushBackend] = {}
    if CONF_AUTH_METHOD in entry.data:
        try:
            backends[SUBENTRY_APNS] = await ApnsBackend.async_create(hass, entry.data)
        except CredentialError as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key=err.key
            ) from err
    if CONF_VAPID_PRIVATE_KEY in entry.data:
        backends[SUBENTRY_WEBPUSH] = await WebPushBackend.async_create(hass, entry.data)
    hub = entry.runtime_data = DirectPushHub(hass, entry, backends)
    entry.async_on_unload(hub.async_close)
    # A removed device's repair issue would otherwise outlive it.
    async_delete_inactive_issues(hass, keep=entry.subentries)

    async def _async_close_on_stop(_: Event) -> None:
        await hub.async_close()

    # Config entries are not unloaded when HA stops: close connections anyway.
    # Not async_listen_once: removing a fired once-listener on unload logs an error.
    entry.async_on_unload(
        hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, _async_close_on_stop)
    )

    @callback
    def _async_refresh_legacy_services() -> None:
        # notify.direct_push_<device> lists the loaded hub's devices: refresh
        # the list once the entry counts as loaded, and again as it unloads.
        if entry.state in (
            ConfigEntryState.LOADED,
            ConfigEntryState.UNLOAD_IN_PROGRESS,
        ):
            hass.async_create_task(async_reload_legacy_notify(hass, DOMAIN))

    entry.async_on_unload(entry.async_on_state_change(_async_refresh_legacy_services))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(entry.add_update_listener(_async_update_listener))
    return True


async def _async_update_listener(
    hass: HomeAssistant, entry: DirectPushConfigEntry
) -> None:
    """Reload when devices, options or credentials change."""
    await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: DirectPushConfigEntry) -> bool:
    """Unload the notify entities; the hub closes its connections on unload."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: DirectPushConfigEntry) -> None:
    """Delete the repair issues of the removed hub's devices."""
    async_delete_inactive_issues(hass, keep=())


async def async_migrate_entry(hass: HomeAssistant, entry: DirectPushConfigEntry) -> bool:
    """Give hubs made before Web Push (1.1) their VAPID identity (1.2)."""
    if entry.version > 1:
        return False
    if entry.minor_version < 2:
        key = await hass.async_add_executor_job(generate_vapid_key)
        hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_VAPID_PRIVATE_KEY: key}, minor_version=2
        )
    return True
