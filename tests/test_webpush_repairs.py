"""A Web Push device the push service says is gone: its repair issue and fix."""

from __future__ import annotations

import json
from typing import Any

from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.direct_push.const import CONF_SUBSCRIPTION, DOMAIN

from .apns_server import ApnsServer, ApnsTestCredentials
from .conftest import (
    REPAIR_FIX_URL,
    VAPID_PUBLIC_KEY,
    delivery_statuses,
    inactive_issue,
    send_rows,
    start_repair,
    token_entry_data,
    webpush_device,
)
from .webpush_server import Subscription, WebPushServer

# Every test also proves that no subscription secret is logged.
pytestmark = pytest.mark.usefixtures("secrets_stay_out_of_logs")


@pytest.fixture
def devices(mixed_devices: list[ConfigSubentryData]) -> list[ConfigSubentryData]:
    """Alice (Apple, admin), Bob (Apple), Dana (Web Push, admin), Erin (Web Push)."""
    return mixed_devices


@pytest.mark.parametrize("status", [404, 410])
async def test_gone_marks_device_inactive(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    status: int,
) -> None:
    webpush_server.script(subs["Erin"], status)
    rows = await send_rows(hass, message="Hello")

    statuses = delivery_statuses(rows)
    assert statuses["Erin"] == ("failed", f"endpoint_gone_{status}")
    assert statuses["Dana"] == ("delivered", None)
    issue = inactive_issue(hass, loaded_entry, "Erin")
    assert issue is not None
    assert issue.translation_key == "device_inactive"
    assert issue.is_fixable
    assert webpush_server.requests == 2  # one each: a gone device is not retried

    # The next send skips Erin: her push service hears nothing.
    rows = await send_rows(hass, message="Again")
    assert delivery_statuses(rows)["Erin"] == ("failed", "device_inactive")
    assert webpush_server.requests == 3
    assert len(webpush_server.messages_for(subs["Dana"])) == 2


async def test_web_push_device_repair_takes_a_new_subscription(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    apns_credentials: ApnsTestCredentials,
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
    issue_registry: ir.IssueRegistry,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    old = webpush_server.subscribe("Pixel", application_server_key=VAPID_PUBLIC_KEY)
    other = webpush_server.subscribe("Tab", application_server_key=VAPID_PUBLIC_KEY)
    entry = MockConfigEntry(
        domain=DOMAIN,
        data=token_entry_data(apns_credentials),
        subentries_data=[webpush_device("Pixel", old), webpush_device("Tab", other)],
        minor_version=2,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    webpush_server.script(old, 410, times=1)
    [delivery] = await send_rows(hass, message="Hello", target="Pixel")
    assert delivery["reason"] == "endpoint_gone_410"
    pixel_id = next(
        s.subentry_id for s in entry.subentries.values() if s.title == "Pixel"
    )
    issue_id = f"device_inactive_{pixel_id}"
    assert issue_registry.async_get_issue(DOMAIN, issue_id)

    client = await hass_client()
    flow = await start_repair(client, issue_id)
    assert flow["data_schema"][0]["name"] == CONF_SUBSCRIPTION

    async def answer(value: str) -> dict[str, Any]:
        response = await client.post(
            f"{REPAIR_FIX_URL}/{flow['flow_id']}", json={CONF_SUBSCRIPTION: value}
        )
        result: dict[str, Any] = await response.json()
        return result

    assert (await answer("not json"))["errors"] == {
        CONF_SUBSCRIPTION: "invalid_subscription"
    }
    assert (await answer(json.dumps(old.as_json())))["errors"] == {
        CONF_SUBSCRIPTION: "same_endpoint"
    }
    assert (await answer(json.dumps(other.as_json())))["errors"] == {
        CONF_SUBSCRIPTION: "endpoint_in_use"
    }
    new = webpush_server.subscribe("Pixel", application_server_key=VAPID_PUBLIC_KEY)
    assert (await answer(json.dumps(new.as_json())))["type"] == "create_entry"
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    [delivery] = await send_rows(hass, message="Hello", target="Pixel")
    assert delivery["status"] == "delivered"
    assert [m.subscription_id for m in webpush_server.messages] == [new.id]
    await hass.config_entries.async_unload(entry.entry_id)
