"""Which device may answer which buttons of which message, and what it answered.

Kept in memory for each message's time to live (at most as many messages as
MAX_KEPT): buttons of a message sent before a restart cannot be answered.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from enum import Enum
import time
from typing import Final

from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .jobs import Sent
from .message import Message

MAX_KEPT: Final = 10_000


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

    def __init__(self, limit: int = MAX_KEPT) -> None:
        """Keep at most limit messages; the oldest go first."""
        self._limit = limit
        self._sent: OrderedDict[tuple[str, str], _Buttons] = OrderedDict()

    def record(
        self, message_id: str, device_id: str, actions: frozenset[str], expires: float
    ) -> None:
        """Note that a device got a message with these buttons."""
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
        return Answer.ACCEPTED

    def record_sent(self, message: Message, sent: Sent) -> None:
        """Note the buttons of a message for every device it reached or will reach."""
        actions = frozenset(button["id"] for button in message.actions)
        expires = time.time() + message.ttl
        for report in sent.reports:
            if report.reached and report.message_id is not None:
                self.record(
                    report.message_id, report.device.device_id, actions, expires
                )


DATA_ANSWERS: HassKey[AnswerLog] = HassKey(f"{DOMAIN}_answers")


def signal_action(entry_id: str, device_id: str) -> str:
    """Return the signal that a device answered a button."""
    return f"{DOMAIN}_{entry_id}_{device_id}_action"
