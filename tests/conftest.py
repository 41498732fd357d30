"""Shared fixtures: real local push servers and a configured hub."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable, Iterator
from http import HTTPStatus
import json
import logging
import math
from pathlib import Path
import socket
import tempfile
import time
from typing import Any
from unittest.mock import patch

from aiohttp import FormData
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from freezegun.api import FrozenDateTimeFactory
from homeassistant import config_entries
from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import SOURCE_USER, ConfigSubentryData
from homeassistant.const import Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.data_entry_flow import FlowHandler, FlowManager, FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
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

from custom_components.direct_push import pacing
from custom_components.direct_push.apns import SUBENTRY_APNS
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
    CONF_SUBSCRIPTION,
    CONF_TEAM_ID,
    CONF_TOKEN,
    CONF_TOPIC,
    CONF_VAPID_PRIVATE_KEY,
    DOMAIN,
    ENV_DEV_APNS_SERVER,
    ENV_DEV_CA_FILE,
    ENV_PRODUCTION,
    EVENT_DELIVERY,
)
from custom_components.direct_push.webpush import SUBENTRY_WEBPUSH, vapid_public_key

from .apns_server import ApnsServer, ApnsTestCredentials, make_credentials
from .frontend_strings import StringsCheck
from .webpush_server import ReceivedPush, Subscription, WebPushServer

# One fixed VAPID identity for every test hub, so snapshots are stable.
VAPID_KEY = "z86piRJIg2axaAs8qTG27C0IEx9Ii5oGOVUKYIo-hzs"
ALICE_TOKEN = "a1" * 32
BOB_TOKEN = "b2" * 40
CAROL_TOKEN = "c3" * 32


@pytest.fixture(autouse=True)
def unpaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every push of a call in the turn it is made.

    How much work fits a turn of the loop depends on the machine; a test's
    outcome must not. test_pacing and the outbox's reload test pace on purpose.
    """
    monkeypatch.setattr(pacing, "TURN_BUDGET", math.inf)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load Direct Push from custom_components."""


@pytest.fixture(autouse=True, scope="session")
def private_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Give this run a temporary folder of its own.

    HA's file upload keeps uploads in <temp>/home-assistant-file_upload and
    deletes that folder whenever an instance starts or stops: test runs side
    by side on one machine deleted each other's uploads.
    """
    before = tempfile.tempdir
    tempfile.tempdir = str(tmp_path_factory.mktemp("temp"))
    yield
    tempfile.tempdir = before


@pytest.fixture
def unix_socket() -> Iterator[Path]:
    """A listening Unix socket, a file that is none; under /tmp, as their paths are short."""
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        path = Path(folder) / "AuthKey.p8"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        sock.listen()
        try:
            yield path
        finally:
            sock.close()


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


@pytest.fixture
def server(apns_server: ApnsServer) -> ApnsServer:
    """The APNs server, accepting a new provider token at any time.

    Every probe and every (re)loaded hub signs its own provider token, so a flow
    that probes twice, or probes and then sends, presents a new token within
    Apple's 20 minutes; these tests are not about that limit.
    """
    apns_server.token_refresh_interval = 0
    return apns_server


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
    name: str,
    subscription: Subscription,
    *,
    admin: bool = False,
    endpoint: str | None = None,
    **extra: Any,
) -> ConfigSubentryData:
    """Return a Web Push device subentry for a receiver's subscription."""
    return ConfigSubentryData(
        data={
            CONF_NAME: name,
            CONF_ENDPOINT: subscription.endpoint if endpoint is None else endpoint,
            CONF_P256DH: subscription.p256dh,
            CONF_AUTH: subscription.auth,
            CONF_ADMIN: admin,
            **extra,
        },
        subentry_type=SUBENTRY_WEBPUSH,
        title=name,
        unique_id=None,
    )


class StaticResolver(AbstractResolver):
    """DNS for tests: answers from a table that a test may change.

    Installed as Home Assistant's resolver (see the `dns` fixture) or wrapped
    directly; an unknown name fails as NXDOMAIN does, with an OSError.
    """

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        """Answer from table: name -> addresses."""
        self.table = {} if table is None else table
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Return the table's addresses for host."""
        if host not in self.table:
            raise OSError(f"no address for {host}")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in self.table[host]
        ]

    async def close(self) -> None:
        """Note the close."""
        self.closed = True

    # Home Assistant closes its shared resolver with this, when it stops.
    real_close = close


@pytest.fixture
def dns() -> Iterator[StaticResolver]:
    """Home Assistant's DNS resolver, answering from a table.

    Request it before `hass`'s other users: Home Assistant makes its resolver
    once, with its first client session.
    """
    resolver = StaticResolver()
    with patch(
        "homeassistant.helpers.aiohttp_client._async_make_resolver",
        return_value=resolver,
    ):
        yield resolver


async def upload(client: TestClient[Any, Any], name: str, content: str | bytes) -> str:
    """Upload a file (text as UTF-8) through the frontend's endpoint; return its id."""
    form = FormData()
    data = content.encode() if isinstance(content, str) else content
    form.add_field("file", data, filename=name)
    response = await client.post("/api/file_upload", data=form)
    assert response.status == 200
    file_id: str = (await response.json())["file_id"]
    return file_id


