"""The device API over HA's real HTTP server: pairing, registering, unregistering."""

from __future__ import annotations

from datetime import timedelta
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp.test_utils import TestClient
from freezegun.api import FrozenDateTimeFactory
from homeassistant.auth.models import User
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.direct_push.apns import SUBENTRY_APNS
from custom_components.direct_push.const import (
    CONF_ADMIN,
    CONF_ALLOW_LOCAL_PUSH_SERVICES,
    CONF_OWNER,
    CONF_SECRET_HASH,
    CONF_TOKEN,
    DOMAIN,
)
from custom_components.direct_push.device_api import (
    HEADER_DEVICE,
    HEADER_SECRET,
    MAX_BODY,
)
from custom_components.direct_push.webpush import SUBENTRY_WEBPUSH, vapid_public_key

from .apns_server import ApnsServer
from .conftest import CAROL_TOKEN, VAPID_KEY, Subscribe
from .webpush_server import WebPushServer

REGISTER = "/api/direct_push/register"

# Every test here also proves that no token, secret, endpoint or key is logged.
pytestmark = pytest.mark.usefixtures("secrets_stay_out_of_logs")


@pytest.fixture
def log_secrets() -> list[str]:
    """The hub's key and the token registered; tests add each secret they get."""
    return [VAPID_KEY, CAROL_TOKEN]


