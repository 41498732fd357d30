"""The APNs backend against the local APNs server: tokens, environments, topics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from freezegun.api import FrozenDateTimeFactory
from h2.connection import ConnectionState, H2Connection
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
import jwt
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.direct_push.apns import (
    PROBE_TOKEN,
    TOKEN_REFRESH_SECONDS,
    ApnsBackend,
    CredentialError,
    SharedTokenProvider,
    parse_certificate,
    parse_signing_key,
)
from custom_components.direct_push.backend import Outcome
from custom_components.direct_push.const import (
    AUTH_CERTIFICATE,
    CONF_AUTH_METHOD,
    CONF_CERTIFICATE,
    CONF_ENVIRONMENT,
    CONF_KEY,
    CONF_TOPIC,
    DOMAIN,
    ENV_DEV_APNS_SERVER,
    ENV_DEV_CA_FILE,
    ENV_PRODUCTION,
    ENV_SANDBOX,
    SUBENTRY_APNS,
)
from custom_components.direct_push.hub import DirectPushHub
from custom_components.direct_push.jobs import Status
from custom_components.direct_push.message import Message

from .apns_server import TOKEN_MAX_AGE, ApnsServer, ApnsTestCredentials
from .conftest import (
    ALICE_TOKEN,
    BOB_TOKEN,
    CAROL_TOKEN,
    advance,
    apns_device,
    token_entry_data,
)

SECOND_TOPIC = "com.example.second"


@pytest.fixture
async def apns_server(
    socket_enabled: None,
    apns_credentials: ApnsTestCredentials,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[ApnsServer]:
    """The local APNs server, with a second app the key may push to."""
    async with ApnsServer(
        apns_credentials, topics={apns_credentials.topic, SECOND_TOPIC}
    ) as server:
        monkeypatch.setenv(ENV_DEV_APNS_SERVER, f"127.0.0.1:{server.port}")
        monkeypatch.setenv(ENV_DEV_CA_FILE, str(apns_credentials.ca_file))
        yield server


@pytest.fixture
def devices() -> list[ConfigSubentryData]:
    """Alice on a store build, Bob on a development build, Carol on a second app."""
    return [
        apns_device("Alice", ALICE_TOKEN, admin=True),
        apns_device("Bob", BOB_TOKEN, **{CONF_ENVIRONMENT: ENV_SANDBOX}),
        apns_device("Carol", CAROL_TOKEN, **{CONF_TOPIC: SECOND_TOPIC}),
    ]


async def _send(hass: HomeAssistant, **fields: Any) -> dict[str, str]:
    """Call the action; return each device's status."""
    response = await hass.services.async_call(
        DOMAIN, "send", fields, blocking=True, return_response=True
    )
    assert response is not None
    rows: list[dict[str, Any]] = response["deliveries"]  # type: ignore[assignment]
    return {row["device"]: row["reason"] or row["status"] for row in rows}


