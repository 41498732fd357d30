"""Web Push to many browsers: Direct Push against Home Assistant's own html5 integration.

Run from the repository root: `python -m bench.bench_webpush [--quick] [--http]`.

One Home Assistant runs both: html5, set up through its config flow with its
registrations in html5_push_registrations.conf, and a Direct Push hub with
as many Web Push devices. The local Web Push receiver (tests/webpush_server.py,
which checks VAPID and decrypts every push) runs in another process over TLS,
as push services are reached, and answers each push after 50 ms. For each N,
html5's notify entities get one notify.send_message, and Direct Push one
direct_push.send naming N devices. Medians of interleaved rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
import tempfile
from typing import Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import ssl as ssl_util

from bench.harness import (
    ServerProcess,
    add_hub,
    clock,
    home_assistant,
    hub_data,
    interleaved,
    machine,
    median,
    send,
    setup_http,
    webpush_devices,
)

DELAY = 0.05
MESSAGE = "Front door opened"


def _registrations(subscriptions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        f"browser_{index}": {
            "subscription": {**sub, "expirationTime": None},
            "browser": "chrome",
        }
        for index, sub in enumerate(subscriptions)
    }


def _trust(ca_file: str) -> None:
    """Have Home Assistant's client TLS contexts, which both use, trust the test CA."""
    for cipher in ssl_util.SSLCipherList:
        for alpn in (
            ssl_util.SSL_ALPN_NONE,
            ssl_util.SSL_ALPN_HTTP11,
            ssl_util.SSL_ALPN_HTTP11_HTTP2,
        ):
            ssl_util.client_context(cipher, alpn).load_verify_locations(ca_file)


async def _setup_html5(hass: HomeAssistant, count: int) -> list[str]:
    """Set html5 up as a user does; return its notify entities, in order."""
    result = await hass.config_entries.flow.async_init(
        "html5", context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"vapid_email": "bench@example.com"}
    )
    await hass.async_block_till_done()
    entry = result["result"]
    registry = er.async_get(hass)
    by_target = {
        entity.unique_id.removeprefix(f"{entry.entry_id}_").removesuffix("_device"): (
            entity.entity_id
        )
        for entity in er.async_entries_for_config_entry(registry, entry.entry_id)
        if entity.domain == "notify"
    }
    return [by_target[f"browser_{index}"] for index in range(count)]


async def _html5(hass: HomeAssistant, entities: list[str]) -> float:
    wall, _ = clock()
    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": entities, "message": MESSAGE, "title": "Door"},
        blocking=True,
    )
    return clock()[0] - wall


async def _direct_push(hass: HomeAssistant, count: int) -> float:
    target = [f"Browser {index}" for index in range(count)]
    wall, _ = await send(hass, message=MESSAGE, title="Door", target=target)
    return wall


async def main(quick: bool, tls: bool) -> None:
    """Measure and print the table."""
    sizes = (10, 100, 1000)
    rounds = 3 if quick else 5
    largest = max(sizes)
    print(f"Web Push, Direct Push vs core html5; {machine()}")
    print(
        f"receiver {'over TLS' if tls else 'over plain HTTP'}, answers after"
        f" {DELAY * 1000:.0f} ms; median of {rounds} interleaved rounds"
    )
    print(f"{'N':>5} | {'Direct Push':>12} {'html5':>10} | {'speed-up':>8}")
    async with ServerProcess("webpush", tls=tls) as server:
        if tls:
            _trust(server.hello["ca_file"])
        ours = await server.command("subscribe", count=largest)
        theirs = await server.command("subscribe", count=largest)
        with tempfile.TemporaryDirectory() as folder:
            await asyncio.to_thread(
                Path(folder, "html5_push_registrations.conf").write_text,
                json.dumps(_registrations(theirs)),
                encoding="utf-8",
            )
            async with home_assistant(Path(folder)) as hass:
                await setup_http(hass)
                entities = await _setup_html5(hass, largest)
                await add_hub(hass, hub_data(None), webpush_devices(ours))
                await server.command("delay", seconds=DELAY)
                # Warm up both: connections open, code paths run once.
                await _html5(hass, entities[:10])
                await _direct_push(hass, 10)
                for count in sizes:
                    before = await server.received()
                    times = await interleaved(
                        rounds,
                        {
                            "dp": lambda count=count: _direct_push(hass, count),
                            "html5": lambda count=count: _html5(hass, entities[:count]),
                        },
                    )
                    assert await server.received() == before + 2 * rounds * count
                    dp, html5 = median(times["dp"]), median(times["html5"])
                    print(
                        f"{count:>5} | {dp * 1000:>9.0f} ms {html5 * 1000:>7.0f} ms"
                        f" | {html5 / dp:>7.2f}x",
                        flush=True,
                    )
    print("speed-up: html5's time / Direct Push's time")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument(
        "--http", action="store_true", help="plain HTTP receiver instead of TLS"
    )
    arguments = parser.parse_args()
    asyncio.run(main(arguments.quick, not arguments.http))
