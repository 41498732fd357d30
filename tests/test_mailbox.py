"""Private mode: only a message id crosses the push services; the device fetches the rest."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.direct_push.const import (
    CONF_ALLOW_LOCAL_PUSH_SERVICES,
    CONF_PRIVATE,
    DOMAIN,
)

from .apns_server import ApnsServer
from .conftest import CAROL_TOKEN, Subscribe
from .test_device_api import client, device_headers, log_secrets, pair, register
from .webpush_server import WebPushServer

__all__ = ["client", "log_secrets"]  # fixtures shared with test_device_api

pytestmark = pytest.mark.usefixtures("secrets_stay_out_of_logs")
SECRET_WORDS = ("Alarm in the cellar", "Cellar", "Motion", "camera-7")


async def test_private_pushes_carry_only_an_id(
    hass: HomeAssistant,
    client: TestClient[Any, Any],
    loaded_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
    subscribe: Subscribe,
    freezer: FrozenDateTimeFactory,
    log_secrets: list[str],
) -> None:
    """No text reaches Apple or the Web Push service; each device reads its own message."""
    hass.config_entries.async_update_entry(
        loaded_entry, options={CONF_ALLOW_LOCAL_PUSH_SERVICES: True}
    )
    await hass.async_block_till_done()
    carol = await pair(hass, client, log_secrets, private=True)
    sub = subscribe("Dana")
    dana = await register(
        await hass_client(),
        {
            "name": "Dana",
            "platform": "webpush",
            "private": True,
            "subscription": {
                "endpoint": sub.endpoint,
                "keys": {"p256dh": sub.p256dh, "auth": sub.auth},
            },
        },
        log_secrets,
    )
    await hass.async_block_till_done()
    assert loaded_entry.subentries[dana["device_id"]].data[CONF_PRIVATE] is True

    response = await hass.services.async_call(
        DOMAIN,
        "send",
        {
            "target": ["Carol", "Dana", "Alice"],
            "title": "Motion",
            "message": "Alarm in the cellar",
            "data": {"camera": "camera-7"},
            "ttl": 3600,
        },
        blocking=True,
        return_response=True,
    )
    assert response is not None
    ids = {row["device"]: row["message_id"] for row in response["deliveries"]}  # type: ignore[union-attr]

    [apple] = apns_server.pushes_for(CAROL_TOKEN)
    assert apple.payload == {
        "type": "wake",
        "id": ids["Carol"],
        "aps": {"content-available": 1},
    }
    [web] = webpush_server.messages_for(sub)
    assert web.json == {"background": True, "data": {"type": "wake", "id": ids["Dana"]}}
    for word in SECRET_WORDS:
        assert word.encode() not in apple.raw
        assert word.encode() not in web.plaintext
        assert word.encode() not in web.body
    # A device not in private mode gets the message itself.
    assert any(
        push.payload["aps"].get("alert", {}).get("title") == "Motion"
        for push in apns_server.pushes
        if push.token != CAROL_TOKEN
    )

    url = f"/api/direct_push/messages/{ids['Carol']}"
    fetched = await client.get(url, headers=device_headers(carol))
    assert fetched.status == 200
    message = await fetched.json()
    assert message["id"] == ids["Carol"]
    assert (message["title"], message["message"]) == ("Motion", "Alarm in the cellar")
    assert message["data"] == {"camera": "camera-7"}
    # Readable only by the device it went to.
    others = await client.get(url, headers=device_headers(dana))
    assert others.status == 404
    assert (await client.get(url)).status == 401
    polled = await client.get("/api/direct_push/messages", headers=device_headers(dana))
    assert [m["id"] for m in (await polled.json())["messages"]] == [ids["Dana"]]

    # Kept across a restart of the hub, until the time to live ends.
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    assert (await client.get(url, headers=device_headers(carol))).status == 200
    freezer.tick(timedelta(hours=1, seconds=1))
    async_fire_time_changed(hass)
    assert (await client.get(url, headers=device_headers(carol))).status == 404
    await hass.async_block_till_done()


async def test_a_timeout_push_is_not_hidden_in_private_mode(
    hass: HomeAssistant,
    client: TestClient[Any, Any],
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    log_secrets: list[str],
) -> None:
    """Direct Push's own notices tell the app what they are."""
    carol = await pair(hass, client, log_secrets, private=True)
    done = await client.delete(
        f"/api/direct_push/devices/{carol['device_id']}", headers=device_headers(carol)
    )
    assert done.status == 200
    await hass.async_block_till_done()
    [last] = apns_server.pushes_for(CAROL_TOKEN)
    assert last.payload["type"] == "timeout"
    assert last.payload["reason"] == "unregistered"


