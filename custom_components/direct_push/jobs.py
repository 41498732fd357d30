"""Delivery jobs: one message for one device, its retry policy and each device's queue.

Plain Python: no Home Assistant here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
import random
from typing import Any, Final

from .backend import Delivery, Device
from .message import InterruptionLevel, Message, message_from_dict, message_to_dict

MAX_JOBS_PER_DEVICE: Final = 1000
# Full-jitter backoff: the n-th retry waits up to BACKOFF_BASE * 2**(n - 1)
# seconds, never more than BACKOFF_CAP, and never less than BACKOFF_FLOOR: a
# retry within a blink rarely finds the service any better.
BACKOFF_BASE: Final = 2.0
BACKOFF_CAP: Final = 180.0
BACKOFF_FLOOR: Final = 0.5
# A job not tried yet gets its first attempt even when it waited behind
# others past a TTL of 0 ("now or never"): the action is still waiting for it.
FIRST_ATTEMPT_GRACE: Final = 10.0
_RANKS: Final = {
    InterruptionLevel.PASSIVE: 0,
    InterruptionLevel.ACTIVE: 1,
    InterruptionLevel.TIME_SENSITIVE: 2,
    InterruptionLevel.CRITICAL: 3,
}


class Status(StrEnum):
    """Where a push stands, in the action's rows and the delivery event."""

    DELIVERED = "delivered"
    QUEUED = "queued"
    """Kept in the outbox and retried; a later event says how it ended."""
    FAILED = "failed"
    """Refused for good."""
    EXPIRED = "expired"
    """Its time to live ended before any attempt got through."""
    DROPPED = "dropped"
    """The device's queue was full and this push was the least important."""
    REPLACED = "replaced"
    """A newer push with the same tag took its place."""
    SKIPPED = "skipped"
    """Another member of the reporter group sends it (reason not_reporter)."""


