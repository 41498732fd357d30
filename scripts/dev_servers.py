"""Local stand-ins for Apple's push service and a Web Push distributor, for scripts/develop.

The same servers the tests use. This writes, under CONFIG/dev/:
- AuthKey.p8 and the test CA, and direct_push.yaml, which configuration.yaml includes;
- env: the development-only variables that point Direct Push at the local APNs server.
Then it prints every push the servers receive, until it is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.apns_server import ApnsServer, ApnsTestCredentials, make_credentials
from tests.webpush_server import WebPushServer

# Fixed tokens: each start updates the same demo devices instead of adding new ones.
DEMO_DEVICES = [
    {"name": "Alice's iPhone", "token": "a1" * 32, "admin": True},
    {"name": "Bob's iPhone", "token": "b2" * 32, "admin": False},
]


def write_config(dev: Path, creds: ApnsTestCredentials, apns_port: int) -> None:
    """Write the development key, direct_push.yaml and the env file."""
    (dev / "AuthKey.p8").write_text(creds.key_pem, encoding="utf-8")
    lines = [
        "# Written by scripts/dev_servers.py at every start: a development key.",
        "key_file: dev/AuthKey.p8",
        f"key_id: {creds.key_id}",
        f"team_id: {creds.team_id}",
        f"topic: {creds.topic}",
        "environment: production",
        "devices:",
    ]
    for device in DEMO_DEVICES:
        lines += [
            f'  - name: "{device["name"]}"',
            f"    token: {device['token']}",
            f"    admin: {str(device['admin']).lower()}",
        ]
    (dev / "direct_push.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (dev / "env").write_text(
        f"DIRECT_PUSH_DEV_APNS_SERVER=127.0.0.1:{apns_port}\n"
        f"DIRECT_PUSH_DEV_CA_FILE={creds.ca_file}\n",
        encoding="utf-8",
    )


async def main(config: Path) -> None:
    """Start both servers and print what they receive."""
    dev = config / "dev"
    dev.mkdir(parents=True, exist_ok=True)
    creds = make_credentials(dev)
    names = {device["token"]: device["name"] for device in DEMO_DEVICES}
    async with ApnsServer(creds) as apns, WebPushServer() as webpush:
        # Any VAPID key may sign for this subscription: the hub makes its own.
        pixel = webpush.subscribe("Pixel (demo)")
        write_config(dev, creds, apns.port)
        print(
            f"APNs server on 127.0.0.1:{apns.port}; Web Push receiver on {webpush.origin}"
        )
        print(
            "To try Web Push: Direct Push hub → Add Web Push device, and paste:\n"
            + json.dumps(pixel.as_json()),
            flush=True,
        )
        shown_apns = shown_webpush = 0
        while True:
            await asyncio.sleep(0.5)
            for push in apns.pushes[shown_apns:]:
                who = names.get(push.token, "probe or unknown device")
                print(f"APNs → {who}: {json.dumps(push.payload, ensure_ascii=False)}")
            for message in webpush.messages[shown_webpush:]:
                print(f"Web Push → Pixel (demo): {message.plaintext.decode()}")
            shown_apns, shown_webpush = len(apns.pushes), len(webpush.messages)
            sys.stdout.flush()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "config")))
