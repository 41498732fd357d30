"""Jobs, the retry policy and each device's queue: pure logic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from custom_components.direct_push import jobs
from custom_components.direct_push.backend import Delivery, Device, Outcome
from custom_components.direct_push.jobs import (
    BACKOFF_CAP,
    BACKOFF_FLOOR,
    FIRST_ATTEMPT_GRACE,
    MAX_JOBS_PER_DEVICE,
    DeviceQueue,
    Job,
    Report,
    Status,
    backoff,
    retry_at,
)
from custom_components.direct_push.message import InterruptionLevel, Message, PushKind

NOW = 1_800_000_000.0
BUSY = Delivery(Outcome.FAILED, "busy", retryable=True)


def job(name: str = "a", *, ttl: int = 3600, **fields: Any) -> Job:
    """Return a job made now for device "d"."""
    return Job(
        id=name,
        device_id="d",
        device_name="Dana",
        message=Message(message=name, ttl=ttl, **fields),
        created=NOW,
        expires=NOW + ttl,
    )


# The retry policy.


@pytest.mark.parametrize("attempts", [1, 2, 3, 5, 8, 40])
def test_backoff_is_full_jitter_with_a_cap(attempts: int) -> None:
    ceiling = min(BACKOFF_CAP, jobs.BACKOFF_BASE * 2 ** (attempts - 1))
    # Never a retry within a blink.
    assert backoff(attempts, draw=lambda: 0.0) == BACKOFF_FLOOR == 0.5
    assert backoff(attempts, draw=lambda: 0.5) == ceiling / 2
    assert backoff(attempts, draw=lambda: 0.999999) == pytest.approx(ceiling, rel=1e-5)


def test_backoff_reaches_the_cap_of_a_few_minutes() -> None:
    assert backoff(8, draw=lambda: 1.0) == BACKOFF_CAP == 180


def test_retry_after_is_honoured_at_any_length_within_the_ttl() -> None:
    later = Delivery(Outcome.FAILED, "busy", retry_after=3000, retryable=True)
    assert retry_at(job(ttl=3600), later, NOW) == NOW + 3000
    # Past the TTL the push would be dropped by the service anyway: give up now.
    assert retry_at(job(ttl=600), later, NOW) is None


def test_retry_within_the_ttl_only() -> None:
    waiting = job(ttl=3600)
    waiting.attempts = 1
    assert NOW <= (retry_at(waiting, BUSY, NOW) or 0) <= NOW + jobs.BACKOFF_BASE
    # TTL 0 means "now or never": no retry at all.
    assert retry_at(job(ttl=0), BUSY, NOW) is None


# A job's life.


def test_a_job_not_tried_yet_gets_its_first_attempt_despite_ttl_zero() -> None:
    now_or_never = job(ttl=0)
    assert now_or_never.deadline == NOW + FIRST_ATTEMPT_GRACE
    now_or_never.attempts = 1
    assert now_or_never.deadline == NOW


def test_a_resend_carries_what_is_left_of_the_ttl() -> None:
    kept = job(ttl=600)
    assert kept.ttl_left(NOW + 0.5) == 600
    assert kept.ttl_left(NOW + 100.7) == 499
    assert kept.ttl_left(NOW + 700) == 0


def test_job_round_trip_keeps_everything_but_secrets() -> None:
    original = job(
        "x",
        title="Door",
        tag="door",
        interruption_level=InterruptionLevel.CRITICAL,
        push_type=PushKind.ALERT,
        data={"camera": "front"},
        actions=({"action": "open", "title": "Open"},),
        message_id="x",
    )
    original.attempts, original.reason = 2, "connection_error"
    stored = json.loads(json.dumps(original.as_dict()))
    restored = Job.from_dict(stored)
    assert restored.message == original.message
    assert (restored.attempts, restored.reason) == (2, "connection_error")
    # Its caller is gone: the outcome will be an event.
    assert restored.reported


@pytest.mark.parametrize(
    ("fields", "rank"),
    [
        ({"push_type": PushKind.BACKGROUND}, 0),
        ({"interruption_level": InterruptionLevel.PASSIVE}, 0),
        ({"priority": 5}, 0),
        ({}, 1),
        ({"interruption_level": InterruptionLevel.ACTIVE}, 1),
        ({"interruption_level": InterruptionLevel.TIME_SENSITIVE}, 2),
        ({"interruption_level": InterruptionLevel.CRITICAL}, 3),
    ],
)
def test_rank(fields: dict[str, Any], rank: int) -> None:
    assert job(**fields).rank == rank


# The queue.


def test_queue_keeps_order_and_replaces_a_tag() -> None:
    queue = DeviceQueue()
    first, other, newer = job("1", tag="door"), job("2"), job("3", tag="door")
    assert queue.add(first) == []
    assert queue.add(other) == []
    assert queue.add(newer) == [(first, Status.REPLACED)]
    assert list(queue) == [other, newer]
    assert queue.head is other


def test_the_push_being_sent_is_never_replaced() -> None:
    queue = DeviceQueue()
    queue.add(sending := job("1", tag="door"))
    queue.sending = sending
    assert queue.add(newer := job("2", tag="door")) == []
    assert list(queue) == [sending, newer]


def test_queue_bound_drops_the_oldest_least_important() -> None:
    queue = DeviceQueue()
    assert queue.limit == MAX_JOBS_PER_DEVICE == 1000
    queue.add(sending := job("sending", interruption_level=InterruptionLevel.PASSIVE))
    queue.sending = sending
    for n in range(998):
        queue.add(job(f"c{n}", interruption_level=InterruptionLevel.CRITICAL))
    queue.add(old_passive := job("p", interruption_level=InterruptionLevel.PASSIVE))
    assert len(queue) == 1000
    # Full: the passive push not being sent goes first.
    assert queue.add(new := job("new")) == [(old_passive, Status.DROPPED)]
    # Now the active pushes are the least important: the oldest of them goes.
    assert queue.add(job("newer")) == [(new, Status.DROPPED)]
    assert len(queue) == 1000
    # A push less important than every one kept is itself the one dropped.
    passive = job("late", interruption_level=InterruptionLevel.PASSIVE)
    assert queue.add(passive) == [(passive, Status.DROPPED)]
    assert sending in list(queue)


def test_take_expired() -> None:
    queue = DeviceQueue()
    tried, untried = job("1", ttl=5), job("2", ttl=0)
    tried.attempts = 1
    queue.add(tried)
    queue.add(untried)
    assert queue.take_expired(NOW + 4) == []
    assert queue.take_expired(NOW + 5) == [tried]
    assert queue.take_expired(NOW + FIRST_ATTEMPT_GRACE) == [untried]
    assert queue.head is None


# Rows.


def test_report_row() -> None:
    device = Device("d", "Dana", "webpush_device", False, {})
    row = Report(device, Status.QUEUED, "busy", "m", next_attempt=0.0).as_dict()
    assert row == {
        "device": "Dana",
        "device_id": "d",
        "message_id": "m",
        "status": "queued",
        "reason": "busy",
        "next_attempt": "1970-01-01T00:00:00+00:00",
        "truncated": False,
    }
    assert Report(device, Status.QUEUED).reached
    assert Report(device, Status.DELIVERED).reached
    assert not Report(device, Status.EXPIRED).reached
