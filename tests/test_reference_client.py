"""The reference client (direct_push_client) against the running test Home Assistant.

The client is a device of its own: it pairs over HTTP, is its own Web Push
endpoint (checks VAPID, decrypts), fetches wake-up messages, answers a
button, renews and unregisters. One test runs its command line in another
process, as an app author would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
import json
from pathlib import Path
import socket
import sys
from typing import Any

from aiohttp import ClientSession
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.direct_push.const import (
    CONF_ALLOW_LOCAL_PUSH_SERVICES,
    CONF_LEASE_EXPIRES,
    DOMAIN,
    EVENT_ACTION,
)
from direct_push_client import (
    ApiError,
    Device,
    DirectPushClient,
    Keys,
    PushError,
    Receiver,
    decrypt,
    new_endpoint,
)
from direct_push_client.__main__ import main
from direct_push_client.client import react

from .test_device_api import log_secrets, pairing_code

__all__ = ["log_secrets"]  # a fixture shared with test_device_api

pytestmark = pytest.mark.usefixtures("secrets_stay_out_of_logs")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def server(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> str:
    """Home Assistant's URL; the hub accepts push endpoints on the home network."""
    hass.config_entries.async_update_entry(
        loaded_entry, options={CONF_ALLOW_LOCAL_PUSH_SERVICES: True}
    )
    await hass.async_block_till_done()
    return str((await hass_client_no_auth()).make_url("")).rstrip("/")


@pytest.fixture
async def api() -> AsyncIterator[DirectPushClient]:
    async with ClientSession() as session:
        yield DirectPushClient(session)


class Phone:
    """A paired reference client and what it has shown."""

    def __init__(self, api: DirectPushClient, device: Device) -> None:
        self.api = api
        self.device = device
        self.shown: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.receiver = Receiver(device, self._on_push)

    async def _on_push(self, push: dict[str, Any]) -> None:
        await self.shown.put(await react(self.api, self.device, push))

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.shown.get(), 10)


@pytest.fixture
async def pair_phone(
    hass: HomeAssistant,
    server: str,
    api: DirectPushClient,
    log_secrets: list[str],
) -> AsyncIterator[Any]:
    phones: list[Phone] = []

    async def _pair(name: str, *, private: bool = False) -> Phone:
        endpoint = new_endpoint("127.0.0.1", free_port())
        device = await api.pair(
            server, await pairing_code(hass), name, endpoint, private=private
        )
        log_secrets.extend([device.device_secret, endpoint.rsplit("/", 1)[1]])
        await hass.async_block_till_done()
        phone = Phone(api, device)
        await phone.receiver.start("127.0.0.1")
        phones.append(phone)
        return phone

    yield _pair
    for phone in phones:
        await phone.receiver.stop()


async def send(hass: HomeAssistant, **fields: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, "send", fields, blocking=True, return_response=True
    )
    assert response is not None
    [row] = response["deliveries"]  # type: ignore[misc]
    assert row["status"] == "delivered", row
    return row  # type: ignore[no-any-return]


