"""Local stand-ins for Apple's push service and a Web Push distributor, for scripts/develop.

The same servers the tests use. Usage: dev_servers.py CONFIG_DIR [HA_PORT]. It keeps,
under CONFIG_DIR/dev/ (so that the hub's stored key and devices stay valid across restarts):
- apple_push/: config.json and AuthKey.p8, an apple_push folder as dmt-system users have
  it, naming the demo's Apple devices;
- webpush.json: the demo's Web Push subscriptions and the receiver's port;
- the test CA and the APNs server's certificate, new at each start;
- env: the development-only variables that point Direct Push at the local APNs server.

On the demo's first start (unless DEMO_SETUP=ui), it completes Home Assistant's
onboarding with the user demo (password demo) and sets Direct Push up through its config
flow over HA's REST API, as the UI does: it imports dev/apple_push and adds the Pixel.
It then pairs the reference client (direct_push_client) as "Kitchen tablet", with a
pairing code, and keeps it in dev/reference_client.json: the client is its own Web Push
endpoint on the loopback, so the hub allows push services on the home network.
Then it prints every push the servers and the client receive, each named as the hub
names its device, Web Push bodies decrypted.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
import json
import logging
import os
from pathlib import Path
import shutil
import socket
import sys
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custom_components.direct_push.apns import PROBE_TOKEN
from direct_push_client import Device, DirectPushClient, Receiver, new_endpoint
from direct_push_client.client import react
from tests.apns_server import (
    ApnsPush,
    ApnsServer,
    ApnsTestCredentials,
    make_credentials,
)
from tests.webpush_server import ReceivedPush, Subscription, WebPushServer

REPO = Path(__file__).resolve().parent.parent
# The Old iPad's app was removed: the server answers 410 Unregistered, so the first push
# to everyone makes it inactive and raises a repair that asks for a new token.
GONE_TOKEN = "dead" * 16
# Fixed tokens, so that the hub's devices stay valid across restarts.
DEMO_DEVICES = [
    {"name": "Alice's iPhone", "token": "a1" * 32, "admin": True},
    {"name": "Bob's iPhone", "token": "b2" * 32, "admin": False},
    {"name": "Old iPad", "token": GONE_TOKEN, "admin": False},
]
# Web Push subscriptions: the first start adds the Pixel to the hub; the Tablet's is
# printed for trying Add Web Push device by hand.
WEBPUSH_DEVICES = ("Pixel", "Tablet")
USER, PASSWORD = "demo", "demo"
CLIENT_NAME = "Kitchen tablet"
CLIENT_STATE = "reference_client.json"


def write_apple_push_folder(folder: Path, creds: ApnsTestCredentials) -> None:
    """Write an apple_push folder (config.json and AuthKey.p8) for the demo devices."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "AuthKey.p8").write_text(creds.key_pem, encoding="utf-8")
    config = {
        "server_auth": {
            "token": {
                "key": "./AuthKey.p8",
                "keyId": creds.key_id,
                "teamId": creds.team_id,
            },
            "topic": creds.topic,
        },
        "devices": DEMO_DEVICES,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def demo_credentials(dev: Path) -> ApnsTestCredentials:
    """Return the local APNs server's files, keeping the Apple key of an earlier start."""
    creds = make_credentials(dev)
    key_file = dev / "apple_push" / "AuthKey.p8"
    if key_file.exists():
        creds = replace(creds, key_pem=key_file.read_text(encoding="utf-8"))
    write_apple_push_folder(dev / "apple_push", creds)
    return creds


async def start_webpush(dev: Path) -> tuple[WebPushServer, dict[str, Subscription]]:
    """Start the Web Push receiver with the demo's subscriptions, kept across starts."""
    state_file = dev / "webpush.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    server = WebPushServer(port=state.get("port", 0))
    try:
        await server.start()
    except OSError:  # the port is taken now: the stored devices will fail
        print(f"Port {state.get('port')} is taken: new Web Push subscriptions")
        server, state = WebPushServer(), {}
        await server.start()
    subscriptions = {}
    kept = {sub["name"]: sub for sub in state.get("subscriptions", ())}
    for name in WEBPUSH_DEVICES:
        keep = None
        if old := kept.get(name):
            key = serialization.load_pem_private_key(old["key"].encode(), None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            keep = Subscription(old["id"], "", "", old["auth"], key)
        subscriptions[name] = server.subscribe(name, keep=keep)
    state = {
        "port": server.port,
        "subscriptions": [
            {
                "name": name,
                "id": sub.id,
                "auth": sub.auth,
                "key": sub.private_key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ).decode(),
            }
            for name, sub in subscriptions.items()
        ],
    }
    state_file.write_text(json.dumps(state, indent=2), encoding="utf-8")
    return server, subscriptions


class DeviceNames:
    """The hub's device names by APNs token and Web Push endpoint, from HA's storage."""

    def __init__(self, config: Path) -> None:
        """Read config/.storage/core.config_entries when it changes."""
        self._file = config / ".storage" / "core.config_entries"
        self._mtime = 0.0
        self._names: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        """Return the name of the device with this token or endpoint."""
        with contextlib.suppress(OSError, ValueError, KeyError):
            if (mtime := self._file.stat().st_mtime) != self._mtime:
                entries = json.loads(self._file.read_text())["data"]["entries"]
                self._names = {
                    data.get("token") or data.get("endpoint"): sub["title"]
                    for entry in entries
                    if entry["domain"] == "direct_push"
                    for sub in entry.get("subentries", ())
                    if (data := sub.get("data", {}))
                }
                self._mtime = mtime
        return self._names.get(key)


def describe_apns(push: ApnsPush, names: DeviceNames) -> str:
    """Return one line for a push the APNs server accepted."""
    if push.token == PROBE_TOKEN:
        who = "the credentials check (a test push to a made-up device)"
    else:
        who = (
            names.get(push.token)
            or f"a device not on the hub (token …{push.token[-4:]})"
        )
    return f"APNs → {who}: {json.dumps(push.payload, ensure_ascii=False)}"


def describe_webpush(
    message: ReceivedPush, names: DeviceNames, subscriptions: dict[str, Subscription]
) -> str:
    """Return one line for a Web Push message, decrypted."""
    sub = next(s for s in subscriptions.values() if s.id == message.subscription_id)
    who = names.get(sub.endpoint) or f"{sub.name}'s subscription, not on the hub"
    headers = f"TTL {message.ttl}, urgency {message.urgency or '-'}, topic {message.topic or '-'}"
    return f"Web Push → {who} ({headers}): {message.plaintext.decode()}"


async def _json(response: aiohttp.ClientResponse) -> Any:
    if response.status >= 400:
        raise RuntimeError(
            f"{response.method} {response.url}: {response.status} {await response.text()}"
        )
    return await response.json()


async def set_up_demo(
    base: str, config: Path, pixel: Subscription, paired: asyncio.Event
) -> None:
    """Onboard a fresh demo, set the hub up through its config flow, load the automations."""
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{base}/api/onboarding") as response:
                    if response.status == 200:
                        steps = await response.json()
                        break
            await asyncio.sleep(0.5)
        else:
            print("Home Assistant did not answer: the demo is not set up")
            return
        if any(step["step"] == "user" and step["done"] for step in steps):
            return  # set up at an earlier start, or by hand
        client_id = f"{base}/"
        async with session.post(
            f"{base}/api/onboarding/users",
            json={
                "client_id": client_id,
                "name": "Demo",
                "username": USER,
                "password": PASSWORD,
                "language": "en",
            },
        ) as response:
            code = (await _json(response))["auth_code"]
        async with session.post(
            f"{base}/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": client_id,
            },
        ) as response:
            token = (await _json(response))["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        for step, body in (
            ("core_config", {}),
            ("analytics", {}),
            (
                "integration",
                {"client_id": client_id, "redirect_uri": f"{base}/?auth_callback=1"},
            ),
        ):
            async with session.post(
                f"{base}/api/onboarding/{step}", json=body, headers=auth
            ) as response:
                await _json(response)

        async def flow(path: str, *bodies: dict[str, Any]) -> dict[str, Any]:
            async with session.post(
                f"{base}{path}", json=bodies[0], headers=auth
            ) as response:
                result: dict[str, Any] = await _json(response)
            for body in bodies[1:]:
                async with session.post(
                    f"{base}{path}/{result['flow_id']}", json=body, headers=auth
                ) as response:
                    result = await _json(response)
            if result["type"] != "create_entry":
                raise RuntimeError(f"{path} ended in {result}")
            return result

        hub = await flow(
            "/api/config/config_entries/flow",
            {"handler": "direct_push"},
            {"next_step_id": "import_folder"},
            {"folder": "dev/apple_push"},
            {},
        )
        await flow(
            "/api/config/config_entries/subentries/flow",
            {"handler": [hub["result"]["entry_id"], "webpush_device"]},
            {
                "name": "Pixel",
                "subscription": json.dumps(pixel.as_json()),
                "admin": False,
            },
        )
        await pair_reference_client(
            session, base, auth, hub["result"]["entry_id"], config
        )
        paired.set()
        # The demo's automations send with direct_push.send, which exists now.
        shutil.copy(
            REPO / "config/demo_automations.yaml", config / "demo_automations.yaml"
        )
        async with session.post(
            f"{base}/api/services/automation/reload", json={}, headers=auth
        ) as response:
            await _json(response)
        print(
            f"Demo set up: log in as {USER} with the password {PASSWORD}.", flush=True
        )


