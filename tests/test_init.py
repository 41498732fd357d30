"""Set-up, unload and reload of the hub."""

from __future__ import annotations

import asyncio
import logging
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from homeassistant.components.notify.const import DOMAIN as NOTIFY_DOMAIN
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState, ConfigSubentry
from homeassistant.const import (
    EVENT_HOMEASSISTANT_STOP,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.direct_push.const import CONF_KEY, DOMAIN

from .apns_server import ApnsServer
from .conftest import ALICE_TOKEN, CAROL_TOKEN, apns_device


async def send(hass: HomeAssistant, target: str) -> Any:
    """Send through direct_push.send and return its response."""
    return await hass.services.async_call(
        DOMAIN,
        "send",
        {"message": "Hello", "target": target},
        blocking=True,
        return_response=True,
    )


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
    [push] = apns_server.pushes
    assert response == {
        "deliveries": [
            {
                "device": "Alice",
                "device_id": next(iter(loaded_entry.subentries)),
                "message_id": push.apns_id,
                "status": "delivered",
                "reason": None,
                "next_attempt": None,
                "truncated": False,
            }
        ],
        "dropped": 0,
    }
    assert push.token == ALICE_TOKEN
    assert push.payload["aps"]["alert"] == {"title": "Doorbell", "body": "Ding dong"}


async def test_unload_closes_connections(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    await send(hass, "Alice")
    connections = list(apns_server._connections)
    assert connections

    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done()

    assert loaded_entry.state is ConfigEntryState.NOT_LOADED
    async with asyncio.timeout(5):
        await asyncio.gather(*(connection.closed for connection in connections))
    assert not apns_server._connections
    state = hass.states.get("notify.alice")
    assert state is not None
    assert state.state == STATE_UNAVAILABLE
    # The per-device legacy services go; notify.direct_push stays and explains.
    services = hass.services.async_services_for_domain(NOTIFY_DOMAIN)
    assert DOMAIN in services
    assert f"{DOMAIN}_alice" not in services
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            NOTIFY_DOMAIN, DOMAIN, {"message": "Hello"}, blocking=True
        )
    assert err.value.translation_key == "not_loaded"


async def test_stop_closes_connections(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await send(hass, "all")
    connections = list(apns_server._connections)
    assert connections

    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()

    async with asyncio.timeout(5):
        await asyncio.gather(*(connection.closed for connection in connections))
    assert not apns_server._connections
    # Unloading after the stop listener fired is quiet.
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_reload_after_adding_and_removing_devices(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    entity_registry: er.EntityRegistry,
) -> None:
    device = apns_device("Carol", CAROL_TOKEN)
    carol = ConfigSubentry(
        data=MappingProxyType(device["data"]),
        subentry_type=device["subentry_type"],
        title=device["title"],
        unique_id=None,
    )
    hass.config_entries.async_add_subentry(loaded_entry, carol)
    await hass.async_block_till_done()

    assert loaded_entry.state is ConfigEntryState.LOADED
    state = hass.states.get("notify.carol")
    assert state is not None
    assert state.state == STATE_UNKNOWN
    assert hass.services.has_service(NOTIFY_DOMAIN, f"{DOMAIN}_carol")
    await hass.services.async_call(
        NOTIFY_DOMAIN, "send_message", {"entity_id": "notify.carol", "message": "Hi"}
    )
    await hass.async_block_till_done()
    assert [push.token for push in apns_server.pushes] == [CAROL_TOKEN]

    bob = next(s for s in loaded_entry.subentries.values() if s.title == "Bob")
    assert hass.config_entries.async_remove_subentry(loaded_entry, bob.subentry_id)
    await hass.async_block_till_done()

    assert loaded_entry.state is ConfigEntryState.LOADED
    assert hass.states.get("notify.bob") is None
    assert entity_registry.async_get("notify.bob") is None
    assert not hass.services.has_service(NOTIFY_DOMAIN, f"{DOMAIN}_bob")
    with pytest.raises(ServiceValidationError):
        await send(hass, "Bob")


def _p384_key() -> str:
    key = ec.generate_private_key(ec.SECP384R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("AuthKey_ABC123DEFG.p8", "invalid_key"),
        (
            "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
            "invalid_key",
        ),
        (_p384_key(), "invalid_key_type"),
    ],
)
async def test_unreadable_stored_key_starts_reauth(
    hass: HomeAssistant, config_entry: MockConfigEntry, key: str, reason: str
) -> None:
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, data={**config_entry.data, CONF_KEY: key}
    )

    assert not await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()

    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    assert config_entry.error_reason_translation_key == reason
    [flow] = config_entry.async_get_active_flows(hass, {SOURCE_REAUTH})
    assert flow["handler"] == DOMAIN


async def test_actions_without_a_loaded_hub(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()

    with pytest.raises(ServiceValidationError) as err:
        await send(hass, "all")
    assert err.value.translation_key == "not_loaded"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            NOTIFY_DOMAIN, DOMAIN, {"message": "Hello"}, blocking=True
        )
    assert err.value.translation_key == "not_loaded"
