"""The APNs backend against the local APNs server: tokens, environments, topics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
import logging
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
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    ConfigEntryState,
    ConfigSubentryData,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import jwt
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.direct_push import apns, outbox
from custom_components.direct_push.apns import (
    PROBE_TOKEN,
    SUBENTRY_APNS,
    TOKEN_REFRESH_SECONDS,
    ApnsBackend,
    SharedTokenProvider,
)
from custom_components.direct_push.backend import Outcome
from custom_components.direct_push.const import (
    AUTH_CERTIFICATE,
    CONF_AUTH_METHOD,
    CONF_CERTIFICATE,
    CONF_DETECTED_ENVIRONMENT,
    CONF_ENVIRONMENT,
    CONF_KEY,
    CONF_TOPIC,
    DOMAIN,
    ENV_AUTO,
    ENV_DEV_APNS_SERVER,
    ENV_DEV_CA_FILE,
    ENV_PRODUCTION,
    ENV_SANDBOX,
)
from custom_components.direct_push.hub import DirectPushHub
from custom_components.direct_push.issues import clock_issue_id, inactive_issue_id
from custom_components.direct_push.jobs import Status
from custom_components.direct_push.message import Message

from .apns_server import (
    TOKEN_MAX_AGE,
    ApnsServer,
    ApnsTestCredentials,
    issue_push_certificate,
)
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


def test_token_renewal(freezer: FrozenDateTimeFactory) -> None:
    """Apple calls a token expired: one new token, never one after another."""
    provider = SharedTokenProvider(
        ec.generate_private_key(ec.SECP256R1()), "KEYID12345", "TEAMID1234"
    )
    first = provider.get_header()
    sent_with = provider.generation
    assert provider.renew(sent_with)
    renewed = provider.get_header()
    assert renewed != first
    # Pushes that carried the first token retry with the renewed one.
    assert provider.renew(sent_with)
    assert provider.get_header() == renewed
    # Apple calls the renewed token expired too: a new one would not help.
    assert not provider.renew(provider.generation)
    assert provider.get_header() == renewed

    # The next scheduled token may be renewed once again.
    freezer.tick(timedelta(seconds=TOKEN_REFRESH_SECONDS))
    scheduled = provider.get_header()
    assert scheduled != renewed
    assert provider.renew(provider.generation)
    assert provider.get_header() != scheduled


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


async def test_probe_with_a_key_for_the_other_environment(
    hass: HomeAssistant, apns_server: ApnsServer, apns_credentials: ApnsTestCredentials
) -> None:
    """Apple's keys may be limited to sandbox or production."""
    apns_server.key_environment = ENV_SANDBOX
    backend = await ApnsBackend.async_create(hass, token_entry_data(apns_credentials))
    refused = await backend.async_probe(ENV_PRODUCTION)
    accepted = await backend.async_probe(ENV_SANDBOX)
    await backend.async_close()
    assert (refused.outcome, refused.reason) == (
        Outcome.AUTH_FAILED,
        "BadEnvironmentKeyIdInToken",
    )
    assert accepted.ok


async def test_probe_with_a_topic_the_key_cannot_push_to(
    hass: HomeAssistant, apns_server: ApnsServer, apns_credentials: ApnsTestCredentials
) -> None:
    backend = await ApnsBackend.async_create(hass, token_entry_data(apns_credentials))
    probe = await backend.async_probe(ENV_PRODUCTION, "com.example.other")
    await backend.async_close()
    assert (probe.outcome, probe.reason) == (Outcome.FAILED, "TopicDisallowed")


