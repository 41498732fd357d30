"""Adding and editing Web Push devices, and hubs for Web Push only or made before it."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import ANY

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigEntryState,
    ConfigSubentryData,
    SubentryFlowContext,
    SubentryFlowResult,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.direct_push.apns import SUBENTRY_APNS
from custom_components.direct_push.const import (
    CONF_ADMIN,
    CONF_AUTH,
    CONF_ENDPOINT,
    CONF_ENVIRONMENT,
    CONF_KEY,
    CONF_KEY_ID,
    CONF_NAME,
    CONF_P256DH,
    CONF_SUBSCRIPTION,
    CONF_TEAM_ID,
    CONF_TOPIC,
    CONF_VAPID_PRIVATE_KEY,
    DOMAIN,
    ENV_PRODUCTION,
)
from custom_components.direct_push.hub import entity_unique_id
from custom_components.direct_push.webpush import SUBENTRY_WEBPUSH, vapid_public_key

from .apns_server import ApnsServer, ApnsTestCredentials
from .conftest import (
    ALICE_TOKEN,
    AUTH,
    P256DH,
    VAPID_KEY,
    VAPID_PUBLIC_KEY,
    Subscribe,
    apns_device,
    b64url,
    delivery_statuses,
    inactive_issue,
    p256_point,
    send_one,
    send_rows,
    subentry_id,
    token_entry_data,
)
from .webpush_server import Subscription, WebPushServer

# Every test also proves that no subscription secret is logged.
pytestmark = pytest.mark.usefixtures("secrets_stay_out_of_logs")


@pytest.fixture
def devices(mixed_devices: list[ConfigSubentryData]) -> list[ConfigSubentryData]:
    """Alice (Apple, admin), Bob (Apple), Dana (Web Push, admin), Erin (Web Push)."""
    return mixed_devices


# Adding and editing devices.


async def _start_device_flow(
    hass: HomeAssistant, entry: MockConfigEntry, subentry_id: str | None = None
) -> SubentryFlowResult:
    context = SubentryFlowContext(source=SOURCE_USER)
    if subentry_id is not None:
        context = SubentryFlowContext(
            source=SOURCE_RECONFIGURE, subentry_id=subentry_id
        )
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_WEBPUSH), context=context
    )
    assert result["type"] is FlowResultType.FORM
    return result


def _notify_entity(hass: HomeAssistant, entry: MockConfigEntry, device_id: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        Platform.NOTIFY, DOMAIN, entity_unique_id(entry.entry_id, device_id)
    )
    assert entity_id is not None
    assert hass.states.get(entity_id) is not None
    return entity_id


async def test_add_device_with_pasted_subscription(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subscribe: Subscribe,
) -> None:
    finn = subscribe("Finn")
    result = await _start_device_flow(hass, loaded_entry)
    assert result["step_id"] == "user"
    # Apps subscribe with the hub's public key, so the form shows it.
    assert result["description_placeholders"] == {"vapid_public_key": VAPID_PUBLIC_KEY}

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_NAME: " Finn ",
            # As a browser's JSON.stringify(subscription) gives it.
            CONF_SUBSCRIPTION: json.dumps(
                {**finn.as_json(), "expirationTime": None}, indent=2
            ),
            CONF_ADMIN: True,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Finn"
    assert result["data"] == {
        CONF_NAME: "Finn",
        CONF_ENDPOINT: finn.endpoint,
        CONF_P256DH: finn.p256dh,
        CONF_AUTH: finn.auth,
        CONF_ADMIN: True,
    }
    await hass.async_block_till_done()

    # The new device has its notify entity, and it reaches the app.
    entity_id = _notify_entity(hass, loaded_entry, subentry_id(loaded_entry, "Finn"))
    await hass.services.async_call(
        Platform.NOTIFY,
        "send_message",
        {"entity_id": entity_id, "message": "Welcome", "title": "Home"},
        blocking=True,
    )
    [push] = webpush_server.messages_for(finn)
    assert push.json == {"message": "Welcome", "title": "Home"}
    # And Finn is an admin now.
    rows = await send_rows(hass, target="admin", message="Hi admins")
    assert {row["device"] for row in rows} == {"Alice", "Dana", "Finn"}


async def test_add_device_with_separate_fields(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subscribe: Subscribe,
) -> None:
    finn = subscribe("Finn")
    result = await _start_device_flow(hass, loaded_entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_NAME: "Finn",
            CONF_SUBSCRIPTION: "  ",
            # Copied with padding, a line break and stray spaces.
            CONF_ENDPOINT: f" {finn.endpoint} ",
            CONF_P256DH: f"{finn.p256dh[:40]}\n{finn.p256dh[40:]}=",
            CONF_AUTH: f" {finn.auth}== ",
            CONF_ADMIN: False,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_NAME: "Finn",
        CONF_ENDPOINT: finn.endpoint,
        CONF_P256DH: finn.p256dh,
        CONF_AUTH: finn.auth,
        CONF_ADMIN: False,
    }
    await hass.async_block_till_done()
    await send_one(hass, webpush_server, finn)


async def test_add_device_errors(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    subs: dict[str, Subscription],
) -> None:
    def fields(**changes: str) -> dict[str, Any]:
        return {
            CONF_NAME: "Finn",
            CONF_ENDPOINT: "https://push.example.com/up/abc",
            CONF_P256DH: P256DH,
            CONF_AUTH: AUTH,
            CONF_ADMIN: False,
            **changes,
        }

    erin = subs["Erin"].as_json()
    cases: list[tuple[dict[str, Any], dict[str, str]]] = [
        (fields(subscription="not json"), {CONF_SUBSCRIPTION: "invalid_subscription"}),
        (
            fields(subscription=json.dumps({"endpoint": erin["endpoint"]})),
            {CONF_SUBSCRIPTION: "invalid_subscription"},
        ),
        # A pasted subscription's errors show next to the pasted JSON.
        (
            fields(
                subscription=json.dumps(
                    {**erin, "endpoint": "http://example.com/up/abc"}
                )
            ),
            {CONF_SUBSCRIPTION: "endpoint_insecure"},
        ),
        (
            fields(endpoint="ftp://push.example.com/up"),
            {CONF_ENDPOINT: "endpoint_scheme"},
        ),
        # Plain http only on the home network.
        (
            fields(endpoint="http://example.com/up/abc"),
            {CONF_ENDPOINT: "endpoint_insecure"},
        ),
        # What aiohttp raised for at every send, and what broke HA's storage.
        (
            fields(endpoint="https://user:pass@push.example.com/up"),
            {CONF_ENDPOINT: "endpoint_credentials"},
        ),
        # A line break is no character for any one-line field.
        (
            fields(endpoint="https://push.example.com/up\r\nX: 1"),
            {CONF_ENDPOINT: "invalid_character"},
        ),
        # Whitespace inside is the endpoint rule's to refuse.
        (
            fields(endpoint="https://push.example.com/up X: 1"),
            {CONF_ENDPOINT: "endpoint_whitespace"},
        ),
        (
            fields(endpoint="https://push.example.com/up\ud800"),
            {CONF_ENDPOINT: "lone_surrogate"},
        ),
        (
            fields(endpoint="http://169.254.169.254/latest/meta-data/"),
            {CONF_ENDPOINT: "endpoint_metadata"},
        ),
        (
            fields(endpoint="http://[fe80::1]/up"),
            {CONF_ENDPOINT: "endpoint_address"},
        ),
        (
            fields(endpoint="http://2130706433/up"),
            {CONF_ENDPOINT: "invalid_endpoint"},
        ),
        # What broke HA's storage: refused, naming the broken character.
        (
            fields(subscription='{"endpoint": "https://e/\\ud800", "keys": {}}'),
            {CONF_SUBSCRIPTION: "lone_surrogate"},
        ),
        (
            fields(subscription="[" * 100_000),
            {CONF_SUBSCRIPTION: "json_too_large"},
        ),
        (
            fields(endpoint="https://push.example.com/" + "a" * 1000),
            {CONF_ENDPOINT: "invalid_endpoint"},
        ),
        (
            fields(endpoint="https://push.example.com:99999/up"),
            {CONF_ENDPOINT: "invalid_endpoint"},
        ),
        (fields(p256dh="not a key"), {CONF_P256DH: "invalid_p256dh"}),
        # 65 bytes of the right shape, but no point on P-256.
        (fields(p256dh=b64url(b"\x04" + bytes(64))), {CONF_P256DH: "invalid_p256dh"}),
        # A compressed point: valid, but Web Push encrypts to the full form.
        (fields(p256dh=p256_point(compressed=True)), {CONF_P256DH: "invalid_p256dh"}),
        (fields(auth=b64url(bytes(8))), {CONF_AUTH: "invalid_auth_secret"}),
        (fields(auth="!!!!"), {CONF_AUTH: "invalid_auth_secret"}),
        (fields(endpoint=f" {erin['endpoint']}"), {CONF_ENDPOINT: "endpoint_in_use"}),
        # Names are unique across kinds: an Apple device has this one.
        (fields(name="alice"), {CONF_NAME: "name_in_use"}),
    ]
    result = await _start_device_flow(hass, loaded_entry)
    for user_input, errors in cases:
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], user_input
        )
        assert result["type"] is FlowResultType.FORM, user_input
        assert result["errors"] == errors, user_input
        # With what the error's message needs, if anything.
        assert result["description_placeholders"] is not None
        assert result["description_placeholders"]["vapid_public_key"] == (
            VAPID_PUBLIC_KEY
        )
    assert len(loaded_entry.subentries) == 4


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://192.168.1.20:8080/upAbCdEf?up=1",
        "http://ntfy.local/upAbCdEf?up=1",
        "http://[fd00::20]:8080/upAbCdEf",
    ],
)
async def test_plain_http_on_home_network(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    subs: dict[str, Subscription],
    endpoint: str,
) -> None:
    """A self-hosted distributor, such as ntfy, may speak plain http at home."""
    result = await _start_device_flow(hass, loaded_entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_NAME: "Finn",
            CONF_ENDPOINT: endpoint,
            CONF_P256DH: P256DH,
            CONF_AUTH: AUTH,
            CONF_ADMIN: False,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_ENDPOINT] == endpoint
    await hass.async_block_till_done()


async def test_reconfigure_replaces_subscription_and_clears_issue(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    webpush_server: WebPushServer,
    subs: dict[str, Subscription],
    subscribe: Subscribe,
) -> None:
    # Erin reinstalled her app: the old subscription is gone.
    old = subs["Erin"]
    webpush_server.script(old, 410)
    await send_rows(hass, target="Erin", message="Hello")
    assert inactive_issue(hass, loaded_entry, "Erin") is not None
    erin_id = subentry_id(loaded_entry, "Erin")
    new = subscribe("Erin")

    result = await _start_device_flow(hass, loaded_entry, erin_id)
    assert result["step_id"] == "reconfigure"
    assert result["description_placeholders"] == {"vapid_public_key": VAPID_PUBLIC_KEY}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_NAME: "Erin",
            CONF_SUBSCRIPTION: json.dumps(new.as_json()),
            CONF_ADMIN: True,
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()

    # Edited in place: same device, new subscription, no issue.
    assert subentry_id(loaded_entry, "Erin") == erin_id
    assert loaded_entry.subentries[erin_id].data[CONF_ENDPOINT] == new.endpoint
    assert inactive_issue(hass, loaded_entry, "Erin") is None
    rows = await send_rows(hass, target="admin", message="Back")
    assert delivery_statuses(rows)["Erin"] == ("delivered", None)
    assert webpush_server.messages_for(new)[0].json == {"message": "Back"}
    assert webpush_server.messages_for(old) == []


# Hubs made before Web Push.


async def test_migration_adds_vapid_key(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    webpush_server: WebPushServer,
    log_secrets: list[str],
) -> None:
    data = token_entry_data(apns_credentials)
    del data[CONF_VAPID_PRIVATE_KEY]
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Direct Push",
        data=data,
        subentries_data=[apns_device("Alice", ALICE_TOKEN, admin=True)],
        version=1,
        minor_version=1,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.minor_version == 2
    key = entry.data[CONF_VAPID_PRIVATE_KEY]
    assert key != VAPID_KEY
    assert entry.data == {**data, CONF_VAPID_PRIVATE_KEY: key}
    public_key = vapid_public_key(key)
    log_secrets.append(key)

    # A phone subscribes with the new key, which the form shows ...
    result = await _start_device_flow(hass, entry)
    assert result["description_placeholders"] == {"vapid_public_key": public_key}
    finn = webpush_server.subscribe("Finn", application_server_key=public_key)
    log_secrets.extend((finn.id, finn.p256dh, finn.auth))
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_NAME: "Finn",
            CONF_SUBSCRIPTION: json.dumps(finn.as_json()),
            CONF_ADMIN: False,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    # ... and receives pushes signed with it.
    rows = await send_rows(hass, message="Hello")
    assert delivery_statuses(rows) == dict.fromkeys(
        ("Alice", "Finn"), ("delivered", None)
    )
    assert webpush_server.messages_for(finn)[0].vapid_key == public_key
    await hass.config_entries.async_unload(entry.entry_id)


# A hub for Web Push devices only, and adding Apple to it later.


async def test_web_push_only_hub_then_add_apple(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    webpush_server: WebPushServer,
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "webpush"}
    )
    assert result["step_id"] == "webpush"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    [entry] = hass.config_entries.async_entries(DOMAIN)
    assert set(entry.data) == {CONF_VAPID_PRIVATE_KEY}
    vapid_private = entry.data[CONF_VAPID_PRIVATE_KEY]
    assert entry.state is ConfigEntryState.LOADED

    # Apple devices need Apple credentials first.
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_APNS), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_apple_credentials"

    # A Web Push device works at once, signed with the hub's own key.
    public_key = vapid_public_key(entry.data[CONF_VAPID_PRIVATE_KEY])
    pixel = webpush_server.subscribe("Pixel", application_server_key=public_key)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_WEBPUSH), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_NAME: "Pixel",
            CONF_SUBSCRIPTION: json.dumps(pixel.as_json()),
            CONF_ADMIN: True,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    response = await hass.services.async_call(
        DOMAIN, "send", {"message": "Hi"}, blocking=True, return_response=True
    )
    assert response == {
        "deliveries": [
            {
                "device": "Pixel",
                "device_id": ANY,
                "message_id": ANY,
                "status": "delivered",
                "reason": None,
                "next_attempt": None,
                "truncated": False,
            }
        ],
        "dropped": 0,
    }

    # Reconfigure offers to add Apple, with the same checks as a new hub.
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": entry.entry_id}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["token", "certificate"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "token"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_KEY: apns_credentials.key_pem,
            CONF_KEY_ID: "BADID",
            CONF_TEAM_ID: apns_credentials.team_id,
            CONF_TOPIC: apns_credentials.topic,
            CONF_ENVIRONMENT: ENV_PRODUCTION,
        },
    )
    assert result["errors"] == {CONF_KEY_ID: "invalid_key_id"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_KEY: apns_credentials.key_pem,
            CONF_KEY_ID: apns_credentials.key_id,
            CONF_TEAM_ID: apns_credentials.team_id,
            CONF_TOPIC: apns_credentials.topic,
            CONF_ENVIRONMENT: ENV_PRODUCTION,
        },
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    # The VAPID identity, and so the Web Push device, are kept.
    assert entry.data[CONF_VAPID_PRIVATE_KEY] == vapid_private
    assert entry.data[CONF_KEY_ID] == apns_credentials.key_id
    assert [s.title for s in entry.subentries.values()] == ["Pixel"]
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_APNS), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    await hass.config_entries.async_unload(entry.entry_id)
