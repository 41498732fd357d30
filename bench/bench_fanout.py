"""Fan-out to Apple devices: Direct Push against raw aioapns, gathered and one after another.

Run from the repository root: `python -m bench.bench_fanout [--quick]`.

One Home Assistant with a hub of 1,000 Apple devices; the local APNs server
(tests/apns_server.py) runs in another process and answers each push after the
round trip time (RTT). For each N, Direct Push's action sends one message to N
devices named in its target list; raw aioapns sends the same N pushes on one
connection pool, gathered, and one after another. Each figure is the median of
interleaved rounds on warm connections. CPU is this process's, per push.

The same pushes: Direct Push's payload (with the hub's default sound) and
headers (apns-expiration from its default TTL, apns-priority), each request
made within the timed part, as a caller of aioapns makes it. A second raw
column sends aioapns's bare request (no sound, expiration or priority) made
before the clock starts: the baseline of earlier runs.
"""

from __future__ import annotations

import argparse
import asyncio
from functools import partial
import ssl
from typing import Any

from aioapns.common import NotificationRequest, PushType
from aioapns.connection import (
    APNsBaseClientProtocol,
    APNsBaseConnectionPool,
    JWTAuthorizationHeaderProvider,
)
from homeassistant.core import HomeAssistant

from bench.harness import (
    apns_server,
    apple_hub,
    clock,
    interleaved,
    machine,
    median,
    send,
)
from custom_components.direct_push.backend import Delivery, Device, Outcome
from custom_components.direct_push.const import DOMAIN
from custom_components.direct_push.message import Message

DEVICES = 1000
MESSAGE = "Washing machine finished"
TITLE = "Laundry"
# What Direct Push sends for the message above, with a hub's default options.
SAME_PAYLOAD = {"aps": {"alert": {"body": MESSAGE, "title": TITLE}, "sound": "default"}}
SAME_TTL = 86400


class RawPool(APNsBaseConnectionPool):
    """aioapns's own pool and JWT provider, pointed at the local server."""

    def __init__(self, hello: dict[str, Any]) -> None:
        super().__init__(topic=hello["topic"], max_connection_attempts=1)
        self._hello = hello
        self._auth = JWTAuthorizationHeaderProvider(
            hello["key_pem"], hello["key_id"], hello["team_id"]
        )
        self.ssl_context = ssl.create_default_context(cafile=hello["ca_file"])
        self.ssl_context.set_alpn_protocols(["h2"])

    async def create_connection(self) -> APNsBaseClientProtocol:
        _, protocol = await self.loop.create_connection(
            partial(
                self.protocol_class,
                self._hello["topic"],
                self.loop,
                self.discard_connection,  # type: ignore[arg-type]
                self._auth,
            ),
            host="127.0.0.1",
            port=self._hello["port"],
            ssl=self.ssl_context,
            server_hostname=self.protocol_class.APNS_SERVER,
        )
        return protocol


def _request(index: int) -> NotificationRequest:
    """The push Direct Push sends to the index-th device."""
    return NotificationRequest(
        device_token=f"{index:064x}",
        message=SAME_PAYLOAD,
        time_to_live=SAME_TTL,
        priority=10,
        push_type=PushType.ALERT,
    )


def _bare_request(index: int) -> NotificationRequest:
    return NotificationRequest(
        device_token=f"{index:064x}",
        message={"aps": {"alert": {"title": TITLE, "body": MESSAGE}}},
        push_type=PushType.ALERT,
    )


async def _raw_gathered(pool: RawPool, count: int) -> tuple[float, float]:
    wall, cpu = clock()
    results = await asyncio.gather(
        *(pool.send_notification(_request(index)) for index in range(count))
    )
    wall2, cpu2 = clock()
    assert all(result.is_successful for result in results), results[0].description
    return wall2 - wall, cpu2 - cpu


async def _raw_bare(pool: RawPool, count: int) -> tuple[float, float]:
    requests = [_bare_request(index) for index in range(count)]
    wall, cpu = clock()
    results = await asyncio.gather(*(pool.send_notification(r) for r in requests))
    wall2, cpu2 = clock()
    assert all(result.is_successful for result in results), results[0].description
    return wall2 - wall, cpu2 - cpu


async def _raw_sequential(pool: RawPool, count: int) -> float:
    wall, _ = clock()
    for index in range(count):
        assert (await pool.send_notification(_request(index))).is_successful
    return clock()[0] - wall