async def test_probe_apple_does_not_answer(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A probe that gets no answer in time reads as no connection, not as a hang."""
    monkeypatch.setattr(apns, "PROBE_TIMEOUT", 0.2)
    apns_server.response_delays[PROBE_TOKEN] = 2.0
    backend = await ApnsBackend.async_create(hass, token_entry_data(apns_credentials))
    probe = await backend.async_probe(ENV_PRODUCTION)
    await backend.async_close()
    assert (probe.outcome, probe.reason, probe.retryable) == (
        Outcome.UNREACHABLE,
        "connection_error",
        True,
    )


# Expired provider tokens, and Home Assistant's clock.


def _reauth_flows(hass: HomeAssistant) -> list[Any]:
    return [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH
    ]


def _issues(hass: HomeAssistant) -> list[str]:
    return [
        issue_id for domain, issue_id in ir.async_get(hass).issues if domain == DOMAIN
    ]


async def test_expired_token_is_renewed(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Apple calls the token expired: one new token at once, and every push arrives."""
    assert await _send(hass, target="Alice", message="First") == {"Alice": "delivered"}
    # Apple finds the token stale sooner than its hour. The new token comes
    # within 20 minutes of the first, because Apple asked for it.
    apns_server.token_max_age = 10 * 60
    freezer.tick(timedelta(minutes=15))

    assert await _send(hass, message="Second") == {
        "Alice": "delivered",
        "Bob": "delivered",
        "Carol": "delivered",
    }
    # Pushes in flight with the old token share one new token.
    assert apns_server.token_updates == 2
    first, renewed = apns_server.tokens_seen
    assert set(apns_server.tokens_expired) == {first}
    assert {reason for *_, reason in apns_server.rejections} == {"ExpiredProviderToken"}
    second = apns_server.pushes[1:]
    assert sorted(push.token for push in second) == [
        ALICE_TOKEN,
        BOB_TOKEN,
        CAROL_TOKEN,
    ]
    assert {push.headers["authorization"] for push in second} == {f"bearer {renewed}"}

    # The new token serves on; the key was fine all along.
    assert await _send(hass, target="Alice", message="Third") == {"Alice": "delivered"}
    assert apns_server.token_updates == 2
    await hass.async_block_till_done()
    assert not _reauth_flows(hass)
    assert not _issues(hass)


async def test_clock_wrong(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Apple calls even a brand-new token expired: the clock is wrong, not the key.

    The pushes are kept: they go out once the clock is right. (freezer: no
    retry runs on its own while the test looks.)
    """
    assert await _send(hass, target="Alice", message="Before") == {"Alice": "delivered"}
    [first] = apns_server.tokens_seen
    # Home Assistant's clock is two hours behind Apple's.
    apns_server.clock_offset = 2 * 3600

    assert await _send(hass, target="Alice", message="Late") == {
        "Alice": "ExpiredProviderToken"
    }
    # One new token, refused as well.
    assert apns_server.tokens_expired[0] == first
    [_, renewed] = apns_server.tokens_expired
    assert renewed != first
    await hass.async_block_till_done()
    assert not _reauth_flows(hass)
    issue_id = clock_issue_id(SUBENTRY_APNS)
    assert _issues(hass) == [issue_id]
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert not issue.is_fixable
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_key == "clock_wrong"
    assert issue.translation_placeholders == {"reason": "ExpiredProviderToken"}

    # Each later push is tried once with that token: no token after token.
    assert await _send(hass, message="Still late") == {
        "Alice": "ExpiredProviderToken",
        "Bob": "ExpiredProviderToken",
        "Carol": "ExpiredProviderToken",
    }
    assert apns_server.tokens_expired[2:] == [renewed] * 3
    assert len(apns_server.pushes) == 1

    # The clock is right again: the next push goes through, the repair goes.
    apns_server.clock_offset = 0
    assert await _send(hass, target="Alice", message="After") == {"Alice": "delivered"}
    # The new push went out after the ones kept for Alice, in order.
    assert [
        push.payload["aps"]["alert"]["body"]
        for push in apns_server.pushes_for(ALICE_TOKEN)
    ] == ["Before", "Late", "Still late", "After"]
    assert apns_server.tokens_seen == [first, renewed]
    assert not _issues(hass)
    assert not _reauth_flows(hass)


async def test_ttl_zero_is_not_stored(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    """A TTL of 0 is Apple's expiration 0: deliver now or never, do not store."""
    assert await _send(hass, target="Alice", message="Now", ttl=0) == {
        "Alice": "delivered"
    }
    assert await _send(hass, target="Alice", message="Soon", ttl=600) == {
        "Alice": "delivered"
    }
    now, soon = apns_server.pushes
    assert now.headers["apns-expiration"] == "0"
    assert not now.stored
    assert soon.stored
    assert soon.expiration is not None
    assert 599 <= soon.expiration - int(time.time()) <= 600


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


async def test_late_answer_leaves_the_connection_alone(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Apple answers a push after its attempt timed out: the other pushes go on.

    aioapns would find the attempt's future cancelled and close the connection,
    failing every push in flight on it.
    """
    monkeypatch.setattr(outbox, "ATTEMPT_TIMEOUT", 0.5)
    hub = _hub(loaded_entry)
    devices = {device.name: device for device in hub.devices.values()}
    apns_server.response_delays[ALICE_TOKEN] = 1.0
    [alice] = (
        await hub.async_send([devices["Alice"]], Message(message="Slow"))
    ).reports
    assert (alice.status, alice.reason) == (Status.QUEUED, "timeout")

    # Carol's push is in flight on the same connection when Alice's answer comes.
    apns_server.response_delays[CAROL_TOKEN] = 0.4
    await asyncio.sleep(0.3)
    [carol] = (
        await hub.async_send([devices["Carol"]], Message(message="Meanwhile"))
    ).reports
    assert carol.status is Status.DELIVERED
    assert apns_server.connections_made == 1
    assert [push.token for push in apns_server.pushes] == [ALICE_TOKEN, CAROL_TOKEN]


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


# Automatic environments.


def _auto(name: str, token: str, **extra: Any) -> ConfigSubentryData:
    """An Apple device whose environment is found automatically."""
    return apns_device(name, token, **{CONF_ENVIRONMENT: ENV_AUTO, **extra})


async def _hub_with(
    hass: HomeAssistant, data: dict[str, Any], *devices: ConfigSubentryData
) -> MockConfigEntry:
    return await _set_up(
        hass, MockConfigEntry(domain=DOMAIN, data=data, subentries_data=devices)
    )


async def test_automatic_device_moves_to_the_sandbox(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A sandbox token: refused in production, accepted in the sandbox, kept there."""
    caplog.set_level(logging.INFO)
    apns_server.register(BOB_TOKEN, "sandbox")
    entry = await _hub_with(
        hass, token_entry_data(apns_credentials), _auto("Bob", BOB_TOKEN)
    )
    hub = _hub(entry)
    [bob_id] = entry.subentries

    assert await _send(hass, message="Hi") == {"Bob": "delivered"}
    assert apns_server.rejections == [(BOB_TOKEN, 400, "BadDeviceToken")]
    assert [push.environment for push in apns_server.pushes] == [ENV_SANDBOX]
    assert entry.subentries[bob_id].data[CONF_ENVIRONMENT] == ENV_AUTO
    assert entry.subentries[bob_id].data[CONF_DETECTED_ENVIRONMENT] == ENV_SANDBOX
    assert (
        "Apple refused the push to Bob in production (BadDeviceToken) and "
        "accepted it in sandbox" in caplog.text
    )
    assert BOB_TOKEN not in caplog.text
    # Stored without a reload: the same hub, with its open connection.
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data is hub
    assert not hub.is_inactive(bob_id)
    assert await _send(hass, message="Again") == {"Bob": "delivered"}
    assert len(apns_server.rejections) == 1
    assert apns_server.connections_made == 2  # production once, sandbox once

    # Stored for good: after a restart, straight to the sandbox.
    assert await hass.config_entries.async_reload(entry.entry_id)
    assert await _send(hass, message="Later") == {"Bob": "delivered"}
    assert len(apns_server.rejections) == 1
    assert [push.environment for push in apns_server.pushes] == [ENV_SANDBOX] * 3


async def test_automatic_device_moves_back_to_production(
    hass: HomeAssistant, apns_server: ApnsServer, apns_credentials: ApnsTestCredentials
) -> None:
    """Found in the sandbox once, the app now comes from TestFlight."""
    apns_server.register(BOB_TOKEN, "production")
    entry = await _hub_with(
        hass,
        token_entry_data(apns_credentials),
        _auto("Bob", BOB_TOKEN, **{CONF_DETECTED_ENVIRONMENT: ENV_SANDBOX}),
    )
    assert await _send(hass, message="Hi") == {"Bob": "delivered"}
    [push] = apns_server.pushes
    assert push.environment == ENV_PRODUCTION
    [bob] = entry.subentries.values()
    assert bob.data[CONF_DETECTED_ENVIRONMENT] == ENV_PRODUCTION


async def test_automatic_device_refused_in_both(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Only when both environments refuse the token is the device inactive."""
    apns_server.script(BOB_TOKEN, 400, "BadDeviceToken")
    entry = await _hub_with(
        hass, token_entry_data(apns_credentials), _auto("Bob", BOB_TOKEN)
    )
    [bob_id] = entry.subentries
    assert await _send(hass, message="Hi") == {"Bob": "BadDeviceToken"}
    assert apns_server.rejections == [(BOB_TOKEN, 400, "BadDeviceToken")] * 2
    assert _hub(entry).is_inactive(bob_id)
    assert issue_registry.async_get_issue(DOMAIN, inactive_issue_id(bob_id))
    assert CONF_DETECTED_ENVIRONMENT not in entry.subentries[bob_id].data


async def test_automatic_device_with_a_key_for_the_sandbox_only(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A key limited to the sandbox: automatic devices are found there, no reauth."""
    apns_server.key_environment = ENV_SANDBOX
    apns_server.script(BOB_TOKEN, 400, "BadDeviceToken", environment=ENV_SANDBOX)
    entry = await _hub_with(
        hass,
        {**token_entry_data(apns_credentials), CONF_ENVIRONMENT: ENV_SANDBOX},
        _auto("Alice", ALICE_TOKEN),
        _auto("Bob", BOB_TOKEN),
    )
    alice_id, bob_id = entry.subentries
    assert await _send(hass, message="Hi") == {
        "Alice": "delivered",
        "Bob": "BadDeviceToken",
    }
    assert sorted(reason for _, _, reason in apns_server.rejections) == [
        "BadDeviceToken",
        "BadEnvironmentKeyIdInToken",
        "BadEnvironmentKeyIdInToken",
    ]
    assert entry.subentries[alice_id].data[CONF_DETECTED_ENVIRONMENT] == ENV_SANDBOX
    # Bob's token is refused where the key works: he is gone, the key is fine.
    assert issue_registry.async_get_issue(DOMAIN, inactive_issue_id(bob_id))
    assert not _reauth_flows(hass)
    # Alice goes straight to the sandbox from now on.
    assert await _send(hass, message="Again", target="Alice") == {"Alice": "delivered"}
    assert len(apns_server.rejections) == 3
    assert [push.environment for push in apns_server.pushes] == [ENV_SANDBOX] * 2


async def test_chosen_environment_is_not_second_guessed(
    hass: HomeAssistant, apns_server: ApnsServer, apns_credentials: ApnsTestCredentials
) -> None:
    """A device set to production with a sandbox token: refused, inactive."""
    apns_server.register(BOB_TOKEN, "sandbox")
    entry = await _hub_with(
        hass, token_entry_data(apns_credentials), apns_device("Bob", BOB_TOKEN)
    )
    assert await _send(hass, message="Hi") == {"Bob": "BadDeviceToken"}
    assert apns_server.rejections == [(BOB_TOKEN, 400, "BadDeviceToken")]
    assert apns_server.pushes == []
    assert _hub(entry).is_inactive(next(iter(entry.subentries)))


async def test_passing_failure_in_the_other_environment_is_retried(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The sandbox was busy: not a refusal, so the push is kept and tried again."""
    apns_server.script(BOB_TOKEN, 400, "BadDeviceToken", environment=ENV_PRODUCTION)
    apns_server.script(
        BOB_TOKEN, 503, "ServiceUnavailable", times=1, environment=ENV_SANDBOX
    )
    entry = await _hub_with(
        hass, token_entry_data(apns_credentials), _auto("Bob", BOB_TOKEN)
    )
    assert await _send(hass, message="Hi") == {"Bob": "ServiceUnavailable"}
    await advance(hass, freezer, 30)
    assert [push.token for push in apns_server.pushes] == [BOB_TOKEN]
    assert [reason for _, _, reason in apns_server.rejections] == [
        "BadDeviceToken",
        "ServiceUnavailable",
        "BadDeviceToken",
    ]
    [bob] = entry.subentries.values()
    assert bob.data[CONF_DETECTED_ENVIRONMENT] == ENV_SANDBOX


@pytest.mark.parametrize(
    ("kind", "tried", "outcome"),
    [
        # Apple accepts a development certificate in the sandbox only.
        ("development", [ENV_SANDBOX], "delivered"),
        # A universal certificate works in both: production first.
        ("universal", [ENV_PRODUCTION, ENV_SANDBOX], "delivered"),
        # An old production-only certificate cannot reach the sandbox token.
        ("production", [ENV_PRODUCTION], "BadDeviceToken"),
    ],
)
async def test_automatic_device_with_a_certificate(
    hass: HomeAssistant,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    kind: str,
    tried: list[str],
    outcome: str,
) -> None:
    """Only the environments the certificate works in are tried."""
    certificate = await hass.async_add_executor_job(
        partial(issue_push_certificate, apns_credentials, kind=kind)
    )
    apns_server.register(BOB_TOKEN, ENV_SANDBOX)
    await _hub_with(
        hass,
        {
            CONF_AUTH_METHOD: AUTH_CERTIFICATE,
            CONF_CERTIFICATE: certificate,
            CONF_TOPIC: apns_credentials.topic,
            CONF_ENVIRONMENT: ENV_SANDBOX if kind == "development" else ENV_PRODUCTION,
        },
        _auto("Bob", BOB_TOKEN),
    )
    assert await _send(hass, message="Hi") == {"Bob": outcome}
    attempts = [
        *(ENV_PRODUCTION for _ in apns_server.rejections),
        *(push.environment for push in apns_server.pushes),
    ]
    assert attempts == tried
    assert {push.auth for push in apns_server.pushes} <= {"certificate"}


async def test_stored_settings_and_reloads(
    hass: HomeAssistant, apns_server: ApnsServer, apns_credentials: ApnsTestCredentials
) -> None:
    """What the hub stores itself needs no reload; anyone else's change does."""
    entry = await _hub_with(
        hass,
        token_entry_data(apns_credentials),
        _auto("Alice", ALICE_TOKEN),
        _auto("Bob", BOB_TOKEN),
    )
    hub = _hub(entry)
    alice_id, bob_id = entry.subentries
    sandbox = {CONF_DETECTED_ENVIRONMENT: ENV_SANDBOX}

    hub.async_update_device(alice_id, sandbox)
    hub.async_update_device(alice_id, sandbox)  # nothing new: nothing stored
    hub.async_update_device("removed meanwhile", sandbox)
    await hass.async_block_till_done()
    assert entry.runtime_data is hub
    assert hub.devices[alice_id].config[CONF_DETECTED_ENVIRONMENT] == ENV_SANDBOX

    # The user renames Bob while a push to Alice learns something.
    assert hass.config_entries.async_update_subentry(
        entry, entry.subentries[bob_id], title="Robert"
    )
    hub.async_update_device(alice_id, {CONF_DETECTED_ENVIRONMENT: ENV_PRODUCTION})
    await hass.async_block_till_done()
    assert entry.runtime_data is not hub
    assert entry.state is ConfigEntryState.LOADED
    assert _hub(entry).devices[bob_id].name == "Robert"
    assert (
        _hub(entry).devices[alice_id].config[CONF_DETECTED_ENVIRONMENT]
        == ENV_PRODUCTION
    )
