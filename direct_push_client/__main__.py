"""The reference client's command line: python -m direct_push_client COMMAND.

  pair --server URL --code CODE --name NAME   pair, then receive (see listen)
  listen                                      print each push as a line of JSON
  poll                                        print the messages kept for us
  answer MESSAGE_ID ACTION [--text TEXT]      press a button of a message
  renew                                       renew the lease
  unregister                                  remove this device from Home Assistant

The state file (--state, default direct_push_client.json) holds the device's
secret and private key.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
import socket
import sys
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientSession

from .client import ApiError, Device, DirectPushClient, Receiver, new_endpoint, react


def _print(item: Any) -> None:
    print(json.dumps(item, ensure_ascii=False), flush=True)  # noqa: T201


def _local_address(server: str) -> str:
    """Return our address on the network that leads to Home Assistant."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((urlsplit(server).hostname or "127.0.0.1", 9))
        address: str = probe.getsockname()[0]
        return address


async def _listen(client: DirectPushClient, device: Device, state: Path) -> None:
    """Receive until Home Assistant says the device was unregistered."""
    done = asyncio.Event()

    async def on_push(push: dict[str, Any]) -> None:
        _print(await react(client, device, push))
        await asyncio.to_thread(device.save, state)  # a renewal moved the lease
        if (push.get("data") or {}).get("reason") == "unregistered":
            done.set()

    receiver = Receiver(device, on_push)
    await receiver.start()
    try:
        await done.wait()
    finally:
        await receiver.stop()


async def _run(args: argparse.Namespace) -> None:
    state = Path(args.state)
    async with ClientSession() as session:
        client = DirectPushClient(session)
        if args.command == "pair":
            host = args.host or _local_address(args.server)
            device = await client.pair(
                args.server,
                args.code,
                args.name,
                new_endpoint(host, args.port),
                private=args.private,
            )
            await asyncio.to_thread(device.save, state)
            _print({"paired": device.name, "lease_expires_at": device.lease_expires_at})
            await _listen(client, device, state)
            return
        device = await asyncio.to_thread(Device.load, state)
        if args.command == "listen":
            await _listen(client, device, state)
        elif args.command == "poll":
            for message in await client.messages(device):
                _print(message)
        elif args.command == "answer":
            await client.answer(device, args.message_id, args.action, args.text)
        elif args.command == "renew":
            _print({"lease_expires_at": await client.renew(device)})
            await asyncio.to_thread(device.save, state)
        elif args.command == "unregister":
            await client.unregister(device)
            await asyncio.to_thread(state.unlink)


def parser() -> argparse.ArgumentParser:
    """Return the command line's parser."""
    main = argparse.ArgumentParser(prog="python -m direct_push_client")
    main.add_argument("--state", default="direct_push_client.json")
    commands = main.add_subparsers(dest="command", required=True)
    pair = commands.add_parser("pair", help="pair with a code, then receive")
    pair.add_argument("--server", required=True, help="Home Assistant's URL")
    pair.add_argument("--code", required=True)
    pair.add_argument("--name", required=True)
    pair.add_argument("--host", help="our address as Home Assistant reaches it")
    pair.add_argument("--port", type=int, default=8765)
    pair.add_argument("--private", action="store_true", help="wake-up pushes only")
    commands.add_parser("listen", help="receive and print pushes")
    commands.add_parser("poll", help="print the messages kept for this device")
    answer = commands.add_parser("answer", help="press a button")
    answer.add_argument("message_id")
    answer.add_argument("action")
    answer.add_argument("--text")
    commands.add_parser("renew", help="renew the lease")
    commands.add_parser("unregister", help="remove this device")
    return main


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors from Home Assistant are printed, not raised."""
    args = parser().parse_args(argv)
    try:
        asyncio.run(_run(args))
    except ApiError as err:
        print(f"Home Assistant refused: {err}", file=sys.stderr)  # noqa: T201
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
