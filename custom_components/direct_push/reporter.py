"""A reporter group over MQTT: of several Home Assistants, exactly one sends.

Each member publishes a retained heartbeat under `<prefix>/members/<id>`
every HEARTBEAT seconds and clears it when it stops. Every member computes
the same leader from the heartbeats it hears (reporter_group.Group). An
action called with `reporter: one` sends only on the leader, which then
publishes `<prefix>/sent/<key>`; a follower holds what it skipped, and if no
confirmation arrives within GRACE, the next in line after the silent leader
sends it. The leader also pushes "<name> is missing" and "<name> is back" to
the admins.

The guarantee: every event is reported at least once. It is reported twice
only when a leader sent it but its confirmation did not reach the next in
line within GRACE (the leader died right after sending, or the broker was
unreachable), when members derived different keys for one event (no
`dedupe_key`, and the event fell either side of a time-window boundary), or
when a member sent it just after starting, before it had heard the group.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
import hashlib
import json
import math
import re
import time
from typing import TYPE_CHECKING, Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later, async_track_time_interval
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
)
from homeassistant.loader import async_get_integration
import voluptuous as vol

from .const import (
    ATTR_DEDUPE_KEY,
    CONF_REPORTER,
    CONF_REPORTER_GROUP,
    CONF_REPORTER_MISSING_MINUTES,
    CONF_REPORTER_NAME,
    CONF_REPORTER_RANK,
    CONF_REPORTER_TOPIC,
    DEFAULT_REPORTER_MISSING_MINUTES,
    DEFAULT_REPORTER_RANK,
    DOMAIN,
    LOGGER,
)
from .issues import async_create_reporter_issue, async_delete_reporter_issue
from .reporter_group import (
    MAX_KEYS,
    MAX_PAYLOAD,
    MAX_RANK,
    MAX_TEXT,
    Confirmations,
    Group,
    Heartbeat,
    cap_oldest,
    derive_key,
)

if TYPE_CHECKING:
    from homeassistant.components.mqtt import ReceiveMessage

HEARTBEAT: Final = 30.0
# Longer than the leader takes to queue a push (the action's deadline, 8 s).
GRACE: Final = 20.0
CHECK_EVERY: Final = 5.0
# Events named by tag and text are the same event within this many seconds.
KEY_WINDOW: Final = 10.0
CONFIRM_WINDOW: Final = 600.0
MQTT_QOS: Final = 1

type SendFields = Callable[[Mapping[str, Any]], Awaitable[object]]


# The options form's reporter section (config_flow).
REPORTER_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(CONF_REPORTER_GROUP): str,
        vol.Optional(CONF_REPORTER_TOPIC): str,
        vol.Optional(CONF_REPORTER_NAME): str,
        # Optional with defaults: the frontend requires a required field of a
        # collapsed section that the stored options do not hold yet.
        vol.Optional(CONF_REPORTER_RANK, default=DEFAULT_REPORTER_RANK): vol.All(
            NumberSelector(
                NumberSelectorConfig(min=0, max=MAX_RANK, mode=NumberSelectorMode.BOX)
            ),
            vol.Coerce(int),
        ),
        vol.Optional(
            CONF_REPORTER_MISSING_MINUTES, default=DEFAULT_REPORTER_MISSING_MINUTES
        ): vol.All(
            NumberSelector(
                NumberSelectorConfig(
                    min=1,
                    max=1440,
                    mode=NumberSelectorMode.BOX,
                    unit_of_measurement="min",
                )
            ),
            vol.Coerce(int),
        ),
    }
)
_GROUP_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
# An MQTT topic without wildcards, empty levels at its ends, or control characters.
_TOPIC: Final = re.compile(r"[^\x00-\x1f\x7f+#/]+(/[^\x00-\x1f\x7f+#/]+)*")


def reporter_options_error(
    hass: HomeAssistant, options: Mapping[str, Any]
) -> str | None:
    """Return the translation key of what is wrong with the reporter section, if anything."""
    if not (group := options.get(CONF_REPORTER_GROUP, "")):
        return None
    if not _GROUP_NAME.fullmatch(group):
        return "reporter_group_invalid"
    topic = options.get(CONF_REPORTER_TOPIC, "")
    if topic and (len(topic) > 200 or not _TOPIC.fullmatch(topic)):
        return "reporter_topic_invalid"
    if len(options.get(CONF_REPORTER_NAME, "")) > MAX_TEXT:
        return "reporter_name_too_long"
    if "mqtt" not in hass.config.components:
        return "reporter_needs_mqtt"
    return None


def _sent_at(payload: str | bytes | bytearray) -> float | None:
    """Return when a confirmation says its event was sent (POSIX time), if it says."""
    if len(payload) > MAX_PAYLOAD:
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    at = data.get("at") if isinstance(data, dict) else None
    # Not isinstance: a bool is an int, and no time.
    if type(at) is int or (type(at) is float and math.isfinite(at)):
        return float(at)
    return None


def _text(payload: str | bytes | bytearray) -> str | bytes:
    return bytes(payload) if isinstance(payload, bytearray) else payload


def signal_members(entry_id: str) -> str:
    """Return the signal that the group's members changed."""
    return f"{DOMAIN}_{entry_id}_members"


