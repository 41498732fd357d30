"""What every benchmark needs: a real Home Assistant, push servers in another process, figures.

Home Assistant runs as it does at home: a real `HomeAssistant` on a config
folder, its registries and config entries loaded from and written to disk,
Direct Push loaded from this repository's custom_components. The push servers
are the tests' own (bench/servers.py), in a child process, so their work does
not count against the event loop being measured.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
import contextlib
from dataclasses import dataclass, field
import gc
import json
import logging
import os
from pathlib import Path
import platform
import socket
import statistics
import sys
import tempfile
import time
from types import MappingProxyType
from typing import Any

from homeassistant import bootstrap, loader
from homeassistant.auth import auth_manager_from_config
from homeassistant.config_entries import (
    SOURCE_USER,
    ConfigEntries,
    ConfigEntry,
    ConfigSubentryData,
)
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

from custom_components.direct_push.const import (
    AUTH_TOKEN,
    CONF_ADMIN,
    CONF_AUTH,
    CONF_AUTH_METHOD,
    CONF_ENDPOINT,
    CONF_ENVIRONMENT,
    CONF_KEY,
    CONF_KEY_ID,
    CONF_NAME,
    CONF_P256DH,
    CONF_TEAM_ID,
    CONF_TOKEN,
    CONF_TOPIC,
    CONF_VAPID_PRIVATE_KEY,
    DOMAIN,
    ENV_DEV_APNS_SERVER,
    ENV_DEV_CA_FILE,
    ENV_PRODUCTION,
)

# The subentry types, as stored; named here so that a bench runs against the
# code before and after a change alike.
APNS_DEVICE = "apns_device"
WEBPUSH_DEVICE = "webpush_device"
# Any valid VAPID key: the Web Push receiver takes pushes signed by any.
VAPID_KEY = "z86piRJIg2axaAs8qTG27C0IEx9Ii5oGOVUKYIo-hzs"
ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    """Say where the figures were measured."""
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Home Assistant {_ha_version()}"
    )


def _ha_version() -> str:
    from homeassistant.const import __version__

    return __version__


class ServerProcess:
    """bench/servers.py in a child process; `command` talks to it."""

    def __init__(self, kind: str, *, tls: bool = False) -> None:
        """Start with `async with`."""
        self._args = [sys.executable, "-m", "bench.servers", kind]
        if tls:
            self._args.append("--tls")
        self._process: asyncio.subprocess.Process | None = None
        self.hello: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> ServerProcess:
        """Start the server; read where it listens."""
        self._process = await asyncio.create_subprocess_exec(
            *self._args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            limit=64 * 1024 * 1024,
        )
        assert self._process.stdout is not None
        self.hello = json.loads(await self._process.stdout.readline())
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop the server: it ends when its stdin closes."""
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            async with asyncio.timeout(10):
                await self._process.wait()
        except TimeoutError:
            self._process.kill()
            await self._process.wait()

    async def command(self, cmd: str, **fields: Any) -> Any:
        """Send one command; return its answer."""
        assert self._process is not None
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        async with self._lock:
            self._process.stdin.write(
                json.dumps({"cmd": cmd, **fields}).encode() + b"\n"
            )
            await self._process.stdin.drain()
            return json.loads(await self._process.stdout.readline())

    async def received(self) -> int:
        """Return how many pushes the server accepted."""
        stats = await self.command("stats")
        return int(stats["received"])


@contextlib.asynccontextmanager
async def home_assistant(config_dir: Path) -> AsyncIterator[HomeAssistant]:
    """Run a real Home Assistant on config_dir (it exists); stop it, writing its files, after."""
    logging.basicConfig(level=logging.WARNING)
    # Notes about the set-up, not the code measured: a custom integration,
    # no fast zlib, and a second Home Assistant's mDNS resolver in one process.
    for name in (
        "homeassistant.loader",
        "aiohttp_fast_zlib",
        "homeassistant.helpers.frame",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)
    hass = HomeAssistant(str(config_dir))
    hass.config.skip_pip = True
    hass.config_entries = ConfigEntries(hass, {})
    loader.async_setup(hass)
    await loader.async_get_custom_components(hass)
    assert await bootstrap.async_load_base_functionality(hass)
    hass.auth = await auth_manager_from_config(hass, [{"type": "homeassistant"}], [])
    assert await async_setup_component(hass, "homeassistant", {})
    await hass.async_start()
    try:
        yield hass
    finally:
        await hass.async_stop()