@pytest.fixture
async def client(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> TestClient[Any, Any]:
    """A client with no Home Assistant login, as an app on a phone is."""
    return await hass_client_no_auth()


async def pairing_code(hass: HomeAssistant, context: Context | None = None) -> str:
    """Make a pairing code as an admin (or an automation) does."""
    response = await hass.services.async_call(
        DOMAIN,
        "create_pairing_code",
        blocking=True,
        return_response=True,
        context=context,
    )
    assert response is not None
    code = response["code"]
    assert isinstance(code, str)
    return code


def apple(code: str | None = None, **fields: Any) -> dict[str, Any]:
    """A registration body for an iPhone."""
    body: dict[str, Any] = {"name": "Carol", "platform": "apns", "token": CAROL_TOKEN}
    if code is not None:
        body["code"] = code
    return body | fields


async def register(
    client: TestClient[Any, Any],
    body: Any,
    log_secrets: list[str],
    status: int = 201,
    **kwargs: Any,
) -> dict[str, Any]:
    """Post a registration; check the status; return the JSON answer."""
    response = await client.post(REGISTER, json=body, **kwargs)
    answer: dict[str, Any] = await response.json()
    assert response.status == status, answer
    if "device_secret" in answer:
        log_secrets.append(answer["device_secret"])
    return answer


async def pair(
    hass: HomeAssistant,
    client: TestClient[Any, Any],
    log_secrets: list[str],
    **fields: Any,
) -> dict[str, Any]:
    """Register an iPhone with a new code, as an app does; wait for the hub's reload."""
    answer = await register(
        client, apple(await pairing_code(hass), **fields), log_secrets
    )
    await hass.async_block_till_done()
    return answer


def device_headers(device: dict[str, Any]) -> dict[str, str]:
    """The headers with which a registered device proves itself."""
    return {HEADER_DEVICE: device["device_id"], HEADER_SECRET: device["device_secret"]}


def devices(entry: MockConfigEntry) -> dict[str, Any]:
    """Return the hub's devices by name."""
    return {sub.title: sub for sub in entry.subentries.values()}


async def test_a_code_registers_an_apple_device_that_gets_pushes(
    hass: HomeAssistant,
    client: TestClient[Any, Any],
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    log_secrets: list[str],
) -> None:
    """Pair with a code: a device like any other, never an admin, its secret hashed."""
    response = await hass.services.async_call(
        DOMAIN, "create_pairing_code", blocking=True, return_response=True
    )
    assert response is not None
    code = str(response["code"])
    assert len(code) >= 8
    link = urlsplit(str(response["url"]))
    assert (link.scheme, link.netloc) == ("directpush", "pair")
    query = parse_qs(link.query)
    assert query["code"] == [code]
    assert query["vapid"] == [vapid_public_key(VAPID_KEY)]

    answer = await register(client, apple(code), log_secrets)
    assert set(answer) == {
        "device_id",
        "device_secret",
        "name",
        "lease_expires_at",
        "vapid_public_key",
    }
    assert answer["name"] == "Carol"
    assert answer["vapid_public_key"] == vapid_public_key(VAPID_KEY)
    assert len(answer["device_secret"]) >= 43  # 256 bits, base64url
    await hass.async_block_till_done()

    carol = loaded_entry.subentries[answer["device_id"]]
    assert carol.subentry_type == SUBENTRY_APNS
    assert carol.data[CONF_TOKEN] == CAROL_TOKEN
    assert carol.data[CONF_ADMIN] is False
    assert carol.data[CONF_OWNER] is None
    # Only the hash is kept.
    assert answer["device_secret"] not in str(dict(carol.data))
    assert (
        carol.data[CONF_SECRET_HASH]
        == hashlib.sha256(answer["device_secret"].encode()).hexdigest()
    )

    await hass.services.async_call(
        DOMAIN, "send", {"target": "Carol", "message": "Welcome"}, blocking=True
    )
    assert [
        p.payload["aps"]["alert"]["body"] for p in apns_server.pushes_for(CAROL_TOKEN)
    ] == ["Welcome"]

    # A code works once.
    again = await register(client, apple(code, token="cd" * 32), log_secrets, 401)
    assert again["error"] == "invalid_code"
    assert len(loaded_entry.subentries) == 3


async def test_a_logged_in_user_registers_a_browser_it_owns(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_admin_user: User,
    webpush_server: WebPushServer,
    subscribe: Subscribe,
    log_secrets: list[str],
) -> None:
    """No code with an HA login: the device is the user's; push services on the
    home network need the hub's option, since the device chose its endpoint."""
    client = await hass_client()
    sub = subscribe("Dana")
    body = {
        "name": "Dana",
        "platform": "webpush",
        "subscription": {
            "endpoint": sub.endpoint,
            "keys": {"p256dh": sub.p256dh, "auth": sub.auth},
        },
    }
    refused = await register(client, body, log_secrets, 403)
    assert (refused["error"], refused["field"]) == ("endpoint_refused", "subscription")
    assert "Dana" not in devices(loaded_entry)

    hass.config_entries.async_update_entry(
        loaded_entry, options={CONF_ALLOW_LOCAL_PUSH_SERVICES: True}
    )
    await hass.async_block_till_done()
    answer = await register(client, body, log_secrets)
    await hass.async_block_till_done()
    dana = loaded_entry.subentries[answer["device_id"]]
    assert dana.subentry_type == SUBENTRY_WEBPUSH
    assert dana.data[CONF_OWNER] == hass_admin_user.id
    assert dana.data[CONF_ADMIN] is False

    await hass.services.async_call(
        DOMAIN, "send", {"target": "Dana", "message": "Hello"}, blocking=True
    )
    assert [push.json["message"] for push in webpush_server.messages_for(sub)] == [
        "Hello"
    ]


@pytest.mark.parametrize(
    ("body", "status", "error", "field"),
    [
        ({"admin": True}, 400, "invalid_field", "admin"),
        ({"device_id": "x"}, 400, "invalid_field", "device_id"),
        ({"name": ""}, 400, "invalid_field", "name"),
        ({"name": 5}, 400, "invalid_field", "name"),
        ({"token": "not hex"}, 400, "invalid_field", "token"),
        ({"platform": "fcm"}, 400, "invalid_field", "platform"),
        ({"private": "yes"}, 400, "invalid_field", "private"),
        ({"service_extension": 1}, 400, "invalid_field", "service_extension"),
        ({"environment": "staging"}, 400, "invalid_field", "environment"),
        ({"platform": "webpush"}, 400, "invalid_field", "subscription"),
        ({"token": "a1" * 32}, 409, "already_registered", "token"),
    ],
)
async def test_a_bad_registration_is_named_and_stores_nothing(
    hass: HomeAssistant,
    client: TestClient[Any, Any],
    loaded_entry: MockConfigEntry,
    log_secrets: list[str],
    body: dict[str, Any],
    status: int,
    error: str,
    field: str,
) -> None:
    """A registration that cannot work names its field; the code stays usable."""
    code = await pairing_code(hass)
    answer = await register(client, apple(code) | body, log_secrets, status)
    assert (answer["error"], answer["field"]) == (error, field)
    assert set(devices(loaded_entry)) == {"Alice", "Bob"}
    await register(client, apple(code, token="c3" * 32), log_secrets)
    await hass.async_block_till_done()
    assert set(devices(loaded_entry)) == {"Alice", "Bob", "Carol"}


@pytest.mark.parametrize(
    ("data", "headers", "status", "error"),
    [
        (b"not json", {}, 400, "invalid_json"),
        (b"[1, 2]", {}, 400, "invalid_json"),
        (b"{" * 100_000, {}, 413, "too_large"),
    ],
)
async def test_a_body_that_is_not_a_small_json_object_is_refused(
    client: TestClient[Any, Any],
    loaded_entry: MockConfigEntry,
    data: bytes,
    headers: dict[str, str],
    status: int,
    error: str,
) -> None:
    """Over 16 KB is refused unread; anything but an object is refused."""
    response = await client.post(REGISTER, data=data, headers=headers)
    assert response.status == status
    assert (await response.json())["error"] == error
    assert set(devices(loaded_entry)) == {"Alice", "Bob"}


async def test_a_chunked_body_over_the_limit_is_refused(
    client: TestClient[Any, Any], loaded_entry: MockConfigEntry
) -> None:
    """A body that announces no length is still read no further than the limit."""

    async def chunks() -> Any:
        for _ in range(MAX_BODY // 1024 + 2):
            yield b" " * 1024

    response = await client.post(REGISTER, data=chunks())
    assert response.status == 413


async def test_no_code_and_no_login_is_unauthorized(
    client: TestClient[Any, Any], loaded_entry: MockConfigEntry, log_secrets: list[str]
) -> None:
    """Without a code or a Home Assistant token nobody registers."""
    answer = await register(client, apple(), log_secrets, 401)
    assert answer["error"] == "unauthorized"
    assert set(devices(loaded_entry)) == {"Alice", "Bob"}


async def test_a_code_expires_after_ten_minutes(
    hass: HomeAssistant,
    client: TestClient[Any, Any],
    loaded_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    log_secrets: list[str],
) -> None:
    """A code older than ten minutes is as wrong as a made-up one."""
    code = await pairing_code(hass)
    freezer.tick(timedelta(minutes=10, seconds=1))
    answer = await register(client, apple(code), log_secrets, 401)
    assert answer["error"] == "invalid_code"


async def test_ten_wrong_attempts_a_minute_are_the_limit(
    hass: HomeAssistant,
    client: TestClient[Any, Any],
    loaded_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    log_secrets: list[str],
) -> None:
    """After ten wrong codes from one address, even a good code waits a minute."""
    for _ in range(10):
        await register(client, apple("WRONGCODE1"), log_secrets, 401)
    code = await pairing_code(hass)
    response = await client.post(REGISTER, json=apple(code))
    assert response.status == 429
    assert (await response.json())["error"] == "too_many_attempts"
    assert 0 < int(response.headers["Retry-After"]) <= 60
    freezer.tick(timedelta(seconds=61))
    await register(client, apple(code), log_secrets)
    await hass.async_block_till_done()


async def test_only_an_admin_makes_codes(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, hass_read_only_user: User
) -> None:
    """A user who is not an admin cannot let devices in."""
    with pytest.raises(Unauthorized):
        await pairing_code(hass, Context(user_id=hass_read_only_user.id))


async def test_a_device_unregisters_itself_and_only_itself(
    hass: HomeAssistant,
    client: TestClient[Any, Any],
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    log_secrets: list[str],
) -> None:
    """A last timeout push, then the device is gone; no device removes another."""
    carol = await pair(hass, client, log_secrets)
    erin = await pair(hass, client, log_secrets, name="Erin", token="e5" * 32)
    url = f"/api/direct_push/devices/{carol['device_id']}"

    wrong = await client.delete(
        url, headers={**device_headers(carol), HEADER_SECRET: "x" * 43}
    )
    assert (wrong.status, (await wrong.json())["error"]) == (401, "unauthorized")
    others = await client.delete(url, headers=device_headers(erin))
    assert (others.status, (await others.json())["error"]) == (404, "not_found")
    assert {"Carol", "Erin"} <= set(devices(loaded_entry))

    done = await client.delete(url, headers=device_headers(carol))
    assert done.status == 200
    await hass.async_block_till_done()
    assert "Carol" not in devices(loaded_entry)
    assert "Erin" in devices(loaded_entry)
    last = apns_server.pushes_for(CAROL_TOKEN)[-1]
    assert last.push_type == "background"
    assert last.payload["type"] == "timeout"
    assert last.payload["reason"] == "unregistered"
    assert last.payload["device_id"] == carol["device_id"]
    # Its secret no longer opens anything.
    gone = await client.delete(url, headers=device_headers(carol))
    assert gone.status == 401


@pytest.fixture
async def diagnostics_ready(hass: HomeAssistant) -> None:
    """Diagnostics' views, registered before the HTTP server starts."""
    assert await async_setup_component(hass, "diagnostics", {})


async def test_diagnostics_leave_out_the_secret_hash(
    hass: HomeAssistant,
    diagnostics_ready: None,
    client: TestClient[Any, Any],
    loaded_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    log_secrets: list[str],
) -> None:
    """A registered device shows in diagnostics without its token or secret hash."""
    answer = await pair(hass, client, log_secrets)
    stored = loaded_entry.subentries[answer["device_id"]].data[CONF_SECRET_HASH]

    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, loaded_entry
    )

    text = json.dumps(diagnostics)
    assert stored not in text
    assert CAROL_TOKEN not in text
    assert answer["device_secret"] not in text


async def test_a_person_target_reaches_the_devices_of_their_user(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_admin_user: User,
    apns_server: ApnsServer,
    log_secrets: list[str],
) -> None:
    """A device registered by a logged-in user is reached through their person."""
    client = await hass_client()
    answer = await register(client, apple(), log_secrets)
    await hass.async_block_till_done()
    assert loaded_entry.subentries[answer["device_id"]].data[CONF_OWNER] == (
        hass_admin_user.id
    )
    hass.states.async_set("person.paulus", "home", {"user_id": hass_admin_user.id})
    hass.states.async_set("person.nobody", "home", {"user_id": "someone-else"})

    await hass.services.async_call(
        DOMAIN, "send", {"target": "person.paulus", "message": "Hi"}, blocking=True
    )
    assert [
        p.payload["aps"]["alert"]["body"] for p in apns_server.pushes_for(CAROL_TOKEN)
    ] == ["Hi"]
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "send", {"target": "person.nobody", "message": "Hi"}, blocking=True
        )
    assert err.value.translation_key == "unknown_target"


async def test_devices_pairing_in_a_row_do_not_wait_for_each_other(
    hass: HomeAssistant,
    client: TestClient[Any, Any],
    loaded_entry: MockConfigEntry,
    log_secrets: list[str],
) -> None:
    """Each registration reloads the hub; the next one waits for it instead of a 503."""
    codes = [await pairing_code(hass) for _ in range(3)]
    answers = [
        await register(
            client, apple(code, name=f"Phone {n}", token=f"c{n}" * 32), log_secrets
        )
        for n, code in enumerate(codes)
    ]
    await hass.async_block_till_done()
    assert [a["name"] for a in answers] == ["Phone 0", "Phone 1", "Phone 2"]
    assert {"Phone 0", "Phone 1", "Phone 2"} <= set(devices(loaded_entry))