@dataclass(slots=True, kw_only=True)
class Job:
    """One message for one device, kept until it is delivered, refused or expires."""

    id: str
    """The message id: a UUID, sent as the APNs apns-id on every attempt."""
    device_id: str
    device_name: str
    message: Message
    created: float
    expires: float
    attempts: int = 0
    reason: str | None = None
    reported: bool = False
    """The caller was told "queued": its outcome goes out as an event."""
    saved: bool = False
    """Written to disk at least once: settling it needs a new write."""
    stored: Any = None
    """The outbox's copy of the stored form; cleared when attempts or reason change."""

    @property
    def tag(self) -> str | None:
        """Return the tag that a newer push replaces this one by, if any."""
        return self.message.tag or None

    @property
    def rank(self) -> int:
        """Return how much the push matters: the lowest goes first when a queue is full."""
        message = self.message
        if message.is_background:
            return 0
        if message.interruption_level is not None:
            return _RANKS[message.interruption_level]
        return 1 if message.apns_priority == 10 else 0

    @property
    def deadline(self) -> float:
        """Return when the job expires."""
        if self.attempts:
            return self.expires
        return max(self.expires, self.created + FIRST_ATTEMPT_GRACE)

    def ttl_left(self, now: float) -> int:
        """Return the time to live to send now: what is left of the push's own."""
        left = self.expires - now
        # Within its first second a push keeps the TTL it was given.
        if left > self.message.ttl - 1:
            return self.message.ttl
        return max(0, int(left))

    def as_dict(self, message: Any = None) -> dict[str, Any]:
        """Return the job as stored: the device's id, never its token or endpoint.

        message: the message's stored form, when made already (a fan-out's jobs
        share their message).
        """
        return {
            "id": self.id,
            "device_id": self.device_id,
            "device_name": self.device_name,
            "message": message_to_dict(self.message) if message is None else message,
            "created": self.created,
            "expires": self.expires,
            "attempts": self.attempts,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        """Rebuild a stored job; its caller has long been told it was queued."""
        return cls(
            id=data["id"],
            device_id=data["device_id"],
            device_name=data["device_name"],
            message=message_from_dict(data["message"]),
            created=data["created"],
            expires=data["expires"],
            attempts=data["attempts"],
            reason=data["reason"],
            reported=True,
            saved=True,
        )


def backoff(attempts: int, draw: Callable[[], float] = random.random) -> float:
    """Return the wait after the attempts-th failure: full jitter, capped."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** min(attempts - 1, 16))
    return max(BACKOFF_FLOOR, draw() * ceiling)


def retry_at(job: Job, delivery: Delivery, now: float) -> float | None:
    """Return when to try a job again, or None when its time to live ends first.

    A service's Retry-After is honoured at any length, as long as the TTL lasts.
    """
    if delivery.retry_after is not None:
        delay = delivery.retry_after
    else:
        delay = backoff(job.attempts)
    at = now + delay
    return at if at < job.expires else None


class DeviceQueue:
    """One device's jobs, in the order they go out."""

    def __init__(self) -> None:
        """Start empty."""
        self._jobs: list[Job] = []
        self.limit = MAX_JOBS_PER_DEVICE
        self.sending: Job | None = None
        """The job being sent now: it can be neither replaced nor dropped."""

    def __len__(self) -> int:
        """Return the number of jobs."""
        return len(self._jobs)

    def __iter__(self) -> Iterator[Job]:
        """Iterate over a copy of the jobs, oldest first."""
        return iter(list(self._jobs))

    @property
    def head(self) -> Job | None:
        """Return the job that goes out next."""
        return self._jobs[0] if self._jobs else None

    def add(self, job: Job) -> list[tuple[Job, Status]]:
        """Append a job; return the jobs it pushed out and why (it may be one of them)."""
        removed: list[tuple[Job, Status]] = []
        if job.tag:
            removed = [
                (old, Status.REPLACED)
                for old in self._jobs
                if old.tag == job.tag and old is not self.sending
            ]
            for old, _ in removed:
                self._jobs.remove(old)
        if len(self._jobs) >= self.limit:
            candidates = [old for old in self._jobs if old is not self.sending]
            # min() keeps the first of equals: the oldest of the least important.
            victim = min([*candidates, job], key=lambda candidate: candidate.rank)
            removed.append((victim, Status.DROPPED))
            if victim is job:
                return removed
            self._jobs.remove(victim)
        self._jobs.append(job)
        return removed

    def remove(self, job: Job) -> None:
        """Take a settled job out."""
        self._jobs.remove(job)

    def take_expired(self, now: float) -> list[Job]:
        """Remove and return the jobs whose time to live has ended."""
        expired = [
            job for job in self._jobs if job is not self.sending and now >= job.deadline
        ]
        for job in expired:
            self._jobs.remove(job)
        return expired


@dataclass(frozen=True, slots=True)
class Report:
    """One row of a send's result: a device's first outcome."""

    device: Device
    status: Status
    reason: str | None = None
    message_id: str | None = None
    next_attempt: float | None = None
    """When a queued push is tried next, if known (not while credentials are refused)."""
    truncated: bool = False

    @property
    def reached(self) -> bool:
        """Return True when the push arrived or is kept to be retried."""
        return self.status in (Status.DELIVERED, Status.QUEUED)

    def as_dict(self) -> dict[str, Any]:
        """Return the row as the action's response shows it."""
        return {
            "device": self.device.name,
            "device_id": self.device.device_id,
            "message_id": self.message_id,
            "status": self.status.value,
            "reason": self.reason,
            "next_attempt": (
                None
                if self.next_attempt is None
                else datetime.fromtimestamp(self.next_attempt, UTC).isoformat()
            ),
            "truncated": self.truncated,
        }


@dataclass(frozen=True, slots=True)
class Sent:
    """What a send did: one report per device, and the older pushes it pushed out."""

    reports: list[Report]
    dropped: int = 0
