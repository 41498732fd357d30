"""The interface every push backend implements, and what one attempt can yield."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from .message import Message

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    import voluptuous as vol


class CredentialError(ValueError):
    """The hub's credentials for a backend cannot work; `key` is the translation key."""

    def __init__(self, key: str) -> None:
        """Keep the translation key."""
        super().__init__(key)
        self.key = key


class Outcome(StrEnum):
    """What happened to one push."""

    DELIVERED = "delivered"
    FAILED = "failed"
    DEVICE_GONE = "device_gone"
    """The device no longer exists for the service: stop sending to it."""
    AUTH_FAILED = "auth_failed"
    """The hub's credentials were refused: a new key fixes it."""
    CLOCK_WRONG = "clock_wrong"
    """A token signed just now was refused as expired: Home Assistant's clock is wrong."""
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
    device_update: Mapping[str, Any] | None = None
    """Settings the backend learned about the device, for the hub to store."""

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


async def _async_no_diagnostics(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> dict[str, Any]:
    return {}


@dataclass(frozen=True, kw_only=True, slots=True)
class PushBackendDescription:
    """One kind of push backend: what the hub, actions and repairs need to know.

    Devices of this kind are the hub's subentries of type `kind`. Only the
    backend's own module and the registry (backends.py) name a kind; the rest
    of the integration asks the description, so a new backend is its module,
    its description and its entry in the registry.
    """

    kind: str
    """The device subentry type."""
    model: str
    """The device model shown in Home Assistant's device pages."""
    async_create: Callable[
        [HomeAssistant, Mapping[str, Any], Mapping[str, Any]],
        Awaitable[PushBackend | None],
    ]
    """Build the hub's backend from the entry data and options; None without credentials for it.

    Raises CredentialError when the stored credentials cannot work.
    """
    check_message: Callable[[Message], None]
    """Raise MessageError for a message this kind of push service would refuse."""
    log_id: Callable[[Mapping[str, Any]], str]
    """What tells a device apart in a log line (device data in, nothing secret out)."""
    secrets: frozenset[str]
    """Entry and device data keys that diagnostics redact."""
    renew_field: str
    """The repair form field that gives an inactive device new details."""
    renew_schema: Callable[[Mapping[str, Any]], vol.Schema]
    """The repair form, filled in from the device's data."""
    renew: Callable[
        [
            HomeAssistant,
            Mapping[str, Any],
            Mapping[str, Any],
            Iterable[Mapping[str, Any]],
        ],
        dict[str, Any],
    ]
    """Check the repair form against the device's data and the other devices'.

    Returns the device's whole new data, so that new details may also drop
    what the old ones taught the backend; raises InputError for what is wrong.
    """
    async_diagnostics: Callable[
        [HomeAssistant, Mapping[str, Any]], Awaitable[dict[str, Any]]
    ] = _async_no_diagnostics
    """What this kind adds to the hub's diagnostics (public facts only)."""


def redact_token(token: str) -> str:
    """Show only enough of a token to tell devices apart in a log or a note."""
    return f"…{token[-4:]}" if len(token) > 8 else "…"
