"""Web Push backend (RFC 8030, 8291, 8292): UnifiedPush distributors and browsers."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
import ipaddress
import json
import re
import time
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from py_vapid import Vapid02
from py_vapid.jwt import sign as sign_jwt
from py_vapid.utils import b64urlencode
from pywebpush import WebPusher, WebPushException

from .backend import Delivery, Device, Outcome
from .const import (
    CONF_AUTH,
    CONF_ENDPOINT,
    CONF_P256DH,
    CONF_SUBSCRIPTION,
    CONF_VAPID_PRIVATE_KEY,
    LOGGER,
)
from .message import (
    Message,
    PayloadTooLargeError,
    build_webpush_payload,
    webpush_topic,
    webpush_urgency,
)

SEND_TIMEOUT: Final = 30
# The contact claim push services may use to reach the sender's operator.
VAPID_SUBJECT: Final = "https://github.com/direct-push/direct_push"
# RFC 8292 allows at most 24 h; sign for 12 h and reuse a token for 11.
VAPID_LIFETIME: Final = 12 * 3600
VAPID_REUSE: Final = 11 * 3600
_GONE: Final = {404, 410}
MAX_ENDPOINT: Final = 1000
_LAN_SUFFIXES: Final = (".local", ".lan", ".home", ".internal", ".home.arpa")
_BASE64_RE: Final = re.compile(r"[A-Za-z0-9_+/-]*")
# RFC 8291 section 3.1: the user agent's key is an uncompressed P-256 point.
_P256_POINT: Final = 65
_AUTH_SECRET: Final = 16
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def generate_vapid_key() -> str:
    """Return a new VAPID private key, raw and base64url encoded."""
    vapid = Vapid02()
    vapid.generate_keys()
    return private_key_raw(vapid)


def private_key_raw(vapid: Vapid02) -> str:
    """Return a VAPID private key as the raw base64url text stored in the entry."""
    value: int = vapid.private_key.private_numbers().private_value
    return str(b64urlencode(value.to_bytes(32, "big")))


def vapid_public_key(private_raw: str) -> str:
    """Return the application server key that apps subscribe with."""
    return _application_server_key(Vapid02.from_raw(private_raw.encode()))


def _application_server_key(vapid: Vapid02) -> str:
    point = vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return str(b64urlencode(point))


class SubscriptionError(ValueError):
    """A subscription that cannot work; `key` is the translation key, `field` the form field."""

    def __init__(self, field: str, key: str) -> None:
        """Keep the field and translation key."""
        super().__init__(key)
        self.field = field
        self.key = key


def _b64url(value: str) -> bytes:
    """Decode base64url, or standard base64, padded or not; ValueError if malformed.

    A key copied from an app may carry line breaks, padding or "+/": decode it
    strictly here, so what is stored is what pywebpush decodes the same way.
    """
    text = "".join(value.split()).rstrip("=")
    if not _BASE64_RE.fullmatch(text):
        raise ValueError("not base64")
    text = text.replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _lan_host(host: str) -> bool:
    """Return True for a host on the home network, where plain http is allowed."""
    try:
        return ipaddress.ip_address(host).is_private
    except ValueError:
        return "." not in host or host.endswith(_LAN_SUFFIXES)


def parse_subscription(endpoint: str, p256dh: str, auth: str) -> dict[str, str]:
    """Check a push subscription's endpoint and keys; return them cleaned."""
    endpoint = endpoint.strip()
    parts = urlsplit(endpoint)
    try:
        parts.port  # noqa: B018 (raises for a port out of range)
    except ValueError as err:
        raise SubscriptionError(CONF_ENDPOINT, "invalid_endpoint") from err
    if (
        len(endpoint) > MAX_ENDPOINT
        or not parts.hostname
        or not (
            parts.scheme == "https"
            or (parts.scheme == "http" and _lan_host(parts.hostname))
        )
    ):
        raise SubscriptionError(CONF_ENDPOINT, "invalid_endpoint")
    try:
        point = _b64url(p256dh)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as err:
        raise SubscriptionError(CONF_P256DH, "invalid_p256dh") from err
    # A compressed point is a valid key, but pywebpush cannot encrypt to it.
    if len(point) != _P256_POINT:
        raise SubscriptionError(CONF_P256DH, "invalid_p256dh")
    try:
        secret = _b64url(auth)
    except ValueError as err:
        raise SubscriptionError(CONF_AUTH, "invalid_auth_secret") from err
    if len(secret) != _AUTH_SECRET:
        raise SubscriptionError(CONF_AUTH, "invalid_auth_secret")
    # Stored in one canonical form: unpadded base64url.
    return {
        CONF_ENDPOINT: endpoint,
        CONF_P256DH: str(b64urlencode(point)),
        CONF_AUTH: str(b64urlencode(secret)),
    }


def parse_subscription_json(text: str) -> dict[str, str]:
    """Read the W3C PushSubscription JSON that apps and browsers hand out."""
    try:
        value = json.loads(text)
        fields = (value["endpoint"], value["keys"]["p256dh"], value["keys"]["auth"])
    except (ValueError, KeyError, TypeError) as err:
        raise SubscriptionError(CONF_SUBSCRIPTION, "invalid_subscription") from err
    if not all(isinstance(field, str) for field in fields):
        raise SubscriptionError(CONF_SUBSCRIPTION, "invalid_subscription")
    try:
        return parse_subscription(*fields)
    except SubscriptionError as err:
        # Say what is wrong next to the field the user pasted into.
        raise SubscriptionError(CONF_SUBSCRIPTION, err.key) from err


