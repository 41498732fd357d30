"""Repairs: give an inactive device new details (a token, a subscription)."""

from __future__ import annotations

from typing import Any

from homeassistant import data_entry_flow
from homeassistant.components.repairs import RepairsFlow
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .backends import BACKENDS
from .const import DOMAIN
from .errors import FormErrors
from .issues import inactive_issue_id
from .validation import check_fields, escape_markdown


class InactiveDeviceRepairFlow(RepairsFlow):
    """Ask for the device's new details; saving them makes it active again.

    The form is the device kind's: its description says which field renews a
    device and how to check it.
    """

    def __init__(self, entry_id: str, device_id: str) -> None:
        """Remember which device this is about."""
        self._entry_id = entry_id
        self._device_id = device_id

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> data_entry_flow.FlowResult:
        """Show the device kind's form."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None or self._device_id not in entry.subentries:
            return self.async_abort(reason="device_removed")
        subentry = entry.subentries[self._device_id]
        description = BACKENDS[subentry.subentry_type]
        errors = FormErrors()
        # The repairs manager starts the flow with {"issue_id": ...} as input.
        if user_input is not None and description.renew_field in user_input:
            others = [s.data for s in entry.subentries.values() if s is not subentry]
            with errors.collect():
                # The renewing field is pasted (a token, a subscription's
                # JSON): the kind's own check refuses what it cannot use.
                check_fields(user_input, multiline=(description.renew_field,))
                data = description.renew(self.hass, user_input, subentry.data, others)
            if not errors:
                # The repairs manager deletes the issue once this flow ends.
                self.hass.config_entries.async_update_subentry(
                    entry, subentry, data=data
                )
                return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="init",
            data_schema=description.renew_schema(subentry.data),
            errors=errors.errors,
            description_placeholders={
                **self._placeholders(subentry.title),
                **errors.placeholders,
            },
        )

    def _placeholders(self, name: str) -> dict[str, str]:
        """The device and the push service's answer, for the Markdown description."""
        issue = ir.async_get(self.hass).async_get_issue(
            DOMAIN, inactive_issue_id(self._device_id)
        )
        reason = (
            (issue.translation_placeholders or {}).get("reason", "") if issue else ""
        )
        return {"device": escape_markdown(name), "reason": escape_markdown(reason)}


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """Create the fix flow for an inactive device."""
    assert data is not None
    return InactiveDeviceRepairFlow(str(data["entry_id"]), str(data["device_id"]))
