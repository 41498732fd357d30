"""Diagnostics for Direct Push, with every secret redacted."""

from __future__ import annotations

from typing import Any, Final

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_CERTIFICATE, CONF_KEY, CONF_KEY_ID, CONF_TEAM_ID, CONF_TOKEN
from .hub import DirectPushConfigEntry

TO_REDACT: Final = {CONF_KEY, CONF_CERTIFICATE, CONF_KEY_ID, CONF_TEAM_ID, CONF_TOKEN}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: DirectPushConfigEntry
) -> dict[str, Any]:
    """Return the hub's settings and devices, without keys or tokens."""
    hub = entry.runtime_data
    return {
        "entry": {
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": dict(entry.options),
        },
        "devices": [
            {
                "name": device.name,
                "kind": device.kind,
                "admin": device.admin,
                "inactive": hub.is_inactive(device.device_id),
                "config": async_redact_data(dict(device.config), TO_REDACT),
            }
            for device in hub.devices.values()
        ],
    }
