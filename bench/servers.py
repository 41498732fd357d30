"""The test push servers in a process of their own, for the benchmarks.

`python -m bench.servers apns|webpush|transport [--tls]` starts
tests/apns_server.py's APNs server, tests/webpush_server.py's Web Push
receiver, or two bare push services (below); prints one JSON line (where to
reach it), then answers JSON commands, one per line on stdin:

- {"cmd": "delay", "seconds": s}: answer each push after s seconds;
- {"cmd": "subscribe", "count": n}: Web Push only, n new subscriptions;
- {"cmd": "stats"}: how many pushes were received so far (a benchmark polls it:
  its answer stays small, so that polling adds no work of its own to the
  loop it measures);
- {"cmd": "arrivals"}: APNs only, each push's arrival time (time.monotonic(),
  which on Linux is one clock for every process) and its message;
- {"cmd": "reset"}: forget what was received;
- {"cmd": "token_updates"}: APNs only, take a new provider token at any
  time (two clients with one key: Direct Push and raw aioapns).

A benchmark talks to it through bench.harness.ServerProcess.

"transport" serves POST /push/<id> with 201 after the delay, nothing checked,
over TLS: HTTP/1.1 (aiohttp) on one port, HTTP/2 (h2, as tests/apns_server.py
frames it) on another, each allowing 100 concurrent streams as push services
do; it compares HTTP clients, not push handling.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import ssl
import sys
import tempfile
import time
from typing import Any, override

from aiohttp import web

from tests import apns_server
from tests.apns_server import (
    ApnsServer,
    ApnsTestCredentials,
    _ApnsConnection,
    _Request,
    make_credentials,
)
from tests.webpush_server import WebPushServer


class TimedApnsServer(ApnsServer):
    """Notes when each push arrived, and its message."""

    arrivals: list[tuple[float, str]]

    @override
    async def _serve(self, connection: _ApnsConnection, request: _Request) -> None:
        arrived = time.monotonic()
        pushes = len(self.pushes)
        await super()._serve(connection, request)
        if len(self.pushes) > pushes:
            alert = self.pushes[-1].payload.get("aps", {}).get("alert", {})
            body = alert.get("body", "") if isinstance(alert, dict) else str(alert)
            self.arrivals.append((arrived, body))


class TlsWebPushServer(WebPushServer):
    """The Web Push receiver over TLS (HTTP/1.1), as push services are reached."""

    def __init__(self, context: ssl.SSLContext | None) -> None:
        """Serve with this TLS context, or plain HTTP without one."""
        super().__init__()
        self._context = context

    @property
    @override
    def origin(self) -> str:
        scheme = "https" if self._context else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @override
    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/push/{sub_id}", self._handle_push)
        app.router.add_route("*", "/{tail:.*}", self._handle_other)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(
            runner, "127.0.0.1", 0, ssl_context=self._context, backlog=4096
        ).start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])


class BareServices:
    """201 after the delay, over HTTP/1.1 and over HTTP/2; counts what it answered."""

    def __init__(self, credentials: ApnsTestCredentials) -> None:
        self.credentials = credentials
        self.response_delay = 0.0
        self.received = 0
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None

    def _context(self, alpn: str) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(
            self.credentials.server_cert_file, self.credentials.server_key_file
        )
        context.set_alpn_protocols([alpn])
        return context

    async def start(self) -> dict[str, Any]:
        async def handle(request: web.Request) -> web.Response:
            await request.read()
            await asyncio.sleep(self.response_delay)
            self.received += 1
            return web.Response(status=201)

        async def serve(connection: _ApnsConnection, request: _Request) -> None:
            await asyncio.sleep(self.response_delay)
            self.received += 1
            connection.respond(request.stream_id, [(":status", "201")], b"")

        app = web.Application()
        app.router.add_post("/push/{sub_id}", handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(
            self._runner,
            "127.0.0.1",
            0,
            ssl_context=self._context("http/1.1"),
            backlog=4096,
        ).start()
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _ApnsConnection(lambda _: None, lambda _: None, serve),
            "127.0.0.1",
            0,
            ssl=self._context("h2"),
            backlog=4096,
        )
        return {
            "ca_file": str(self.credentials.ca_file),
            "http1": f"https://127.0.0.1:{self._runner.addresses[0][1]}",
            "http2": f"https://127.0.0.1:{self._server.sockets[0].getsockname()[1]}",
        }

    async def stop(self) -> None:
        assert self._runner is not None
        assert self._server is not None
        await self._runner.cleanup()
        self._server.close()


async def _serve_apns(folder: Path) -> tuple[TimedApnsServer, dict[str, Any]]:
    credentials = make_credentials(folder)
    server = TimedApnsServer(credentials)
    server.arrivals = []
    await server.start()
    return server, {
        "port": server.port,
        "ca_file": str(credentials.ca_file),
        "key_pem": credentials.key_pem,
        "key_id": credentials.key_id,
        "team_id": credentials.team_id,
        "topic": credentials.topic,
    }


async def _serve_webpush(
    folder: Path, tls: bool
) -> tuple[TlsWebPushServer, dict[str, Any]]:
    context = None
    hello: dict[str, Any] = {}
    if tls:
        credentials = make_credentials(folder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(
            credentials.server_cert_file, credentials.server_key_file
        )
        hello["ca_file"] = str(credentials.ca_file)
    server = TlsWebPushServer(context)
    await server.start()
    hello["origin"] = server.origin
    return server, hello


type _Server = TimedApnsServer | TlsWebPushServer | BareServices


def _answer(server: _Server, command: dict[str, Any]) -> Any:
    match command["cmd"]:
        case "delay":
            server.response_delay = float(command["seconds"])
            return None
        case "subscribe":
            assert isinstance(server, WebPushServer)
            return [
                server.subscribe(f"Browser {index}").as_json()
                for index in range(int(command["count"]))
            ]
        case "stats":
            if isinstance(server, BareServices):
                return {"received": server.received}
            if isinstance(server, TimedApnsServer):
                return {"received": len(server.pushes)}
            return {
                "received": len(server.messages),
                "rejected": len(server.rejections),
            }
        case "arrivals":
            assert isinstance(server, TimedApnsServer)
            return server.arrivals
        case "token_updates":
            assert isinstance(server, ApnsServer)
            server.token_refresh_interval = 0
            return None
        case "reset":
            if isinstance(server, BareServices):
                server.received = 0
            elif isinstance(server, TimedApnsServer):
                server.pushes.clear()
                server.arrivals.clear()
            else:
                server.messages.clear()
                server.rejections.clear()
            return None
    raise ValueError(command)


async def main(kind: str, tls: bool) -> None:
    """Serve until stdin closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    with tempfile.TemporaryDirectory() as folder:
        server: _Server
        if kind == "apns":
            server, hello = await _serve_apns(Path(folder))
        elif kind == "transport":
            # As push services allow (Google's and Mozilla's front ends).
            apns_server.MAX_CONCURRENT_STREAMS = 100
            server = BareServices(make_credentials(Path(folder)))
            hello = await server.start()
        else:
            server, hello = await _serve_webpush(Path(folder), tls)
        print(json.dumps(hello), flush=True)
        while line := await reader.readline():
            print(json.dumps(_answer(server, json.loads(line))), flush=True)
        await server.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], "--tls" in sys.argv[2:]))
