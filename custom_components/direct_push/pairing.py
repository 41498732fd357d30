"""Pairing codes, device secrets and failed-attempt limits for the device API.

Plain functions and classes, free of Home Assistant, so the rules can be read
and tested on their own.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import hashlib
import hmac
import secrets
from typing import Final

# Letters and digits that cannot be misread for each other (no 0/O, 1/I/L).
CODE_ALPHABET: Final = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH: Final = 10  # about 49 bits, and single use within minutes
CODE_LIFETIME: Final = 600.0
# Failed attempts (wrong codes or secrets) one address may make in a window.
MAX_FAILURES: Final = 10
FAILURE_WINDOW: Final = 60.0


def new_secret() -> str:
    """Return a device secret: 32 random bytes, base64url."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """Return what is stored of a secret: its SHA-256, hex.

    A secret is 256 random bits, so a plain hash is enough: there is nothing
    to guess that a slow hash would protect.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str | None) -> bool:
    """Return whether a secret is the one whose hash is stored, in constant time."""
    if not stored_hash:
        return False
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def normalise_code(code: str) -> str:
    """Read a code as a person may type it: any case, with spaces or dashes."""
    return "".join(code.split()).replace("-", "").upper()


@dataclass(frozen=True, slots=True)
class PairingCode:
    """A code an admin made, and when it stops working."""

    code: str
    expires: float


class PairingCodes:
    """One-time codes, kept in memory only: a restart ends them all."""

    def __init__(self) -> None:
        """Start with no codes."""
        # By the hash of the code: a lookup does not compare the code itself.
        self._codes: dict[str, float] = {}

    def create(self, now: float) -> PairingCode:
        """Make a new code, valid for CODE_LIFETIME seconds."""
        self._forget_expired(now)
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        expires = now + CODE_LIFETIME
        self._codes[hash_secret(code)] = expires
        return PairingCode(code, expires)

    def is_valid(self, code: str, now: float) -> bool:
        """Return whether a code would be accepted, without using it up."""
        self._forget_expired(now)
        return hash_secret(normalise_code(code)) in self._codes

    def redeem(self, code: str, now: float) -> bool:
        """Use a code up; return whether it was valid (known, unused, not expired)."""
        self._forget_expired(now)
        return self._codes.pop(hash_secret(normalise_code(code)), None) is not None

    def _forget_expired(self, now: float) -> None:
        for key in [key for key, expires in self._codes.items() if expires <= now]:
            del self._codes[key]


class FailureLimit:
    """Counts failed attempts per address in a sliding window."""

    def __init__(
        self, limit: int = MAX_FAILURES, window: float = FAILURE_WINDOW
    ) -> None:
        """Allow limit failures per window seconds from one address."""
        self._limit = limit
        self._window = window
        self._failures: dict[str, deque[float]] = {}

    def blocked_for(self, address: str, now: float) -> float:
        """Return how many seconds the address must wait; 0 when it may try."""
        if (failures := self._failures.get(address)) is None:
            return 0.0
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return 0.0
        if len(failures) < self._limit:
            return 0.0
        return failures[0] + self._window - now

    def failed(self, address: str, now: float) -> None:
        """Record a failed attempt."""
        self._failures.setdefault(address, deque()).append(now)
