"""Putting an import into the hub: its Apple credentials and new devices, in one reload.

The import flows (the first hub, or more devices for it) and the YAML at each
start change the hub through these, and say what failed with the strings here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigSubentry,
    ConfigSubentryData,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.translation import async_get_translations

from .apns import APNS
from .const import (
    CONF_AUTH_METHOD,
    CONF_CERTIFICATE,
    CONF_ENVIRONMENT,
    CONF_KEY,
    CONF_KEY_ID,
    CONF_NAME,
    CONF_TEAM_ID,
    CONF_TOKEN,
    CONF_TOPIC,
    DOMAIN,
)
from .import_result import ImportedCredentials, ImportedDevice, ImportResult
from .names import DeviceNames

# The hub's Apple settings. The rest of its data (its Web Push identity) stays
# when imported credentials replace them.
_APNS_DATA: Final = (
    CONF_AUTH_METHOD,
    CONF_KEY,
    CONF_KEY_ID,
    CONF_TEAM_ID,
    CONF_TOPIC,
    CONF_CERTIFICATE,
    CONF_ENVIRONMENT,
)
# What makes imported credentials differ from the hub's, in the order shown.
CREDENTIAL_DATA: Final = (
    CONF_AUTH_METHOD,
    CONF_TOPIC,
    CONF_KEY_ID,
    CONF_TEAM_ID,
    CONF_KEY,
    CONF_CERTIFICATE,
)
SECRET_DATA: Final = frozenset({CONF_KEY, CONF_CERTIFICATE})
# Every placeholder an import error's message may use. The frontend formats a
# form's errors with the form's placeholders, so each import form passes all.
IMPORT_PLACEHOLDERS: Final = dict.fromkeys(
    (
        "file",
        "folder",
        "field",
        "line",
        "column",
        "path",
        "tried",
        "encoding",
        "name",
        "first",
        "limit",
    ),
    "",
)

type HubChange = Callable[[], object]


def import_entry_data(credentials: ImportedCredentials) -> dict[str, Any]:
    """Return imported credentials as the hub's data, as the forms store it."""
    data: dict[str, Any] = credentials.as_entry_data()
    for key in SECRET_DATA & data.keys():
        data[key] = data[key].strip()
    return data


def credential_changes(
    current: Mapping[str, Any], imported: Mapping[str, Any]
) -> list[str]:
    """Return the credential fields that differ between the hub and an import."""
    return [
        key
        for key in CREDENTIAL_DATA
        if str(current.get(key) or "").strip() != str(imported.get(key) or "").strip()
    ]


def with_credentials(
    hub: ConfigEntry, credentials: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the hub's data with its Apple settings replaced by these."""
    return {k: v for k, v in hub.data.items() if k not in _APNS_DATA} | dict(
        credentials
    )


def device_subentry(device: ImportedDevice, name: str) -> ConfigSubentryData:
    """Return an imported device as a device subentry, under its final name."""
    return ConfigSubentryData(
        data={**device.as_subentry_data(), CONF_NAME: name},
        subentry_type=APNS.kind,
        title=name,
        unique_id=None,
    )


def add_device(
    hass: HomeAssistant, hub: ConfigEntry, device: ImportedDevice, name: str
) -> HubChange:
    """Return the change that adds an imported device to the hub."""
    subentry = ConfigSubentry(
        data=MappingProxyType({**device.as_subentry_data(), CONF_NAME: name}),
        subentry_type=APNS.kind,
        title=name,
        unique_id=None,
    )
    return lambda: hass.config_entries.async_add_subentry(hub, subentry)


def merge_plan(
    hub: ConfigEntry, result: ImportResult
) -> tuple[list[tuple[ImportedDevice, str]], list[ImportedDevice]]:
    """Split imported devices into new ones (with a free name) and known tokens."""
    subentries = hub.subentries.values()
    tokens = {
        s.data.get(CONF_TOKEN) for s in subentries if s.subentry_type == APNS.kind
    }
    names = DeviceNames(s.title for s in subentries)
    add: list[tuple[ImportedDevice, str]] = []
    known: list[ImportedDevice] = []
    for device in result.devices:
        if device.token in tokens:
            known.append(device)
        else:
            add.append((device, names.claim(device.name)))
    return add, known


async def async_change_hub(
    hass: HomeAssistant, hub: ConfigEntry, changes: list[HubChange]
) -> None:
    """Apply changes to the hub's data and devices, then reload it once.

    The update listener would reload a loaded hub after every single change:
    unload it first instead. A hub still setting up reloads once it is done.
    """
    if not changes:
        return
    state = hub.state
    unloaded = state is ConfigEntryState.LOADED and (
        await hass.config_entries.async_unload(hub.entry_id)
    )
    try:
        for change in changes:
            change()
    finally:
        # Never leave the hub unloaded, even when a change failed.
        if unloaded:
            await hass.config_entries.async_setup(hub.entry_id)
        elif state is not ConfigEntryState.NOT_LOADED:
            hass.config_entries.async_schedule_reload(hub.entry_id)


async def async_texts(hass: HomeAssistant, category: str) -> dict[str, str]:
    """Return this integration's strings of one category, in HA's language."""
    return await async_get_translations(hass, hass.config.language, category, [DOMAIN])


def text(
    texts: Mapping[str, str], key: str, placeholders: Mapping[str, str] | None = None
) -> str:
    """Return one string, formatted; its key where it has no translation."""
    template = texts.get(f"component.{DOMAIN}.{key}", key)
    try:
        return template.format_map(dict(placeholders or {}))
    except (KeyError, IndexError, ValueError):
        return template
