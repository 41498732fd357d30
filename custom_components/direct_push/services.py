"""The direct_push.send action."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import suppress
from functools import partial
from typing import Any, Final

from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
import voluptuous as vol

from .answers import DATA_ANSWERS
from .backend import Device
from .const import ATTR_DEDUPE_KEY, DOMAIN
from .errors import refused_as_service_error
from .hub import DirectPushHub
from .jobs import Report, Sent, Status
from .json_input import check_json_value
from .message import (
    DEFAULT_TTL,
    MAX_ACTIONS,
    InterruptionLevel,
    Message,
    PushKind,
    action_buttons,
)
from .reporter import Reporter
from .validation import InputError, check_message_fields, check_text

SERVICE_SEND: Final = "send"
# How long an action waits for the hub to come back from a reload (seconds).
RELOAD_WAIT: Final = 10.0
ATTR_MESSAGE: Final = "message"
ATTR_TARGET: Final = "target"
ATTR_DATA: Final = "data"
ATTR_ACTIONS: Final = "actions"
ATTR_REPORTER: Final = "reporter"
NOT_REPORTER: Final = "not_reporter"

# The fields that shape a message; shared by the action and the legacy notify
# service's `data`.
MESSAGE_FIELDS: Final[dict[vol.Marker, Any]] = {
    vol.Optional("title"): cv.string,
    vol.Optional("subtitle"): cv.string,
    vol.Optional("sound"): cv.string,
    vol.Optional("badge"): vol.All(vol.Coerce(int), vol.Range(min=0)),
    vol.Optional("interruption_level"): vol.Coerce(InterruptionLevel),
    vol.Optional("thread_id"): cv.string,
    vol.Optional("tag"): cv.string,
    vol.Optional("url"): cv.string,
    vol.Optional("image"): cv.string,
    vol.Optional("category"): cv.string,
    vol.Optional("ttl"): vol.All(vol.Coerce(int), vol.Range(min=0)),
    vol.Optional("priority"): vol.All(vol.Coerce(int), vol.In([5, 10])),
    vol.Optional("push_type"): vol.Coerce(PushKind),
    vol.Optional(ATTR_DATA): vol.Schema({cv.string: object}),
    # Up to four buttons; "action" is the name apps written before "id" know.
    vol.Optional(ATTR_ACTIONS): vol.All(
        [
            vol.All(
                vol.Schema(
                    {
                        vol.Exclusive("id", "action_id"): cv.string,
                        vol.Exclusive("action", "action_id"): cv.string,
                        vol.Required("title"): cv.string,
                        vol.Optional("url"): cv.string,
                        vol.Optional("destructive"): cv.boolean,
                        vol.Optional("authentication_required"): cv.boolean,
                        vol.Optional("text_input"): cv.boolean,
                    }
                ),
                cv.has_at_least_one_key("id", "action"),
            )
        ],
        vol.Length(max=MAX_ACTIONS),
    ),
}


def targets(value: Any) -> Any:
    """Accept a target, or lists of them nested as blueprint inputs give them.

    `[!input groups, !input devices]` is a list of lists; an unset input is
    None or "". The nesting is kept: an empty list names no one (an error),
    while blueprint inputs left empty fall back to everyone, as no target
    does. What each target means is routing's business.
    """
    if isinstance(value, list | tuple):
        return [targets(item) for item in value]
    return None if value is None else cv.string(value)


def _flatten(value: Any) -> list[str]:
    if isinstance(value, list):
        return [target for item in value for target in _flatten(item)]
    return [] if value is None else [value]


def recipients(value: Any) -> list[str] | None:
    """Return an action's targets as routing takes them; None for no target.

    Raises InputError for `target: []`: a template that found no one must
    not send to everyone.
    """
    if value is None:
        return None
    if value == []:
        raise InputError(ATTR_TARGET, "no_recipients")
    found = _flatten(value)
    for target in found:
        check_text(target, ATTR_TARGET)
    return found


SEND_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(ATTR_MESSAGE, default=""): cv.string,
        vol.Optional(ATTR_TARGET): targets,
        # One of the reporter group sends (reporter.py); "all": this instance does.
        vol.Optional(ATTR_REPORTER, default="all"): vol.In(["one", "all"]),
        vol.Optional(ATTR_DEDUPE_KEY): vol.All(cv.string, vol.Length(min=1, max=256)),
        **MESSAGE_FIELDS,
    }
)
LEGACY_DATA_SCHEMA: Final = vol.Schema(MESSAGE_FIELDS)


def build_message(fields: Mapping[str, Any]) -> Message:
    """Turn validated action fields into a Message, or raise InputError.

    Only what no push service takes is refused here; each kind's own limits
    are checked once the devices are known (DirectPushHub.check).
    """
    check_message_fields(fields)
    # A template or a script can hand over a set, NaN or data nested
    # deeper than any encoder recurses: refused before anything is sent.
    check_json_value(fields.get(ATTR_DATA) or {}, ATTR_DATA)
    message = Message(
        message=fields.get(ATTR_MESSAGE, ""),
        title=fields.get("title"),
        subtitle=fields.get("subtitle"),
        sound=fields.get("sound"),
        badge=fields.get("badge"),
        interruption_level=fields.get("interruption_level"),
        thread_id=fields.get("thread_id"),
        tag=fields.get("tag"),
        url=fields.get("url"),
        image=fields.get("image"),
        category=fields.get("category"),
        ttl=fields.get("ttl", DEFAULT_TTL),
        priority=fields.get("priority"),
        push_type=fields.get("push_type", PushKind.ALERT),
        data=dict(fields.get(ATTR_DATA) or {}),
        actions=action_buttons(fields.get(ATTR_ACTIONS) or ()),
    )
    if not message.is_background and not message.message:
        raise InputError(ATTR_MESSAGE, "message_required")
    return message


async def async_wait_hub(hass: HomeAssistant) -> DirectPushHub:
    """Return the loaded hub; while it reloads, wait for it.

    The hub reloads when a device pairs or an option changes: a doorbell
    ringing in that second must still be pushed, not refused.
    """
    entries = hass.config_entries.async_entries(DOMAIN, include_ignore=False)
    if entries and entries[0].setup_lock.locked():
        with suppress(TimeoutError):
            async with asyncio.timeout(RELOAD_WAIT), entries[0].setup_lock:
                pass
    return async_get_hub(hass)


@callback
def async_get_hub(hass: HomeAssistant) -> DirectPushHub:
    """Return the loaded hub, or explain that there is none."""
    if not (entries := hass.config_entries.async_loaded_entries(DOMAIN)):
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="not_loaded"
        )
    hub: DirectPushHub = entries[0].runtime_data
    return hub


def raise_if_all_failed(reports: list[Report]) -> None:
    """Raise when no device got the push and none is queued, so a caller cannot miss it."""
    if reports and not any(
        report.reached or report.status is Status.SKIPPED for report in reports
    ):
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="send_failed",
            translation_placeholders={
                "failures": ", ".join(
                    f"{report.device.name} ({report.reason})" for report in reports
                )
            },
        )


async def async_send_message(
    hub: DirectPushHub, devices: list[Device], fields: Mapping[str, Any]
) -> Sent:
    """Build a message from fields and send it to the devices.

    The action, the notify entities and the legacy notify service all send
    through here: a message is checked against the limits of the kinds of
    device it goes to, and refused before anything is sent.
    """
    return await _async_deliver(
        hub, devices, await _async_checked_message(hub, devices, fields)
    )


async def _async_checked_message(
    hub: DirectPushHub, devices: list[Device], fields: Mapping[str, Any]
) -> Message:
    # A burst of calls builds its messages in turns (pacing.Turns), not all at once.
    return await hub.outbox.turns.call(partial(_checked_message, hub, devices, fields))


async def _async_deliver(
    hub: DirectPushHub, devices: list[Device], message: Message
) -> Sent:
    sent = await hub.async_send(devices, message)
    if message.actions and (answers := hub.hass.data.get(DATA_ANSWERS)) is not None:
        answers.record_sent(message, sent)
    return sent


def _checked_message(
    hub: DirectPushHub, devices: list[Device], fields: Mapping[str, Any]
) -> Message:
    with refused_as_service_error():
        message = build_message(fields)
    hub.check(message, devices)
    return message


@callback
def async_resolve_targets(hub: DirectPushHub, value: Any) -> list[Device]:
    """Return the devices an action's targets name (see recipients)."""
    with refused_as_service_error():
        found = recipients(value)
    return hub.resolve(found)


