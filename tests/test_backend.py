"""What one attempt can yield, and token redaction: pure logic.

The retry policy is the outbox's: tests/test_jobs.py and tests/test_outbox.py.
"""

from __future__ import annotations

import pytest

from custom_components.direct_push.backend import Delivery, Outcome, redact_token


def test_only_delivered_is_ok() -> None:
    assert Delivery(Outcome.DELIVERED, status=200).ok
    assert not Delivery(Outcome.FAILED, "busy", status=429, retryable=True).ok
    assert not Delivery(Outcome.DEVICE_GONE).ok
    assert not Delivery(Outcome.UNREACHABLE, "connection_error", retryable=True).ok


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
