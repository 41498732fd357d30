"""A broken push service for the tests: it accepts TCP connections and never answers,
or answers something that is no push service."""

from __future__ import annotations

import asyncio


class _Silent(asyncio.Protocol):
    """Read nothing; write nothing, or one reply and close."""

    def __init__(self, transports: set[asyncio.BaseTransport], reply: bytes) -> None:
        self._transports = transports
        self._reply = reply

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transports.add(transport)
        if self._reply:
            assert isinstance(transport, asyncio.Transport)
            transport.write(self._reply)
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        """Nothing to do: the listener forgets its connections when it stops."""


class Blackhole:
    """Listen on a port that a real server gave up, and hang every client."""

    def __init__(self) -> None:
        """Prepare; start() listens."""
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()

    @property
    def connections(self) -> int:
        """Return the number of connections accepted so far."""
        return len(self._transports)

    async def start(self, port: int, *, reply: bytes = b"") -> None:
        """Accept connections on 127.0.0.1:port; hang them, or send reply and close."""
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Silent(self._transports, reply), host="127.0.0.1", port=port
        )

    async def stop(self) -> None:
        """Stop listening and drop every hung connection."""
        if self._server is None:
            return
        self._server.close()
        for transport in self._transports:
            transport.abort()  # type: ignore[attr-defined]
        self._transports.clear()
        async with asyncio.timeout(5):
            await self._server.wait_closed()
        self._server = None
