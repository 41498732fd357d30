"""The reporter group: two real Home Assistants on one real mosquitto broker.

Each runs HA's own MQTT integration connected to the broker, and a Direct
Push hub that pushes to the local APNs server. Time is driven with freezer
where heartbeats must be missed; the broker and the pushes are real.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
import time
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant import loader
from homeassistant.components import mqtt
from homeassistant.components.mqtt.const import (
    CONF_BROKER,
    CONFIG_ENTRY_MINOR_VERSION,
    CONFIG_ENTRY_VERSION,
)
from homeassistant.const import CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    async_test_home_assistant,
)

from custom_components.direct_push.const import CONF_REPORTER, DOMAIN
from custom_components.direct_push.diagnostics import async_get_config_entry_diagnostics
from custom_components.direct_push.hub import DirectPushHub
from custom_components.direct_push.reporter import GRACE, HEARTBEAT, Reporter, _sent_at
from custom_components.direct_push.reporter_group import Group, Heartbeat
from custom_components.direct_push.services import NOT_REPORTER

from .apns_server import ApnsServer, ApnsTestCredentials
from .conftest import ALICE_TOKEN, apns_device, sending, token_entry_data, until
from .mosquitto import Broker, mosquitto

__all__ = ["mosquitto"]  # the broker fixture

# MQTT's set-up reads configuration.yaml, which a test Home Assistant does not have.
pytestmark = pytest.mark.usefixtures("mock_hass_config")

type Instance = Callable[[str, int], Awaitable[HomeAssistant]]


class Clock:
    """The frozen clock of every running instance.

    HA's MQTT client sends subscriptions after a short cooldown timer, so
    while waiting for the broker the clock must move too, on every instance
    that runs (a hung one is taken off the list): at twice real time, so that
    the broker's answers still beat MQTT's own timeouts.
    """

    def __init__(self, freezer: FrozenDateTimeFactory) -> None:
        self.freezer = freezer
        self.running: list[HomeAssistant] = []

    def _fire(self, seconds: float) -> None:
        self.freezer.tick(seconds)
        for hass in self.running:
            async_fire_time_changed(hass)

    async def wait(self, predicate: Callable[[], object], seconds: float = 20) -> None:
        """Let real time pass, and the clocks with it, until predicate holds."""
        loop = asyncio.get_running_loop()
        for _ in range(int(seconds / 0.01)):
            if predicate():
                return
            self._fire(0.02)
            await loop.run_in_executor(None, time.sleep, 0.01)
        pytest.fail("the condition never held")

    async def tick(self, seconds: float) -> None:
        """Let seconds pass on the running instances' clocks, five at a time."""
        loop = asyncio.get_running_loop()
        while seconds > 0:
            step = min(seconds, 5.0)
            seconds -= step
            # A push in flight would time out on the jump and be sent again.
            await until(lambda: not any(sending(hass) for hass in self.running))
            self._fire(step)
            for hass in self.running:
                await hass.async_block_till_done()
            # Real time for the broker to answer (pings, acknowledgements), and
            # for pushes to arrive before the clock moves past their timeouts.
            await loop.run_in_executor(None, time.sleep, 0.02)
            await until(lambda: not any(sending(hass) for hass in self.running))


@pytest.fixture
def clock(freezer: FrozenDateTimeFactory, monkeypatch: pytest.MonkeyPatch) -> Clock:
    # HA waits 10 s (of the frozen clock) before reconnecting to a restarted broker.
    monkeypatch.setattr(
        "homeassistant.components.mqtt.client.RECONNECT_INTERVAL_SECONDS", 0.5
    )
    return Clock(freezer)


