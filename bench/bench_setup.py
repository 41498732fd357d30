"""Set-up and reload time of a hub, with 10 and with 1,000 devices.

Run from the repository root: `python -m bench.bench_setup [--quick]`.

First Home Assistant adds the hub (its devices and notify entities are
registered), then stops, writing its registries and config entries to disk.
A second Home Assistant on the same folder loads them, then times the hub's
set-up and its reloads, with the event loop's worst stall meanwhile, and that
stall less the pauses of Python's garbage collector within it (a reload makes
and drops thousands of entities: now and then a full collection follows).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import tempfile

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant

from bench.harness import (
    LoopLag,
    ServerProcess,
    add_hub,
    apns_devices,
    clock,
    home_assistant,
    hub_data,
    machine,
    median,
)
from custom_components.direct_push.const import DOMAIN

Timing = tuple[float, float, float]
"""Wall time, worst stall, worst stall outside the collector's pauses."""


async def _timed(hass: HomeAssistant, action: str, entry_id: str) -> Timing:
    with LoopLag() as lag:
        wall, _ = clock()
        if action == "setup":
            assert await hass.config_entries.async_setup(entry_id)
        else:
            assert await hass.config_entries.async_reload(entry_id)
        await hass.async_block_till_done()
        elapsed = clock()[0] - wall
    entry = hass.config_entries.async_get_entry(entry_id)
    assert entry is not None
    assert entry.state is ConfigEntryState.LOADED
    return elapsed, lag.worst, lag.worst_outside_collector


async def _measure(
    hello: dict[str, object], devices: int, reloads: int
) -> dict[str, Timing]:
    results: dict[str, Timing] = {}
    with tempfile.TemporaryDirectory() as folder:
        async with home_assistant(Path(folder)) as hass:
            with LoopLag() as lag:
                wall, _ = clock()
                entry = await add_hub(hass, hub_data(hello), apns_devices(devices))
                results["first set-up (registers all)"] = (
                    clock()[0] - wall,
                    lag.worst,
                    lag.worst_outside_collector,
                )
            entry_id = entry.entry_id
        # The registries and the entry are on disk now.
        async with home_assistant(Path(folder)) as hass:
            [entry] = hass.config_entries.async_entries(DOMAIN)
            assert len(entry.subentries) == devices
            results["set-up at start"] = await _timed(hass, "setup", entry_id)
            timings = [await _timed(hass, "reload", entry_id) for _ in range(reloads)]
            results["reload"] = (
                median(t for t, _, _ in timings),
                max(worst for _, worst, _ in timings),
                max(outside for _, _, outside in timings),
            )
    return results


async def main(quick: bool) -> None:
    """Measure and print the table."""
    reloads = 3 if quick else 7
    print(f"Hub set-up and reload; {machine()}")
    print(f"reload: median of {reloads}; stall: the event loop's worst lateness")
    print(
        f"{'devices':>7} {'phase':<30} | {'time':>9} {'stall':>9} {'w/o collector':>14}"
    )
    times: dict[tuple[int, str], float] = {}
    async with ServerProcess("apns") as server:
        for devices in (10, 1000):
            results = await _measure(server.hello, devices, reloads)
            for phase, (elapsed, worst, outside) in results.items():
                times[devices, phase] = elapsed
                print(
                    f"{devices:>7} {phase:<30} | {elapsed * 1000:>6.0f} ms"
                    f" {worst * 1000:>6.0f} ms {outside * 1000:>11.0f} ms",
                    flush=True,
                )
    for phase in ("set-up at start", "reload"):
        per_device = (times[1000, phase] - times[10, phase]) / 990
        print(f"{phase}: {per_device * 1e6:.0f} µs per extra device")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer reloads")
    asyncio.run(main(parser.parse_args().quick))
