"""HTTP clients for Web Push: aiohttp with per-host limits against httpx over HTTP/2.

Run from the repository root: `python -m bench.bench_transport [--quick]`.

Push services speak HTTP/2 and HTTP/1.1 over TLS. Two bare services in another
process (bench/servers.py "transport": 201 after 50 ms, nothing checked, 100
concurrent streams per HTTP/2 connection as Google's and Mozilla's allow) take
N posts of a Web Push-sized body from each client, gathered:

- aiohttp, as Direct Push's sessions were: 100 connections per session;
- aiohttp with 100, and with 1,000, connections per host;
- httpx with HTTP/2, Home Assistant's other HTTP client.

"cold" opens every connection (TLS handshakes included), "warm" reuses them.
CPU is this process's per post: it is what blocks Home Assistant's loop.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
import ssl
from typing import Any

import aiohttp
import httpx

from bench.harness import ServerProcess, clock, machine, median

DELAY = 0.05
BODY = b"\x00" * 300  # an encrypted push of a short message


type Post = Callable[[str], Awaitable[None]]


async def _batch(post: Post, url: str, count: int) -> tuple[float, float]:
    wall, cpu = clock()
    await asyncio.gather(*(post(f"{url}/push/{index}") for index in range(count)))
    wall2, cpu2 = clock()
    return wall2 - wall, (cpu2 - cpu) / count


async def _aiohttp(
    url: str, count: int, context: ssl.SSLContext, **limits: int
) -> list[tuple[float, float]]:
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context, **limits)
    ) as session:

        async def post(target: str) -> None:
            async with session.post(target, data=BODY) as response:
                assert response.status == 201

        return [await _batch(post, url, count) for _ in ("cold", "warm")]


async def _httpx(
    url: str, count: int, context: ssl.SSLContext
) -> list[tuple[float, float]]:
    async with httpx.AsyncClient(http2=True, verify=context) as client:

        async def post(target: str) -> None:
            response = await client.post(target, content=BODY)
            assert response.status_code == 201
            assert response.http_version == "HTTP/2"

        return [await _batch(post, url, count) for _ in ("cold", "warm")]


async def main(quick: bool) -> None:
    """Measure and print the table."""
    rounds = 2 if quick else 3
    print(f"Web Push transport; {machine()}")
    print(
        f"services answer after {DELAY * 1000:.0f} ms; median of {rounds} interleaved"
        " rounds; time for N posts gathered, CPU per post"
    )
    print(f"{'N':>5} {'client':<28} | {'cold':>8} {'CPU':>8} | {'warm':>8} {'CPU':>8}")
    async with ServerProcess("transport") as server:
        await server.command("delay", seconds=DELAY)
        hello = server.hello
        context = ssl.create_default_context(cafile=hello["ca_file"])
        for count in (10, 100, 1000):
            variants: dict[str, Callable[[], Awaitable[list[tuple[float, float]]]]] = {
                "aiohttp, 100 per session": lambda count=count: _aiohttp(
                    hello["http1"], count, context, limit=100
                ),
                "aiohttp, 100 per host": lambda count=count: _aiohttp(
                    hello["http1"], count, context, limit=0, limit_per_host=100
                ),
                "aiohttp, 1000 per host": lambda count=count: _aiohttp(
                    hello["http1"], count, context, limit=0, limit_per_host=1000
                ),
                "httpx, HTTP/2": lambda count=count: _httpx(
                    hello["http2"], count, context
                ),
            }
            results: dict[str, list[Any]] = {name: [] for name in variants}
            names = list(variants)
            for round_ in range(rounds):
                for name in names[round_ % 4 :] + names[: round_ % 4]:
                    results[name].append(await variants[name]())
            for name, runs in results.items():
                cold = median(run[0][0] for run in runs)
                cold_cpu = median(run[0][1] for run in runs)
                warm = median(run[1][0] for run in runs)
                warm_cpu = median(run[1][1] for run in runs)
                print(
                    f"{count:>5} {name:<28} | {cold * 1000:>5.0f} ms {cold_cpu * 1e6:>5.0f} µs"
                    f" | {warm * 1000:>5.0f} ms {warm_cpu * 1e6:>5.0f} µs",
                    flush=True,
                )
        assert await server.received() > 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    asyncio.run(main(parser.parse_args().quick))