async def test_an_app_with_a_service_extension_gets_a_neutral_alert(
    hass: HomeAssistant,
    client: TestClient[Any, Any],
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    log_secrets: list[str],
) -> None:
    """mutable-content lets the app's extension fetch the message; no text goes to Apple."""
    carol = await pair(hass, client, log_secrets, private=True, service_extension=True)
    response = await hass.services.async_call(
        DOMAIN,
        "send",
        {"target": "Carol", "title": "Motion", "message": "Alarm in the cellar"},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    [row] = response["deliveries"]  # type: ignore[misc]
    [apple] = apns_server.pushes_for(CAROL_TOKEN)
    assert apple.headers["apns-push-type"] == "alert"
    assert apple.payload == {
        "type": "wake",
        "id": row["message_id"],
        "aps": {
            "alert": {"body": "New notification"},
            "sound": "default",
            "mutable-content": 1,
        },
    }
    for word in SECRET_WORDS:
        assert word.encode() not in apple.raw
    fetched = await client.get(
        f"/api/direct_push/messages/{row['message_id']}", headers=device_headers(carol)
    )
    assert (await fetched.json())["message"] == "Alarm in the cellar"


async def test_an_admin_turns_private_mode_on_and_off_without_unpairing(
    hass: HomeAssistant,
    client: TestClient[Any, Any],
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    log_secrets: list[str],
) -> None:
    """Editing a registered device keeps its secret and lease; private mode is a toggle."""
    carol = await pair(hass, client, log_secrets)
    device_id = carol["device_id"]
    before = dict(loaded_entry.subentries[device_id].data)
    result = await loaded_entry.start_subentry_reconfigure_flow(hass, device_id)
    assert CONF_PRIVATE in result["data_schema"].schema  # type: ignore[index]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "name": "Carol's phone",
            "token": CAROL_TOKEN,
            "admin": False,
            "environment": "production",
            CONF_PRIVATE: True,
        },
    )
    assert result["reason"] == "reconfigure_successful"  # type: ignore[typeddict-item]
    await hass.async_block_till_done()
    after = loaded_entry.subentries[device_id].data
    assert after[CONF_PRIVATE] is True
    assert after["name"] == "Carol's phone"
    for key in ("secret_hash", "lease_expires", "owner"):
        assert after[key] == before[key]

    await hass.services.async_call(
        DOMAIN, "send", {"target": "Carol's phone", "message": "Motion"}, blocking=True
    )
    [wake] = apns_server.pushes_for(CAROL_TOKEN)
    assert wake.payload["type"] == "wake"
    # The device still proves itself with the secret it was given.
    polled = await client.get(
        "/api/direct_push/messages", headers=device_headers(carol)
    )
    assert [m["message"] for m in (await polled.json())["messages"]] == ["Motion"]


async def test_a_device_an_admin_added_has_no_private_mode(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """It cannot fetch messages, so the form does not offer it."""
    alice = next(s for s in loaded_entry.subentries.values() if s.title == "Alice")
    result = await loaded_entry.start_subentry_reconfigure_flow(hass, alice.subentry_id)
    assert CONF_PRIVATE not in result["data_schema"].schema  # type: ignore[index]