async def test_the_whole_story(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    pair_phone: Any,
    api: DirectPushClient,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Pair, receive, press a button, be reminded, renew, unregister."""
    phone: Phone = await pair_phone("Erin")
    answered = async_capture_events(hass, EVENT_ACTION)

    row = await send(
        hass,
        target="Erin",
        title="Door",
        message="Someone rang",
        actions=[{"id": "open", "title": "Open"}],
    )
    push = await phone.next()
    assert (push["title"], push["message"]) == ("Door", "Someone rang")
    assert push["id"] == row["message_id"]
    assert [a["action"] for a in push["actions"]] == ["open"]

    await api.answer(phone.device, push["id"], "open")
    await hass.async_block_till_done()
    assert [(e.data["device_name"], e.data["action"]) for e in answered] == [
        ("Erin", "open")
    ]
    with pytest.raises(ApiError) as twice:  # each button once
        await api.answer(phone.device, push["id"], "open")
    assert twice.value.status == 409

    # A day before the lease ends, the timeout push makes the client renew.
    ends = loaded_entry.subentries[phone.device.device_id].data[CONF_LEASE_EXPIRES]
    freezer.move_to(datetime.fromtimestamp(ends) - timedelta(hours=23))
    async_fire_time_changed(hass)
    reminder = await phone.next()
    assert reminder["data"]["reason"] == "expiring"
    await hass.async_block_till_done()
    renewed = loaded_entry.subentries[phone.device.device_id].data[CONF_LEASE_EXPIRES]
    assert renewed > ends

    await api.unregister(phone.device)
    last = await phone.next()
    assert last["data"] == {
        "type": "timeout",
        "device_id": phone.device.device_id,
        "reason": "unregistered",
    }
    await hass.async_block_till_done()
    assert phone.device.device_id not in loaded_entry.subentries
    with pytest.raises(ApiError) as gone:
        await api.renew(phone.device)
    assert gone.value.status == 401


async def test_private_mode_fetches_what_the_wake_up_push_announces(
    hass: HomeAssistant, pair_phone: Any, api: DirectPushClient
) -> None:
    """The push holds only an id; the client shows the message it fetched."""
    phone: Phone = await pair_phone("Finn", private=True)
    row = await send(hass, target="Finn", title="Alarm", message="Smoke in the kitchen")
    shown = await phone.next()
    assert shown["id"] == row["message_id"]
    assert (shown["title"], shown["message"]) == ("Alarm", "Smoke in the kitchen")
    assert [m["message"] for m in await api.messages(phone.device)] == [
        "Smoke in the kitchen"
    ]


async def test_the_receiver_refuses_what_is_not_from_the_hub(
    hass: HomeAssistant, pair_phone: Any, api: DirectPushClient
) -> None:
    """Without the hub's VAPID signature, or not encrypted to us, nothing is shown."""
    phone: Phone = await pair_phone("Gus")
    async with ClientSession() as other:
        unsigned = await other.post(
            phone.device.endpoint,
            data=b"x" * 100,
            headers={"Content-Encoding": "aes128gcm", "TTL": "60"},
        )
        assert unsigned.status == 400
        plain = await other.post(phone.device.endpoint, data=b"{}")
        assert plain.status == 415
    assert phone.shown.empty()
    with pytest.raises(PushError):
        decrypt(
            b"\0" * 16 + b"\0\0\x10\0" + b"\x41" + b"\4" * 65 + b"x" * 40,
            Keys.generate(),
        )


def test_keys_survive_the_state_file(tmp_path: Path) -> None:
    """A saved device reads back the same; its file is its owner's alone."""
    keys = Keys.generate()
    device = Device(
        server="http://ha.local:8123",
        device_id="d",
        device_secret="s",
        name="n",
        endpoint="http://10.0.0.2:8765/push/x",
        vapid_public_key="k",
        keys=keys.to_dict(),
    )
    path = tmp_path / "state.json"
    device.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    again = Device.load(path)
    assert again == device
    assert Keys.from_dict(again.keys).subscription_keys() == keys.subscription_keys()


async def test_the_command_line_pairs_listens_answers_and_unregisters(
    hass: HomeAssistant,
    server: str,
    tmp_path: Path,
    log_secrets: list[str],
) -> None:
    """The client as an app author runs it: one process receives, others act."""
    state = str(tmp_path / "phone.json")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "direct_push_client",
        "--state",
        state,
        "pair",
        "--server",
        server,
        "--code",
        await pairing_code(hass),
        "--name",
        "Hana",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
    )
    assert process.stdout is not None
    try:

        async def line() -> dict[str, Any]:
            assert process.stdout is not None
            raw = await asyncio.wait_for(process.stdout.readline(), 20)
            return json.loads(raw)  # type: ignore[no-any-return]

        assert (await line())["paired"] == "Hana"
        device = await hass.async_add_executor_job(Device.load, Path(state))
        log_secrets.append(device.device_secret)
        await hass.async_block_till_done()
        row = await send(
            hass,
            target="Hana",
            message="Washing done",
            actions=[{"id": "ok", "title": "OK"}],
        )
        assert (await line())["message"] == "Washing done"

        answered = async_capture_events(hass, EVENT_ACTION)
        assert (
            await hass.async_add_executor_job(
                main, ["--state", state, "answer", row["message_id"], "ok"]
            )
            == 0
        )
        await hass.async_block_till_done()
        assert [e.data["action"] for e in answered] == ["ok"]
        # A refusal is a message and an exit status, not a traceback.
        assert (
            await hass.async_add_executor_job(
                main, ["--state", state, "answer", row["message_id"], "nope"]
            )
            == 1
        )

        assert (
            await hass.async_add_executor_job(main, ["--state", state, "unregister"])
            == 0
        )
        assert (await line())["data"]["reason"] == "unregistered"
        assert await asyncio.wait_for(process.wait(), 10) == 0
        assert not await hass.async_add_executor_job(Path(state).exists)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
