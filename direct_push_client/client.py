"""A device of Direct Push: it pairs, receives its pushes, answers buttons and renews.

`Device` is what the app keeps (the state file). `DirectPushClient` makes the
calls of the device API. `Receiver` is the device's own Web Push endpoint: an
HTTP server on the local network that Home Assistant posts the encrypted
pushes to, as a push service would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
import json
import os
from pathlib import Path
import secrets
from typing import Any, Self
from urllib.parse import urlsplit

from aiohttp import ClientSession, web

from .webpush import Keys, PushError, check_vapid, decrypt


class ApiError(Exception):
    """Home Assistant refused a call: its status and JSON error."""

    def __init__(self, status: int, answer: dict[str, Any]) -> None:
        """Keep the status and the answer's error code, message and field."""
        super().__init__(f"{status} {answer.get('error')}: {answer.get('message')}")
        self.status = status
        self.error: str | None = answer.get("error")
        self.field: str | None = answer.get("field")


@dataclass
class Device:
    """What a paired device keeps. Holds its secret and private key: keep it private."""

    server: str
    device_id: str
    device_secret: str
    name: str
    endpoint: str
    vapid_public_key: str
    keys: dict[str, str]
    private: bool = False
    lease_expires_at: str = ""

    def save(self, path: Path) -> None:
        """Write the state file, readable by its owner only."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(asdict(self), file, indent=2)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read the state file that save wrote."""
        return cls(**json.loads(path.read_text()))


class DirectPushClient:
    """The device API's calls, over one aiohttp session."""

    def __init__(self, session: ClientSession) -> None:
        """Use the caller's session (it closes it)."""
        self._session = session

    async def _call(
        self,
        method: str,
        url: str,
        *,
        device: Device | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        headers = {}
        if device is not None:
            headers = {
                "X-Direct-Push-Device": device.device_id,
                "X-Direct-Push-Secret": device.device_secret,
            }
        async with self._session.request(
            method, url, json=body, headers=headers
        ) as response:
            answer: dict[str, Any] = await response.json()
            if response.status >= 300:
                raise ApiError(response.status, answer)
            return answer

    async def pair(
        self, server: str, code: str, name: str, endpoint: str, *, private: bool = False
    ) -> Device:
        """Register with a pairing code, as a Web Push device whose endpoint is ours."""
        keys = Keys.generate()
        answer = await self._call(
            "POST",
            f"{server.rstrip('/')}/api/direct_push/register",
            body={
                "code": code,
                "name": name,
                "platform": "webpush",
                "private": private,
                "subscription": {
                    "endpoint": endpoint,
                    "keys": keys.subscription_keys(),
                },
            },
        )
        return Device(
            server=server.rstrip("/"),
            device_id=answer["device_id"],
            device_secret=answer["device_secret"],
            name=answer["name"],
            endpoint=endpoint,
            vapid_public_key=answer["vapid_public_key"],
            keys=keys.to_dict(),
            private=private,
            lease_expires_at=answer["lease_expires_at"],
        )

    def _url(self, device: Device, path: str) -> str:
        return f"{device.server}/api/direct_push/{path}"

    async def renew(self, device: Device) -> str:
        """Renew the lease; return (and keep) when it now ends."""
        answer = await self._call(
            "POST",
            self._url(device, f"devices/{device.device_id}/renew"),
            device=device,
        )
        device.lease_expires_at = answer["lease_expires_at"]
        return device.lease_expires_at

    async def unregister(self, device: Device) -> None:
        """Remove the device from Home Assistant; it gets a last timeout push."""
        await self._call(
            "DELETE", self._url(device, f"devices/{device.device_id}"), device=device
        )

    async def answer(
        self, device: Device, message_id: str, action: str, text: str | None = None
    ) -> None:
        """Press a button of a message: Home Assistant fires direct_push_action."""
        body = {"message_id": message_id, "action": action}
        if text is not None:
            body["text"] = text
        await self._call("POST", self._url(device, "actions"), device=device, body=body)

    async def message(self, device: Device, message_id: str) -> dict[str, Any]:
        """Fetch a message a wake-up push announced (private mode)."""
        return await self._call(
            "GET", self._url(device, f"messages/{message_id}"), device=device
        )

    async def messages(self, device: Device) -> list[dict[str, Any]]:
        """Fetch all messages still kept for the device (private mode, polling)."""
        answer = await self._call("GET", self._url(device, "messages"), device=device)
        messages: list[dict[str, Any]] = answer["messages"]
        return messages


def new_endpoint(host: str, port: int) -> str:
    """Return an endpoint URL on our receiver, with an unguessable path."""
    return f"http://{host}:{port}/push/{secrets.token_urlsafe(16)}"


class Receiver:
    """The device's own push endpoint: checks VAPID, decrypts, hands on the JSON."""

    def __init__(
        self, device: Device, on_push: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> None:
        """Receive for this device; call on_push with each push's JSON."""
        self._device = device
        self._keys = Keys.from_dict(device.keys)
        self._on_push = on_push
        self._runner: web.AppRunner | None = None
        parts = urlsplit(device.endpoint)
        self._audience = f"{parts.scheme}://{parts.netloc}"
        self._path = parts.path

    async def start(self, host: str = "0.0.0.0") -> None:  # noqa: S104 (HA is on the LAN)
        """Listen on the endpoint's port."""
        app = web.Application(client_max_size=8192)
        app.router.add_post(self._path, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(
            self._runner, host, urlsplit(self._device.endpoint).port
        ).start()

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        # As a push service answers (RFC 8030 section 5): 201 once accepted.
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return web.Response(status=415, text="only aes128gcm")
        try:
            check_vapid(
                request.headers.get("Authorization", ""),
                self._audience,
                self._device.vapid_public_key,
            )
            push = json.loads(decrypt(await request.read(), self._keys))
        except (PushError, ValueError) as err:
            return web.Response(status=400, text=str(err))
        await self._on_push(push)
        return web.Response(status=201, headers={"Location": request.path})


async def react(
    client: DirectPushClient, device: Device, push: dict[str, Any]
) -> dict[str, Any]:
    """Do what an app does with a push; return what it shows.

    A wake-up push is replaced by the message it announces; a timeout push
    that says the lease ends renews it.
    """
    data = push.get("data") or {}
    kind = data.get("type")
    if kind == "wake":
        return await client.message(device, data["id"])
    if kind == "timeout" and data.get("reason") == "expiring":
        await client.renew(device)
    return push
