"""Shared fixtures: real local push servers and a configured hub."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient
from homeassistant import config_entries
from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowHandler, FlowManager
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
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
    SUBENTRY_APNS,
    SUBENTRY_WEBPUSH,
)
from custom_components.direct_push.webpush import vapid_public_key

from .apns_server import ApnsServer, ApnsTestCredentials, make_credentials
from .frontend_strings import StringsCheck
from .webpush_server import Subscription, WebPushServer

# One fixed VAPID identity for every test hub, so snapshots are stable.
VAPID_KEY = "z86piRJIg2axaAs8qTG27C0IEx9Ii5oGOVUKYIo-hzs"
ALICE_TOKEN = "a1" * 32
BOB_TOKEN = "b2" * 40
CAROL_TOKEN = "c3" * 32


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load Direct Push from custom_components."""


def _check_flow_step(
    check: StringsCheck, flow: FlowHandler[Any, Any, Any], result: Any
) -> None:
    """Check the strings of a step of a Direct Push flow; ignore other flows."""
    if isinstance(flow, config_entries.ConfigFlow):
        if flow.handler == DOMAIN:
            check.flow_result("config", result)
        return
    if isinstance(flow, RepairsFlow):
        if flow.handler == DOMAIN:
            check.repair(flow.issue_id, result)
        return
    handler = flow.handler
    entry_id = handler[0] if isinstance(handler, tuple) else handler
    entry = flow.hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        return
    if isinstance(flow, config_entries.ConfigSubentryFlow):
        check.flow_result(f"config_subentries.{handler[1]}", result)
    else:
        check.flow_result("options", result)


@pytest.fixture(autouse=True)
def check_strings(monkeypatch: pytest.MonkeyPatch) -> Iterator[StringsCheck]:
    """Fail a test whose flows, issues or errors show a missing string or placeholder."""
    check = StringsCheck(DOMAIN)
    handle_step = FlowManager._async_handle_step

    async def checked_step(
        self: FlowManager[Any, Any, Any], flow: Any, *args: Any
    ) -> Any:
        result = await handle_step(self, flow, *args)
        _check_flow_step(check, flow, result)
        return result

    create_issue = ir.async_create_issue

    def checked_issue(
        hass: HomeAssistant, domain: str, issue_id: str, **kwargs: Any
    ) -> None:
        check.issue(
            domain,
            issue_id,
            kwargs["translation_key"],
            kwargs.get("translation_placeholders"),
        )
        create_issue(hass, domain, issue_id, **kwargs)

    init_error = HomeAssistantError.__init__

    def checked_error(self: HomeAssistantError, *args: object, **kwargs: Any) -> None:
        if kwargs.get("translation_domain") == DOMAIN:
            check.exception(
                kwargs["translation_key"], kwargs.get("translation_placeholders")
            )
        init_error(self, *args, **kwargs)

    monkeypatch.setattr(FlowManager, "_async_handle_step", checked_step)
    monkeypatch.setattr(ir, "async_create_issue", checked_issue)
    monkeypatch.setattr(HomeAssistantError, "__init__", checked_error)
    yield check
    if check.problems:
        pytest.fail("Strings the UI would show broken:\n" + "\n".join(check.problems))


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


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the backoff real but short."""
    monkeypatch.setattr("custom_components.direct_push.backend.RETRY_BASE_DELAY", 0.01)


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
