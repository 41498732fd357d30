"""Diagnostics for Direct Push, with every secret redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .backends import BACKENDS
from .const import CONF_SECRET_HASH
from .hub import DirectPushConfigEntry


def _secrets() -> set[str]:
    """Every key, token, endpoint and such that any kind of backend stores.

    And the hash of a self-registered device's secret: it is not the secret,
    but nobody needs it to help.
    """
    return {CONF_SECRET_HASH}.union(
        *(description.secrets for description in BACKENDS.values())
    )


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: DirectPushConfigEntry
) -> dict[str, Any]:
    """Return the hub's settings and devices, without keys or tokens."""
    hub = entry.runtime_data
    secrets = _secrets()
    diagnostics: dict[str, Any] = {
        "entry": {
            "data": async_redact_data(dict(entry.data), secrets),
            "options": dict(entry.options),
        },
    }
    for description in BACKENDS.values():
        diagnostics |= await description.async_diagnostics(hass, entry.data)
    diagnostics["devices"] = [
        {
            "name": device.name,
            "kind": device.kind,
            "admin": device.admin,
            "inactive": hub.is_inactive(device.device_id),
            "queued": hub.outbox.queued_for(device.device_id),
            "config": async_redact_data(dict(device.config), secrets),
        }
        for device in hub.devices.values()
    ]
    if hub.reporter is not None:
        diagnostics["reporter_group"] = hub.reporter.diagnostics()
    return diagnostics
