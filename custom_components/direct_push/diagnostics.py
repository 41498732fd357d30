"""Diagnostics for Direct Push, with every secret redacted."""

from __future__ import annotations

from typing import Any, Final

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import (
    CONF_AUTH,
    CONF_CERTIFICATE,
    CONF_ENDPOINT,
    CONF_KEY,
    CONF_KEY_ID,
    CONF_P256DH,
    CONF_TEAM_ID,
    CONF_TOKEN,
    CONF_VAPID_PRIVATE_KEY,
)
from .hub import DirectPushConfigEntry
from .webpush import vapid_public_key

# A Web Push endpoint URL is itself a capability: whoever has it can push.
TO_REDACT: Final = {
    CONF_KEY,
    CONF_CERTIFICATE,
    CONF_KEY_ID,
    CONF_TEAM_ID,
    CONF_TOKEN,
    CONF_VAPID_PRIVATE_KEY,
    CONF_ENDPOINT,
    CONF_P256DH,
    CONF_AUTH,
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: DirectPushConfigEntry
) -> dict[str, Any]:
    """Return the hub's settings and devices, without keys or tokens."""
    hub = entry.runtime_data
    public_key = None
    if private_key := entry.data.get(CONF_VAPID_PRIVATE_KEY):
        public_key = await hass.async_add_executor_job(vapid_public_key, private_key)
    return {
        "entry": {
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": dict(entry.options),
        },
        # Public by design: apps subscribe with it.
        "vapid_public_key": public_key,
        "devices": [
            {
                "name": device.name,
                "kind": device.kind,
                "admin": device.admin,
                "inactive": hub.is_inactive(device.device_id),
                "queued": hub.outbox.queued_for(device.device_id),
                "config": async_redact_data(dict(device.config), TO_REDACT),
            }
            for device in hub.devices.values()
        ],
    }
