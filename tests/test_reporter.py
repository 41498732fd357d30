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

from homeassistant import loader
from homeassistant.components import mqtt
from homeassistant.components.mqtt.const import (
    CONF_BROKER,
    CONFIG_ENTRY_MINOR_VERSION,
    CONFIG_ENTRY_VERSION,
)
from homeassistant.const import CONF_PORT
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_test_home_assistant,
)

from custom_components.direct_push.const import CONF_REPORTER, DOMAIN
from custom_components.direct_push.hub import DirectPushHub
from custom_components.direct_push.reporter_group import Group
from custom_components.direct_push.services import NOT_REPORTER

from .apns_server import ApnsServer, ApnsTestCredentials
from .conftest import ALICE_TOKEN, apns_device, token_entry_data, until
from .mosquitto import Broker, mosquitto

__all__ = ["mosquitto"]  # the broker fixture

# MQTT's set-up reads configuration.yaml, which a test Home Assistant does not have.
pytestmark = pytest.mark.usefixtures("mock_hass_config")

type Instance = Callable[[str, int], Awaitable[HomeAssistant]]


async def _start_mqtt(hass: HomeAssistant, broker: Broker) -> None:
    entry = MockConfigEntry(
        domain=mqtt.DOMAIN,
        title="MQTT",
        data={CONF_BROKER: "127.0.0.1", CONF_PORT: broker.port},
        version=CONFIG_ENTRY_VERSION,
        minor_version=CONFIG_ENTRY_MINOR_VERSION,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await until(lambda: mqtt.is_connected(hass))


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
        await _start_mqtt(target, mosquitto)
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
        await until(lambda: group(target) is not None and hub(target).reporter.started)  # type: ignore[union-attr]
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


async def test_the_leader_sends_and_the_follower_skips(
    instance: Instance, server: ApnsServer
) -> None:
    """Both see the doorbell; only the lowest rank pushes."""
    main = await instance("Main", 1)
    pi = await instance("Pi", 2)
    await until(lambda: names_alive(main) == names_alive(pi) == ["Main", "Pi"])
    assert group(pi).leader(time.monotonic()).name == "Main"

    follower, leader = await asyncio.gather(
        send(pi, message="Doorbell", dedupe_key="ring-1"),
        send(main, message="Doorbell", dedupe_key="ring-1"),
    )
    assert [(r["status"], r["reason"]) for r in leader] == [("delivered", None)]
    assert [(r["status"], r["reason"]) for r in follower] == [("skipped", NOT_REPORTER)]
    # The follower holds it until the leader's confirmation comes.
    await until(lambda: not held(pi))
    assert bodies(server) == ["Doorbell"]