async def _set_up(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def _hub(entry: MockConfigEntry) -> DirectPushHub:
    hub: DirectPushHub = entry.runtime_data
    return hub


def _issued_at(authorization: str) -> int:
    token = authorization.removeprefix("bearer ")
    claims = jwt.decode(token, options={"verify_signature": False})
    iat: int = claims["iat"]
    return iat


def _pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> str:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


# The provider token.


def test_shared_token_provider(freezer: FrozenDateTimeFactory) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    provider = SharedTokenProvider(key, "KEYID12345", "TEAMID1234")
    first = provider.get_header()
    scheme, _, token = first.partition(" ")
    assert scheme == "bearer"
    assert jwt.get_unverified_header(token)["kid"] == "KEYID12345"
    assert jwt.decode(token, key.public_key(), algorithms=["ES256"]) == {
        "iss": "TEAMID1234",
        "iat": int(time.time()),
    }

    # Apple refuses a new token within 20 minutes, and an hour-old one.
    freezer.tick(timedelta(seconds=TOKEN_REFRESH_SECONDS - 1))
    assert provider.get_header() == first
    freezer.tick(timedelta(seconds=1))
    second = provider.get_header()
    assert second != first
    assert _issued_at(second) == int(time.time())

    # A clock set back would otherwise keep the token for hours.
    freezer.tick(timedelta(hours=-2))
    assert provider.get_header() not in (first, second)


async def _idle_out(
    hass: HomeAssistant, entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """Pass aioapns's 10 s idle timeout, and wait until it has closed."""
    pools = _hub(entry).backends[SUBENTRY_APNS]._pools.values()  # type: ignore[attr-defined]
    assert any(pool.connections for pool in pools)
    freezer.tick(timedelta(seconds=11))
    async_fire_time_changed(hass)
    # The TLS goodbye takes a few turns of the loop; its clock is frozen.
    for _ in range(1000):
        if not any(pool.connections for pool in pools):
            return
        await asyncio.sleep(0)
    pytest.fail("aioapns kept its idle connection")


async def test_token_survives_reconnects_for_hours(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A doorbell every 5 minutes for 3 hours, each on a new connection.

    freezer comes last: time freezes once the server and hub are up.
    """
    sends = 0
    for minute in range(0, 181, 5):
        if sends:
            # Both ways a connection ends: Apple closes it, or aioapns does
            # after 10 s idle.
            if sends % 2:
                await apns_server.close_connections()
            else:
                await _idle_out(hass, loaded_entry, freezer)
        assert await _send(hass, target="Alice", message=f"Ding {minute}") == {
            "Alice": "delivered"
        }
        sends += 1
        # The token this push carried was younger than Apple's hour.
        age = time.time() - _issued_at(apns_server.pushes[-1].headers["authorization"])
        assert 0 <= age < TOKEN_MAX_AGE
        freezer.tick(timedelta(minutes=5))

    assert apns_server.rejections == []  # no TooManyProviderTokenUpdates
    assert len(apns_server.pushes) == sends == 37
    assert apns_server.connections_made == sends
    # New tokens at 0, 50, 100 and 150 minutes: one per 50 minutes.
    assert apns_server.token_updates == 4
    assert {push.headers["authorization"] for push in apns_server.pushes} == {
        f"bearer {token}" for token in apns_server.tokens_seen
    }


async def test_reload_keeps_the_token(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    """Adding a device or changing options reloads the entry: same token."""
    assert await _send(hass, target="Alice", message="Before") == {"Alice": "delivered"}
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert await _send(hass, target="Alice", message="After") == {"Alice": "delivered"}
    assert apns_server.token_updates == 1


async def test_probe_then_set_up_share_the_token(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    config_entry: MockConfigEntry,
) -> None:
    """The config flow proves the key, then the entry is set up at once."""
    backend = await ApnsBackend.async_create(hass, token_entry_data(apns_credentials))
    probe = await backend.async_probe(ENV_PRODUCTION)
    await backend.async_close()
    # Apple would answer BadDeviceToken; this server knows no devices. Either
    # way the credentials passed, and a provider token was presented.
    assert probe.ok
    assert [push.token for push in apns_server.pushes] == [PROBE_TOKEN]
    assert apns_server.token_updates == 1

    await _set_up(hass, config_entry)
    assert set((await _send(hass, message="Hi")).values()) == {"delivered"}
    assert apns_server.token_updates == 1


async def test_probe_with_a_key_apple_does_not_know(
    hass: HomeAssistant, apns_server: ApnsServer, apns_credentials: ApnsTestCredentials
) -> None:
    other_key = _pem(ec.generate_private_key(ec.SECP256R1()))
    data = {**token_entry_data(apns_credentials), CONF_KEY: other_key}
    backend = await ApnsBackend.async_create(hass, data)
    probe = await backend.async_probe(ENV_PRODUCTION)
    await backend.async_close()
    assert (probe.outcome, probe.reason) == (
        Outcome.AUTH_FAILED,
        "InvalidProviderToken",
    )


async def test_probe_with_a_topic_the_key_cannot_push_to(
    hass: HomeAssistant, apns_server: ApnsServer, apns_credentials: ApnsTestCredentials
) -> None:
    backend = await ApnsBackend.async_create(hass, token_entry_data(apns_credentials))
    probe = await backend.async_probe(ENV_PRODUCTION, "com.example.other")
    await backend.async_close()
    assert (probe.outcome, probe.reason) == (Outcome.FAILED, "TopicDisallowed")


# Environments and topics.


async def test_environment_and_topic_per_device(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
) -> None:
    assert await _send(hass, message="Hi") == {
        "Alice": "delivered",
        "Bob": "delivered",
        "Carol": "delivered",
    }
    sent = {push.token: (push.environment, push.topic) for push in apns_server.pushes}
    assert sent == {
        ALICE_TOKEN: ("production", apns_credentials.topic),
        BOB_TOKEN: ("sandbox", apns_credentials.topic),
        CAROL_TOKEN: ("production", SECOND_TOPIC),
    }
    # One connection per environment.
    assert apns_server.connections_made == 2


async def test_topic_the_key_cannot_push_to(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
) -> None:
    entry = await _set_up(
        hass,
        MockConfigEntry(
            domain=DOMAIN,
            data=token_entry_data(apns_credentials),
            subentries_data=[
                apns_device("Dan", ALICE_TOKEN, **{CONF_TOPIC: "com.example.other"})
            ],
        ),
    )
    assert await _send(hass, message="Hi") == {"Dan": "TopicDisallowed"}
    # A setting to fix, not a gone device: it stays active.
    assert not _hub(entry).is_inactive(next(iter(entry.subentries)))


async def test_certificate_authentication(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
) -> None:
    await _set_up(
        hass,
        MockConfigEntry(
            domain=DOMAIN,
            data={
                CONF_AUTH_METHOD: AUTH_CERTIFICATE,
                CONF_CERTIFICATE: apns_credentials.cert_pem,
                CONF_TOPIC: apns_credentials.topic,
                CONF_ENVIRONMENT: ENV_PRODUCTION,
            },
            subentries_data=[apns_device("Alice", ALICE_TOKEN)],
        ),
    )
    assert await _send(hass, message="Hi") == {"Alice": "delivered"}
    [push] = apns_server.pushes
    assert push.auth == "certificate"
    assert "authorization" not in push.headers


# Connections.


async def test_push_racing_a_goaway_is_resent(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Apple said GOAWAY; the connection is not gone from aioapns's pool yet."""
    assert await _send(hass, target="Alice", message="First") == {"Alice": "delivered"}
    hub = _hub(loaded_entry)
    [connection] = hub.backends[SUBENTRY_APNS]._pools[ENV_PRODUCTION].connections  # type: ignore[attr-defined]
    closing = hass.async_create_task(apns_server.close_connections())
    for _ in range(1000):
        if connection.conn.state_machine.state is ConnectionState.CLOSED:
            break
        await asyncio.sleep(0)
    # h2 has seen the GOAWAY, but the TLS goodbye is still under way.
    assert connection.conn.state_machine.state is ConnectionState.CLOSED
    assert connection in hub.backends[SUBENTRY_APNS]._pools[ENV_PRODUCTION].connections  # type: ignore[attr-defined]

    alice = next(d for d in hub.devices.values() if d.name == "Alice")
    [report] = (await hub.async_send([alice], Message(message="Second"))).reports
    await closing

    # h2 refused to send on the closed connection: resent on a new one.
    assert (report.status, report.reason) == (Status.QUEUED, "connection_error")
    await advance(hass, freezer, 10)
    assert [push.payload["aps"]["alert"]["body"] for push in apns_server.pushes] == [
        "First",
        "Second",
    ]
    assert apns_server.pushes[-1].apns_id == report.message_id
    assert apns_server.connections_made == 2


# Credentials, checked before anything is sent.


@pytest.mark.parametrize(
    ("pem", "error"),
    [
        ("not a key", "invalid_key"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "invalid_key"),
        (_pem(ed25519.Ed25519PrivateKey.generate()), "invalid_key_type"),
        (_pem(ec.generate_private_key(ec.SECP384R1())), "invalid_key_type"),
    ],
)
def test_signing_key_refused(pem: str, error: str) -> None:
    with pytest.raises(CredentialError) as err:
        parse_signing_key(pem)
    assert err.value.key == error


def test_signing_key(apns_credentials: ApnsTestCredentials) -> None:
    # Apple's .p8 files come with surrounding whitespace.
    key = parse_signing_key(f"\n{apns_credentials.key_pem}\n")
    assert isinstance(key.curve, ec.SECP256R1)


def test_push_certificate(apns_credentials: ApnsTestCredentials) -> None:
    assert parse_certificate(apns_credentials.cert_pem) == apns_credentials.topic


@pytest.mark.parametrize("mistake", ["garbage", "no key", "another key"])
def test_push_certificate_refused(
    apns_credentials: ApnsTestCredentials, mistake: str
) -> None:
    certificate = apns_credentials.cert_pem.partition("-----BEGIN PRIVATE KEY")[0]
    pem = {
        "garbage": "garbage",
        "no key": certificate,
        "another key": certificate + _pem(ec.generate_private_key(ec.SECP256R1())),
    }[mistake]
    with pytest.raises(CredentialError) as err:
        parse_certificate(pem)
    assert err.value.key == "invalid_certificate"


async def test_connection_out_of_stream_ids_is_replaced(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    """After 2**30 pushes on one connection h2 has no stream id left: a new one takes over."""
    assert await _send(hass, target="Alice", message="First") == {"Alice": "delivered"}
    pool = _hub(loaded_entry).backends[SUBENTRY_APNS]._pools[ENV_PRODUCTION]  # type: ignore[attr-defined]
    [connection] = pool.connections
    connection.free_channels._stream_id = H2Connection.HIGHEST_ALLOWED_STREAM_ID
    assert await _send(hass, target="Alice", message="Second") == {
        "Alice": "connection_error"
    }
    # Out of the pool at once: the retry cannot pick it again.
    assert connection not in pool.connections
    await advance(hass, freezer, 10)
    assert [push.payload["aps"]["alert"]["body"] for push in apns_server.pushes] == [
        "First",
        "Second",
    ]
    assert apns_server.connections_made == 2
