"""Bursts: the event loop's worst stall, and memory, while thousands of pushes go out.

Run from the repository root: `python -m bench.bench_burst [--quick]`.

A 1 ms ticker measures how late the event loop runs it: the worst lateness is
the longest time nothing else in Home Assistant could run. The local APNs
server, in another process, answers after 20 ms. Side by side in one run:

- 1000 direct_push.send calls at once, each to a hub's 10 devices (10,000 pushes;
  a device gets its pushes one after the other, so this takes 1000 round trips);
- one call to 1,000 devices;
- raw aioapns: 10,000 requests gathered on one pool, the floor for this loop.
"""

from __future__ import annotations

import argparse
import asyncio
import gc

from homeassistant.core import HomeAssistant

from bench.bench_fanout import RawPool, _request
from bench.harness import LoopLag, ServerProcess, apns_server, apple_hub, clock, machine
from custom_components.direct_push.const import DOMAIN

RTT = 0.02


async def _calls(hass: HomeAssistant, calls: int) -> None:
    await asyncio.gather(
        *(
            hass.services.async_call(
                DOMAIN, "send", {"message": f"Burst {index}"}, blocking=True
            )
            for index in range(calls)
        )
    )


def _row(name: str, pushes: int, wall: float, lag: LoopLag, before: int) -> None:
    lags = sorted(lag.lags)
    p99 = lags[int(len(lags) * 0.99)] if lags else 0.0
    print(
        f"{name:<34} {pushes:>6} | {wall * 1000:>7.0f} ms | {lag.worst * 1000:>7.1f} ms"
        f" {p99 * 1000:>7.1f} ms {lag.worst_outside_collector * 1000:>9.1f} ms |"
        f" {lag.full_collections:>3} {lag.longest_collection * 1000:>7.1f} ms |"
        f" {(lag.peak_rss - before) / 2**20:>6.1f} MiB",
        flush=True,
    )


async def _dp_burst(
    server: ServerProcess, devices: int, calls: int, label: str
) -> tuple[float, float]:
    async with apple_hub(server, devices) as hass:
        # Warm up: connections open, code paths run once.
        await _calls(hass, 1)
        await server.command("reset")
        gc.collect()  # every burst starts from the same collector state
        with LoopLag() as lag:
            before = lag.peak_rss
            wall, _ = clock()
            await _calls(hass, calls)
            # Calls return by the outbox's deadline; the pushes a device's lane
            # still holds then go on until the server has every one.
            while await server.received() < devices * calls:  # noqa: ASYNC110 (another process)
                await asyncio.sleep(0.05)
            wall = clock()[0] - wall
        assert await server.received() == devices * calls
        _row(label, devices * calls, wall, lag, before)
        return wall, lag.worst


async def _raw_burst(server: ServerProcess, pushes: int) -> tuple[float, float]:
    pool = RawPool(server.hello)
    await pool.send_notification(_request(0))
    await server.command("reset")
    gc.collect()
    with LoopLag() as lag:
        before = lag.peak_rss
        wall, _ = clock()
        results = await asyncio.gather(
            *(pool.send_notification(_request(i % 1000)) for i in range(pushes))
        )
        wall = clock()[0] - wall
    pool.close()
    assert all(result.is_successful for result in results)
    _row("raw aioapns, gathered", pushes, wall, lag, before)
    return wall, lag.worst


async def main(quick: bool) -> None:
    """Measure and print the table."""
    calls = 300 if quick else 1000
    print(f"Bursts; {machine()}; APNs server answers after {RTT * 1000:.0f} ms")
    print(
        f"{'burst':<34} {'pushes':>6} | {'time':>10} | {'worst stall':>10}"
        f" {'p99 tick':>10} {'w/o collector':>12} | {'full GC, longest':>16} |"
        f" {'memory':>10}"
    )
    async with apns_server(raw_client=True) as server:
        await server.command("delay", seconds=RTT)
        _, calls_stall = await _dp_burst(
            server, 10, calls, f"{calls} calls x 10 devices"
        )
        _, fanout_stall = await _dp_burst(server, 1000, 1, "1 call x 1,000 devices")
        _, raw_stall = await _raw_burst(server, calls * 10)
    print(f"worst stall, calls burst / raw: {calls_stall / raw_stall:.1f}x")
    print(f"worst stall, one 1,000-device call / raw: {fanout_stall / raw_stall:.1f}x")
    print(
        "w/o collector: the worst stall less Python's collector pauses within it;"
        " full GC: full collections during the burst (each goes through every object"
        " of Home Assistant) and the longest pause of any collection"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="300 calls, not 1000")
    asyncio.run(main(parser.parse_args().quick))