async def _direct_push(hass: HomeAssistant, count: int) -> tuple[float, float]:
    target = [f"Phone {index}" for index in range(count)]
    return await send(hass, message=MESSAGE, title=TITLE, target=target)


async def _row(
    hass: HomeAssistant,
    pool: RawPool,
    count: int,
    rtt: float,
    *,
    rounds: int,
    quick: bool,
) -> None:
    """Measure one N at one RTT; print its row."""
    cpu: dict[str, list[float]] = {"dp": [], "raw": [], "bare": []}

    async def dp() -> float:
        wall, used = await _direct_push(hass, count)
        cpu["dp"].append(used / count)
        return wall

    async def raw() -> float:
        wall, used = await _raw_gathered(pool, count)
        cpu["raw"].append(used / count)
        return wall

    async def bare() -> float:
        wall, used = await _raw_bare(pool, count)
        cpu["bare"].append(used / count)
        return wall

    times = await interleaved(rounds, {"dp": dp, "raw": raw, "bare": bare})
    # Once only, and not at all when quick and long: it is the slow reference.
    sequential = (
        await _raw_sequential(pool, count)
        if not (quick and count * rtt > 5)
        else float("nan")
    )
    dp_time, raw_time = median(times["dp"]), median(times["raw"])
    dp_cpu, raw_cpu = median(cpu["dp"]), median(cpu["raw"])
    bare_time, bare_cpu = median(times["bare"]), median(cpu["bare"])
    print(
        f"{count:>5} {rtt * 1000:>4.0f}ms |"
        f" {dp_time * 1000:>9.1f} ms {raw_time * 1000:>10.1f} ms"
        f" {sequential * 1000:>8.1f} ms |"
        f" {raw_time / dp_time:>6.2f}x {bare_time / dp_time:>5.2f}x |"
        f" {dp_cpu * 1000:>8.3f} ms {raw_cpu * 1000:>5.3f} ms"
        f" {dp_cpu / raw_cpu:>5.2f}x {dp_cpu / bare_cpu:>5.2f}x",
        flush=True,
    )


async def _own_work(hass: HomeAssistant, rounds: int) -> float:
    """Return Direct Push's own CPU per push: its backend answers at once, sending nothing.

    What is left is routing, the outbox, pacing and the action's answer.
    """
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    backend = next(iter(entry.runtime_data.backends.values()))

    async def answer_at_once(device: Device, message: Message) -> Delivery:
        return Delivery(Outcome.DELIVERED, status=200)

    send_for_real = backend.async_send
    backend.async_send = answer_at_once  # type: ignore[method-assign]
    try:
        used = [(await _direct_push(hass, DEVICES))[1] for _ in range(rounds)]
    finally:
        backend.async_send = send_for_real  # type: ignore[method-assign]
    return median(used) / DEVICES


async def main(quick: bool) -> None:
    """Measure and print the table."""
    rounds = 3 if quick else 5
    print(f"Fan-out to Apple devices; {machine()}")
    print(f"median of {rounds} interleaved rounds; warm connections")
    print(
        f"{'N':>5} {'RTT':>6} | {'Direct Push':>12} {'raw gathered':>13} {'sequential':>11}"
        f" | {'speed vs raw, bare':>18} | {'CPU/push DP':>11} {'raw':>8}"
        f" {'ratio':>6} {'bare':>5}"
    )
    async with (
        apns_server(raw_client=True) as server,
        apple_hub(server, DEVICES) as hass,
    ):
        pool = RawPool(server.hello)
        for rtt in (0.0, 0.02):
            await server.command("delay", seconds=rtt)
            # Warm both up: connections open, code paths run once.
            await _direct_push(hass, 100)
            await _raw_gathered(pool, 100)
            await _raw_bare(pool, 100)
            for count in (1, 10, 100, 1000):
                await _row(hass, pool, count, rtt, rounds=rounds, quick=quick)
        own = await _own_work(hass, rounds)
        pool.close()
    print(
        "speed vs raw: raw gathered time / Direct Push time (1.00x: as fast as raw);"
        " ratio: Direct Push's CPU / raw's; bare: the same against raw's bare request"
    )
    print(
        f"Direct Push's own CPU per push, {DEVICES:,} devices, a backend that answers"
        f" at once: {own * 1e6:.0f} µs (routing, outbox, pacing, the action's answer)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    asyncio.run(main(parser.parse_args().quick))
