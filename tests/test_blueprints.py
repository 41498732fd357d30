"""The automation blueprints, run by Home Assistant against the local APNs server.

Each test copies the blueprints into the test config dir, sets up one
automation from one of them with `use_blueprint`, drives states and time, and
checks what the local APNs server received: who got which alert, and that
nothing arrived when nothing should.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
import logging
from pathlib import Path
import shutil
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import CoreState, HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er, selector
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util, yaml as yaml_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.direct_push.const import DOMAIN

from .apns_server import ApnsServer, ApnsTestCredentials
from .conftest import (
    ALICE_TOKEN,
    BOB_TOKEN,
    VAPID_PUBLIC_KEY,
    apns_device,
    token_entry_data,
    webpush_device,
)
from .webpush_server import WebPushServer

BLUEPRINTS = Path(__file__).parent.parent / "blueprints" / "automation" / "direct_push"
NAMES = (
    "doorbell",
    "appliance_finished",
    "motion_away",
    "alarm_safety",
    "device_missing",
    "ha_health",
)
EVERYONE = {ALICE_TOKEN, BOB_TOKEN}
ADMINS = {ALICE_TOKEN}

# A run that waits when it should not would make async_block_till_done() wait
# forever: fail such a test instead (the clock is frozen, so asyncio timeouts
# cannot do it).
pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def hass_config_dir(hass_tmp_config_dir: str) -> str:
    """Give each test its own config dir, so the blueprints can be copied into it."""
    return hass_tmp_config_dir


async def setup_blueprint(
    hass: HomeAssistant, blueprint: str, inputs: dict[str, Any]
) -> str:
    """Set up one automation from one of our blueprints; return its entity id."""
    await hass.async_add_executor_job(
        lambda: shutil.copytree(
            BLUEPRINTS,
            hass.config.path("blueprints/automation/direct_push"),
            dirs_exist_ok=True,
        )
    )
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                {
                    "id": blueprint,
                    "alias": blueprint,
                    "use_blueprint": {
                        "path": f"direct_push/{blueprint}.yaml",
                        "input": inputs,
                    },
                }
            ]
        },
    )
    await hass.async_block_till_done()
    return f"automation.{blueprint}"


def alerts(server: ApnsServer) -> list[tuple[str, str | None, str]]:
    """Return (token, title, body) of every push, in order."""
    return [
        (
            push.token,
            push.payload["aps"]["alert"].get("title"),
            push.payload["aps"]["alert"]["body"],
        )
        for push in server.pushes
    ]


def receivers(server: ApnsServer) -> set[str]:
    """Return the device tokens that received anything."""
    return {push.token for push in server.pushes}


class Clock:
    """The frozen clock, moved on by the tests."""

    def __init__(
        self, hass: HomeAssistant, freezer: FrozenDateTimeFactory, server: ApnsServer
    ) -> None:
        """Remember what a jump needs."""
        self.hass = hass
        self.freezer = freezer
        self.server = server

    async def _jump(self, delta: timedelta) -> None:
        # Let state changes already made reach their listeners first (HA 2026.2
        # hands them over on the next loop iteration).
        await self.spin()
        # A jump fires every timer that falls due, the network's too (aioapns
        # closes an idle connection after 10 s; TLS shutdowns time out). Close
        # the connections first, as Apple's idle disconnect does: the next push
        # reconnects, instead of a connection being torn down mid-use.
        await self.server.close_connections()
        self.freezer.tick(delta)
        async_fire_time_changed(self.hass)

    @staticmethod
    async def spin() -> None:
        """Let queued callbacks and steps without I/O run, but not wait for runs."""
        for _ in range(20):
            await asyncio.sleep(0)

    async def advance(self, **delta: float) -> None:
        """Move the clock on and let everything that falls due finish."""
        await self._jump(timedelta(**delta))
        await self.hass.async_block_till_done()

    async def advance_while_running(self, **delta: float) -> None:
        """Move the clock on while an automation run waits.

        hass.async_block_till_done() would wait for that run (the appliance
        blueprint's wait_for_trigger) to end; this only lets queued work run.
        """
        await self._jump(timedelta(**delta))
        await self.spin()


@pytest.fixture
def clock(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, apns_server: ApnsServer
) -> Clock:
    """The clock."""
    return Clock(hass, freezer, apns_server)


async def settle(hass: HomeAssistant, ready: Callable[[], bool]) -> None:
    """Run the event loop until ready() holds, without waiting for running automations."""
    for _ in range(500):
        if ready():
            return
        await asyncio.sleep(0)
    pytest.fail("the automation never got there")


def watchers(hass: HomeAssistant, entity_id: str) -> int:
    """Return how many state listeners (triggers, waits) watch entity_id."""
    data = hass.data.get("track_state_change_data")
    return len(data.callbacks.get(entity_id, ())) if data else 0


def ha_device_id(hass: HomeAssistant, entry: MockConfigEntry, name: str) -> str:
    """Return the HA device id of a Direct Push device, by its name."""
    [subentry_id] = [s for s, sub in entry.subentries.items() if sub.title == name]
    return next(
        device.id
        for device in dr.async_entries_for_config_entry(
            dr.async_get(hass), entry.entry_id
        )
        if (DOMAIN, subentry_id) in device.identifiers
    )


def hub_device_id(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    """Return the HA device id of the hub itself (which has no token)."""
    return next(
        device.id
        for device in dr.async_entries_for_config_entry(
            dr.async_get(hass), entry.entry_id
        )
        if (DOMAIN, entry.entry_id) in device.identifiers
    )


# --- All blueprints -----------------------------------------------------------


VALID_INPUTS: dict[str, dict[str, Any]] = {
    "doorbell": {
        "doorbell_events": ["event.front_door"],
        "doorbell_sensors": ["binary_sensor.bell"],
        "doorbell_buttons": ["input_button.bell"],
        "camera": "camera.front",
        "base_url": "https://ha.example.com",
    },
    "appliance_finished": {"power_sensor": "sensor.washer_power"},
    "motion_away": {"motion_sensors": ["binary_sensor.hall_motion"]},
    "alarm_safety": {
        "alarm_panels": ["alarm_control_panel.home"],
        "safety_sensors": ["binary_sensor.kitchen_smoke"],
    },
    "device_missing": {"watched_entities": ["sensor.fridge"]},
    "ha_health": {"resource_sensors": ["sensor.processor_use"]},
}


# Only what each blueprint requires: every other input has a default.
REQUIRED_INPUTS: dict[str, dict[str, Any]] = {
    "doorbell": {},
    "appliance_finished": {"power_sensor": "sensor.washer_power"},
    "motion_away": {"motion_sensors": ["binary_sensor.hall_motion"]},
    "alarm_safety": {},
    "device_missing": {},
    "ha_health": {},
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "given", [VALID_INPUTS, REQUIRED_INPUTS], ids=["full", "required"]
)
async def test_blueprint_loads(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    caplog: pytest.LogCaptureFixture,
    name: str,
    given: dict[str, dict[str, Any]],
) -> None:
    """Each blueprint is well formed and gives a working automation."""
    data = await hass.async_add_executor_job(
        yaml_util.load_yaml, BLUEPRINTS / f"{name}.yaml"
    )
    meta = data["blueprint"]
    assert meta["domain"] == "automation"
    assert meta["homeassistant"] == {"min_version": "2026.2.0"}
    assert meta["source_url"] == (
        "https://github.com/direct-push/direct_push/blob/main/"
        f"blueprints/automation/direct_push/{name}.yaml"
    )
    inputs = {
        key: spec
        for section in meta["input"].values()
        for key, spec in section["input"].items()
    }
    # The recipients, passed to direct_push.send as the selectors give them.
    assert inputs["targets"]["selector"]["select"]["multiple"] is True
    assert [o["value"] for o in inputs["targets"]["selector"]["select"]["options"]] == [
        "admin",
        "everyone",
    ]
    assert inputs["target_devices"]["selector"]["device"] == {
        "multiple": True,
        "filter": [{"integration": DOMAIN}],
    }
    # Every non-empty default is a value its own selector accepts.
    for spec in inputs.values():
        if spec.get("default") not in (None, "", []):
            selector.selector(spec["selector"])(spec["default"])

    caplog.set_level(logging.WARNING)
    entity_id = await setup_blueprint(hass, name, given[name])
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.state == "on"
    problems = [
        record
        for record in caplog.records
        if record.levelno >= logging.ERROR
        or record.name.startswith(
            (
                "homeassistant.components.automation",
                "homeassistant.components.blueprint",
            )
        )
    ]
    assert not problems, [record.getMessage() for record in problems]


# --- Doorbell -----------------------------------------------------------------


async def test_doorbell_event_entity(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    """A new event is a ring; an event entity coming and going is not."""
    hass.states.async_set("event.front_door", "unknown", {"device_class": "doorbell"})
    await setup_blueprint(
        hass, "doorbell", {"doorbell_events": ["event.front_door"], "cooldown": 0}
    )
    hass.states.async_set(
        "event.front_door",
        "2026-03-01T10:00:00.000+00:00",
        {"device_class": "doorbell", "event_type": "ring"},
    )
    await hass.async_block_till_done()
    assert sorted(alerts(apns_server)) == [
        (ALICE_TOKEN, "Doorbell", "Someone is at the door"),
        (BOB_TOKEN, "Doorbell", "Someone is at the door"),
    ]
    push = apns_server.pushes[0]
    assert push.payload["aps"]["interruption-level"] == "time-sensitive"
    assert push.collapse_id == "doorbell"
    assert "image" not in push.payload

    apns_server.pushes.clear()
    # Attributes alone, going unavailable, and coming back are no rings.
    hass.states.async_set(
        "event.front_door",
        "2026-03-01T10:00:00.000+00:00",
        {"device_class": "doorbell", "event_type": "other"},
    )
    hass.states.async_set("event.front_door", "unavailable")
    hass.states.async_set(
        "event.front_door",
        "2026-03-01T10:05:00.000+00:00",
        {"device_class": "doorbell"},
    )
    # Removed and added again (an integration reload): no ring either.
    hass.states.async_remove("event.front_door")
    hass.states.async_set(
        "event.front_door",
        "2026-03-01T10:06:00.000+00:00",
        {"device_class": "doorbell"},
    )
    await hass.async_block_till_done()
    assert apns_server.pushes == []

    hass.states.async_set(
        "event.front_door",
        "2026-03-01T10:07:00.000+00:00",
        {"device_class": "doorbell"},
    )
    await hass.async_block_till_done()
    assert receivers(apns_server) == EVERYONE


async def test_doorbell_binary_sensor(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    hass.states.async_set("binary_sensor.bell", "unavailable")
    await setup_blueprint(
        hass, "doorbell", {"doorbell_sensors": ["binary_sensor.bell"], "cooldown": 0}
    )
    hass.states.async_set("binary_sensor.bell", "on")  # reconnected while pressed
    hass.states.async_set("binary_sensor.bell", "off")
    await hass.async_block_till_done()
    assert apns_server.pushes == []

    hass.states.async_set("binary_sensor.bell", "on")
    await hass.async_block_till_done()
    assert receivers(apns_server) == EVERYONE


async def test_doorbell_button(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    hass.states.async_set("input_button.bell", "unknown")
    await setup_blueprint(
        hass,
        "doorbell",
        {
            "doorbell_buttons": ["input_button.bell"],
            "title": "Back door",
            "message": "Someone is at the back door",
            "tag": "back-door",
            "url": "/lovelace/doors",
        },
    )
    hass.states.async_set("input_button.bell", "2026-03-01T10:00:00.000+00:00")
    await hass.async_block_till_done()
    assert sorted(alerts(apns_server)) == [
        (ALICE_TOKEN, "Back door", "Someone is at the back door"),
        (BOB_TOKEN, "Back door", "Someone is at the back door"),
    ]
    assert apns_server.pushes[0].collapse_id == "back-door"
    assert apns_server.pushes[0].payload["url"] == "/lovelace/doors"


@pytest.mark.parametrize(
    ("base_url", "prefix"),
    [
        ("https://ha.example.com/", "https://ha.example.com"),
        ("", ""),
    ],
)
async def test_doorbell_camera(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    base_url: str,
    prefix: str,
) -> None:
    """The camera's picture goes in through its authenticated proxy URL."""
    hass.states.async_set("binary_sensor.bell", "off")
    hass.states.async_set("camera.front", "idle", {"access_token": "s3cr3t"})
    await setup_blueprint(
        hass,
        "doorbell",
        {
            "doorbell_sensors": ["binary_sensor.bell"],
            "camera": "camera.front",
            "base_url": base_url,
            "targets": ["admin"],
        },
    )
    hass.states.async_set("binary_sensor.bell", "on")
    await hass.async_block_till_done()
    [push] = apns_server.pushes
    assert push.payload["image"] == (
        f"{prefix}/api/camera_proxy/camera.front?token=s3cr3t"
    )
    assert push.payload["aps"]["mutable-content"] == 1


async def test_doorbell_cooldown(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    clock: Clock,
) -> None:
    """Rings within the cooldown after a push are ignored; they don't extend it."""
    hass.states.async_set("binary_sensor.bell", "off")
    await setup_blueprint(
        hass,
        "doorbell",
        {
            "doorbell_sensors": ["binary_sensor.bell"],
            "cooldown": 30,
            "targets": ["admin"],
        },
    )

    async def ring() -> None:
        hass.states.async_set("binary_sensor.bell", "on")
        hass.states.async_set("binary_sensor.bell", "off")
        await hass.async_block_till_done()

    await ring()
    assert len(apns_server.pushes) == 1
    await clock.advance(seconds=20)
    await ring()
    assert len(apns_server.pushes) == 1
    await clock.advance(seconds=15)  # 35 s after the push
    await ring()
    assert len(apns_server.pushes) == 2


# --- Appliance finished -------------------------------------------------------

POWER = "sensor.washer_power"


async def washer(hass: HomeAssistant, **inputs: Any) -> Callable[[float], None]:
    """Set up the appliance blueprint on a washer; return a power setter."""

    def power(watts: float) -> None:
        hass.states.async_set(
            POWER, str(watts), {"device_class": "power", "unit_of_measurement": "W"}
        )

    power(0)
    await setup_blueprint(
        hass,
        "appliance_finished",
        {
            "power_sensor": POWER,
            "appliance_name": "Washer",
            "start_threshold": 10,
            "finish_threshold": 5,
            "min_run": 5,
            "finish_delay": 10,
            **inputs,
        },
    )
    return power


async def start_cycle(
    hass: HomeAssistant,
    clock: Clock,
    power: Callable[[float], None],
    watts: float,
    minutes: int,
) -> None:
    """Run above the start threshold long enough; return once the run waits.

    The trigger's own "for N min" listener goes as it fires, so one more watcher
    on the sensor than when idle means the wait for the finish is in place.
    """
    idle_watchers = watchers(hass, POWER)
    power(watts)
    await hass.async_block_till_done()
    await clock.advance_while_running(minutes=minutes)
    await settle(hass, lambda: watchers(hass, POWER) > idle_watchers)


async def test_appliance_finished(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    clock: Clock,
) -> None:
    """A cycle with pauses gives one push, with the whole run time."""
    power = await washer(hass)
    # Running for 5 min: a cycle. The run then waits for the finish.
    await start_cycle(hass, clock, power, 500, minutes=5)

    # Soaking: below the finish threshold for less than the finish delay.
    power(2)
    await clock.advance_while_running(minutes=9)
    power(400)
    await clock.advance_while_running(minutes=30)
    # Spinning slowly: below the start threshold, above the finish one.
    power(7)
    await clock.advance_while_running(minutes=20)
    power(450)
    await clock.advance_while_running(minutes=16)
    assert apns_server.pushes == []

    power(1)
    await clock.advance(minutes=10)
    # From rising above 10 W to falling below 5 W for good: 5 + 9 + 30 + 20 + 16.
    assert sorted(alerts(apns_server)) == [
        (ALICE_TOKEN, "Washer", "Washer finished after 1 h 20 min"),
        (BOB_TOKEN, "Washer", "Washer finished after 1 h 20 min"),
    ]
    assert apns_server.pushes[0].collapse_id == "appliance-washer"
    assert hass.states.get("automation.appliance_finished").attributes["current"] == 0


async def test_appliance_standby_blip(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    clock: Clock,
) -> None:
    """Above the start threshold for less than the minimum run time is no cycle."""
    power = await washer(hass)
    power(300)
    await clock.advance(minutes=4)
    power(0)
    await clock.advance(minutes=30)
    assert apns_server.pushes == []
    assert hass.states.get("automation.appliance_finished").attributes["current"] == 0


async def test_appliance_start_threshold(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    clock: Clock,
) -> None:
    """Power that never reaches the start threshold is no cycle, however long."""
    power = await washer(hass, start_threshold=100, min_run=1, finish_delay=1)
    power(80)
    await clock.advance(minutes=60)
    power(0)
    await clock.advance(minutes=5)
    assert apns_server.pushes == []

    await start_cycle(hass, clock, power, 120, minutes=1)
    power(0)
    await clock.advance(minutes=1)
    assert alerts(apns_server)[0][2] == "Washer finished after 1 min"


# --- Motion while away --------------------------------------------------------

HALL = "binary_sensor.hall_motion"
GARAGE = "binary_sensor.garage_motion"


async def motion_away(hass: HomeAssistant, **inputs: Any) -> None:
    """Set up the motion blueprint on two sensors, with nobody home."""
    hass.states.async_set("person.alice", "not_home")
    hass.states.async_set("person.bob", "Work")
    for sensor, name in ((HALL, "Hall"), (GARAGE, "Garage")):
        hass.states.async_set(
            sensor, "off", {"device_class": "motion", "friendly_name": name}
        )
    await setup_blueprint(
        hass,
        "motion_away",
        {"motion_sensors": [HALL, GARAGE], "targets": ["admin"], **inputs},
    )


def motion(hass: HomeAssistant, sensor: str, state: str) -> None:
    """Set a motion sensor, keeping its attributes."""
    current = hass.states.get(sensor)
    assert current is not None
    hass.states.async_set(sensor, state, current.attributes)


async def test_motion_away_nobody_home(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    await motion_away(hass, cooldown=0)
    motion(hass, HALL, "on")
    await hass.async_block_till_done()
    assert alerts(apns_server) == [
        (
            ALICE_TOKEN,
            "Motion while away",
            "Hall detected motion at " + dt_util.now().strftime("%H:%M"),
        )
    ]
    push = apns_server.pushes[0]
    assert push.payload["aps"]["interruption-level"] == "time-sensitive"
    assert push.collapse_id == f"motion-{HALL}"


async def test_motion_someone_home(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    await motion_away(hass, cooldown=0)
    hass.states.async_set("person.bob", "home")
    motion(hass, HALL, "on")
    await hass.async_block_till_done()
    assert apns_server.pushes == []


async def test_motion_away_entity(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    """With an away condition entity, it decides instead of the persons."""
    hass.states.async_set("input_boolean.someone_home", "on")
    await motion_away(hass, cooldown=0, away_entity="input_boolean.someone_home")
    motion(hass, HALL, "on")  # persons are away, but the entity says home
    await hass.async_block_till_done()
    assert apns_server.pushes == []

    hass.states.async_set("person.alice", "home")
    hass.states.async_set("input_boolean.someone_home", "off")
    motion(hass, GARAGE, "on")  # a person is home, but the entity says away
    await hass.async_block_till_done()
    assert [body for _, _, body in alerts(apns_server)] == [
        "Garage detected motion at " + dt_util.now().strftime("%H:%M")
    ]


async def test_motion_cooldown_per_sensor(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    clock: Clock,
) -> None:
    await motion_away(hass, cooldown=10)
    await clock.advance(minutes=15)  # both sensors quiet for 15 min

    motion(hass, HALL, "on")
    await hass.async_block_till_done()
    assert len(apns_server.pushes) == 1
    await clock.advance(minutes=1)
    motion(hass, HALL, "off")
    await clock.advance(minutes=3)
    motion(hass, HALL, "on")  # the hall was quiet for only 3 min
    await hass.async_block_till_done()
    assert len(apns_server.pushes) == 1

    motion(hass, GARAGE, "on")  # the garage has its own cooldown
    await hass.async_block_till_done()
    assert [body.split(" ")[0] for _, _, body in alerts(apns_server)] == [
        "Hall",
        "Garage",
    ]

    motion(hass, HALL, "off")
    await clock.advance(minutes=10)
    motion(hass, HALL, "on")  # quiet for the whole cooldown
    await hass.async_block_till_done()
    assert [body.split(" ")[0] for _, _, body in alerts(apns_server)] == [
        "Hall",
        "Garage",
        "Hall",
    ]


async def test_motion_critical(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    await motion_away(
        hass, cooldown=0, critical=True, title="Intruder?", url="/lovelace/cameras"
    )
    motion(hass, GARAGE, "on")
    await hass.async_block_till_done()
    [push] = apns_server.pushes
    assert push.payload["aps"]["alert"]["title"] == "Intruder?"
    assert push.payload["url"] == "/lovelace/cameras"
    assert push.payload["aps"]["interruption-level"] == "critical"
    assert push.payload["aps"]["sound"] == {
        "critical": 1,
        "name": "default",
        "volume": 1.0,
    }


# --- Alarm and safety ---------------------------------------------------------


async def test_alarm_panel_triggered(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    """A triggered alarm is a critical push to everyone (the default)."""
    hass.states.async_set(
        "alarm_control_panel.home", "disarmed", {"friendly_name": "House alarm"}
    )
    await setup_blueprint(
        hass,
        "alarm_safety",
        {"alarm_panels": ["alarm_control_panel.home"], "url": "/lovelace/alarm"},
    )
    hass.states.async_set(
        "alarm_control_panel.home", "armed_away", {"friendly_name": "House alarm"}
    )
    hass.states.async_set(
        "alarm_control_panel.home", "pending", {"friendly_name": "House alarm"}
    )
    await hass.async_block_till_done()
    assert apns_server.pushes == []

    hass.states.async_set(
        "alarm_control_panel.home", "triggered", {"friendly_name": "House alarm"}
    )
    await hass.async_block_till_done()
    assert receivers(apns_server) == EVERYONE
    for push in apns_server.pushes:
        assert push.payload["aps"]["alert"]["title"] == "Alarm triggered"
        assert push.payload["aps"]["alert"]["body"].startswith("House alarm at ")
        assert push.payload["aps"]["interruption-level"] == "critical"
        assert push.payload["aps"]["sound"]["critical"] == 1
        assert push.collapse_id == "safety-alarm_control_panel.home"
        assert push.payload["url"] == "/lovelace/alarm"


async def test_safety_sensors(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, apns_server: ApnsServer
) -> None:
    """Each kind of sensor has its title, and each sensor its own tag."""
    long_id = "binary_sensor." + "basement_utility_room_washing_machine_leak" * 2
    sensors = {
        "binary_sensor.kitchen_smoke": ("smoke", "Smoke detected"),
        "binary_sensor.boiler_gas": ("gas", "Gas detected"),
        "binary_sensor.hall_co": ("carbon_monoxide", "Carbon monoxide detected"),
        long_id: ("moisture", "Water leak"),
        "binary_sensor.pool_gate": ("safety", "Safety alert"),
    }
    for entity_id, (device_class, _) in sensors.items():
        hass.states.async_set(entity_id, "off", {"device_class": device_class})
    await setup_blueprint(
        hass,
        "alarm_safety",
        {"safety_sensors": list(sensors), "targets": ["admin"]},
    )
    for entity_id, (device_class, _) in sensors.items():
        hass.states.async_set(entity_id, "on", {"device_class": device_class})
    await hass.async_block_till_done()

    assert receivers(apns_server) == ADMINS
    got = {push.collapse_id: push for push in apns_server.pushes}
    assert len(got) == len(sensors)
    for entity_id, (_, title) in sensors.items():
        tag = f"safety-{entity_id}"[:64]
        assert got[tag].payload["aps"]["alert"]["title"] == title
        assert got[tag].payload["aps"]["interruption-level"] == "critical"
    assert len(f"safety-{long_id}") > 64


# --- Device missing -----------------------------------------------------------

FRIDGE = "sensor.fridge_temperature"


async def test_entity_missing_and_back(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    clock: Clock,
) -> None:
    """An entity unavailable for the time set: a push to the admins, and one when back."""
    hass.states.async_set(FRIDGE, "4.2", {"friendly_name": "Fridge"})
    await setup_blueprint(
        hass, "device_missing", {"watched_entities": [FRIDGE], "minutes": 10}
    )
    hass.states.async_set(FRIDGE, "unavailable", {"friendly_name": "Fridge"})
    await clock.advance(minutes=9)
    assert apns_server.pushes == []
    await clock.advance(minutes=1)
    assert alerts(apns_server) == [
        (ALICE_TOKEN, "Fridge is missing", "Fridge has been unavailable for 10 min")
    ]
    assert apns_server.pushes[0].collapse_id == f"missing-{FRIDGE}"

    await clock.advance(minutes=62)
    hass.states.async_set(FRIDGE, "4.5", {"friendly_name": "Fridge"})
    await hass.async_block_till_done()
    assert alerts(apns_server)[1:] == [
        (ALICE_TOKEN, "Fridge is back", "Fridge is back after 1 h 12 min")
    ]
    # The "back" push replaces the "missing" one on the phone.
    assert apns_server.pushes[1].collapse_id == f"missing-{FRIDGE}"


async def test_group_member_missing_and_back(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    clock: Clock,
) -> None:
    """Another Home Assistant of the reporter group: its connectivity sensor off, then on."""
    member = "binary_sensor.direct_push_reporter_pi"
    attributes = {"friendly_name": "Reporter Pi", "device_class": "connectivity"}
    hass.states.async_set(member, "on", attributes)
    await setup_blueprint(
        hass, "device_missing", {"group_members": [member], "minutes": 5}
    )
    hass.states.async_set(member, "off", attributes)
    await clock.advance(minutes=5)
    assert alerts(apns_server) == [
        (ALICE_TOKEN, "Reporter Pi is missing", "Reporter Pi has been off for 5 min")
    ]
    await clock.advance(minutes=20)
    hass.states.async_set(member, "on", attributes)
    await hass.async_block_till_done()
    assert alerts(apns_server)[1:] == [
        (ALICE_TOKEN, "Reporter Pi is back", "Reporter Pi is back after 25 min")
    ]


async def test_entity_short_outage(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    clock: Clock,
) -> None:
    """A blip shorter than the time set gives neither push."""
    hass.states.async_set(FRIDGE, "4.2", {"friendly_name": "Fridge"})
    await setup_blueprint(
        hass, "device_missing", {"watched_entities": [FRIDGE], "minutes": 10}
    )
    hass.states.async_set(FRIDGE, "unknown", {"friendly_name": "Fridge"})
    await clock.advance(minutes=4)
    hass.states.async_set(FRIDGE, "4.3", {"friendly_name": "Fridge"})
    await clock.advance(minutes=30)
    assert apns_server.pushes == []


async def test_device_missing_and_back(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    clock: Clock,
) -> None:
    """A device is missing when its entities are all gone (unknown alone is not)."""
    other = MockConfigEntry(domain="zha")
    other.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=other.entry_id,
        identifiers={("zha", "plug-1")},
        name="Kitchen plug",
    )
    entities = er.async_get(hass)
    for platform_domain, object_id in (("sensor", "power"), ("button", "identify")):
        entities.async_get_or_create(
            platform_domain,
            "zha",
            f"plug-1-{object_id}",
            suggested_object_id=f"kitchen_plug_{object_id}",
            config_entry=other,
            device_id=device.id,
        )
    power, button = "sensor.kitchen_plug_power", "button.kitchen_plug_identify"
    hass.states.async_set(power, "20")
    hass.states.async_set(button, "unknown")  # never pressed
    await setup_blueprint(
        hass, "device_missing", {"watched_devices": [device.id], "minutes": 10}
    )

    # One entity gone while another has a value: the device is there.
    hass.states.async_set(button, "unavailable")
    await clock.advance(minutes=30)
    hass.states.async_set(button, "unknown")
    # Nothing has a value, but nothing is unavailable either: still there.
    hass.states.async_set(power, "unknown")
    await clock.advance(minutes=30)
    hass.states.async_set(power, "21")
    await hass.async_block_till_done()
    assert apns_server.pushes == []

    hass.states.async_set(power, "unavailable")
    await clock.advance(minutes=10)
    assert alerts(apns_server) == [
        (ALICE_TOKEN, "Device missing", "Unavailable: Kitchen plug")
    ]
    await clock.advance(minutes=20)
    hass.states.async_set(power, "18")
    await hass.async_block_till_done()
    assert alerts(apns_server)[1:] == [
        (ALICE_TOKEN, "Kitchen plug is back", "Kitchen plug is back after 30 min")
    ]

    # A short outage of the device: nothing.
    hass.states.async_set(power, "unavailable")
    await clock.advance(minutes=3)
    hass.states.async_set(power, "19")
    await clock.advance(minutes=30)
    assert len(apns_server.pushes) == 2


# --- Home Assistant health ----------------------------------------------------


@pytest.mark.parametrize(("notify_start", "expected"), [(True, 1), (False, 0)])
async def test_ha_started(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    notify_start: bool,
    expected: int,
) -> None:
    hass.set_state(CoreState.not_running)
    await setup_blueprint(hass, "ha_health", {"notify_start": notify_start})
    await hass.async_start()
    await hass.async_block_till_done()
    assert [(t, title) for t, title, _ in alerts(apns_server)] == [
        (ALICE_TOKEN, "Home Assistant")
    ] * expected
    if expected:
        assert alerts(apns_server)[0][2].startswith("Home Assistant started at ")


async def test_ha_resource_sensor(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    clock: Clock,
) -> None:
    cpu = "sensor.processor_use"
    attributes = {"friendly_name": "Processor use", "unit_of_measurement": "%"}
    hass.states.async_set(cpu, "12", attributes)
    await setup_blueprint(
        hass,
        "ha_health",
        {"resource_sensors": [cpu], "resource_threshold": 90, "resource_minutes": 10},
    )
    hass.states.async_set(cpu, "97", attributes)  # a spike
    await clock.advance(minutes=5)
    hass.states.async_set(cpu, "40", attributes)
    await clock.advance(minutes=30)
    assert apns_server.pushes == []

    hass.states.async_set(cpu, "95", attributes)
    await clock.advance(minutes=5)
    hass.states.async_set(cpu, "93", attributes)
    await clock.advance(minutes=5)
    assert alerts(apns_server) == [
        (
            ALICE_TOKEN,
            "Processor use is high",
            "Processor use has been above 90% for 10 min: now 93%",
        )
    ]
    assert apns_server.pushes[0].collapse_id == f"health-{cpu}"


@pytest.mark.parametrize(("notify_inactive", "expected"), [(True, 1), (False, 0)])
async def test_ha_device_inactive(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    notify_inactive: bool,
    expected: int,
) -> None:
    """Apple says Bob's token is gone: the admins hear that Bob needs a new one."""
    await setup_blueprint(hass, "ha_health", {"notify_inactive": notify_inactive})
    apns_server.script(BOB_TOKEN, 410, "Unregistered")
    await hass.services.async_call(
        DOMAIN,
        "send",
        {"message": "Hello", "target": "Bob"},
        blocking=True,
        return_response=True,
    )
    await hass.async_block_till_done()
    notice = (
        ALICE_TOKEN,
        "Direct Push",
        "Bob needs a new token: open Settings → Repairs",
    )
    assert alerts(apns_server) == [notice] * expected


async def test_blueprints_reach_web_push_devices_too(
    hass: HomeAssistant,
    apns_credentials: ApnsTestCredentials,
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
) -> None:
    # An Apple admin and a UnifiedPush phone: "all" and "admin" span both kinds.
    pixel = webpush_server.subscribe("Pixel", application_server_key=VAPID_PUBLIC_KEY)
    entry = MockConfigEntry(
        domain=DOMAIN,
        data=token_entry_data(apns_credentials),
        subentries_data=[
            apns_device("Alice", ALICE_TOKEN, admin=True),
            webpush_device("Pixel", pixel, admin=True),
        ],
        minor_version=2,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    hass.states.async_set("input_button.bell", "unknown")
    await setup_blueprint(hass, "doorbell", {"doorbell_buttons": ["input_button.bell"]})
    hass.states.async_set("input_button.bell", "2026-03-01T10:00:00.000+00:00")
    await hass.async_block_till_done()
    [apple] = apns_server.pushes
    [android] = webpush_server.messages
    assert apple.token == ALICE_TOKEN
    assert apple.payload["aps"]["interruption-level"] == "time-sensitive"
    # The same message, decrypted by the receiver as the phone would.
    assert android.json["message"] == apple.payload["aps"]["alert"]["body"]
    assert android.json["tag"] == apple.collapse_id == "doorbell"
    assert android.urgency == "high"
    await hass.config_entries.async_unload(entry.entry_id)


# --- Recipients, in every blueprint -------------------------------------------


async def fire_doorbell(hass: HomeAssistant, clock: Clock, inputs: Inputs) -> None:
    """A doorbell sensor rings."""
    hass.states.async_set("binary_sensor.bell", "off")
    await setup_blueprint(
        hass, "doorbell", {"doorbell_sensors": ["binary_sensor.bell"], **inputs}
    )
    hass.states.async_set("binary_sensor.bell", "on")
    await hass.async_block_till_done()


async def fire_appliance(hass: HomeAssistant, clock: Clock, inputs: Inputs) -> None:
    """A one-minute washing cycle."""
    power = await washer(hass, min_run=1, finish_delay=1, **inputs)
    await start_cycle(hass, clock, power, 500, minutes=1)
    power(0)
    await clock.advance(minutes=1)


async def fire_motion(hass: HomeAssistant, clock: Clock, inputs: Inputs) -> None:
    """Motion in the hall while nobody is home."""
    hass.states.async_set("person.alice", "not_home")
    hass.states.async_set(HALL, "off", {"device_class": "motion"})
    await setup_blueprint(
        hass, "motion_away", {"motion_sensors": [HALL], "cooldown": 0, **inputs}
    )
    hass.states.async_set(HALL, "on", {"device_class": "motion"})
    await hass.async_block_till_done()


async def fire_alarm(hass: HomeAssistant, clock: Clock, inputs: Inputs) -> None:
    """The alarm goes off."""
    panel = "alarm_control_panel.home"
    hass.states.async_set(panel, "armed_away")
    await setup_blueprint(hass, "alarm_safety", {"alarm_panels": [panel], **inputs})
    hass.states.async_set(panel, "triggered")
    await hass.async_block_till_done()


async def fire_missing(hass: HomeAssistant, clock: Clock, inputs: Inputs) -> None:
    """The fridge is unavailable for a minute."""
    hass.states.async_set(FRIDGE, "4.2")
    await setup_blueprint(
        hass, "device_missing", {"watched_entities": [FRIDGE], "minutes": 1, **inputs}
    )
    hass.states.async_set(FRIDGE, "unavailable")
    await clock.advance(minutes=1)


async def fire_health(hass: HomeAssistant, clock: Clock, inputs: Inputs) -> None:
    """The processor is busy."""
    cpu = "sensor.processor_use"
    hass.states.async_set(cpu, "12", {"unit_of_measurement": "%"})
    await setup_blueprint(
        hass,
        "ha_health",
        {"resource_sensors": [cpu], "resource_minutes": 0, **inputs},
    )
    hass.states.async_set(cpu, "97", {"unit_of_measurement": "%"})
    await hass.async_block_till_done()


type Inputs = dict[str, Any]
type Fire = Callable[[HomeAssistant, Clock, Inputs], Awaitable[None]]
# Each blueprint, how to make it push once, and whom it tells by default.
FIRE: dict[str, tuple[Fire, set[str]]] = {
    "doorbell": (fire_doorbell, EVERYONE),
    "appliance_finished": (fire_appliance, EVERYONE),
    "motion_away": (fire_motion, EVERYONE),
    "alarm_safety": (fire_alarm, EVERYONE),
    "device_missing": (fire_missing, ADMINS),
    "ha_health": (fire_health, ADMINS),
}
DEFAULT = object()


def test_every_blueprint_is_tested() -> None:
    """A new blueprint is loaded and has its recipients tested like the others."""
    assert {path.stem for path in BLUEPRINTS.glob("*.yaml")} == set(NAMES) == set(FIRE)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("targets", "chosen", "expected"),
    [
        (DEFAULT, [], None),
        (["admin"], [], ADMINS),
        (["everyone"], [], EVERYONE),
        # Only the chosen devices.
        ([], ["Bob"], {BOB_TOKEN}),
        # A group and a device.
        (["admin"], ["Bob"], EVERYONE),
        # The hub's own device is offered by the selector but is no phone:
        # nothing chosen, so everyone hears, as with no target at all.
        ([], ["hub"], EVERYONE),
    ],
    ids=["default", "admins", "everyone", "devices", "admins-and-bob", "hub"],
)
async def test_recipients(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    clock: Clock,
    name: str,
    targets: Any,
    chosen: list[str],
    expected: set[str] | None,
) -> None:
    """The recipient inputs go to direct_push.send as they are, in every blueprint."""
    fire, default = FIRE[name]
    inputs: Inputs = {}
    if targets is not DEFAULT:
        inputs["targets"] = targets
    if chosen:
        inputs["target_devices"] = [
            hub_device_id(hass, loaded_entry)
            if device == "hub"
            else ha_device_id(hass, loaded_entry, device)
            for device in chosen
        ]
    await fire(hass, clock, inputs)
    assert receivers(apns_server) == (default if expected is None else expected)
    assert len(apns_server.pushes) == len(receivers(apns_server))


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        # As automations made from the first blueprints stored them.
        ("all", EVERYONE),
        ("admin", ADMINS),
        # Nothing chosen at all, as the selectors give it.
        ([], EVERYONE),
    ],
)
async def test_recipients_as_stored_before(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    clock: Clock,
    targets: Any,
    expected: set[str],
) -> None:
    await fire_doorbell(hass, clock, {"targets": targets, "target_devices": []})
    assert receivers(apns_server) == expected
