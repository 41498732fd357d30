"""Shared fixtures: real local push servers and a configured hub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
import time
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import Event, HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.direct_push.const import (
    AUTH_TOKEN,
    CONF_ADMIN,
    CONF_AUTH,
    CONF_AUTH_METHOD,
    CONF_ENDPOINT,
    CONF_ENVIRONMENT,
    CONF_KEY,
    CONF_KEY_ID,
    CONF_NAME,
    CONF_P256DH,
    CONF_TEAM_ID,
    CONF_TOKEN,
    CONF_TOPIC,
    CONF_VAPID_PRIVATE_KEY,
    DOMAIN,
    ENV_DEV_APNS_SERVER,
    ENV_DEV_CA_FILE,
    ENV_PRODUCTION,
    EVENT_DELIVERY,
    SUBENTRY_APNS,
    SUBENTRY_WEBPUSH,
)
from custom_components.direct_push.webpush import vapid_public_key

from .apns_server import ApnsServer, ApnsTestCredentials, make_credentials
from .webpush_server import Subscription, WebPushServer


async def until(predicate: Callable[[], object], *, seconds: float = 10.0) -> None:
    """Let the loop run until predicate holds; fail after seconds of real time.

    Real time, whatever freezer did to the clock: the local servers answer over
    real sockets, and background work (retries, later attempts) is not awaited
    by hass.async_block_till_done.
    """
    loop = asyncio.get_running_loop()
    for _ in range(int(seconds / 0.002)):
        if predicate():
            return
        await loop.run_in_executor(None, time.sleep, 0.002)
    pytest.fail("the condition never held")


async def advance(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    seconds: float,
    *,
    step: float = 1.0,
) -> None:
    """Let seconds pass on the frozen clock, a step at a time.

    After each step the timers that came due run, and then the loop until no
    push is being sent.
    """
    while seconds > 0:
        freezer.tick(min(step, seconds))
        seconds -= step
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
        await until(lambda: not sending(hass))


def sending(hass: HomeAssistant) -> bool:
    """Return True while any hub has a push in flight."""
    return any(
        lane.task is not None
        for entry in hass.config_entries.async_loaded_entries(DOMAIN)
        for lane in entry.runtime_data.outbox._lanes.values()
    )


@pytest.fixture
def delivery_events(hass: HomeAssistant) -> list[Event]:
    """The direct_push_delivery events fired during the test."""
    return async_capture_events(hass, EVENT_DELIVERY)


# One fixed VAPID identity for every test hub, so snapshots are stable.
VAPID_KEY = "z86piRJIg2axaAs8qTG27C0IEx9Ii5oGOVUKYIo-hzs"
ALICE_TOKEN = "a1" * 32
BOB_TOKEN = "b2" * 40
CAROL_TOKEN = "c3" * 32


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load Direct Push from custom_components."""


@pytest.fixture
def apns_credentials(tmp_path: Path) -> ApnsTestCredentials:
    """A test CA, an Apple-style .p8 key and a push certificate."""
    return make_credentials(tmp_path)


@pytest.fixture
async def apns_server(
    socket_enabled: None,
    apns_credentials: ApnsTestCredentials,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[ApnsServer]:
    """A local APNs server that the integration reaches through aioapns."""
    async with ApnsServer(apns_credentials) as server:
        monkeypatch.setenv(ENV_DEV_APNS_SERVER, f"127.0.0.1:{server.port}")
        monkeypatch.setenv(ENV_DEV_CA_FILE, str(apns_credentials.ca_file))
        yield server


def token_entry_data(credentials: ApnsTestCredentials) -> dict[str, Any]:
    """Return hub data for token (.p8) authentication."""
    return {
        CONF_AUTH_METHOD: AUTH_TOKEN,
        CONF_KEY: credentials.key_pem,
        CONF_KEY_ID: credentials.key_id,
        CONF_TEAM_ID: credentials.team_id,
        CONF_TOPIC: credentials.topic,
        CONF_ENVIRONMENT: ENV_PRODUCTION,
        CONF_VAPID_PRIVATE_KEY: VAPID_KEY,
    }


def apns_device(
    name: str, token: str, *, admin: bool = False, **extra: Any
) -> ConfigSubentryData:
    """Return an Apple device subentry."""
    return ConfigSubentryData(
        data={
            CONF_NAME: name,
            CONF_TOKEN: token,
            CONF_ADMIN: admin,
            CONF_ENVIRONMENT: ENV_PRODUCTION,
            **extra,
        },
        subentry_type=SUBENTRY_APNS,
        title=name,
        unique_id=None,
    )


@pytest.fixture
def devices() -> list[ConfigSubentryData]:
    """Alice (admin) and Bob."""
    return [
        apns_device("Alice", ALICE_TOKEN, admin=True),
        apns_device("Bob", BOB_TOKEN),
    ]


@pytest.fixture
def config_entry(
    apns_credentials: ApnsTestCredentials, devices: list[ConfigSubentryData]
) -> MockConfigEntry:
    """The hub entry, with its devices."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Direct Push",
        data=token_entry_data(apns_credentials),
        subentries_data=devices,
        minor_version=2,
    )


@pytest.fixture
async def loaded_entry(
    hass: HomeAssistant, apns_server: ApnsServer, config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """Set up the hub against the local APNs server; unload it afterwards."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    yield config_entry
    # A test may have removed the entry itself.
    if hass.config_entries.async_get_entry(config_entry.entry_id):
        await hass.config_entries.async_unload(config_entry.entry_id)


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Use HA's snapshot format and folder (syrupy's own fixture wins otherwise)."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


# Web Push: the hub's application server key, which apps subscribe with.
VAPID_PUBLIC_KEY = vapid_public_key(VAPID_KEY)


@pytest.fixture
async def webpush_server(socket_enabled: None) -> AsyncIterator[WebPushServer]:
    """A local Web Push service that checks VAPID and decrypts every push."""
    async with WebPushServer() as server:
        yield server


def webpush_device(
    name: str, subscription: Subscription, *, admin: bool = False
) -> ConfigSubentryData:
    """Return a Web Push device subentry for a receiver's subscription."""
    return ConfigSubentryData(
        data={
            CONF_NAME: name,
            CONF_ENDPOINT: subscription.endpoint,
            CONF_P256DH: subscription.p256dh,
            CONF_AUTH: subscription.auth,
            CONF_ADMIN: admin,
        },
        subentry_type=SUBENTRY_WEBPUSH,
        title=name,
        unique_id=None,
    )


async def upload(client: TestClient[Any, Any], name: str, content: str) -> str:
    """Upload a file through the frontend's endpoint; return its file id."""
    form = FormData()
    form.add_field("file", content.encode(), filename=name)
    response = await client.post("/api/file_upload", data=form)
    assert response.status == 200
    file_id: str = (await response.json())["file_id"]
    return file_id


@pytest.fixture
async def upload_client(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> TestClient[Any, Any]:
    """An authenticated client of HA's HTTP API, with file_upload set up.

    Components with HTTP views must be set up before the server starts.
    """
    for component in ("file_upload", "repairs", "diagnostics"):
        assert await async_setup_component(hass, component, {})
    client: TestClient[Any, Any] = await hass_client()
    return client
