"""The answer log: each device answers each button of its own messages once."""

from __future__ import annotations

import time
from typing import Any

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import flush_store

from custom_components.direct_push.answers import Answer, AnswerLog


async def test_a_device_answers_each_button_of_its_message_once(
    hass: HomeAssistant,
) -> None:
    """Only known buttons, only once each, only by the device the message went to."""
    log = AnswerLog(hass)
    log.record("m1", "carol", frozenset({"open", "ignore"}), expires=100.0)
    log.record("m1", "erin", frozenset({"open", "ignore"}), expires=100.0)
    assert log.answer("m1", "carol", "open", now=1.0) is Answer.ACCEPTED
    assert log.answer("m1", "carol", "open", now=2.0) is Answer.ALREADY_ANSWERED
    assert log.answer("m1", "carol", "ignore", now=2.0) is Answer.ACCEPTED
    assert log.answer("m1", "carol", "call", now=2.0) is Answer.UNKNOWN_ACTION
    # Each device its own answer.
    assert log.answer("m1", "erin", "open", now=2.0) is Answer.ACCEPTED
    assert log.answer("m1", "dana", "open", now=2.0) is Answer.UNKNOWN_MESSAGE
    assert log.answer("m2", "carol", "open", now=2.0) is Answer.UNKNOWN_MESSAGE


async def test_answers_end_with_the_message_and_the_oldest_go_first(
    hass: HomeAssistant,
) -> None:
    """After its time to live a message cannot be answered; memory stays bounded."""
    log = AnswerLog(hass, limit=2)
    log.record("m1", "carol", frozenset({"open"}), expires=10.0)
    assert log.answer("m1", "carol", "open", now=10.0) is Answer.UNKNOWN_MESSAGE
    log.record("m2", "carol", frozenset({"open"}), expires=100.0)
    log.record("m3", "carol", frozenset({"open"}), expires=100.0)
    log.record("m4", "carol", frozenset({"open"}), expires=100.0)
    assert log.answer("m2", "carol", "open", now=1.0) is Answer.UNKNOWN_MESSAGE
    assert log.answer("m4", "carol", "open", now=1.0) is Answer.ACCEPTED


async def test_answers_outlive_a_restart(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """A button pressed after a restart counts, and a pressed one stays pressed."""
    now = time.time()
    log = AnswerLog(hass)
    log.record("m1", "carol", frozenset({"open", "ignore"}), expires=now + 600)
    log.record("m2", "carol", frozenset({"open"}), expires=now + 1)
    assert log.answer("m1", "carol", "open", now=now) is Answer.ACCEPTED
    await flush_store(log._store)  # as Home Assistant's final write at a stop
    assert "direct_push.answers" in hass_storage

    again = AnswerLog(hass)
    await again.async_load()
    later = time.time() + 2
    assert again.answer("m1", "carol", "open", now=later) is Answer.ALREADY_ANSWERED
    assert again.answer("m1", "carol", "ignore", now=later) is Answer.ACCEPTED
    assert again.answer("m2", "carol", "open", now=later) is Answer.UNKNOWN_MESSAGE