def _origin(endpoint: str) -> str:
    """Return the endpoint's origin (RFC 6454), the VAPID audience.

    Not the netloc: that may carry user info, a default port or upper case,
    and a push service compares the audience with its own origin.
    """
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


class WebPushBackend:
    """Deliver to Web Push endpoints over Home Assistant's shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, vapid: Vapid02) -> None:
        """Use async_create."""
        self._session = session
        self._vapid = vapid
        self._public_key = _application_server_key(vapid)
        # Signed VAPID headers per push service origin, with their signing time.
        self._vapid_headers: dict[str, tuple[float, dict[str, str]]] = {}

    @classmethod
    async def async_create(
        cls, hass: HomeAssistant, data: Mapping[str, Any]
    ) -> WebPushBackend:
        """Load the hub's VAPID key in the executor."""
        raw: str = data[CONF_VAPID_PRIVATE_KEY]
        vapid = await hass.async_add_executor_job(Vapid02.from_raw, raw.encode())
        return cls(async_get_clientsession(hass), vapid)

    def _authorization(self, origin: str) -> dict[str, str]:
        now = time.time()
        cached = self._vapid_headers.get(origin)
        # A clock set back would keep a token whose exp is too far ahead.
        if cached is None or not 0 <= now - cached[0] < VAPID_REUSE:
            # Not Vapid02.sign: its checks refuse an https subject with a path
            # and an IPv6 audience, both valid in RFC 8292.
            token = sign_jwt(
                {"aud": origin, "exp": int(now) + VAPID_LIFETIME, "sub": VAPID_SUBJECT},
                self._vapid.private_key,
            )
            headers = {"Authorization": f"vapid t={token},k={self._public_key}"}
            cached = self._vapid_headers[origin] = (now, headers)
        return cached[1]

    async def async_send(self, device: Device, message: Message) -> Delivery:
        """Encrypt and post once; map the push service's answer to an outcome."""
        try:
            payload, truncated = build_webpush_payload(message)
        except PayloadTooLargeError:
            return Delivery(Outcome.FAILED, "payload_too_large")
        endpoint: str = device.config[CONF_ENDPOINT]
        plaintext = json.dumps(payload, ensure_ascii=False).encode()
        try:
            pusher = WebPusher(
                {
                    "endpoint": endpoint,
                    "keys": {
                        "p256dh": device.config[CONF_P256DH],
                        "auth": device.config[CONF_AUTH],
                    },
                }
            )
            body = pusher.encode(plaintext)["body"]
            origin = _origin(endpoint)
        except (WebPushException, ValueError):
            # A subscription stored before it was checked as strictly: fail
            # this device, not the whole send.
            return Delivery(Outcome.FAILED, "invalid_subscription")
        headers = {
            **self._authorization(origin),
            "TTL": str(message.ttl),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Urgency": webpush_urgency(message),
        }
        if message.tag:
            headers["Topic"] = webpush_topic(message.tag)
        try:
            async with (
                asyncio.timeout(SEND_TIMEOUT),
                # A redirect could send the encrypted push anywhere: never follow.
                self._session.post(
                    endpoint, data=body, headers=headers, allow_redirects=False
                ) as response,
            ):
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except aiohttp.ClientConnectorDNSError:
            LOGGER.debug("Web Push service's host name did not resolve")
            return Delivery(Outcome.UNREACHABLE, "dns_error", retryable=True)
        except (aiohttp.ClientError, TimeoutError) as err:
            LOGGER.debug("Web Push connection failed: %s", type(err).__name__)
            return Delivery(Outcome.UNREACHABLE, "connection_error", retryable=True)
        return _delivery(status, retry_after, truncated)

    async def async_close(self) -> None:
        """Nothing to close: the aiohttp session is Home Assistant's."""


def _delivery(status: int, retry_after: str | None, truncated: bool) -> Delivery:
    """Map an RFC 8030 / UnifiedPush status to an outcome."""
    if 200 <= status < 300:
        return Delivery(Outcome.DELIVERED, status=status, truncated=truncated)
    if status in _GONE:
        return Delivery(Outcome.DEVICE_GONE, f"endpoint_gone_{status}", status=status)
    if status == 413:
        # Our payload limit should make this impossible: a bug, so say so loudly.
        LOGGER.error("Web Push service refused a payload as too large (413)")
        return Delivery(Outcome.FAILED, "payload_too_large", status=status)
    if status == 429:
        return Delivery(
            Outcome.FAILED,
            "too_many_requests",
            status=status,
            retry_after=_seconds(retry_after),
            retryable=True,
        )
    if status == 507:
        # ntfy: the topic has no subscriber right now; the device may come back.
        return Delivery(Outcome.FAILED, "no_subscriber", status=status)
    if 300 <= status < 400:
        return Delivery(Outcome.FAILED, "redirect_refused", status=status)
    if status >= 500:
        # RFC 9110: a 503 may say when to come back, as a 429 does.
        return Delivery(
            Outcome.FAILED,
            f"server_error_{status}",
            status=status,
            retry_after=_seconds(retry_after),
            retryable=True,
        )
    return Delivery(Outcome.FAILED, f"rejected_{status}", status=status)


def _seconds(retry_after: str | None) -> float | None:
    """Parse a Retry-After given in seconds; an HTTP date falls back to backoff."""
    if retry_after is None:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        return None
