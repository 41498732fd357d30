"""Which device may answer which buttons of which message, and what it answered.

Kept for each message's time to live (at most as many messages as MAX_KEPT),
on disk too: a button pressed after Home Assistant restarted still counts,
and still only once.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from enum import Enum
import time
from typing import Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .jobs import Sent
from .message import Message

MAX_KEPT: Final = 10_000
STORAGE_VERSION: Final = 1
SAVE_DELAY: Final = 1.0


class Answer(Enum):
    """What an answer to a button is."""

    ACCEPTED = "accepted"
    UNKNOWN_MESSAGE = "not_found"
    """No such message, or it went to another device, or its time is over."""
    UNKNOWN_ACTION = "unknown_action"
    ALREADY_ANSWERED = "already_answered"


@dataclass(slots=True)
class _Buttons:
    actions: frozenset[str]
    expires: float
    answered: set[str] = field(default_factory=set)


class AnswerLog:
    """The buttons each device got, by message id."""

    def __init__(self, hass: HomeAssistant, limit: int = MAX_KEPT) -> None:
        """Keep at most limit messages; the oldest go first. Load before use."""
        self._limit = limit
        self._sent: OrderedDict[tuple[str, str], _Buttons] = OrderedDict()
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.answers", atomic_writes=True
        )

    async def async_load(self) -> None:
        """Read what an earlier run kept; forget what expired meanwhile."""
        data = await self._store.async_load() or {}
        now = time.time()
        for message_id, device_id, actions, expires, answered in data.get("sent", []):
            if expires > now:
                self._sent[(message_id, device_id)] = _Buttons(
                    frozenset(actions), expires, set(answered)
                )

    def _data(self) -> dict[str, Any]:
        now = time.time()
        return {
            "sent": [
                [
                    message_id,
                    device_id,
                    sorted(b.actions),
                    b.expires,
                    sorted(b.answered),
                ]
                for (message_id, device_id), b in self._sent.items()
                if b.expires > now
            ]
        }

    def _save(self) -> None:
        self._store.async_delay_save(self._data, SAVE_DELAY)

    def record(
        self, message_id: str, device_id: str, actions: frozenset[str], expires: float
    ) -> None:
        """Note that a device got a message with these buttons."""
        self._add(message_id, device_id, actions, expires)
        self._save()

    def _add(
        self, message_id: str, device_id: str, actions: frozenset[str], expires: float
    ) -> None:
        self._sent[(message_id, device_id)] = _Buttons(actions, expires)
        while len(self._sent) > self._limit:
            self._sent.popitem(last=False)

    def answer(
        self, message_id: str, device_id: str, action: str, now: float
    ) -> Answer:
        """Take one device's answer: each button of a message counts once."""
        buttons = self._sent.get((message_id, device_id))
        if buttons is None or buttons.expires <= now:
            return Answer.UNKNOWN_MESSAGE
        if action not in buttons.actions:
            return Answer.UNKNOWN_ACTION
        if action in buttons.answered:
            return Answer.ALREADY_ANSWERED
        buttons.answered.add(action)
        self._save()
        return Answer.ACCEPTED

    def record_sent(self, message: Message, sent: Sent) -> None:
        """Note the buttons of a message for every device it reached or will reach."""
        actions = frozenset(button["id"] for button in message.actions)
        expires = time.time() + message.ttl
        for report in sent.reports:
            if report.reached and report.message_id is not None:
                self._add(report.message_id, report.device.device_id, actions, expires)
        self._save()


DATA_ANSWERS: HassKey[AnswerLog] = HassKey(f"{DOMAIN}_answers")


def signal_action(entry_id: str, device_id: str) -> str:
    """Return the signal that a device answered a button."""
    return f"{DOMAIN}_{entry_id}_{device_id}_action"