def default_prefix(group: str) -> str:
    """Return the group's MQTT topic prefix when the options name none."""
    return f"{DOMAIN}/{group}"


@dataclass(frozen=True, slots=True)
class _Skipped:
    """An action a follower skipped, and which member it left it to."""

    fields: Mapping[str, Any]
    left_to: str


class Reporter:
    """This instance's membership in a reporter group."""

    def __init__(
        self,
        hass: HomeAssistant,
        instance_id: str,
        options: Mapping[str, Any],
        version: str,
        send: SendFields,
    ) -> None:
        """Join the group the options (the form's reporter section) name; async_start connects."""
        self._hass = hass
        self._send = send
        group = options[CONF_REPORTER_GROUP]
        self._prefix = options.get(CONF_REPORTER_TOPIC) or default_prefix(group)
        self.group = Group(
            Heartbeat(
                instance_id=instance_id,
                # The location's name is not limited as the option is; the
                # others would refuse a longer one.
                name=(
                    options.get(CONF_REPORTER_NAME)
                    or hass.config.location_name
                    or "Home Assistant"
                )[:MAX_TEXT],
                rank=int(options.get(CONF_REPORTER_RANK, DEFAULT_REPORTER_RANK)),
                version=version,
            ),
            interval=HEARTBEAT,
            missing_after=60
            * options.get(
                CONF_REPORTER_MISSING_MINUTES, DEFAULT_REPORTER_MISSING_MINUTES
            ),
        )
        self._keys: Confirmations[_Skipped] = Confirmations(window=CONFIRM_WINDOW)
        self._unsubscribe: list[CALLBACK_TYPE] = []
        self._check_timer: CALLBACK_TYPE | None = None
        # Our retained confirmations, by key: when we sent them (monotonic).
        self._published: dict[str, float] = {}
        # Who was leader when a member went missing: that one says it is back.
        self._missing_told_by: dict[str, str] = {}
        self._connected = False
        self.started = False

    @property
    def me(self) -> Heartbeat:
        """Return this instance's own heartbeat."""
        return self.group.me

    def diagnostics(self) -> dict[str, Any]:
        """Return who is in the group and who reports, as this member sees it."""
        now = time.monotonic()
        alive = {m.instance_id for m in self.group.alive(now)}
        return {
            "topic_prefix": self._prefix,
            "connected": self._connected,
            "me": self.me.name,
            "leader": self.group.leader(now).name,
            "members": [
                {
                    "name": m.name,
                    "rank": m.rank,
                    "version": m.version,
                    "alive": m.instance_id in alive,
                }
                for m in self.group.members()
            ],
            "holding": self.holding,
        }

    def _topic(self, *parts: str) -> str:
        return "/".join((self._prefix, *parts))

    async def async_start(self) -> bool:
        """Subscribe and start beating; False when MQTT is not set up."""
        from homeassistant.components import mqtt  # noqa: PLC0415 (optional)

        if not await mqtt.async_wait_for_mqtt_client(self._hass):
            return False
        self._unsubscribe += [
            await mqtt.async_subscribe(
                self._hass, self._topic("members", "+"), self._on_heartbeat, MQTT_QOS
            ),
            await mqtt.async_subscribe(
                self._hass, self._topic("sent", "+"), self._on_sent, MQTT_QOS
            ),
            mqtt.async_subscribe_connection_status(self._hass, self._on_connection),
            async_track_time_interval(
                self._hass, self._async_beat, timedelta(seconds=HEARTBEAT)
            ),
        ]
        self._connected = mqtt.is_connected(self._hass)
        self.started = True
        await self._async_beat()
        return True

    async def async_stop(self) -> None:
        """Leave cleanly: clear our heartbeat so the next in line leads at once."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._check_timer is not None:
            self._check_timer()
            self._check_timer = None
        if self.started and self._connected:
            await self._async_publish(self._topic("members", self.me.instance_id), "")
        self.started = False

    async def _async_publish(
        self, topic: str, payload: str, *, retain: bool = True
    ) -> None:
        from homeassistant.components import mqtt  # noqa: PLC0415 (optional)

        try:
            await mqtt.async_publish(self._hass, topic, payload, MQTT_QOS, retain)
        except HomeAssistantError as err:  # MQTT unloaded meanwhile
            LOGGER.debug("Reporter group: cannot publish to %s: %s", topic, err)

    @callback
    def _on_connection(self, connected: bool) -> None:
        self._connected = connected
        if connected:  # the broker may have restarted without our heartbeat
            self._hass.async_create_task(self._async_beat(), eager_start=True)

    @callback
    def _on_heartbeat(self, msg: ReceiveMessage) -> None:
        instance_id = msg.topic.rsplit("/", 1)[1]
        if not msg.payload:
            self.group.cleared(instance_id, time.monotonic())
        elif (heartbeat := Heartbeat.from_payload(_text(msg.payload))) is None or (
            heartbeat.instance_id != instance_id
        ):
            return  # not a member's heartbeat: ignore, never trust
        else:
            now = time.monotonic()
            self.group.seen(heartbeat, now, retained=msg.retain)
            # One that was missing is back: say so now, not at our next beat.
            self._hass.async_create_task(
                self._async_report_changes(now), eager_start=True
            )
        async_dispatcher_send(self._hass, signal_members(self.me.instance_id))

    @callback
    def _on_sent(self, msg: ReceiveMessage) -> None:
        key = msg.topic.rsplit("/", 1)[1]
        if not msg.payload or not 0 < len(key) <= 64:
            return  # a confirmation cleared, or not one
        sent_at = _sent_at(msg.payload)
        if sent_at is None:
            return
        age = max(0.0, time.time() - sent_at)
        if age <= CONFIRM_WINDOW:
            self._keys.confirm(key, time.monotonic() - age)
        elif msg.retain:
            # Left by a member that died before clearing it: whoever sees it clears it.
            self._hass.async_create_task(
                self._async_publish(self._topic("sent", key), ""), eager_start=True
            )

    async def _async_beat(self, _now: Any = None) -> None:
        """Beat, see who went missing or came back, and say so if we lead."""
        now = time.monotonic()
        await self._async_publish(
            self._topic("members", self.me.instance_id), self.me.to_payload()
        )
        self._keys.expire(now)
        async_dispatcher_send(self._hass, signal_members(self.me.instance_id))
        await self._async_report_changes(now)
        await self._async_clear_confirmations(now)

    async def _async_report_changes(self, now: float) -> None:
        """Push "<name> is missing" from the leader, and "<name> is back" from the same one.

        Who comes back may lead at once (the lowest rank): the member that said
        it was missing says it is back, or, if that one is gone too, the leader.
        """
        for member, missing in self.group.missing_changes(now):
            leader = self.group.leader(now)
            if missing:
                self._missing_told_by[member.instance_id] = leader.instance_id
                tell = leader == self.me
            else:
                told_by = self._missing_told_by.pop(member.instance_id, None)
                alive = {m.instance_id for m in self.group.alive(now)}
                tell = told_by == self.me.instance_id or (
                    told_by not in alive and leader == self.me
                )
            if not tell:
                continue
            state = "is missing" if missing else "is back"
            LOGGER.warning("Reporter group: %s %s", member.name, state)
            await self._async_send(
                {
                    "target": "admin",
                    "title": "Direct Push",
                    "message": f"{member.name} {state}",
                    "tag": f"{DOMAIN}_member_{member.instance_id}",
                }
            )

    async def _async_send(self, fields: Mapping[str, Any]) -> None:
        """Send on our own account: no caller hears an error, so the log does."""
        try:
            await self._send(fields)
        except HomeAssistantError as err:
            LOGGER.error("Reporter group: could not send: %s", err)

    def key(self, fields: Mapping[str, Any]) -> str:
        """Return the action's dedupe key: its own, or one from its tag and text."""
        if key := fields.get(ATTR_DEDUPE_KEY):
            # Hashed: it becomes an MQTT topic level, where / + # have meanings.
            return hashlib.sha256(str(key).encode()).hexdigest()[:32]
        return derive_key(
            fields.get("tag"), str(fields.get("message", "")), time.time(), KEY_WINDOW
        )

    @callback
    def claim(self, key: str, fields: Mapping[str, Any]) -> bool:
        """Return whether this instance sends the event now; else it is held.

        Without the broker the group is unknown, so this instance sends:
        better twice than never.
        """
        now = time.monotonic()
        if self._keys.is_confirmed(key, now):
            return False  # another member sent it already
        leader = self.group.leader(now)
        if not self._connected or leader == self.me:
            return True
        if self._keys.hold(key, _Skipped(fields, leader.instance_id), now):
            self._schedule_check()
        return False

    @callback
    def _schedule_check(self) -> None:
        """Look at what we hold every CHECK_EVERY seconds, while we hold anything."""
        if self._check_timer is None:
            self._check_timer = async_call_later(
                self._hass, CHECK_EVERY, self._async_check_held
            )

    async def async_confirm(self, key: str) -> None:
        """Tell the group this event is sent, so nobody sends it again.

        Retained, so that a member subscribing again after a broker outage, or
        starting, learns of it too; with the wall-clock time it was sent, so
        that it counts for CONFIRM_WINDOW only. The sender clears it then.
        """
        now = time.monotonic()
        self._keys.confirm(key, now)
        self._published[key] = now
        cap_oldest(self._published, MAX_KEYS)
        payload = json.dumps({"by": self.me.instance_id, "at": time.time()})
        await self._async_publish(self._topic("sent", key), payload)

    async def _async_clear_confirmations(self, now: float) -> None:
        """Clear our retained confirmations once their window has passed."""
        ended = [
            k for k, sent in self._published.items() if now - sent > CONFIRM_WINDOW
        ]
        for key in ended:
            del self._published[key]
            await self._async_publish(self._topic("sent", key), "")

    @property
    def holding(self) -> int:
        """Return how many skipped events wait for a confirmation."""
        return self._keys.held

    async def _async_check_held(self, _now: Any = None) -> None:
        """Send what the member it was left to did not confirm, if we are next."""
        self._check_timer = None
        now = time.monotonic()
        for key, skipped in self._keys.due(now, GRACE):
            line = [
                m for m in self.group.alive(now) if m.instance_id != skipped.left_to
            ]
            if line[0] == self.me:
                LOGGER.info("Reporter group: sending what the leader did not confirm")
                await self._async_send(skipped.fields)
                await self.async_confirm(key)
            else:  # the next in line, if it too stays silent, is skipped next time
                self._keys.hold(key, _Skipped(skipped.fields, line[0].instance_id), now)
        if self._keys.held:
            self._schedule_check()


async def async_create_reporter(
    hass: HomeAssistant, entry: ConfigEntry, send: SendFields
) -> Reporter | None:
    """Join the group the hub's options name, if any; connect in the background.

    Until it is connected, `reporter: one` sends here: better twice than never.
    """
    options = entry.options.get(CONF_REPORTER) or {}
    if not (group := options.get(CONF_REPORTER_GROUP)):
        async_delete_reporter_issue(hass)
        return None
    integration = await async_get_integration(hass, DOMAIN)
    reporter = Reporter(hass, entry.entry_id, options, str(integration.version), send)

    async def _async_start() -> None:
        if await reporter.async_start():
            async_delete_reporter_issue(hass)
        else:
            LOGGER.error("Reporter group %s needs the MQTT integration", group)
            async_create_reporter_issue(hass, group)

    entry.async_create_background_task(hass, _async_start(), f"{DOMAIN} reporter")
    return reporter
