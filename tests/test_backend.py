"""The shared retry policy (backend.async_send_with_retry) and token redaction: pure logic."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from custom_components.direct_push import backend
from custom_components.direct_push.backend import (
    RETRY_ATTEMPTS,
    RETRY_MAX_DELAY,
    Delivery,
    Outcome,
    async_send_with_retry,
    redact_token,
)

DELIVERED = Delivery(Outcome.DELIVERED, status=200)
BUSY = Delivery(Outcome.FAILED, "TooManyRequests", status=429, retryable=True)


class Attempts:
    """Answers deliveries in turn, and records each backoff the policy asks for."""

    def __init__(self, answers: Iterable[Delivery]) -> None:
        self._answers = iter(answers)
        self.sent = 0
        self.slept: list[float] = []

    async def send(self) -> Delivery:
        self.sent += 1
        return next(self._answers)

    async def sleep(self, delay: float) -> None:
        self.slept.append(delay)


async def test_transient_failure_then_delivered() -> None:
    attempts = Attempts([BUSY, BUSY, DELIVERED])
    delivery = await async_send_with_retry(attempts.send, 3600, sleep=attempts.sleep)
    assert delivery == DELIVERED
    assert attempts.sent == 3
    # Full jitter: each wait is drawn from [0, base * 2**attempt].
    assert len(attempts.slept) == 2
    for attempt, delay in enumerate(attempts.slept):
        assert 0 <= delay <= backend.RETRY_BASE_DELAY * 2**attempt


async def test_gives_up_after_the_last_retry() -> None:
    attempts = Attempts([BUSY] * 10)
    delivery = await async_send_with_retry(attempts.send, 3600, sleep=attempts.sleep)
    assert delivery == BUSY
    assert attempts.sent == 1 + RETRY_ATTEMPTS


async def test_retry_after_is_honoured() -> None:
    later = Delivery(Outcome.FAILED, "busy", retry_after=7.5, retryable=True)
    attempts = Attempts([later, DELIVERED])
    assert (
        await async_send_with_retry(attempts.send, 3600, sleep=attempts.sleep)
        == DELIVERED
    )
    assert attempts.slept == [7.5]


@pytest.mark.parametrize(
    ("ttl", "retry_after"),
    [
        (5, 10.0),  # the message would have expired by then
        (0, None),  # "now or never": not even a jittered retry
        (86400, RETRY_MAX_DELAY + 1),  # the action would hang too long
    ],
)
async def test_no_retry(ttl: int, retry_after: float | None) -> None:
    refused = Delivery(Outcome.FAILED, "busy", retry_after=retry_after, retryable=True)
    attempts = Attempts([refused, DELIVERED])
    assert (
        await async_send_with_retry(attempts.send, ttl, sleep=attempts.sleep) == refused
    )
    assert attempts.sent == 1
    assert attempts.slept == []


@pytest.mark.parametrize(
    "final",
    [
        Delivery(Outcome.FAILED, "BadTopic", status=400),
        Delivery(Outcome.DEVICE_GONE, "Unregistered", status=410),
        Delivery(Outcome.AUTH_FAILED, "InvalidProviderToken", status=403),
    ],
)
async def test_final_answers_are_not_retried(final: Delivery) -> None:
    attempts = Attempts([final, DELIVERED])
    assert (
        await async_send_with_retry(attempts.send, 3600, sleep=attempts.sleep) == final
    )
    assert attempts.sent == 1


def test_only_delivered_is_ok() -> None:
    assert DELIVERED.ok
    assert not BUSY.ok
    assert not Delivery(Outcome.DEVICE_GONE).ok


@pytest.mark.parametrize(
    ("token", "shown"),
    [
        ("a1" * 32, "…a1a1"),
        ("123456789", "…6789"),
        # Eight characters or fewer: the last four would be half of it.
        ("12345678", "…"),
        ("abc", "…"),
        ("", "…"),
    ],
)
def test_redact_token(token: str, shown: str) -> None:
    """The one redaction of tokens, endpoints and such for logs and notes."""
    assert redact_token(token) == shown
