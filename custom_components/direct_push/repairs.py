"""Repairs: give an inactive device a new token."""

from __future__ import annotations

from typing import Any

from homeassistant import data_entry_flow
from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
import voluptuous as vol

from .apns import DEVICE_ENVIRONMENT_SELECTOR
from .apple_credentials import valid_device_token
from .const import (
    CONF_DETECTED_ENVIRONMENT,
    CONF_ENDPOINT,
    CONF_ENVIRONMENT,
    CONF_SUBSCRIPTION,
    CONF_TOKEN,
    ENV_PRODUCTION,
    SUBENTRY_APNS,
)
from .webpush import SubscriptionError, parse_subscription_json


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
        field = (
            CONF_TOKEN if subentry.subentry_type == SUBENTRY_APNS else CONF_SUBSCRIPTION
        )
        # The repairs manager starts the flow with {"issue_id": ...} as input.
        if user_input is not None and field in user_input:
            others = [s for s in entry.subentries.values() if s is not subentry]
            if field == CONF_TOKEN:
                changes, error = _new_token(
                    user_input[CONF_TOKEN],
                    user_input.get(CONF_ENVIRONMENT, ENV_PRODUCTION),
                    subentry,
                    others,
                )
            else:
                changes, error = _new_subscription(user_input[field], subentry, others)
            if error:
                errors[field] = error
            else:
                # A new token starts afresh where an automatic device is found.
                data = {
                    key: value
                    for key, value in subentry.data.items()
                    if key != CONF_DETECTED_ENVIRONMENT
                }
                # The repairs manager deletes the issue once this flow ends.
                self.hass.config_entries.async_update_subentry(
                    entry, subentry, data=data | changes
                )
                return self.async_create_entry(data={})
        schema: dict[vol.Marker, Any] = {
            vol.Required(field, default=subentry.data.get(field, "")): str
        }
        if field == CONF_TOKEN:
            # BadDeviceToken often means a sandbox token sent to production.
            schema[
                vol.Required(
                    CONF_ENVIRONMENT,
                    default=subentry.data.get(CONF_ENVIRONMENT, ENV_PRODUCTION),
                )
            ] = DEVICE_ENVIRONMENT_SELECTOR
        return self.async_show_form(
            step_id="init",
            data_schema=vol.Schema(schema),
            errors=errors,
            description_placeholders={"device": subentry.title},
        )


def _new_token(
    text: str,
    environment: str,
    subentry: ConfigSubentry,
    others: list[ConfigSubentry],
) -> tuple[dict[str, str], str | None]:
    token = text.strip().lower()
    if not valid_device_token(token):
        return {}, "invalid_device_token"
    if (token, environment) == (
        subentry.data.get(CONF_TOKEN),
        subentry.data.get(CONF_ENVIRONMENT, ENV_PRODUCTION),
    ):
        return {}, "same_device_token"
    if any(other.data.get(CONF_TOKEN) == token for other in others):
        return {}, "device_token_in_use"
    return {CONF_TOKEN: token, CONF_ENVIRONMENT: environment}, None


def _new_subscription(
    text: str, subentry: ConfigSubentry, others: list[ConfigSubentry]
) -> tuple[dict[str, str], str | None]:
    try:
        subscription = parse_subscription_json(text)
    except SubscriptionError as err:
        return {}, err.key
    endpoint = subscription[CONF_ENDPOINT]
    if endpoint == subentry.data.get(CONF_ENDPOINT):
        return {}, "same_endpoint"
    if any(other.data.get(CONF_ENDPOINT) == endpoint for other in others):
        return {}, "endpoint_in_use"
    return subscription, None


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """Create the fix flow for an inactive device."""
    assert data is not None
    return InactiveDeviceRepairFlow(str(data["entry_id"]), str(data["device_id"]))
