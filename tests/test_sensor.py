"""Sensors: the hub's queued and dropped pushes, each device's last delivery and failure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from unittest.mock import PropertyMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNKNOWN, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.direct_push.const import DOMAIN

from .apns_server import ApnsServer, ApnsTestCredentials
from .conftest import ALICE_TOKEN, advance, setup_platform_hub, snapshot_platform
from .webpush_server import WebPushServer


async def send(hass: HomeAssistant, target: str, message: str) -> str:
    """Send to one device; return its row's status."""
    response = await hass.services.async_call(
        DOMAIN,
        "send",
        {"target": target, "message": message},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    status: str = response["deliveries"][0]["status"]  # type: ignore[index,call-overload]
    await hass.async_block_till_done()
    return status


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Enable the entities that are disabled by default (as in HA core's tests)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


def state(hass: HomeAssistant, entity_id: str) -> str:
    """Return an entity's state."""
    current = hass.states.get(entity_id)
    assert current is not None, entity_id
    return current.state


async def test_sensor_platform(
    hass: HomeAssistant,
    entity_registry_enabled_by_default: None,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    webpush_server: WebPushServer,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """The hub's two counts and each device's diagnostic sensors."""
    entry = await setup_platform_hub(
        hass, apns_credentials, webpush_server, Platform.SENSOR
    )
    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)
    for key in ("last_delivery", "last_failure"):
        sensor = entity_registry.async_get(f"sensor.alice_{key}")
        assert sensor is not None
        assert sensor.config_subentry_id == "alice"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_values_follow_the_pushes(
    hass: HomeAssistant,
    entity_registry_enabled_by_default: None,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    sent_at = dt_util.utcnow().replace(microsecond=0)
    freezer.move_to(sent_at)
    assert await send(hass, "Alice", "One") == "delivered"
    assert state(hass, "sensor.alice_last_delivery") == sent_at.isoformat()
    assert state(hass, "sensor.alice_last_failure") == STATE_UNKNOWN
    assert state(hass, "sensor.bob_last_delivery") == STATE_UNKNOWN

    apns_server.script(ALICE_TOKEN, 503, "ServiceUnavailable", times=1)
    assert await send(hass, "Alice", "Two") == "queued"
    assert state(hass, "sensor.alice_last_failure") == "ServiceUnavailable"
    assert state(hass, "sensor.direct_push_queued_pushes") == "1"

    await advance(hass, freezer, 10)
    assert state(hass, "sensor.direct_push_queued_pushes") == "0"
    delivered_at = dt_util.parse_datetime(state(hass, "sensor.alice_last_delivery"))
    assert delivered_at is not None
    assert sent_at < delivered_at <= sent_at + timedelta(seconds=11)
    # The last failure stays on show after a delivery.
    assert state(hass, "sensor.alice_last_failure") == "ServiceUnavailable"

    # Kept across a reload (and a restart: the same store).
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert state(hass, "sensor.alice_last_failure") == "ServiceUnavailable"
    assert dt_util.parse_datetime(state(hass, "sensor.alice_last_delivery")) == (
        delivered_at
    )


async def test_last_delivery_is_disabled_by_default(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    entry = entity_registry.async_get("sensor.alice_last_delivery")
    assert entry is not None
    assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert hass.states.get("sensor.alice_last_failure") is not None