async def setup_http(hass: HomeAssistant) -> None:
    """Set up Home Assistant's HTTP server on a free loopback port.

    Automations need it (through trace and websocket_api), as does html5.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert await async_setup_component(
        hass, "http", {"http": {"server_host": ["127.0.0.1"], "server_port": port}}
    )


@contextlib.asynccontextmanager
async def apns_server(*, raw_client: bool = False) -> AsyncIterator[ServerProcess]:
    """Run the local APNs server, and point Direct Push at it (its development setting).

    With raw_client, aioapns itself also sends, signing its own provider token
    with the same key: the server takes a new token at any time.
    """
    async with ServerProcess("apns") as server:
        os.environ[ENV_DEV_APNS_SERVER] = f"127.0.0.1:{server.hello['port']}"
        os.environ[ENV_DEV_CA_FILE] = server.hello["ca_file"]
        if raw_client:
            await server.command("token_updates")
        yield server


@contextlib.asynccontextmanager
async def apple_hub(
    server: ServerProcess, devices: int
) -> AsyncIterator[HomeAssistant]:
    """Run Home Assistant on a new folder with a hub of Apple devices ("Phone 0" on)."""
    with tempfile.TemporaryDirectory() as folder:
        async with home_assistant(Path(folder)) as hass:
            await add_hub(hass, hub_data(server.hello), apns_devices(devices))
            yield hass


async def send(hass: HomeAssistant, **fields: Any) -> tuple[float, float]:
    """Call direct_push.send; check every push was delivered; return wall and CPU time."""
    wall, cpu = clock()
    response = await hass.services.async_call(
        DOMAIN, "send", fields, blocking=True, return_response=True
    )
    wall2, cpu2 = clock()
    assert response is not None
    rows: list[dict[str, Any]] = response["deliveries"]  # type: ignore[assignment]
    assert rows, "sent to some"
    assert all(row["status"] == "delivered" for row in rows), rows[:3]
    return wall2 - wall, cpu2 - cpu


def hub_data(apns: dict[str, Any] | None) -> dict[str, Any]:
    """The hub's data: Apple credentials from the local server, and a VAPID key."""
    data: dict[str, Any] = {CONF_VAPID_PRIVATE_KEY: VAPID_KEY}
    if apns is not None:
        data |= {
            CONF_AUTH_METHOD: AUTH_TOKEN,
            CONF_KEY: apns["key_pem"],
            CONF_KEY_ID: apns["key_id"],
            CONF_TEAM_ID: apns["team_id"],
            CONF_TOPIC: apns["topic"],
            CONF_ENVIRONMENT: ENV_PRODUCTION,
        }
    return data


def apns_devices(count: int) -> list[ConfigSubentryData]:
    """count Apple devices, "Phone 0" to "Phone count-1"; every tenth an admin."""
    return [
        ConfigSubentryData(
            data={
                CONF_NAME: f"Phone {index}",
                CONF_TOKEN: f"{index:064x}",
                CONF_ADMIN: index % 10 == 0,
                CONF_ENVIRONMENT: ENV_PRODUCTION,
            },
            subentry_type=APNS_DEVICE,
            title=f"Phone {index}",
            unique_id=None,
        )
        for index in range(count)
    ]