async def _async_targets(hub: DirectPushHub, fields: Mapping[str, Any]) -> list[Device]:
    return await hub.outbox.turns.call(
        partial(async_resolve_targets, hub, fields.get(ATTR_TARGET))
    )


async def async_send_fields(hub: DirectPushHub, fields: Mapping[str, Any]) -> Sent:
    """Send what an action's fields say, to the targets they name."""
    return await async_send_message(hub, await _async_targets(hub, fields), fields)


async def _async_send_as_reporter(
    hub: DirectPushHub, reporter: Reporter, fields: Mapping[str, Any]
) -> Sent:
    """Send only if this instance is the group's reporter; else skip and stand by."""
    devices = await _async_targets(hub, fields)
    # Refused input is refused on every member, leader or not.
    message = await _async_checked_message(hub, devices, fields)
    key = reporter.key(fields)
    if not reporter.claim(key, fields):
        return Sent(
            [Report(device, Status.SKIPPED, NOT_REPORTER) for device in devices]
        )
    sent = await _async_deliver(hub, devices, message)
    await reporter.async_confirm(key)
    return sent


async def _async_send(call: ServiceCall) -> ServiceResponse:
    hub = await async_wait_hub(call.hass)
    if call.data[ATTR_REPORTER] == "one" and hub.reporter is not None:
        sent = await _async_send_as_reporter(hub, hub.reporter, call.data)
    else:
        sent = await async_send_fields(hub, call.data)
    if not call.return_response:
        raise_if_all_failed(sent.reports)
    return {
        "deliveries": [report.as_dict() for report in sent.reports],
        "dropped": sent.dropped,
    }


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register direct_push.send."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_SEND,
        _async_send,
        schema=SEND_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