async def pair_reference_client(
    session: aiohttp.ClientSession,
    base: str,
    auth: dict[str, str],
    entry_id: str,
    config: Path,
) -> None:
    """Pair the reference client as an app does, with a code an admin made."""
    async with session.post(
        f"{base}/api/config/config_entries/options/flow",
        json={"handler": entry_id},
        headers=auth,
    ) as response:
        flow_id = (await _json(response))["flow_id"]
    async with session.post(
        f"{base}/api/config/config_entries/options/flow/{flow_id}",
        json={"sound": "default", "allow_local_push_services": True},
        headers=auth,
    ) as response:
        await _json(response)
    # The hub reloads with the new option; the action waits for it.
    async with session.post(
        f"{base}/api/services/direct_push/create_pairing_code?return_response",
        json={},
        headers=auth,
    ) as response:
        code = (await _json(response))["service_response"]["code"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    device = await DirectPushClient(session).pair(
        base, code, CLIENT_NAME, new_endpoint("127.0.0.1", port)
    )
    device.save(config / "dev" / CLIENT_STATE)


async def run_reference_client(dev: Path, paired: asyncio.Event) -> None:
    """Receive as the paired reference client, and print what it shows."""
    state = dev / CLIENT_STATE
    if not state.exists():
        await paired.wait()
    device = Device.load(state)
    async with aiohttp.ClientSession() as session:
        client = DirectPushClient(session)

        async def on_push(push: dict[str, Any]) -> None:
            shown = await react(client, device, push)
            print(f"Reference client → {device.name}: {json.dumps(shown)}", flush=True)
            device.save(state)

        receiver = Receiver(device, on_push)
        await receiver.start("127.0.0.1")
        try:
            await asyncio.Event().wait()
        finally:
            await receiver.stop()


async def main(config: Path, ha_port: int) -> None:
    """Start both servers, set a fresh demo up, and print what the servers receive."""
    dev = config / "dev"
    dev.mkdir(parents=True, exist_ok=True)
    creds = demo_credentials(dev)
    names = DeviceNames(config)
    webpush, subscriptions = await start_webpush(dev)
    try:
        async with ApnsServer(creds) as apns:
            apns.script(GONE_TOKEN, 410, "Unregistered")
            (dev / "env").write_text(
                f"DIRECT_PUSH_DEV_APNS_SERVER=127.0.0.1:{apns.port}\n"
                f"DIRECT_PUSH_DEV_CA_FILE={creds.ca_file}\n",
                encoding="utf-8",
            )
            print(
                f"APNs server on 127.0.0.1:{apns.port}; Web Push receiver on {webpush.origin}"
            )
            print(
                "To try Web Push: Direct Push hub → Add Web Push device, and paste:\n"
                + json.dumps(subscriptions["Tablet"].as_json()),
                flush=True,
            )
            paired = asyncio.Event()
            if os.environ.get("DEMO_SETUP", "auto") != "ui":
                setup = asyncio.create_task(
                    set_up_demo(
                        f"http://127.0.0.1:{ha_port}",
                        config,
                        subscriptions["Pixel"],
                        paired,
                    )
                )
                setup.add_done_callback(_report_setup)
            client = asyncio.create_task(run_reference_client(dev, paired))
            client.add_done_callback(_report_setup)
            shown = [0, 0, 0]
            while True:
                await asyncio.sleep(0.3)
                for push in apns.pushes[shown[0] :]:
                    print(describe_apns(push, names))
                for token, status, reason in apns.rejections[shown[1] :]:
                    who = names.get(token) or f"token …{token[-4:]}"
                    print(f"APNs refused → {who}: {status} {reason}")
                for message in webpush.messages[shown[2] :]:
                    print(describe_webpush(message, names, subscriptions))
                shown = [len(apns.pushes), len(apns.rejections), len(webpush.messages)]
                sys.stdout.flush()

    finally:
        await webpush.stop()


def _report_setup(task: asyncio.Task[None]) -> None:
    """Say why the demo could not be set up: the servers keep running regardless."""
    if not task.cancelled() and (error := task.exception()) is not None:
        print(f"The demo could not be set up: {error!r}", flush=True)


if __name__ == "__main__":
    # The receiver logs why it refuses a push (a VAPID or header problem) at debug.
    logging.basicConfig(format="Web Push receiver: %(message)s", level=logging.WARNING)
    logging.getLogger("tests.webpush_server").setLevel(logging.DEBUG)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            main(
                Path(sys.argv[1] if len(sys.argv) > 1 else ".demo"),
                int(sys.argv[2]) if len(sys.argv) > 2 else 8123,
            )
        )
