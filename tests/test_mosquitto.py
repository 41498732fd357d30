"""The mosquitto fixture is a real broker, and Home Assistant's MQTT talks to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import time

from homeassistant.components import mqtt
from homeassistant.components.mqtt import client as mqtt_client
from homeassistant.components.mqtt.const import (
    CONF_BROKER,
    CONFIG_ENTRY_MINOR_VERSION,
    CONFIG_ENTRY_VERSION,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_PORT
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from paho.mqtt.client import Client, ConnectFlags, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from .mosquitto import Broker, mosquitto  # noqa: F401

TOPIC = "direct_push/test/heartbeat/kitchen"
MARKER = "direct_push/test/marker"


class Paho:
    """A paho client driven by hand, without paho's own thread."""

    def __init__(self, broker: Broker, name: str) -> None:
        self.broker = broker
        self.client = Client(CallbackAPIVersion.VERSION2, client_id=name)
        self.connected = False
        self.received: list[MQTTMessage] = []
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _client, _data, message: self.received.append(
            message
        )

    def _on_connect(
        self,
        _client: Client,
        _data: object,
        _flags: ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self.connected = not reason.is_failure

    def connect(self) -> None:
        self.connected = False
        self.client.connect("127.0.0.1", self.broker.port, keepalive=10)
        self.run_until(lambda: self.connected)

    def run_until(self, done: Callable[[], bool], timeout: float = 3) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "timed out waiting on the broker"
            self.client.loop(timeout=0.02)


def test_the_broker_is_real_retains_and_restarts(mosquitto: Broker) -> None:  # noqa: F811
    publisher = Paho(mosquitto, "publisher")
    subscriber = Paho(mosquitto, "subscriber")
    try:
        publisher.connect()
        info = publisher.client.publish(TOPIC, b"alive", qos=1, retain=True)
        publisher.run_until(info.is_published)

        # Subscribing after the publish: only the broker can have kept it.
        subscriber.connect()
        subscriber.client.subscribe("direct_push/test/#", qos=1)
        subscriber.run_until(lambda: bool(subscriber.received))
        message = subscriber.received.pop()
        assert (message.topic, message.payload, message.retain) == (
            TOPIC,
            b"alive",
            True,
        )

        # Live delivery to an existing subscriber carries no retain flag.
        info = publisher.client.publish(TOPIC, b"again", qos=1, retain=True)
        publisher.run_until(info.is_published)
        subscriber.run_until(lambda: bool(subscriber.received))
        message = subscriber.received.pop()
        assert (message.payload, message.retain) == (b"again", False)

        mosquitto.restart()
        assert mosquitto.is_running()
        # The old connections died with the broker.
        assert publisher.client.loop(timeout=0.5) != MQTTErrorCode.MQTT_ERR_SUCCESS
        publisher.connect()
        subscriber.connect()
        subscriber.client.subscribe("direct_push/test/#", qos=1)
        info = publisher.client.publish(TOPIC, b"after restart", qos=1)
        publisher.run_until(info.is_published)
        subscriber.run_until(lambda: bool(subscriber.received))
        # Persistence is off: the retained message did not survive the restart.
        assert [m.payload for m in subscriber.received] == [b"after restart"]
    finally:
        publisher.client.disconnect()
        subscriber.client.disconnect()

    mosquitto.stop()
    assert not mosquitto.is_running()
    with pytest.raises(ConnectionRefusedError):
        Paho(mosquitto, "late").client.connect("127.0.0.1", mosquitto.port)


class HassMqtt:
    """Home Assistant's MQTT integration, connected to the test broker."""

    def __init__(self, hass: HomeAssistant, broker: Broker) -> None:
        self.hass = hass
        self.broker = broker
        self.entry = MockConfigEntry(
            domain=mqtt.DOMAIN,
            title="MQTT",
            data={CONF_BROKER: "127.0.0.1", CONF_PORT: broker.port},
            # What HA's MQTT config flow writes, in both HA versions we test.
            version=CONFIG_ENTRY_VERSION,
            minor_version=CONFIG_ENTRY_MINOR_VERSION,
        )
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.received: asyncio.Queue[mqtt.ReceiveMessage] = asyncio.Queue()

    @callback  # without it, HA would call it in a worker thread
    def _connection_changed(self, state: bool) -> None:
        if state:
            self.connected.set()
            self.disconnected.clear()
        else:
            self.connected.clear()
            self.disconnected.set()

    @callback
    def message_received(self, message: mqtt.ReceiveMessage) -> None:
        self.received.put_nowait(message)

    async def next_message(self) -> mqtt.ReceiveMessage:
        async with asyncio.timeout(5):
            return await self.received.get()

    async def publish_until_received(
        self, topic: str, payload: str
    ) -> mqtt.ReceiveMessage:
        async with asyncio.timeout(5):
            while True:
                await mqtt.async_publish(self.hass, topic, payload, qos=1)
                try:
                    async with asyncio.timeout(0.2):
                        message = await self.received.get()
                except TimeoutError:
                    continue
                assert message.payload == payload
                return message

    async def wait_connected(self) -> None:
        async with asyncio.timeout(5):
            await self.connected.wait()
        assert mqtt.is_connected(self.hass)


@pytest.fixture
async def hass_mqtt(
    hass: HomeAssistant,
    mosquitto: Broker,  # noqa: F811
    mock_hass_config: None,  # MQTT's setup reads configuration.yaml; tests have none
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[HassMqtt]:
    """HA's MQTT set up against the broker, unloaded before the broker stops."""
    # HA's reconnect loop starts with the first connection and then sleeps
    # 10 s between attempts: patched before setup, or the first sleep is 10 s.
    monkeypatch.setattr(mqtt_client, "RECONNECT_INTERVAL_SECONDS", 0.1)
    setup = HassMqtt(hass, mosquitto)
    setup.entry.add_to_hass(hass)
    unsubscribe_status = mqtt.async_subscribe_connection_status(
        hass, setup._connection_changed
    )
    assert await hass.config_entries.async_setup(setup.entry.entry_id)
    assert await mqtt.async_wait_for_mqtt_client(hass)
    await setup.wait_connected()
    assert setup.entry.state is ConfigEntryState.LOADED
    yield setup
    unsubscribe_status()
    assert await hass.config_entries.async_unload(setup.entry.entry_id)
    assert not mqtt.is_connected(hass)


async def test_home_assistant_mqtt_connects(
    hass: HomeAssistant, hass_mqtt: HassMqtt
) -> None:
    # A retained message published before subscribing arrives flagged retained.
    await mqtt.async_publish(hass, TOPIC, "before", qos=1, retain=True)
    unsubscribe = await mqtt.async_subscribe(
        hass, "direct_push/test/#", hass_mqtt.message_received, qos=1
    )
    message = await hass_mqtt.next_message()
    assert (message.topic, message.payload, message.retain) == (TOPIC, "before", True)

    # A live one is not flagged, though published retained.
    await mqtt.async_publish(hass, TOPIC, "live", qos=1, retain=True)
    message = await hass_mqtt.next_message()
    assert (message.payload, message.retain) == ("live", False)

    # From a plain paho client on the same broker: an empty retained payload
    # (how a member clears its heartbeat) reaches a live subscriber as "".
    outsider = Paho(hass_mqtt.broker, "outsider")
    await hass.async_add_executor_job(outsider.connect)
    info = outsider.client.publish(TOPIC, b"", qos=1, retain=True)
    await hass.async_add_executor_job(outsider.run_until, info.is_published)
    outsider.client.disconnect()
    message = await hass_mqtt.next_message()
    assert (message.payload, message.retain) == ("", False)
    unsubscribe()

    # And it cleared the retained message: a new subscriber gets only the
    # retained marker, then the live message published after subscribing.
    await mqtt.async_publish(hass, MARKER, "m", qos=1, retain=True)
    unsubscribe = await mqtt.async_subscribe(
        hass, "direct_push/test/#", hass_mqtt.message_received, qos=1
    )
    message = await hass_mqtt.next_message()
    assert (message.topic, message.retain) == (MARKER, True)
    await mqtt.async_publish(hass, TOPIC, "after", qos=1)
    message = await hass_mqtt.next_message()
    assert (message.topic, message.payload, message.retain) == (TOPIC, "after", False)
    unsubscribe()


async def test_home_assistant_mqtt_resubscribes_after_a_broker_restart(
    hass: HomeAssistant, hass_mqtt: HassMqtt
) -> None:
    unsubscribe = await mqtt.async_subscribe(
        hass, "direct_push/test/#", hass_mqtt.message_received, qos=1
    )
    # HA subscribes a moment later (it batches subscriptions), so publish
    # until one arrives.
    message = await hass_mqtt.publish_until_received(TOPIC, "before")
    assert (message.topic, message.retain) == (TOPIC, False)

    await hass.async_add_executor_job(hass_mqtt.broker.stop)
    async with asyncio.timeout(5):
        await hass_mqtt.disconnected.wait()
    # While the broker is away, a publish raises rather than queues.
    with pytest.raises(HomeAssistantError, match="not currently connected"):
        await mqtt.async_publish(hass, TOPIC, "lost", qos=1)
    await hass.async_add_executor_job(hass_mqtt.broker.start)
    await hass_mqtt.wait_connected()
    # HA subscribes again on its own.
    message = await hass_mqtt.publish_until_received(TOPIC, "after")
    assert (message.topic, message.retain) == (TOPIC, False)
    unsubscribe()
