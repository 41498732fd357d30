"""Leases: the timeout push, expiry, removal, and renewal, against the real APNs server."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.direct_push.const import (
    CONF_LEASE_DAYS,
    CONF_LEASE_EXPIRES,
    CONF_LEASE_WARNED,
    CONF_TOKEN,
    DOMAIN,
)
from custom_components.direct_push.device_api import HEADER_SECRET
from custom_components.direct_push.issues import lease_issue_id
from custom_components.direct_push.leases import (
    DAY,
    GRACE,
    lease_expired,
    next_moment,
    timeout_message,
)

from .apns_server import ApnsServer
from .conftest import CAROL_TOKEN, send_rows
from .test_device_api import client, device_headers, log_secrets, pair

__all__ = ["client", "log_secrets"]  # fixtures shared with test_device_api

pytestmark = pytest.mark.usefixtures("secrets_stay_out_of_logs")
NEW_TOKEN = "d4" * 32


def test_the_moments_of_a_lease() -> None:
    """A day before the end, the end, and a week after it; none for admin-added devices."""
    config: dict[str, Any] = {CONF_LEASE_EXPIRES: 10 * DAY}
    assert next_moment({}, 0.0) is None
    assert next_moment(config, 0.0) == 9 * DAY
    assert next_moment({**config, CONF_LEASE_WARNED: 10 * DAY}, 0.0) == 10 * DAY
    assert next_moment(config, 9 * DAY) == 10 * DAY
    assert next_moment(config, 10 * DAY) == 10 * DAY + GRACE
    assert next_moment(config, 10 * DAY + GRACE) is None
    assert not lease_expired(config, 10 * DAY - 1)
    assert lease_expired(config, 10 * DAY)
    assert not lease_expired({}, 10 * DAY)


def test_a_timeout_push_carries_no_message() -> None:
    """A background push with the lease's end, nothing to show."""
    message = timeout_message("01DEV", "expiring", 0.0)
    assert message.is_background
    assert message.message == ""
    assert message.data == {
        "type": "timeout",
        "device_id": "01DEV",
        "reason": "expiring",
        "lease_expires_at": "1970-01-01T00:00:00+00:00",
    }


async def later(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, delta: timedelta
) -> None:
    """Let time pass in one step; the timers due run."""
    freezer.tick(delta)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def test_a_lease_that_is_not_renewed(
    hass: HomeAssistant,
    client: TestClient[Any, Any],
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    freezer: FrozenDateTimeFactory,
    log_secrets: list[str],
) -> None:
    """Timeout push a day before, unavailable with a repair at the end, removed a week on."""
    answer = await pair(hass, client, log_secrets)
    device_id = answer["device_id"]
    expires = datetime.fromisoformat(answer["lease_expires_at"])
    assert expires - datetime.now(expires.tzinfo) > timedelta(days=29, hours=23)

    await later(hass, freezer, timedelta(days=29, minutes=1))
    [push] = apns_server.pushes_for(CAROL_TOKEN)
    assert push.push_type == "background"
    assert push.payload["type"] == "timeout"
    assert push.payload["reason"] == "expiring"
    assert push.payload["lease_expires_at"] == answer["lease_expires_at"]
    # Announced once, even across a reload.
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await later(hass, freezer, timedelta(hours=1))
    assert len(apns_server.pushes_for(CAROL_TOKEN)) == 1

    await later(hass, freezer, timedelta(days=1))
    assert hass.states.get("notify.carol").state == STATE_UNAVAILABLE
    assert ir.async_get(hass).async_get_issue(DOMAIN, lease_issue_id(device_id))
    rows = await send_rows(hass, target="Carol", message="Anyone?")
    assert [(row["status"], row["reason"]) for row in rows] == [
        ("failed", "device_inactive")
    ]
    assert len(apns_server.pushes_for(CAROL_TOKEN)) == 1

    await later(hass, freezer, timedelta(days=7))
    assert device_id not in loaded_entry.subentries
    assert ir.async_get(hass).async_get_issue(DOMAIN, lease_issue_id(device_id)) is None
    assert hass.states.get("notify.carol") is None


async def test_a_renewal_restores_a_lapsed_device_with_its_new_token(
    hass: HomeAssistant,
    client: TestClient[Any, Any],
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    freezer: FrozenDateTimeFactory,
    log_secrets: list[str],
) -> None:
    """Tokens rotate: a renewal may bring one; a lapsed device works again."""
    hass.config_entries.async_update_entry(loaded_entry, options={CONF_LEASE_DAYS: 7})
    await hass.async_block_till_done()
    answer = await pair(hass, client, log_secrets)
    device_id = answer["device_id"]
    log_secrets.append(NEW_TOKEN)
    await later(hass, freezer, timedelta(days=7, hours=1))
    assert hass.states.get("notify.carol").state == STATE_UNAVAILABLE

    url = f"/api/direct_push/devices/{device_id}/renew"
    headers = device_headers(answer)
    wrong = await client.post(url, json={}, headers={**headers, HEADER_SECRET: "x"})
    assert wrong.status == 401
    refused = await client.post(url, json={"admin": True}, headers=headers)
    assert (await refused.json())["field"] == "admin"

    response = await client.post(url, json={"token": NEW_TOKEN}, headers=headers)
    assert response.status == 200, await response.text()
    renewed = datetime.fromisoformat((await response.json())["lease_expires_at"])
    assert renewed - datetime.now(renewed.tzinfo) > timedelta(days=6, hours=23)
    await hass.async_block_till_done()

    assert loaded_entry.subentries[device_id].data[CONF_TOKEN] == NEW_TOKEN
    assert hass.states.get("notify.carol").state != STATE_UNAVAILABLE
    assert ir.async_get(hass).async_get_issue(DOMAIN, lease_issue_id(device_id)) is None
    rows = await send_rows(hass, target="Carol", message="Back")
    assert [row["status"] for row in rows] == ["delivered"]
    assert [
        p.payload["aps"]["alert"]["body"] for p in apns_server.pushes_for(NEW_TOKEN)
    ] == ["Back"]

    # A renewal with nothing in it only extends the lease.
    await later(hass, freezer, timedelta(days=3))
    response = await client.post(url, headers=headers)
    assert response.status == 200
    later_end = datetime.fromisoformat((await response.json())["lease_expires_at"])
    assert later_end - renewed >= timedelta(days=3)
    await hass.async_block_till_done()
