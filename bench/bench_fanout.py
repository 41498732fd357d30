"""Fan-out over one HTTP/2 pool versus one push after another, against the local APNs server.

Run from the repository root: `.venv/bin/python -m bench.bench_fanout [devices] [delay_ms]`.
Prints the wall time of each strategy and their ratio; the server answers every push after
`delay_ms`, standing in for the round trip to Apple.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
import ssl
import sys
import tempfile
import time

from custom_components.direct_push.apns import (
    SUBENTRY_APNS,
    ApnsBackend,
    SharedTokenProvider,
)
from custom_components.direct_push.apple_credentials import load_signing_key
from custom_components.direct_push.backend import Device
from custom_components.direct_push.message import Message
from tests.apns_server import ApnsServer, make_credentials


def _devices(count: int) -> list[Device]:
    return [
        Device(
            device_id=str(index),
            name=f"Phone {index}",
            kind=SUBENTRY_APNS,
            admin=False,
            config={"token": f"{index:064x}", "environment": "production"},
        )
        for index in range(count)
    ]


async def main(count: int, delay: float) -> None:
    """Time both strategies on fresh connections."""
    with tempfile.TemporaryDirectory() as folder:
        credentials = make_credentials(Path(folder))
        context = ssl.create_default_context(cafile=credentials.ca_file)
        context.set_alpn_protocols(["h2"])
        async with ApnsServer(credentials) as server:
            server.response_delay = delay
            auth = SharedTokenProvider(
                load_signing_key(credentials.key_pem),
                credentials.key_id,
                credentials.team_id,
            )
            devices = _devices(count)
            message = Message(message="Washing machine finished", title="Laundry")
            results = {}
            for strategy in ("sequential", "concurrent"):
                backend = ApnsBackend(
                    topic=credentials.topic,
                    ssl_context=context,
                    auth=auth,
                    server=("127.0.0.1", server.port),
                )
                start = time.perf_counter()
                if strategy == "sequential":
                    deliveries = [await backend.async_send(d, message) for d in devices]
                else:
                    deliveries = await asyncio.gather(
                        *(backend.async_send(d, message) for d in devices)
                    )
                results[strategy] = time.perf_counter() - start
                assert all(delivery.ok for delivery in deliveries)
                await backend.async_close()
            print(f"devices: {count}, server delay: {delay * 1000:.0f} ms")
            for strategy, seconds in results.items():
                print(f"{strategy:>10}: {seconds * 1000:8.1f} ms")
            print(
                f"ratio sequential/concurrent: {results['sequential'] / results['concurrent']:.1f}x"
            )
            print(f"max pushes in flight at the server: {server.max_in_flight}")


if __name__ == "__main__":
    asyncio.run(
        main(
            int(sys.argv[1]) if len(sys.argv) > 1 else 50,
            float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.02,
        )
    )
