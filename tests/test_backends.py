"""Backend kinds are described once: a new kind needs no change to the hub.

This registers a third kind of backend in the test suite only: a device that
takes its pushes as JSON over HTTP from a real local server. The hub, routing,
the send action, the notify entities, the repairs and diagnostics then serve
it as they serve Apple and Web Push devices, through its description alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
import json
from typing import Any, Final

from aiohttp import ClientError, ClientSession, web
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
import voluptuous as vol

from custom_components.direct_push.apns import APNS
from custom_components.direct_push.backend import (
    Delivery,
    Device,
    Outcome,
    PushBackendDescription,
    redact_token,
)
from custom_components.direct_push.backends import BACKENDS
from custom_components.direct_push.const import CONF_ADMIN, CONF_NAME, DOMAIN
from custom_components.direct_push.message import Message, MessageError
from custom_components.direct_push.validation import InputError
from custom_components.direct_push.webpush import WEB_PUSH

from .apns_server import ApnsServer, ApnsTestCredentials
from .conftest import (
    ALICE_TOKEN,
    REPAIR_FIX_URL,
    apns_device,
    start_repair,
    token_entry_data,
)
from .frontend_strings import StringsCheck

KIND: Final = "loopback_device"
CONF_URL: Final = "url"
CONF_SECRET: Final = "loopback_secret"
SECRET: Final = "hub-secret-for-the-loopback-service"
MAX_MESSAGE: Final = 20


@dataclass
class Receiver:
    """A local HTTP service that takes pushes; a path that is gone answers 410."""

    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)
    port: int = 0

    def url(self, path: str) -> str:
        """Return a device's URL on this service."""
        return f"http://127.0.0.1:{self.port}/{path}"

    async def handle(self, request: web.Request) -> web.Response:
        """Record a push, or answer that the device is gone."""
        path = request.match_info["path"]
        if request.headers.get("Authorization") != f"Bearer {SECRET}":
            return web.Response(status=HTTPStatus.UNAUTHORIZED)
        if path in self.gone:
            return web.Response(status=HTTPStatus.GONE)
        self.received.append((path, await request.json()))
        return web.Response(status=HTTPStatus.OK)


@pytest.fixture
async def receiver(socket_enabled: None) -> AsyncIterator[Receiver]:
    """The loopback push service."""
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/{path}", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.port = runner.addresses[0][1]
    yield receiver
    await runner.cleanup()


class LoopbackBackend:
    """The third kind's backend: POST the message as JSON to the device's URL."""

    def __init__(self, session: ClientSession, secret: str) -> None:
        """Use async_create."""
        self._session = session
        self._secret = secret

    async def async_send(self, device: Device, message: Message) -> Delivery:
        """Post once."""
        try:
            async with self._session.post(
                device.config[CONF_URL],
                json={"message": message.message, "title": message.title},
                headers={"Authorization": f"Bearer {self._secret}"},
            ) as response:
                status = response.status
        except ClientError:
            return Delivery(Outcome.FAILED, "connection_error", retryable=True)
        if status == HTTPStatus.GONE:
            return Delivery(Outcome.DEVICE_GONE, "gone", status=status)
        if status != HTTPStatus.OK:
            return Delivery(Outcome.FAILED, f"rejected_{status}", status=status)
        return Delivery(Outcome.DELIVERED, status=status)

    async def async_close(self) -> None:
        """Nothing to close: the session is Home Assistant's."""


async def _async_create(
    hass: HomeAssistant, data: Mapping[str, Any], options: Mapping[str, Any]
) -> LoopbackBackend | None:
    if CONF_SECRET not in data:
        return None
    return LoopbackBackend(async_get_clientsession(hass), data[CONF_SECRET])


def _check_message(message: Message) -> None:
    # This service's own limit, unlike Apple's or Web Push's.
    if len(message.message) > MAX_MESSAGE:
        raise MessageError(
            "payload_too_large", size=str(len(message.message)), limit=str(MAX_MESSAGE)
        )


