"""A local DNS server for the tests: it knows the names it is told, and no other.

Real DNS over UDP on 127.0.0.1 (RFC 1035), just enough for a resolver's A and
AAAA queries: a known name gets an A record, any other name NXDOMAIN.
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from types import TracebackType
from typing import Final, Self

_A: Final = 1
_NXDOMAIN: Final = 3
_HEADER: Final = struct.Struct("!HHHHHH")


def _question_end(packet: bytes) -> int:
    """Return the offset after the first question's name, type and class."""
    offset = _HEADER.size
    while (length := packet[offset]) != 0:
        offset += 1 + length
    return offset + 5


def _name(packet: bytes) -> str:
    labels, offset = [], _HEADER.size
    while (length := packet[offset]) != 0:
        labels.append(packet[offset + 1 : offset + 1 + length].decode())
        offset += 1 + length
    return ".".join(labels).lower()


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self._transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        assert self._transport is not None
        self._transport.sendto(self._server.answer(data), addr)


class DnsServer:
    """Answer A queries for the names in `records`; NXDOMAIN for the rest."""

    def __init__(self) -> None:
        """Know no names yet."""
        self.records: dict[str, str] = {}
        self.queries: list[str] = []
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None

    def answer(self, query: bytes) -> bytes:
        """Return the response to one query packet."""
        query_id, flags, *_ = _HEADER.unpack_from(query)
        end = _question_end(query)
        name = _name(query)
        qtype = struct.unpack_from("!H", query, end - 4)[0]
        self.queries.append(name)
        address = self.records.get(name)
        # Response, the query's opcode and recursion desired, recursion available.
        reply_flags = 0x8000 | (flags & 0x7900) | 0x0080
        if address is None:
            header = _HEADER.pack(query_id, reply_flags | _NXDOMAIN, 1, 0, 0, 0)
            return header + query[_HEADER.size : end]
        if qtype != _A:
            # The name exists, with no record of this type (AAAA, say).
            return (
                _HEADER.pack(query_id, reply_flags, 1, 0, 0, 0)
                + query[_HEADER.size : end]
            )
        record = (
            b"\xc0\x0c"  # a pointer to the question's name
            + struct.pack("!HHIH", _A, 1, 60, 4)
            + ipaddress.IPv4Address(address).packed
        )
        header = _HEADER.pack(query_id, reply_flags, 1, 1, 0, 0)
        return header + query[_HEADER.size : end] + record

    async def __aenter__(self) -> Self:
        """Listen on a free UDP port of 127.0.0.1."""
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=("127.0.0.1", 0)
        )
        assert isinstance(transport, asyncio.DatagramTransport)
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop listening."""
        if self._transport is not None:
            self._transport.close()
