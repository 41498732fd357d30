"""Repairs: give an inactive device a new token."""

from __future__ import annotations

from typing import Any

from homeassistant import data_entry_flow
from homeassistant.components.repairs import RepairsFlow
from homeassistant.core import HomeAssistant
import voluptuous as vol

from .config_flow import valid_device_token
from .const import CONF_TOKEN


class InactiveDeviceRepairFlow(RepairsFlow):
    """Ask for the device's new token; saving it makes the device active again."""

    def __init__(self, entry_id: str, device_id: str) -> None:
        """Remember which device this is about."""
        self._entry_id = entry_id
        self._device_id = device_id

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> data_entry_flow.FlowResult:
        """Show the token form."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None or self._device_id not in entry.subentries:
            return self.async_abort(reason="device_removed")
        subentry = entry.subentries[self._device_id]
        errors: dict[str, str] = {}
        # The repairs manager starts the flow with {"issue_id": ...} as input.
        if user_input is not None and CONF_TOKEN in user_input:
            token = user_input[CONF_TOKEN].strip().lower()
            if not valid_device_token(token):
                errors[CONF_TOKEN] = "invalid_device_token"
            elif token == subentry.data.get(CONF_TOKEN):
                errors[CONF_TOKEN] = "same_device_token"
            else:
                # The repairs manager deletes the issue once this flow ends.
                self.hass.config_entries.async_update_subentry(
                    entry, subentry, data={**subentry.data, CONF_TOKEN: token}
                )
                return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="init",
            data_schema=vol.Schema({vol.Required(CONF_TOKEN): str}),
            errors=errors,
            description_placeholders={"device": subentry.title},
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """Create the fix flow for an inactive device."""
    assert data is not None
    return InactiveDeviceRepairFlow(str(data["entry_id"]), str(data["device_id"]))