@pytest.fixture
async def upload_client(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> TestClient[Any, Any]:
    """An authenticated client of HA's HTTP API, with file_upload set up.

    Components with HTTP views must be set up before the server starts
    (Direct Push's own: the device API).
    """
    for component in ("file_upload", "repairs", "diagnostics", DOMAIN):
        assert await async_setup_component(hass, component, {})
    client: TestClient[Any, Any] = await hass_client()
    return client


# Web Push tests: Alice and Bob on iPhones, Dana and Erin on Web Push.

type Subscribe = Callable[..., Subscription]


def b64url(data: bytes) -> str:
    """Encode as unpadded base64url, as subscriptions carry keys."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def p256_point(*, compressed: bool = False) -> str:
    """Return a P-256 public key as base64url; fixed, so test ids are stable."""
    key = ec.derive_private_key(0x5EED, ec.SECP256R1()).public_key()
    form = (
        PublicFormat.CompressedPoint if compressed else PublicFormat.UncompressedPoint
    )
    return b64url(key.public_bytes(Encoding.X962, form))


P256DH = p256_point()
AUTH = b64url(bytes(range(16)))


@pytest.fixture
def log_secrets() -> list[str]:
    """Secrets that must never reach the log; see secrets_stay_out_of_logs."""
    return [VAPID_KEY]


@pytest.fixture
def secrets_stay_out_of_logs(
    caplog: pytest.LogCaptureFixture, log_secrets: list[str]
) -> Iterator[None]:
    """Prove that no subscription secret is logged (Web Push tests use it throughout).

    An endpoint is a capability (whoever has it can push), and its path is the
    secret part: the subscription id. Only the test receiver may log it.
    """
    caplog.set_level(logging.DEBUG)
    yield
    formatter = logging.Formatter()
    logged = "\n".join(
        formatter.format(record)  # with any traceback
        for record in caplog.get_records("call")
        if not record.name.startswith("tests.")
    )
    for secret in log_secrets:
        assert secret not in logged


@pytest.fixture
def subscribe(webpush_server: WebPushServer, log_secrets: list[str]) -> Subscribe:
    """Subscribe as an app does, by default with the test hub's VAPID key."""

    def _subscribe(name: str, *, key: str | None = VAPID_PUBLIC_KEY) -> Subscription:
        sub = webpush_server.subscribe(name, application_server_key=key)
        log_secrets.extend((sub.id, sub.p256dh, sub.auth))
        return sub

    return _subscribe


@pytest.fixture
def subs(subscribe: Subscribe) -> dict[str, Subscription]:
    """Dana's and Erin's subscriptions."""
    return {"Dana": subscribe("Dana"), "Erin": subscribe("Erin")}


@pytest.fixture
def mixed_devices(subs: dict[str, Subscription]) -> list[ConfigSubentryData]:
    """Alice (Apple, admin), Bob (Apple), Dana (Web Push, admin), Erin (Web Push)."""
    return [
        apns_device("Alice", ALICE_TOKEN, admin=True),
        apns_device("Bob", BOB_TOKEN),
        webpush_device("Dana", subs["Dana"], admin=True),
        webpush_device("Erin", subs["Erin"]),
    ]


async def send_rows(hass: HomeAssistant, **fields: Any) -> list[dict[str, Any]]:
    """Call direct_push.send and return its delivery rows."""
    response = await hass.services.async_call(
        DOMAIN, "send", fields, blocking=True, return_response=True
    )
    assert response is not None
    rows: list[dict[str, Any]] = response["deliveries"]  # type: ignore[assignment]
    return rows


def delivery_statuses(
    rows: list[dict[str, Any]],
) -> dict[str, tuple[str, str | None]]:
    """Return each device's status and reason."""
    return {row["device"]: (row["status"], row["reason"]) for row in rows}


def subentry_id(entry: MockConfigEntry, name: str) -> str:
    """Return a device's subentry id, by its name."""
    subentry_id: str = next(
        sid for sid, sub in entry.subentries.items() if sub.title == name
    )
    return subentry_id


def ha_device_id(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> str:
    """Return the HA device id of a device (key: its subentry id) or the hub (the entry id)."""
    # A lookup that every supported Home Assistant version offers.
    [device] = [
        device
        for device in dr.async_entries_for_config_entry(
            dr.async_get(hass), entry.entry_id
        )
        if (DOMAIN, key) in device.identifiers
    ]
    return device.id


def notify_entity_id(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> str:
    """Return the notify entity of a device (key: its subentry id) or a group ("admins")."""
    entity_id = er.async_get(hass).async_get_entity_id(
        Platform.NOTIFY, DOMAIN, f"{entry.entry_id}_{key}"
    )
    assert entity_id is not None
    return entity_id


def inactive_issue(
    hass: HomeAssistant, entry: MockConfigEntry, name: str
) -> ir.IssueEntry | None:
    """Return the repair issue that marks a device inactive, if there is one."""
    return ir.async_get(hass).async_get_issue(
        DOMAIN, f"device_inactive_{subentry_id(entry, name)}"
    )


async def send_one(
    hass: HomeAssistant, server: WebPushServer, sub: Subscription, **fields: Any
) -> ReceivedPush:
    """Send to one Web Push device by name; return what its app received."""
    fields.setdefault("message", "Hello")
    assert delivery_statuses(await send_rows(hass, target=sub.name, **fields)) == {
        sub.name: ("delivered", None)
    }
    return server.messages_for(sub)[-1]


async def add_webpush_device(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    name: str,
    sub: Subscription,
    *,
    admin: bool = False,
) -> str:
    """Add a Web Push device through the form, pasting its subscription; return its id."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_WEBPUSH), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_NAME: name,
            CONF_SUBSCRIPTION: json.dumps(sub.as_json()),
            CONF_ADMIN: admin,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    return subentry_id(entry, name)


# Time, and what happens after an action returned.


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


def sending(hass: HomeAssistant) -> bool:
    """Return True while any hub has a push in flight."""
    return any(
        lane.task is not None
        for entry in hass.config_entries.async_loaded_entries(DOMAIN)
        for lane in entry.runtime_data.outbox._lanes.values()
    )


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


@pytest.fixture
def delivery_events(hass: HomeAssistant) -> list[Event]:
    """The direct_push_delivery events fired during the test."""
    return async_capture_events(hass, EVENT_DELIVERY)


# Repairs, as the frontend drives them.

REPAIR_FIX_URL = "/api/repairs/issues/fix"


async def start_repair(client: TestClient[Any, Any], issue_id: str) -> dict[str, Any]:
    """Start an issue's fix flow as the frontend does; return its first step."""
    response = await client.post(
        REPAIR_FIX_URL, json={"handler": DOMAIN, "issue_id": issue_id}
    )
    assert response.status == HTTPStatus.OK
    result: dict[str, Any] = await response.json()
    return result


# Snapshots of a platform's entities.

# The registry entry's fields that every supported HA version stores alike.
_ENTITY_FIELDS = (
    "entity_id",
    "unique_id",
    "platform",
    "has_entity_name",
    "name",
    "original_name",
    "translation_key",
    "icon",
    "original_icon",
    "device_class",
    "original_device_class",
    "entity_category",
    "disabled_by",
    "hidden_by",
    "supported_features",
    "capabilities",
)
_DEVICE_FIELDS = ("name", "manufacturer", "model", "entry_type")


async def setup_platform_hub(
    hass: HomeAssistant,
    credentials: ApnsTestCredentials,
    webpush_server: WebPushServer,
    platform: Platform,
) -> MockConfigEntry:
    """Set up a hub with one device of each kind and only one platform, to snapshot it."""
    pixel = webpush_server.subscribe("Pixel", application_server_key=VAPID_PUBLIC_KEY)
    # Fixed ids: they are part of the unique ids in the snapshot.
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Direct Push",
        entry_id="01DIRECTPUSHHUB00000000000",
        data=token_entry_data(credentials),
        subentries_data=[
            {**apns_device("Alice", ALICE_TOKEN, admin=True), "subentry_id": "alice"},
            {**webpush_device("Pixel", pixel), "subentry_id": "pixel"},
        ],
        minor_version=2,
    )
    entry.add_to_hass(hass)
    with patch("custom_components.direct_push.PLATFORMS", [platform]):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    return entry


async def snapshot_platform(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    config_entry_id: str,
) -> None:
    """Snapshot each entity of a config entry: its registry entry, device and state.

    As the snapshot_platform of HA's test helpers, which snapshots the whole
    registry entry and state: their form changes between HA versions (aliases
    became a list, object_id_base is new, attribute names became enum members),
    and one snapshot must pass at both ends of the supported range. So only
    what does not change is taken, and with it the entity's device, whose model
    each backend kind describes.
    """
    entries = er.async_entries_for_config_entry(entity_registry, config_entry_id)
    assert entries
    assert len({entry.domain for entry in entries}) == 1, "one platform at a time"
    devices = dr.async_get(hass)
    for entry in entries:
        assert entry.disabled_by is None, "enable every entity"
        device = devices.async_get(entry.device_id) if entry.device_id else None
        assert device is not None
        fields = {field: getattr(entry, field) for field in _ENTITY_FIELDS}
        if fields["capabilities"]:
            # Capability names are enum members on newer versions too.
            fields["capabilities"] = {
                str(key): value for key, value in fields["capabilities"].items()
            }
        assert {
            **fields,
            "device": {field: getattr(device, field) for field in _DEVICE_FIELDS},
        } == snapshot(name=f"{entry.entity_id}-entry")
        state = hass.states.get(entry.entity_id)
        assert state, f"no state for {entry.entity_id}"
        # Attribute names are enum members on newer versions: compare their text.
        assert {
            "state": state.state,
            "attributes": {str(key): value for key, value in state.attributes.items()},
        } == snapshot(name=f"{entry.entity_id}-state")
