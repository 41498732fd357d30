"""What the outbox adds to a push's way from the call to the wire, against the local APNs server.

Run from the repository root: `.venv/bin/python -m bench.bench_outbox [pushes]`.
Each push is sent once straight through the APNs backend and once through the
outbox (job, per-device lane, first attempt), alternately on the same warm
connection. The time from the call until the server has the whole request is
taken at the server; the script prints both medians, the difference (the issue
allows at most 1 ms) and their ratio.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
import ssl
import statistics
import sys
import tempfile
import time
import uuid

from homeassistant.core import CoreState, HomeAssistant
from homeassistant.helpers import issue_registry as ir

from custom_components.direct_push.apns import (
    SUBENTRY_APNS,
    ApnsBackend,
    SharedTokenProvider,
)
from custom_components.direct_push.apple_credentials import load_signing_key
from custom_components.direct_push.backend import Device, Outcome
from custom_components.direct_push.health import Health
from custom_components.direct_push.jobs import Status
from custom_components.direct_push.message import Message
from custom_components.direct_push.outbox import Outbox
from tests.apns_server import ApnsServer, make_credentials

LIMIT_MS = 1.0


def _percentile(values: list[float], share: float) -> float:
    return sorted(values)[int(share * (len(values) - 1))]


async def main(count: int) -> None:
    """Time both ways to the wire, alternately, on one connection."""
    with tempfile.TemporaryDirectory() as folder:
        credentials = make_credentials(Path(folder))
        context = ssl.create_default_context(cafile=credentials.ca_file)
        context.set_alpn_protocols(["h2"])
        hass = HomeAssistant(folder)
        hass.set_state(CoreState.running)
        await ir.async_load(hass)
        async with ApnsServer(credentials) as server:
            backend = ApnsBackend(
                topic=credentials.topic,
                ssl_context=context,
                auth=SharedTokenProvider(
                    load_signing_key(credentials.key_pem),
                    credentials.key_id,
                    credentials.team_id,
                ),
                server=("127.0.0.1", server.port),
            )
            device = Device(
                device_id="phone",
                name="Phone",
                kind=SUBENTRY_APNS,
                admin=False,
                config={"token": "ab" * 32, "environment": "production"},
            )
            outbox = Outbox(
                hass,
                "bench",
                {device.kind: backend},
                {device.device_id: device},
                Health(hass, "bench", 3),
                on_attempt=lambda _device, _delivery: None,
                is_inactive=lambda _device_id: False,
            )
            await outbox.async_load()
            message = Message(message="Washing machine finished", title="Laundry")

            async def direct() -> None:
                delivery = await backend.async_send(
                    device, replace(message, message_id=str(uuid.uuid4()))
                )
                assert delivery.outcome is Outcome.DELIVERED

            async def through_outbox() -> None:
                sent = await outbox.async_send([(device, message)])
                assert sent.reports[0].status is Status.DELIVERED

            timings: dict[str, list[float]] = {"direct": [], "outbox": []}
            await direct()  # open the connection and sign the token once
            for n in range(count):
                ways = [("direct", direct), ("outbox", through_outbox)]
                for name, send in ways if n % 2 else reversed(ways):
                    start = time.perf_counter()
                    await send()
                    timings[name].append(server.pushes[-1].received_at - start)

            await outbox.async_close()
            await backend.async_close()
        await hass.async_stop()

    medians = {
        name: statistics.median(values) * 1000 for name, values in timings.items()
    }
    print(
        f"pushes per way: {count}, one warm HTTP/2 connection to the local APNs server"
    )
    for name, values in timings.items():
        print(
            f"{name:>7}: p50 {medians[name]:.3f} ms, "
            f"p90 {_percentile(values, 0.9) * 1000:.3f} ms (call to whole request at the server)"
        )
    added = medians["outbox"] - medians["direct"]
    verdict = "within" if added <= LIMIT_MS else "OVER"
    print(f"outbox adds {added:.3f} ms at p50: {verdict} the {LIMIT_MS:.0f} ms limit")
    print(f"ratio outbox/direct at p50: {medians['outbox'] / medians['direct']:.2f}x")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
