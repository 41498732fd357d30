"""The `direct_push:` YAML, read at each start: it makes the hub once, then updates it.

The first start creates the hub through the config flow's import step. HA
allows one hub (`single_config_entry`) and so refuses every later config flow,
an import too: later starts update the hub here, directly. Either way a
mistake is a repair issue that says what failed, and nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from .apns import APNS, async_validate_credentials
from .const import CONF_TOKEN
from .hub_import import (
    IMPORT_PLACEHOLDERS,
    HubChange,
    add_device,
    async_change_hub,
    async_texts,
    credential_changes,
    import_entry_data,
    text,
    with_credentials,
)
from .import_result import AppleImportError, ImportResult
from .importer import YAML_SOURCE, read_yaml_config
from .issues import async_create_yaml_deprecated, async_create_yaml_import_failed
from .names import NAME_IN_USE, DeviceNames
from .validation import escape_markdown

# The placeholders of an import error that hold a device's name.
_NAMES: Final = frozenset({"name", "first"})


async def async_read_yaml(
    hass: HomeAssistant, conf: Mapping[str, Any], hub: ConfigEntry | None
) -> tuple[ImportResult, dict[str, Any]] | None:
    """Read the YAML and prove its credentials; None once an issue says why not.

    Unchanged credentials need no test push at every start. Unreachable Apple
    (no network yet at boot) is no reason to drop the YAML: the first real
    push reports it, and Apple's refusals start reauthentication.
    """
    try:
        result = await hass.async_add_executor_job(
            read_yaml_config, conf, Path(hass.config.config_dir)
        )
    except AppleImportError as err:
        await async_yaml_failed(hass, f"import_{err.key}", err.placeholders)
        return None
    data = import_entry_data(result.credentials)
    if (
        (hub is None or credential_changes(hub.data, data))
        and (error := await async_validate_credentials(hass, data))
        and error.key != "cannot_connect"
    ):
        await async_yaml_failed(hass, error.key, {})
        return None
    return result, data


async def async_update_hub(
    hass: HomeAssistant, hub: ConfigEntry, conf: Mapping[str, Any]
) -> None:
    """Make the hub match the YAML, or raise the issue that says why not."""
    if (read := await async_read_yaml(hass, conf, hub)) is None:
        return
    result, data = read
    try:
        changes = _yaml_changes(hass, hub, data, result)
    except AppleImportError as err:
        await async_yaml_failed(hass, f"import_{err.key}", err.placeholders)
        return
    await async_change_hub(hass, hub, changes)
    async_create_yaml_deprecated(hass)


def _yaml_changes(
    hass: HomeAssistant,
    hub: ConfigEntry,
    credentials: dict[str, Any],
    result: ImportResult,
) -> list[HubChange]:
    """Return the updates that make the hub match the YAML.

    Devices are matched by token: a known token gets the YAML's name, admin
    flag and environment; a new one becomes a device. Devices that the YAML
    does not list stay, since they may have been added in the UI.
    """
    manager = hass.config_entries
    changes: list[HubChange] = []
    if (data := with_credentials(hub, credentials)) != dict(hub.data):
        changes.append(lambda: manager.async_update_entry(hub, data=data))
    by_token = {
        s.data.get(CONF_TOKEN): s
        for s in hub.subentries.values()
        if s.subentry_type == APNS.kind
    }
    titles = {s.subentry_id: s.title for s in hub.subentries.values()}
    new = []
    for device in result.devices:
        if (subentry := by_token.get(device.token)) is None:
            new.append(device)
            continue
        titles[subentry.subentry_id] = device.name
        device_data = {**subentry.data, **device.as_subentry_data()}
        if device_data != dict(subentry.data) or subentry.title != device.name:
            changes.append(
                partial(
                    manager.async_update_subentry,
                    hub,
                    subentry,
                    data=device_data,
                    title=device.name,
                )
            )
    names = DeviceNames()
    for name in [*titles.values(), *(device.name for device in new)]:
        if names.in_use(name):
            raise AppleImportError(NAME_IN_USE, {"file": YAML_SOURCE, "name": name})
        names.take(name)
    changes.extend(add_device(hass, hub, device, device.name) for device in new)
    return changes


async def async_yaml_failed(
    hass: HomeAssistant, key: str, placeholders: Mapping[str, str]
) -> None:
    """Raise the error issue, in words; the YAML waits for the next start."""
    texts = await async_texts(hass, "config")
    # The issue's description is Markdown: a device's name is escaped.
    names = {k: escape_markdown(v) for k, v in placeholders.items() if k in _NAMES}
    reason = text(
        texts, f"config.error.{key}", {**IMPORT_PLACEHOLDERS, **placeholders, **names}
    )
    async_create_yaml_import_failed(hass, reason)
