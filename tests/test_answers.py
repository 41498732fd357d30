"""The answer log: each device answers each button of its own messages once."""

from __future__ import annotations

from custom_components.direct_push.answers import Answer, AnswerLog


def test_a_device_answers_each_button_of_its_message_once() -> None:
    """Only known buttons, only once each, only by the device the message went to."""
    log = AnswerLog()
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


def test_answers_end_with_the_message_and_the_oldest_go_first() -> None:
    """After its time to live a message cannot be answered; memory stays bounded."""
    log = AnswerLog(limit=2)
    log.record("m1", "carol", frozenset({"open"}), expires=10.0)
    assert log.answer("m1", "carol", "open", now=10.0) is Answer.UNKNOWN_MESSAGE
    log.record("m2", "carol", frozenset({"open"}), expires=100.0)
    log.record("m3", "carol", frozenset({"open"}), expires=100.0)
    log.record("m4", "carol", frozenset({"open"}), expires=100.0)
    assert log.answer("m2", "carol", "open", now=1.0) is Answer.UNKNOWN_MESSAGE
    assert log.answer("m4", "carol", "open", now=1.0) is Answer.ACCEPTED