def _renew(
    hass: HomeAssistant,
    user_input: Mapping[str, Any],
    data: Mapping[str, Any],
    others: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    url = str(user_input[CONF_URL]).strip()
    if url == data.get(CONF_URL):
        raise InputError(CONF_URL, "same_endpoint")
    return {**data, CONF_URL: url}


LOOPBACK: Final = PushBackendDescription(
    kind=KIND,
    model="Loopback",
    async_create=_async_create,
    check_message=_check_message,
    log_id=lambda data: redact_token(str(data.get(CONF_URL, ""))),
    secrets=frozenset({CONF_SECRET, CONF_URL}),
    renew_field=CONF_URL,
    renew_schema=lambda data: vol.Schema(
        {vol.Required(CONF_URL, default=data.get(CONF_URL, "")): str}
    ),
    renew=_renew,
)


def loopback_device(name: str, url: str, *, admin: bool = False) -> ConfigSubentryData:
    """Return a subentry of the third kind."""
    return ConfigSubentryData(
        data={CONF_NAME: name, CONF_URL: url, CONF_ADMIN: admin},
        subentry_type=KIND,
        title=name,
        unique_id=None,
    )


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the third kind for this test only."""
    monkeypatch.setitem(BACKENDS, KIND, LOOPBACK)


@pytest.fixture
async def hub(
    hass: HomeAssistant,
    registered: None,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    receiver: Receiver,
) -> AsyncIterator[MockConfigEntry]:
    """A hub with Alice on an iPhone, and a lamp and a clock of the third kind."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Direct Push",
        data={**token_entry_data(apns_credentials), CONF_SECRET: SECRET},
        subentries_data=[
            apns_device("Alice", ALICE_TOKEN, admin=True),
            loopback_device("Lamp", receiver.url("lamp"), admin=True),
            loopback_device("Clock", receiver.url("clock")),
        ],
        minor_version=2,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    yield entry
    await hass.config_entries.async_unload(entry.entry_id)


async def _send(hass: HomeAssistant, **fields: Any) -> dict[str, str]:
    response = await hass.services.async_call(
        DOMAIN, "send", fields, blocking=True, return_response=True
    )
    assert response is not None
    rows: list[dict[str, Any]] = response["deliveries"]  # type: ignore[assignment]
    return {row["device"]: row["reason"] or row["status"] for row in rows}


def test_shipped_kinds_are_registered() -> None:
    assert {APNS.kind: APNS, WEB_PUSH.kind: WEB_PUSH} == BACKENDS
    assert {APNS.model, WEB_PUSH.model} == {"Apple push (APNs)", "Web Push"}


async def test_third_kind_needs_no_change(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hub: MockConfigEntry,
    apns_server: ApnsServer,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG", logger="custom_components.direct_push")
    # Routing: the words, names and entity ids reach the new kind too.
    assert await _send(hass, message="Hello", target="admin") == {
        "Alice": "delivered",
        "Lamp": "delivered",
    }
    assert [push.token for push in apns_server.pushes] == [ALICE_TOKEN]
    assert receiver.received == [("lamp", {"message": "Hello", "title": None})]
    assert await _send(hass, message="Tick", target="notify.clock") == {
        "Clock": "delivered"
    }

    # The notify entity and its device, with the kind's model.
    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": "notify.lamp", "message": "On", "title": "Hall"},
        blocking=True,
    )
    assert receiver.received[-1] == ("lamp", {"message": "On", "title": "Hall"})
    models = {
        device.name: device.model
        for device in dr.async_entries_for_config_entry(
            dr.async_get(hass), hub.entry_id
        )
    }
    assert models == {
        "Direct Push": "Push hub",
        "Alice": "Apple push (APNs)",
        "Lamp": "Loopback",
        "Clock": "Loopback",
    }

    # Each message is checked against the limits of the kinds it goes to: a
    # tag too long for Apple is fine for the lamp alone, a long message not.
    tag = "t" * 100
    assert await _send(hass, message="Short", tag=tag, target="Lamp") == {
        "Lamp": "delivered"
    }
    with pytest.raises(ServiceValidationError) as err:
        await _send(hass, message="Short", tag=tag, target=["Lamp", "Alice"])
    assert err.value.translation_key == "tag_too_long"
    with pytest.raises(ServiceValidationError) as err:
        await _send(hass, message="x" * (MAX_MESSAGE + 1), target="Lamp")
    assert err.value.translation_key == "payload_too_large"
    assert err.value.translation_placeholders == {"size": "21", "limit": "20"}
    # Apple alone takes a long message.
    assert await _send(hass, message="x" * (MAX_MESSAGE + 1), target="Alice") == {
        "Alice": "delivered"
    }
    assert len(receiver.received) == 4

    # The log names the device by the kind's own redacted id, never its URL.
    assert "(…lamp): delivered" in caplog.text
    assert receiver.url("lamp") not in caplog.text


async def test_third_kind_repair(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hub: MockConfigEntry,
    receiver: Receiver,
    issue_registry: ir.IssueRegistry,
    check_strings: StringsCheck,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    receiver.gone.add("clock")
    assert await _send(hass, message="Tick", target="Clock") == {"Clock": "gone"}
    clock_id = next(s for s, sub in hub.subentries.items() if sub.title == "Clock")
    issue_id = f"device_inactive_{clock_id}"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None
    assert await _send(hass, message="Tick", target="Clock") == {
        "Clock": "device_inactive"
    }

    # The repair asks for the kind's own field, checks it as the kind says,
    # and stores it.
    client = await hass_client()
    flow = await start_repair(client, issue_id)
    assert flow["type"] == "form"
    assert [field["name"] for field in flow["data_schema"]] == [CONF_URL]
    response = await client.post(
        f"{REPAIR_FIX_URL}/{flow['flow_id']}", json={CONF_URL: receiver.url("clock")}
    )
    flow = await response.json()
    assert flow["errors"] == {CONF_URL: "same_endpoint"}
    response = await client.post(
        f"{REPAIR_FIX_URL}/{flow['flow_id']}", json={CONF_URL: receiver.url("clock2")}
    )
    assert (await response.json())["type"] == "create_entry"
    await hass.async_block_till_done()

    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert hub.subentries[clock_id].data[CONF_URL] == receiver.url("clock2")
    assert await _send(hass, message="Tick", target="Clock") == {"Clock": "delivered"}
    assert receiver.received == [("clock2", {"message": "Tick", "title": None})]
    # A kind made up for this test has no label for its field in en.json; a
    # real backend adds one beside its description.
    url_label = "no string issues.device_inactive.fix_flow.step.init.data.url"
    check_strings.problems[:] = [p for p in check_strings.problems if p != url_label]


async def test_third_kind_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hub: MockConfigEntry,
    receiver: Receiver,
) -> None:
    assert await async_setup_component(hass, "diagnostics", {})
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, hub)
    text = json.dumps(diagnostics)
    assert SECRET not in text
    assert receiver.url("lamp") not in text
    assert {device["kind"] for device in diagnostics["devices"]} == {
        APNS.kind,
        KIND,
    }


async def test_kind_without_credentials_is_left_out(
    hass: HomeAssistant,
    registered: None,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    receiver: Receiver,
) -> None:
    """A hub without the kind's credentials has no such backend and no such devices."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        data=token_entry_data(apns_credentials),
        subentries_data=[
            apns_device("Alice", ALICE_TOKEN, admin=True),
            loopback_device("Lamp", receiver.url("lamp"), admin=True),
        ],
        minor_version=2,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert await _send(hass, message="Hello", target="all") == {"Alice": "delivered"}
    assert receiver.received == []
    await hass.config_entries.async_unload(entry.entry_id)
