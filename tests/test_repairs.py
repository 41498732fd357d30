"""An inactive device and its repair: a new token, through HA's repairs API."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from homeassistant.config_entries import ConfigEntryState, ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.direct_push.const import (
    CONF_DETECTED_ENVIRONMENT,
    CONF_ENVIRONMENT,
    CONF_TOKEN,
    DOMAIN,
    ENV_AUTO,
    ENV_PRODUCTION,
    ENV_SANDBOX,
)

from .apns_server import ApnsServer
from .conftest import ALICE_TOKEN, BOB_TOKEN, CAROL_TOKEN, REPAIR_FIX_URL, start_repair


async def send(hass: HomeAssistant, target: str) -> list[dict[str, Any]]:
    """Send through direct_push.send and return the delivery rows."""
    response = await hass.services.async_call(
        DOMAIN,
        "send",
        {"message": "Hello", "target": target},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    deliveries: list[dict[str, Any]] = response["deliveries"]  # type: ignore[assignment]
    return deliveries


def bob_id(entry: MockConfigEntry) -> str:
    """Return Bob's subentry id."""
    subentries: dict[str, ConfigSubentry] = entry.subentries
    return next(s.subentry_id for s in subentries.values() if s.title == "Bob")


@pytest.fixture
async def bob_gone(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> str:
    """Have Apple answer 410 Unregistered for Bob once; return his issue id."""
    assert await async_setup_component(hass, "repairs", {})
    apns_server.script(BOB_TOKEN, 410, "Unregistered", times=1)
    [delivery] = await send(hass, "Bob")
    assert delivery["status"] == "failed"
    assert delivery["reason"] == "Unregistered"
    return f"device_inactive_{bob_id(loaded_entry)}"


async def submit(
    client: Any, flow_id: str, token: str, **fields: str
) -> dict[str, Any]:
    """Submit the token form (and its other fields, such as the environment)."""
    response = await client.post(
        f"{REPAIR_FIX_URL}/{flow_id}", json={CONF_TOKEN: token, **fields}
    )
    assert response.status == HTTPStatus.OK
    result: dict[str, Any] = await response.json()
    return result


async def test_gone_device_gets_a_fixable_issue(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    issue_registry: ir.IssueRegistry,
    bob_gone: str,
) -> None:
    issue = issue_registry.async_get_issue(DOMAIN, bob_gone)
    assert issue is not None
    assert issue.is_fixable
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_key == "device_inactive"
    assert issue.translation_placeholders == {"device": "Bob", "reason": "Unregistered"}

    # Bob is skipped from now on, without asking Apple; Alice still gets hers.
    assert [
        (d["device"], d["status"], d["reason"]) for d in await send(hass, "all")
    ] == [
        ("Alice", "delivered", None),
        ("Bob", "failed", "device_inactive"),
    ]
    assert [push.token for push in apns_server.pushes] == [ALICE_TOKEN]
    with pytest.raises(HomeAssistantError):
        await hass.services.async_call(
            "notify",
            "send_message",
            {"entity_id": "notify.bob", "message": "Hi"},
            blocking=True,
        )


async def test_fix_with_new_token(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    *,
    issue_registry: ir.IssueRegistry,
    bob_gone: str,
) -> None:
    client = await hass_client()
    result = await start_repair(client, bob_gone)
    assert result["type"] == "form"
    assert result["step_id"] == "init"
    # The device and the push service's answer, for the description.
    assert result["description_placeholders"] == {
        "device": "Bob",
        "reason": "Unregistered",
    }
    flow_id = result["flow_id"]

    result = await submit(client, flow_id, "not hex")
    assert result["errors"] == {CONF_TOKEN: "invalid_device_token"}
    # The refused token, even pasted in capitals with spaces around it.
    result = await submit(client, flow_id, f" {BOB_TOKEN.upper()} ")
    assert result["errors"] == {CONF_TOKEN: "same_device_token"}
    result = await submit(client, flow_id, ALICE_TOKEN)
    assert result["errors"] == {CONF_TOKEN: "device_token_in_use"}
    assert issue_registry.async_get_issue(DOMAIN, bob_gone) is not None

    old_hub = loaded_entry.runtime_data
    result = await submit(client, flow_id, CAROL_TOKEN.upper())
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()

    assert issue_registry.async_get_issue(DOMAIN, bob_gone) is None
    assert loaded_entry.subentries[bob_id(loaded_entry)].data[CONF_TOKEN] == CAROL_TOKEN
    # Reloaded: a new hub with Bob's new token.
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert loaded_entry.runtime_data is not old_hub
    [delivery] = await send(hass, "Bob")
    assert delivery["status"] == "delivered"
    assert [push.token for push in apns_server.pushes] == [CAROL_TOKEN]


async def test_fix_with_the_other_environment(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    bob_gone: str,
) -> None:
    # A sandbox token sent to production: the token stays, the environment changes.
    client = await hass_client()
    flow_id = (await start_repair(client, bob_gone))["flow_id"]
    result = await submit(client, flow_id, BOB_TOKEN, environment=ENV_SANDBOX)
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()
    [delivery] = await send(hass, "Bob")
    assert delivery["status"] == "delivered"
    [push] = apns_server.pushes
    assert (push.token, push.environment) == (BOB_TOKEN, "sandbox")


async def test_fix_with_automatic_environment(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    bob_gone: str,
) -> None:
    """Automatic is offered; a new token forgets where the old one was found."""
    hass.config_entries.async_update_subentry(
        loaded_entry,
        loaded_entry.subentries[bob_id(loaded_entry)],
        data={
            **loaded_entry.subentries[bob_id(loaded_entry)].data,
            CONF_ENVIRONMENT: ENV_AUTO,
            CONF_DETECTED_ENVIRONMENT: ENV_SANDBOX,
        },
    )
    await hass.async_block_till_done()
    client = await hass_client()
    result = await start_repair(client, bob_gone)
    [field] = [f for f in result["data_schema"] if f["name"] == CONF_ENVIRONMENT]
    assert field["default"] == ENV_AUTO
    assert field["selector"]["select"]["options"] == [
        ENV_AUTO,
        ENV_PRODUCTION,
        ENV_SANDBOX,
    ]
    result = await submit(client, result["flow_id"], CAROL_TOKEN, environment=ENV_AUTO)
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()
    data = loaded_entry.subentries[bob_id(loaded_entry)].data
    assert (data[CONF_TOKEN], data[CONF_ENVIRONMENT]) == (CAROL_TOKEN, ENV_AUTO)
    assert CONF_DETECTED_ENVIRONMENT not in data
    # Production first again.
    [delivery] = await send(hass, "Bob")
    assert delivery["status"] == "delivered"
    [push] = apns_server.pushes
    assert (push.token, push.environment) == (CAROL_TOKEN, ENV_PRODUCTION)


async def test_fix_aborts_when_device_removed(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    bob_gone: str,
) -> None:
    client = await hass_client()
    result = await start_repair(client, bob_gone)
    assert result["type"] == "form"

    assert hass.config_entries.async_remove_subentry(loaded_entry, bob_id(loaded_entry))
    await hass.async_block_till_done()
    # The removed device's issue goes with it.
    assert issue_registry.async_get_issue(DOMAIN, bob_gone) is None

    result = await submit(client, result["flow_id"], CAROL_TOKEN)
    assert result["type"] == "abort"
    assert result["reason"] == "device_removed"


async def test_removing_the_hub_deletes_its_issues(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    apns_server: ApnsServer,
    issue_registry: ir.IssueRegistry,
) -> None:
    # Not loaded_entry: that fixture unloads the entry this test removes.
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    apns_server.script(BOB_TOKEN, 410, "Unregistered")
    await send(hass, "Bob")
    issue_id = f"device_inactive_{bob_id(config_entry)}"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None

    assert await hass.config_entries.async_remove(config_entry.entry_id)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
