"""Latency from a state change to the push on the wire, through an automation.

Run from the repository root: `python -m bench.bench_latency [--quick]`.

A real Home Assistant with an automation: when sensor.bench changes, it calls
direct_push.send for one device by name (or notify.send_message on that
device's own entity). One event at a time, with 10 and with 1,000 devices
configured, two latencies from the moment the state was set:

- wire: the push's last HTTP/2 frame handed to the connection (h2's
  send_data, which aioapns writes out at once);
- received: when the local APNs server, in another process, got it
  (time.monotonic() is one clock for both processes).

The machine is shared: the received figure includes waiting for the server
process to be scheduled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from h2.connection import H2Connection
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

from bench.harness import (
    ServerProcess,
    apns_server,
    apple_hub,
    machine,
    percentile,
    setup_http,
)
from custom_components.direct_push.const import DOMAIN

TRIGGER = "sensor.bench"
TARGET = "Phone 7"


def _automations(target_entity: str) -> list[dict[str, Any]]:
    trigger = {"trigger": "state", "entity_id": TRIGGER}
    return [
        {
            "id": "action",
            "mode": "parallel",
            "triggers": [{**trigger, "to": None}],
            "conditions": [
                {
                    "condition": "template",
                    "value_template": "{{ 'a' in trigger.to_state.state }}",
                }
            ],
            "actions": [
                {
                    "action": f"{DOMAIN}.send",
                    "data": {
                        "target": TARGET,
                        "message": "{{ trigger.to_state.state }}",
                    },
                }
            ],
        },
        {
            "id": "entity",
            "mode": "parallel",
            "triggers": [{**trigger, "to": None}],
            "conditions": [
                {
                    "condition": "template",
                    "value_template": "{{ 'e' in trigger.to_state.state }}",
                }
            ],
            "actions": [
                {
                    "action": "notify.send_message",
                    "target": {"entity_id": target_entity},
                    "data": {"message": "{{ trigger.to_state.state }}"},
                }
            ],
        },
    ]


class WireClock:
    """Notes when each push's last frame is framed for the connection."""

    def __init__(self) -> None:
        self.framed: list[tuple[float, bytes]] = []
        self._send_data = H2Connection.send_data

    def __enter__(self) -> WireClock:
        framed, send_data = self.framed, self._send_data

        def timed(
            connection: H2Connection,
            stream_id: int,
            data: bytes,
            end_stream: bool = False,
            pad_length: Any = None,
        ) -> None:
            send_data(connection, stream_id, data, end_stream, pad_length)
            if end_stream:
                framed.append((time.monotonic(), data))

        H2Connection.send_data = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        H2Connection.send_data = self._send_data  # type: ignore[method-assign]

    def by_message(self) -> dict[str, float]:
        return {
            json.loads(data)["aps"]["alert"]["body"]: at for at, data in self.framed
        }


async def _events(
    hass: HomeAssistant, server: ServerProcess, kind: str, count: int
) -> tuple[list[float], list[float]]:
    """Set the sensor count times, one push at a time; return the latencies."""
    await server.command("reset")
    sent: dict[str, float] = {}
    wire = WireClock()
    with wire:
        for index in range(count):
            value = f"{kind}{index}"
            sent[value] = time.monotonic()
            hass.states.async_set(TRIGGER, value)
            await hass.async_block_till_done()
            # Let the loop idle a little, as between real events.
            await asyncio.sleep(0.002)
    arrivals = {body: at for at, body in await server.command("arrivals")}
    framed = wire.by_message()
    assert set(arrivals) == set(sent) == set(framed), "every push arrived"
    return (
        [framed[value] - sent[value] for value in sent],
        [arrivals[value] - sent[value] for value in sent],
    )


async def _measure(
    devices: int, events: int
) -> dict[str, tuple[list[float], list[float]]]:
    async with apns_server() as server, apple_hub(server, devices) as hass:
        await setup_http(hass)
        [entity] = [
            state.entity_id
            for state in hass.states.async_all("notify")
            if state.attributes.get("friendly_name") == TARGET
        ]
        assert await async_setup_component(
            hass, "automation", {"automation": _automations(entity)}
        )
        await hass.async_block_till_done()
        # Warm up: connections open, templates compiled.
        await _events(hass, server, "a", 20)
        await _events(hass, server, "e", 20)
        return {
            "direct_push.send": await _events(hass, server, "a", events),
            "device's notify entity": await _events(hass, server, "e", events),
        }


async def main(quick: bool) -> None:
    """Measure and print the table."""
    events = 200 if quick else 500
    print(f"State change → automation → push received; {machine()}")
    print(f"{events} events each, one at a time; latency in ms")
    print(
        f"{'devices':>7} {'path':<24} | {'wire p50':>8} {'p90':>6} {'p99':>6} {'max':>6}"
        f" | {'received p50':>12} {'p99':>6}"
    )
    p99: dict[tuple[int, str], float] = {}
    for devices in (10, 1000):
        results = await _measure(devices, events)
        for path, (wire, received) in results.items():
            p99[devices, path] = percentile(wire, 0.99)
            print(
                f"{devices:>7} {path:<24} |"
                f" {percentile(wire, 0.5) * 1000:>8.2f}"
                f" {percentile(wire, 0.9) * 1000:>6.2f}"
                f" {p99[devices, path] * 1000:>6.2f}"
                f" {max(wire) * 1000:>6.2f} |"
                f" {percentile(received, 0.5) * 1000:>12.2f}"
                f" {percentile(received, 0.99) * 1000:>6.2f}",
                flush=True,
            )
    for path in ("direct_push.send", "device's notify entity"):
        ratio = p99[1000, path] / p99[10, path]
        print(f"wire p99 with 1,000 devices / with 10, {path}: {ratio:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200 events, not 500")
    asyncio.run(main(parser.parse_args().quick))
