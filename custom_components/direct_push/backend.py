"""The interface every push backend implements, and what one attempt can yield."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from .message import Message


class Outcome(StrEnum):
    """What happened to one push."""

    DELIVERED = "delivered"
    FAILED = "failed"
    DEVICE_GONE = "device_gone"
    """The device no longer exists for the service: stop sending to it."""
    AUTH_FAILED = "auth_failed"
    """The hub's credentials were refused: a new key fixes it."""
    UNREACHABLE = "unreachable"
    """The service did not answer: connection, DNS or TLS failure, or a timeout."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """The result of sending one message to one device."""

    outcome: Outcome
    reason: str | None = None
    status: int | None = None
    retry_after: float | None = None
    """Seconds the service asked us to wait before retrying, if it did."""
    retryable: bool = False
    truncated: bool = False

    @property
    def ok(self) -> bool:
        """Return True when the service accepted the push."""
        return self.outcome is Outcome.DELIVERED


@dataclass(frozen=True, slots=True)
class Device:
    """A configured device, as the backends see it."""

    device_id: str
    name: str
    kind: str
    admin: bool
    config: Mapping[str, Any]


class PushBackend(Protocol):
    """Send a built message to one device. One instance per hub entry."""

    async def async_send(self, device: Device, message: Message) -> Delivery:
        """Deliver once, without retrying; never raise for a delivery failure.

        The outbox retries, with message.message_id the same on every attempt.
        """

    async def async_close(self) -> None:
        """Release connections."""
