"""Set-up, unload and reload of the hub."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.direct_push.const import DOMAIN

from .apns_server import ApnsServer
from .conftest import ALICE_TOKEN


async def test_setup_and_send(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    assert loaded_entry.state is ConfigEntryState.LOADED
    response = await hass.services.async_call(
        DOMAIN,
        "send",
        {"message": "Ding dong", "title": "Doorbell", "target": "admin"},
        blocking=True,
        return_response=True,
    )
    assert response == {
        "deliveries": [
            {
                "device": "Alice",
                "device_id": next(iter(loaded_entry.subentries)),
                "status": "delivered",
                "reason": None,
                "truncated": False,
            }
        ]
    }
    [push] = apns_server.pushes
    assert push.token == ALICE_TOKEN
    assert push.payload["aps"]["alert"] == {"title": "Doorbell", "body": "Ding dong"}
