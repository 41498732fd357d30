"""Direct Push: push notifications from Home Assistant straight to phones."""

from __future__ import annotations

from functools import partial

from homeassistant.components.notify.legacy import (
    async_reload as async_reload_legacy_notify,
)
from homeassistant.config_entries import SOURCE_IMPORT, ConfigEntryState
from homeassistant.const import CONF_NAME, EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import config_validation as cv, discovery
from homeassistant.helpers.typing import ConfigType
import voluptuous as vol

from .backend import CredentialError, PushBackend
from .backends import BACKENDS
from .const import (
    CONF_ADMIN,
    CONF_ENVIRONMENT,
    CONF_KEY,
    CONF_KEY_FILE,
    CONF_KEY_ID,
    CONF_TEAM_ID,
    CONF_TOKEN,
    CONF_TOPIC,
    CONF_VAPID_PRIVATE_KEY,
    DOMAIN,
    ENV_PRODUCTION,
    ENVIRONMENTS,
)
from .device_api import async_setup_device_api
from .hub import DirectPushConfigEntry, DirectPushHub
from .importer import CONF_DEVICES, YAML_SOURCE
from .issues import async_create_yaml_import_failed, async_delete_inactive_issues
from .outbox import async_remove_outbox
from .reporter import async_create_reporter
from .services import async_send_fields, async_setup_services
from .webpush import generate_vapid_key
from .yaml_import import async_update_hub as async_update_hub_from_yaml

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.EVENT,
    Platform.NOTIFY,
    Platform.SENSOR,
]

# `direct_push:` in configuration.yaml, imported once per start into the hub.
YAML_APPLE_DEVICE_SCHEMA = vol.Schema(
    {
        # Checked by the importer, by the rule every other path uses.
        vol.Required(CONF_NAME): cv.string,
        vol.Required(CONF_TOKEN): cv.string,
        vol.Optional(CONF_ADMIN, default=False): cv.boolean,
        vol.Optional(CONF_ENVIRONMENT): vol.In(ENVIRONMENTS),
    }
)
YAML_SCHEMA = vol.All(
    vol.Schema(
        {
            # The key as a file (relative to the config folder, or absolute)
            # or as its text, such as a !secret.
            vol.Exclusive(CONF_KEY_FILE, CONF_KEY): cv.string,
            vol.Exclusive(CONF_KEY, CONF_KEY): cv.string,
            vol.Required(CONF_KEY_ID): cv.string,
            vol.Required(CONF_TEAM_ID): cv.string,
            vol.Required(CONF_TOPIC): cv.string,
            vol.Optional(CONF_ENVIRONMENT, default=ENV_PRODUCTION): vol.In(
                ENVIRONMENTS
            ),
            # Other kinds of device would get their own schema here.
            vol.Optional(CONF_DEVICES, default=list): vol.All(
                cv.ensure_list, [YAML_APPLE_DEVICE_SCHEMA]
            ),
        }
    ),
    cv.has_at_least_one_key(CONF_KEY_FILE, CONF_KEY),
)
# YAML_SCHEMA is applied on import, not here: a mistake in the YAML raises a
# repair issue that names it, instead of keeping the whole integration, and
# any hub set up in the UI, from loading.
CONFIG_SCHEMA = vol.Schema(
    {vol.Optional(DOMAIN): vol.Any(dict, None)}, extra=vol.ALLOW_EXTRA
)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions and the device API, which outlive any config entry."""
    async_setup_services(hass)
    await async_setup_device_api(hass)
    # The legacy notify.direct_push service, for alert:, notify groups and old
    # automations; like mobile_app's, it finds the loaded hub when called. The
    # name makes it notify.direct_push: without one it would be notify.notify.
    hass.async_create_task(
        discovery.async_load_platform(
            hass, Platform.NOTIFY, DOMAIN, {CONF_NAME: DOMAIN}, config
        ),
        eager_start=True,
    )
    if (conf := config.get(DOMAIN)) is not None:
        async_import_yaml(hass, conf)
    return True


@callback
def async_import_yaml(hass: HomeAssistant, conf: ConfigType) -> None:
    """Import `direct_push:`: the config flow creates the hub, later starts update it."""
    try:
        data = YAML_SCHEMA(conf)
    except vol.Invalid as err:
        # The message names the setting; no validator here echoes a key or token.
        async_create_yaml_import_failed(hass, f"{YAML_SOURCE}: {err}")
        return
    if hubs := hass.config_entries.async_entries(DOMAIN, include_ignore=False):
        # HA allows one hub, so it refuses a config flow once there is one.
        hass.async_create_task(async_update_hub_from_yaml(hass, hubs[0], data))
        return
    hass.async_create_task(
        hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_IMPORT}, data=data
        )
    )


async def async_setup_entry(hass: HomeAssistant, entry: DirectPushConfigEntry) -> bool:
    """Build the hub's backends and notify entities."""
    if (
        entry.unique_id is None
        and not hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, DOMAIN)
    ):
        # Hubs made before imports could add to them have no unique ID yet.
        hass.config_entries.async_update_entry(entry, unique_id=DOMAIN)
    backends: dict[str, PushBackend] = {}
    for description in BACKENDS.values():
        try:
            backend = await description.async_create(hass, entry.data, entry.options)
        except CredentialError as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key=err.key
            ) from err
        if backend is not None:
            backends[description.kind] = backend
    hub = entry.runtime_data = DirectPushHub(hass, entry, backends)
    entry.async_on_unload(hub.async_track_registries())
    # A removed device's repair issue would otherwise outlive it.
    async_delete_inactive_issues(hass, keep=entry.subentries)
    await hub.async_load()
    entry.async_on_unload(hub.async_close)
    hub.reporter = await async_create_reporter(
        hass, entry, partial(async_send_fields, hub)
    )
    entry.async_on_unload(hub.leases.async_start())

    async def _async_close_on_stop(_: Event) -> None:
        await hub.async_stop()

    # Config entries are not unloaded when HA stops: keep the pushes still to
    # send for the next start, and close connections.
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
    """Reload when devices, options or credentials change.

    Not when the hub stored what it learned about a device itself: it already
    runs with that, and a reload would cut the sends in flight.
    """
    if not entry.runtime_data.runs(entry):
        await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: DirectPushConfigEntry) -> bool:
    """Unload the notify entities; the hub closes its connections on unload."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: DirectPushConfigEntry) -> None:
    """Delete the repair issues and kept pushes of the removed hub's devices."""
    async_delete_inactive_issues(hass, keep=())
    await async_remove_outbox(hass, entry.entry_id)


async def async_migrate_entry(
    hass: HomeAssistant, entry: DirectPushConfigEntry
) -> bool:
    """Give hubs made before Web Push (1.1) their VAPID identity (1.2)."""
    if entry.version > 1:
        return False
    if entry.minor_version < 2:
        key = await hass.async_add_executor_job(generate_vapid_key)
        hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_VAPID_PRIVATE_KEY: key}, minor_version=2
        )
    return True
