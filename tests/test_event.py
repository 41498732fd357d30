"""Buttons: a push's buttons reach the phone, and its answer triggers an automation."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.direct_push.const import DOMAIN, EVENT_ACTION

from .apns_server import ApnsServer
from .conftest import CAROL_TOKEN
from .test_device_api import client, device_headers, log_secrets, pair

__all__ = ["client", "log_secrets"]  # fixtures shared with test_device_api

pytestmark = pytest.mark.usefixtures("secrets_stay_out_of_logs")
ACTIONS = "/api/direct_push/actions"
EVENT_ENTITY = "event.carol_button_answered"


async def test_a_button_answered_triggers_an_automation(
    hass: HomeAssistant,
    client: TestClient[Any, Any],
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    log_secrets: list[str],
) -> None:
    """Send with buttons, answer one from the phone: event, entity, automation."""
    carol = await pair(hass, client, log_secrets)
    erin = await pair(hass, client, log_secrets, name="Erin", token="e5" * 32)
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "triggers": {"trigger": "state", "entity_id": EVENT_ENTITY},
                "actions": {
                    "event": "door_answer",
                    "event_data": {
                        "button": "{{ trigger.to_state.attributes.action }}",
                        "text": "{{ trigger.to_state.attributes.text }}",
                    },
                },
            }
        },
    )
    answered = async_capture_events(hass, EVENT_ACTION)
    automation_ran = async_capture_events(hass, "door_answer")

    response = await hass.services.async_call(
        DOMAIN,
        "send",
        {
            "target": "Carol",
            "message": "Someone is at the door",
            "actions": [
                {"id": "open", "title": "Open", "authentication_required": True},
                {"action": "reply", "title": "Reply", "text_input": True},
            ],
        },
        blocking=True,
        return_response=True,
    )
    assert response is not None
    [row] = response["deliveries"]  # type: ignore[misc]
    message_id = row["message_id"]
    [push] = apns_server.pushes_for(CAROL_TOKEN)
    assert push.payload["id"] == message_id
    assert push.payload["aps"]["category"] == "direct_push_actions"
    assert push.payload["actions"] == [
        {
            "id": "open",
            "action": "open",
            "title": "Open",
            "authentication_required": True,
        },
        {"id": "reply", "action": "reply", "title": "Reply", "text_input": True},
    ]

    answer = {"message_id": message_id, "action": "reply", "text": "On my way"}
    # Erin got no such message: she cannot answer for Carol.
    other = await client.post(ACTIONS, json=answer, headers=device_headers(erin))
    assert (other.status, (await other.json())["error"]) == (404, "not_found")
    unknown = await client.post(
        ACTIONS, json={**answer, "action": "call"}, headers=device_headers(carol)
    )
    assert (unknown.status, (await unknown.json())["error"]) == (400, "unknown_action")
    anonymous = await client.post(ACTIONS, json=answer)
    assert anonymous.status == 401

    done = await client.post(ACTIONS, json=answer, headers=device_headers(carol))
    assert done.status == 200
    await hass.async_block_till_done()
    [event] = answered
    assert event.data == {
        "device_id": carol["device_id"],
        "device_name": "Carol",
        "owner": None,
        "message_id": message_id,
        "action": "reply",
        "text": "On my way",
    }
    state = hass.states.get(EVENT_ENTITY)
    assert state is not None
    assert state.attributes["event_type"] == "action"
    assert state.attributes["action"] == "reply"
    assert [ran.data for ran in automation_ran] == [
        {"button": "reply", "text": "On my way"}
    ]

    again = await client.post(ACTIONS, json=answer, headers=device_headers(carol))
    assert (again.status, (await again.json())["error"]) == (409, "already_answered")
    assert len(answered) == 1