def webpush_devices(
    subscriptions: Sequence[dict[str, Any]],
) -> list[ConfigSubentryData]:
    """A Web Push device per subscription, "Browser 0" on."""
    return [
        ConfigSubentryData(
            data={
                CONF_NAME: f"Browser {index}",
                CONF_ENDPOINT: sub["endpoint"],
                CONF_P256DH: sub["keys"]["p256dh"],
                CONF_AUTH: sub["keys"]["auth"],
                CONF_ADMIN: False,
            },
            subentry_type=WEBPUSH_DEVICE,
            title=f"Browser {index}",
            unique_id=None,
        )
        for index, sub in enumerate(subscriptions)
    ]


async def add_hub(
    hass: HomeAssistant,
    data: dict[str, Any],
    devices: Iterable[ConfigSubentryData],
    *,
    options: dict[str, Any] | None = None,
) -> ConfigEntry:
    """Add the Direct Push hub with its devices and set it up."""
    assert await async_setup_component(hass, DOMAIN, {})
    entry = ConfigEntry(
        data=data,
        discovery_keys=MappingProxyType({}),
        domain=DOMAIN,
        minor_version=2,
        options=options or {},
        source=SOURCE_USER,
        subentries_data=list(devices),
        title="Direct Push",
        unique_id=DOMAIN,
        version=1,
    )
    await hass.config_entries.async_add(entry)
    await hass.async_block_till_done()
    return entry


def rss() -> int:
    """Return this process's resident memory, in bytes."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class LoopLag:
    """The event loop's worst stall while it runs: a 1 ms ticker's worst lateness.

    It also notes the most memory the process held, every 10 ticks, and Python's
    collector: its pauses hold the loop too, however the code that runs behaves,
    and take longer the more objects the process holds (Home Assistant's own).
    `worst_outside_collector` is the worst stall with those pauses taken out.
    """

    interval: float = 0.001
    worst: float = 0.0
    lags: list[float] = field(default_factory=list)
    peak_rss: int = 0
    full_collections: int = 0
    longest_collection: float = 0.0
    _task: asyncio.Task[None] | None = None
    _ticks: list[tuple[float, float]] = field(default_factory=list)
    _pauses: list[tuple[float, float]] = field(default_factory=list)
    _pause_start: float = 0.0

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            now = loop.time()
            self._ticks.append((due, now))
            self.lags.append(now - due)
            self.worst = max(self.worst, now - due)
            if len(self.lags) % 10 == 0:
                self.peak_rss = max(self.peak_rss, rss())

    def _collector(self, phase: str, info: dict[str, int]) -> None:
        # The loop's clock: time.monotonic().
        if phase == "start":
            self._pause_start = time.monotonic()
            return
        end = time.monotonic()
        self._pauses.append((self._pause_start, end))
        self.longest_collection = max(self.longest_collection, end - self._pause_start)
        self.full_collections += info["generation"] == 2

    @property
    def worst_outside_collector(self) -> float:
        """Return the worst stall less the collector's pauses within it."""
        worst = 0.0
        for due, ran in self._ticks:
            if ran - due <= worst:
                continue
            paused = sum(
                max(0.0, min(end, ran) - max(start, due)) for start, end in self._pauses
            )
            worst = max(worst, ran - due - paused)
        return worst

    def __enter__(self) -> LoopLag:
        """Start ticking."""
        self.peak_rss = rss()
        gc.callbacks.append(self._collector)
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop ticking."""
        assert self._task is not None
        self._task.cancel()
        gc.callbacks.remove(self._collector)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the value below which fraction of values lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def median(values: Iterable[float]) -> float:
    """Return the median."""
    return statistics.median(values)


async def interleaved(
    runs: int, variants: dict[str, Callable[[], Awaitable[float]]]
) -> dict[str, list[float]]:
    """Run each variant once per round, rotating who goes first; return each one's results.

    Other work on the machine then weighs on every variant alike.
    """
    results: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_ in range(runs):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            results[name].append(await variants[name]())
    return results


def clock() -> tuple[float, float]:
    """Return wall and CPU time, to subtract later."""
    return time.perf_counter(), time.process_time()


def ms(seconds: float) -> str:
    """Format seconds as milliseconds."""
    return f"{seconds * 1000:8.1f} ms"