async def _start_mqtt(hass: HomeAssistant, broker: Broker, clock: Clock) -> None:
    entry = MockConfigEntry(
        domain=mqtt.DOMAIN,
        title="MQTT",
        data={CONF_BROKER: "127.0.0.1", CONF_PORT: broker.port},
        version=CONFIG_ENTRY_VERSION,
        minor_version=CONFIG_ENTRY_MINOR_VERSION,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await clock.wait(lambda: mqtt.is_connected(hass))


def hub(hass: HomeAssistant) -> DirectPushHub:
    [entry] = hass.config_entries.async_loaded_entries(DOMAIN)
    runtime: DirectPushHub = entry.runtime_data
    return runtime


@pytest.fixture
async def instance(
    hass: HomeAssistant,
    mosquitto: Broker,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
    clock: Clock,
) -> AsyncIterator[Instance]:
    """Start Home Assistants in the group "home": the test's own hass first."""
    others: list[tuple[Any, HomeAssistant]] = []
    started: list[HomeAssistant] = []

    async def _instance(name: str, rank: int) -> HomeAssistant:
        if not started:
            target = hass
        else:
            (tmp_path / name).mkdir()
            context = async_test_home_assistant(config_dir=str(tmp_path / name))
            target = await context.__aenter__()
            target.data.pop(loader.DATA_CUSTOM_COMPONENTS)  # custom integrations
            others.append((context, target))
        started.append(target)
        clock.running.append(target)
        await _start_mqtt(target, mosquitto, clock)
        entry = MockConfigEntry(
            domain=DOMAIN,
            title="Direct Push",
            data=token_entry_data(apns_credentials),
            options={CONF_REPORTER: {"group": "home", "name": name, "rank": rank}},
            subentries_data=[apns_device("Alice", ALICE_TOKEN, admin=True)],
            minor_version=2,
        )
        entry.add_to_hass(target)
        assert await target.config_entries.async_setup(entry.entry_id)
        await target.async_block_till_done()
        await clock.wait(lambda: hub(target).reporter.started)  # type: ignore[union-attr]
        return target

    yield _instance
    # Leave the group and disconnect while the broker still runs.
    for target in started:
        for domain in (DOMAIN, mqtt.DOMAIN):
            for entry in target.config_entries.async_loaded_entries(domain):
                assert await target.config_entries.async_unload(entry.entry_id)
    for context, other in others:
        await other.async_stop(force=True)
        await context.__aexit__(None, None, None)


async def send(hass: HomeAssistant, **fields: Any) -> list[dict[str, Any]]:
    response = await hass.services.async_call(
        DOMAIN,
        "send",
        {"target": "Alice", "reporter": "one", **fields},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    rows: list[dict[str, Any]] = response["deliveries"]  # type: ignore[assignment]
    return rows


def group(hass: HomeAssistant) -> Group:
    reporter = hub(hass).reporter
    assert reporter is not None
    return reporter.group


def names_alive(hass: HomeAssistant) -> list[str]:
    return [member.name for member in group(hass).alive(time.monotonic())]


def held(hass: HomeAssistant) -> int:
    reporter = hub(hass).reporter
    assert reporter is not None
    return reporter.holding


def bodies(server: ApnsServer) -> list[str]:
    return [push.payload["aps"]["alert"]["body"] for push in server.pushes]


def knows_sent(hass: HomeAssistant, dedupe_key: str) -> bool:
    """Return whether the instance knows an event of that key was sent."""
    reporter = hub(hass).reporter
    assert reporter is not None
    key = reporter.key({"dedupe_key": dedupe_key})
    return reporter._keys.is_confirmed(key, time.monotonic())


def hang(hass: HomeAssistant) -> None:
    """Stop an instance's membership dead: no more heartbeats, no goodbye."""
    reporter = hub(hass).reporter
    assert reporter is not None
    for stop in reporter._unsubscribe:
        stop()
    reporter._unsubscribe.clear()
    reporter.started = False


def heard_since(hass: HomeAssistant, name: str, since: float) -> bool:
    """Return whether a heartbeat from name arrived after since (monotonic)."""
    return any(
        member.heartbeat.name == name and member.arrived > since
        for member in group(hass)._members.values()
    )


async def test_the_leader_sends_and_the_follower_skips(
    instance: Instance, server: ApnsServer, clock: Clock
) -> None:
    """Both see the doorbell; only the lowest rank pushes."""
    main = await instance("Main", 1)
    pi = await instance("Pi", 2)
    await clock.wait(lambda: names_alive(main) == names_alive(pi) == ["Main", "Pi"])
    assert group(pi).leader(time.monotonic()).name == "Main"
    # Each sees the other as a connectivity sensor on its hub.
    await clock.wait(lambda: main.states.get("binary_sensor.direct_push_reporter_pi"))
    on_main = main.states.get("binary_sensor.direct_push_reporter_pi")
    on_pi = pi.states.get("binary_sensor.direct_push_reporter_main")
    assert on_main is not None
    assert on_pi is not None
    assert (
        on_main.state,
        on_main.attributes["rank"],
        on_main.attributes["reporting"],
    ) == (
        "on",
        2,
        False,
    )
    assert (
        on_pi.state,
        on_pi.attributes["device_class"],
        on_pi.attributes["reporting"],
    ) == (
        "on",
        "connectivity",
        True,
    )

    follower, leader = await asyncio.gather(
        send(pi, message="Doorbell", dedupe_key="ring-1"),
        send(main, message="Doorbell", dedupe_key="ring-1"),
    )
    assert [(r["status"], r["reason"]) for r in leader] == [("delivered", None)]
    assert [(r["status"], r["reason"]) for r in follower] == [("skipped", NOT_REPORTER)]
    # The follower holds it until the leader's confirmation comes.
    await clock.wait(lambda: not held(pi))
    assert bodies(server) == ["Doorbell"]
    [entry] = pi.config_entries.async_entries(DOMAIN)
    diagnostics = await async_get_config_entry_diagnostics(pi, entry)
    assert diagnostics["reporter_group"] == {
        "topic_prefix": "direct_push/home",
        "connected": True,
        "me": "Pi",
        "leader": "Main",
        "members": [{"name": "Main", "rank": 1, "version": "0.1.0", "alive": True}],
        "holding": 0,
    }


async def test_a_stopped_leader_hands_over_and_is_reported_missing_once(
    instance: Instance, server: ApnsServer, clock: Clock
) -> None:
    """The follower leads at once; three minutes later it says the leader is missing."""
    main = await instance("Main", 1)
    pi = await instance("Pi", 2)
    await clock.wait(lambda: names_alive(pi) == ["Main", "Pi"])

    [entry] = main.config_entries.async_loaded_entries(DOMAIN)
    assert await main.config_entries.async_unload(entry.entry_id)
    await clock.wait(lambda: names_alive(pi) == ["Pi"])
    await clock.wait(
        lambda: pi.states.get("binary_sensor.direct_push_reporter_main").state == "off"  # type: ignore[union-attr]
    )
    rows = await send(pi, message="Doorbell", dedupe_key="ring-2")
    assert [r["status"] for r in rows] == ["delivered"]

    await clock.tick(3 * 60 + HEARTBEAT)
    await clock.wait(lambda: "Main is missing" in bodies(server))
    await clock.tick(10 * 60)
    assert bodies(server) == ["Doorbell", "Main is missing"]

    # Back: it leads again, and the one that said it was missing says it is back.
    assert await main.config_entries.async_setup(entry.entry_id)
    await clock.wait(lambda: names_alive(pi) == ["Main", "Pi"])
    await clock.wait(lambda: "Main is back" in bodies(server))
    await clock.tick(2 * HEARTBEAT)
    assert bodies(server) == ["Doorbell", "Main is missing", "Main is back"]
    assert group(pi).leader(time.monotonic()).name == "Main"


async def test_a_leader_that_dies_before_sending_is_covered_once(
    instance: Instance, server: ApnsServer, clock: Clock
) -> None:
    """Main is gone without a goodbye, before the event: the next in line sends it."""
    main = await instance("Main", 1)
    pi = await instance("Pi", 2)
    await clock.wait(lambda: names_alive(pi) == ["Main", "Pi"])
    # Pi hears Main beat live (a retained heartbeat alone may be a dead one's).
    await clock.tick(HEARTBEAT)
    hang(main)
    rows = await send(pi, message="Smoke in the kitchen", dedupe_key="smoke-1")
    assert [r["status"] for r in rows] == ["skipped"]
    assert held(pi) == 1
    await clock.tick(GRACE + 5)
    await clock.wait(lambda: bodies(server) == ["Smoke in the kitchen"])
    assert held(pi) == 0
    # Silent for three heartbeats, Main is gone: Pi reports from then on, and
    # says once that Main is missing.
    await clock.tick(3 * HEARTBEAT)
    assert names_alive(pi) == ["Pi"]
    rows = await send(pi, message="Motion in the hall", dedupe_key="motion-9")
    assert [r["status"] for r in rows] == ["delivered"]
    await clock.tick(3 * 60)
    await clock.wait(lambda: "Main is missing" in bodies(server))
    await clock.tick(4 * 60)
    assert bodies(server) == [
        "Smoke in the kitchen",
        "Motion in the hall",
        "Main is missing",
    ]
    # Main restarts. A copy of the event it gets then (a retained MQTT message
    # replayed, say) is not sent again: the confirmation is retained, for ten minutes.
    [entry] = main.config_entries.async_entries(DOMAIN)
    assert await main.config_entries.async_reload(entry.entry_id)
    await clock.wait(lambda: names_alive(pi) == names_alive(main) == ["Main", "Pi"])
    await clock.wait(lambda: "Main is back" in bodies(server))
    # Once the retained confirmation has reached it (moments after it
    # subscribes: the start-up corner the README names).
    await clock.wait(lambda: knows_sent(main, "smoke-1"))
    assert [
        r["status"] for r in await send(main, message="x", dedupe_key="smoke-1")
    ] == ["skipped"]
    await clock.tick(3 * 60)
    assert bodies(server).count("Smoke in the kitchen") == 1
    assert bodies(server).count("Main is back") == 1


async def test_a_broker_restart_keeps_the_group(
    instance: Instance, server: ApnsServer, mosquitto: Broker, clock: Clock
) -> None:
    """Retained heartbeats die with the broker; members beat again on reconnecting."""
    main = await instance("Main", 1)
    pi = await instance("Pi", 2)
    await clock.wait(lambda: names_alive(pi) == ["Main", "Pi"])
    restarted = time.monotonic()
    await main.async_add_executor_job(mosquitto.restart)
    await clock.wait(
        lambda: mqtt.is_connected(main) and mqtt.is_connected(pi), seconds=30
    )
    # Each has subscribed again: it hears the other's heartbeat, sent on reconnecting.
    # (A confirmation published before that would be lost: the duplicate the
    # README names.)
    await clock.wait(
        lambda: (
            heard_since(pi, "Main", restarted) and heard_since(main, "Pi", restarted)
        )
    )
    follower, leader = await asyncio.gather(
        send(pi, message="Washer done", dedupe_key="washer-1"),
        send(main, message="Washer done", dedupe_key="washer-1"),
    )
    assert [r["status"] for r in leader + follower] == ["delivered", "skipped"]
    await clock.wait(lambda: not held(pi))
    assert bodies(server) == ["Washer done"]


async def test_a_rank_change_moves_the_lead(
    instance: Instance, server: ApnsServer, clock: Clock
) -> None:
    main = await instance("Main", 1)
    pi = await instance("Pi", 2)
    await clock.wait(lambda: names_alive(main) == ["Main", "Pi"])
    [entry] = pi.config_entries.async_entries(DOMAIN)
    pi.config_entries.async_update_entry(
        entry, options={CONF_REPORTER: {"group": "home", "name": "Pi", "rank": 0}}
    )
    await pi.async_block_till_done()
    await clock.wait(lambda: names_alive(main) == ["Pi", "Main"] == names_alive(pi))
    rows = await send(pi, message="Motion", dedupe_key="motion-1")
    assert [r["status"] for r in rows] == ["delivered"]


async def test_without_mqtt_the_option_says_so_and_a_repair_explains(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, server: ApnsServer, clock: Clock
) -> None:
    """The form refuses a group without MQTT; a hub configured so sends every action itself."""
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_REPORTER: {"group": "home"}}
    )
    assert result["errors"] == {"base": "reporter_needs_mqtt"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_REPORTER: {"group": "no spaces"}}
    )
    assert result["errors"] == {"base": "reporter_group_invalid"}

    hass.config_entries.async_update_entry(
        loaded_entry, options={CONF_REPORTER: {"group": "home"}}
    )
    await hass.async_block_till_done()
    await clock.wait(
        lambda: (
            ir.async_get(hass).async_get_issue(DOMAIN, "reporter_needs_mqtt")
            is not None
        )
    )
    rows = await send(hass, message="Doorbell")
    assert [r["status"] for r in rows] == ["delivered"]


async def test_a_long_location_name_still_makes_a_valid_heartbeat(
    hass: HomeAssistant,
) -> None:
    """The option is limited to 64 characters; the location's name is not."""
    hass.config.location_name = "Summer house by the lake " * 4

    async def no_send(_fields: Any) -> None:
        raise AssertionError

    reporter = Reporter(hass, "id-main", {"group": "home"}, "1.0", no_send)
    assert len(reporter.me.name) == 64
    assert Heartbeat.from_payload(reporter.me.to_payload()) == reporter.me


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ('{"by": "id-main", "at": 1700000000}', 1700000000.0),
        ('{"by": "id-main", "at": 1700000000.5}', 1700000000.5),
        ('{"at": true}', None),  # a bool is no time
        ('{"at": NaN}', None),
        ('{"at": "yesterday"}', None),
        ("[1700000000]", None),
        ("not json", None),
        (b"\xff\xfe", None),
        (
            '{"at": 1, "pad": "' + "x" * 2000 + '"}',
            None,
        ),  # larger than a heartbeat may be
    ],
)
def test_a_confirmation_from_the_broker_is_not_trusted(
    payload: str | bytes, expected: float | None
) -> None:
    """Anyone on the broker can publish under the prefix."""
    assert _sent_at(payload) == expected
