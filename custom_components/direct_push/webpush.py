"""Web Push backend (RFC 8030, 8291, 8292): UnifiedPush distributors and browsers."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
import ipaddress
import os
import re
import socket
import time
from typing import Any, Final, override
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import (
    SERVER_SOFTWARE,
    HomeAssistantTCPConnector,
    async_get_clientsession,
)
from homeassistant.util.ssl import client_context
from py_vapid import Vapid02
from py_vapid.jwt import sign as sign_jwt
from py_vapid.utils import b64urlencode
import voluptuous as vol
from yarl import URL

from .backend import Delivery, Device, Outcome, PushBackendDescription, redact_token
from .const import (
    CONF_ALLOW_LOCAL_PUSH_SERVICES,
    CONF_AUTH,
    CONF_ENDPOINT,
    CONF_P256DH,
    CONF_SUBSCRIPTION,
    CONF_TRUST,
    CONF_VAPID_PRIVATE_KEY,
    LOGGER,
)
from .endpoint_policy import (
    AddressRule,
    EndpointPolicy,
    EndpointRefusedError,
    OwnServer,
    PolicyResolver,
    Trust,
    check_endpoint,
)
from .json_input import MAX_SUBSCRIPTION_JSON, parse_json
from .message import (
    WEBPUSH_MAX_PLAINTEXT,
    Message,
    MessageError,
    build_webpush_payload,
    check_webpush_message,
    payload_json,
    webpush_topic,
    webpush_urgency,
)
from .validation import InputError

SUBENTRY_WEBPUSH: Final = "webpush_device"
SEND_TIMEOUT: Final = 30
# Connections to one push service at a time; more only add TLS handshakes
# (bench/bench_transport.py, bench/bench_webpush.py).
CONNECTIONS_PER_HOST: Final = 100
# The contact claim push services may use to reach the sender's operator.
VAPID_SUBJECT: Final = "https://github.com/direct-push/direct_push"
# RFC 8292 allows at most 24 h; sign for 12 h and reuse a token for 11.
VAPID_LIFETIME: Final = 12 * 3600
VAPID_REUSE: Final = 11 * 3600
_GONE: Final = {404, 410}
# A device added in a form: an admin added it.
_ADMIN_ADDED: Final = EndpointPolicy()
_BASE64_RE: Final = re.compile(r"[A-Za-z0-9_+/-]*")
# RFC 8291 section 3.1: the user agent's key is an uncompressed P-256 point.
_P256_POINT: Final = 65
# RFC 8188's record size: every body is one record of at most this many bytes.
_RECORD_SIZE: Final = 4096
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


class SubscriptionError(InputError):
    """A subscription that cannot work; `key` is the translation key, `field` the form field."""


def _b64url(value: str) -> bytes:
    """Decode base64url, or standard base64, padded or not; ValueError if malformed.

    A key copied from an app may carry line breaks, padding or "+/": decode it
    strictly here, so what is stored is what is decoded the same way at every send.
    """
    text = "".join(value.split()).rstrip("=")
    if not _BASE64_RE.fullmatch(text):
        raise ValueError("not base64")
    text = text.replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_subscription(
    endpoint: str, p256dh: str, auth: str, policy: EndpointPolicy = _ADMIN_ADDED
) -> dict[str, str]:
    """Check a push subscription's endpoint and keys; return them cleaned.

    The endpoint meets the same policy again at every send.
    """
    endpoint = endpoint.strip()
    try:
        check_endpoint(endpoint, policy, CONF_ENDPOINT)
    except InputError as err:
        raise SubscriptionError(CONF_ENDPOINT, err.key, **err.placeholders) from err
    try:
        point = _b64url(p256dh)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as err:
        raise SubscriptionError(CONF_P256DH, "invalid_p256dh") from err
    # A compressed point is a valid key, but RFC 8291 derives from the uncompressed one.
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


def parse_subscription_json(
    text: str, policy: EndpointPolicy = _ADMIN_ADDED
) -> dict[str, str]:
    """Read the W3C PushSubscription JSON that apps and browsers hand out."""
    try:
        # Within limits: json.loads recurses, and a pasted text may be anything.
        value = parse_json(text, CONF_SUBSCRIPTION, max_bytes=MAX_SUBSCRIPTION_JSON)
    except InputError as err:
        if err.key == "invalid_json":
            # Not JSON at all: the message shows what to paste instead.
            raise SubscriptionError(CONF_SUBSCRIPTION, "invalid_subscription") from err
        # Too large, too deep, a broken character: each says what to fix.
        raise SubscriptionError(CONF_SUBSCRIPTION, err.key, **err.placeholders) from err
    try:
        fields = (value["endpoint"], value["keys"]["p256dh"], value["keys"]["auth"])
    except (KeyError, TypeError) as err:
        raise SubscriptionError(CONF_SUBSCRIPTION, "invalid_subscription") from err
    if not all(isinstance(field, str) for field in fields):
        raise SubscriptionError(CONF_SUBSCRIPTION, "invalid_subscription")
    try:
        return parse_subscription(*fields, policy)
    except SubscriptionError as err:
        # Say what is wrong next to the field the user pasted into.
        raise SubscriptionError(CONF_SUBSCRIPTION, err.key, **err.placeholders) from err


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


def own_server(hass: HomeAssistant) -> OwnServer | None:
    """Return Home Assistant's HTTP server, when it runs one."""
    if (api := hass.config.api) is None:
        return None
    # The address Home Assistant found it is reached at; loopback is implied.
    return OwnServer(api.port, frozenset({ipaddress.ip_address(api.local_ip)}))


def admin_policy(hass: HomeAssistant) -> EndpointPolicy:
    """Return the policy for a device an admin adds or renews in a form."""
    return EndpointPolicy(own_server=own_server(hass))


def _device_policy(hub_policy: EndpointPolicy, device: Device) -> EndpointPolicy:
    """Return the policy for one device: anything but an admin's gets the strict one."""
    if device.config.get(CONF_TRUST, Trust.ADMIN) == Trust.ADMIN:
        return hub_policy
    return replace(hub_policy, trust=Trust.SELF_REGISTERED)


class _HassResolver(AbstractResolver):
    """Resolve as Home Assistant's own client session does.

    Through its connector: DNS, mDNS for a distributor at a .local name, and
    its DNS cache.
    """

    def __init__(self, connector: HomeAssistantTCPConnector) -> None:
        """Use Home Assistant's shared connector."""
        self._connector = connector

    @override
    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=result["hostname"],
                host=result["host"],
                port=port,
                family=result["family"],
                proto=result["proto"],
                flags=result["flags"],
            )
            for result in await self._connector.async_resolve_host(host)
        ]

    @override
    async def close(self) -> None:
        """Leave Home Assistant's connector open."""


@dataclass(frozen=True, slots=True)
class _Subscription:
    """One device's subscription, checked against the policy and decoded."""

    source: tuple[str, str, str, str]
    """What it was made from: endpoint, keys and trust, as stored."""
    url: URL
    origin: str
    rule: AddressRule
    receiver_point: bytes
    receiver_key: ec.EllipticCurvePublicKey
    auth_secret: bytes


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(hashes.SHA256(), length, salt, info).derive(ikm)


def _encrypt(subscription: _Subscription, plaintext: bytes) -> bytes:
    """Encrypt a push for one subscription: RFC 8291, aes128gcm (RFC 8188).

    A new ephemeral key pair for every push, as RFC 8291 requires. One record:
    the payload limit (WEBPUSH_MAX_PLAINTEXT) keeps the body within 4096 bytes.
    """
    assert len(plaintext) <= WEBPUSH_MAX_PLAINTEXT
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_point = server_key.public_key().public_bytes(
        Encoding.X962, PublicFormat.UncompressedPoint
    )
    shared = server_key.exchange(ec.ECDH(), subscription.receiver_key)
    # RFC 8291 section 3.4: the key info names both public keys.
    ikm = _hkdf(
        subscription.auth_secret,
        shared,
        b"WebPush: info\x00" + subscription.receiver_point + server_point,
        32,
    )
    salt = os.urandom(16)
    key = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    # RFC 8188: salt, record size, key id (our public key), then the one
    # record, ended by the last-record delimiter 0x02.
    header = salt + _RECORD_SIZE.to_bytes(4, "big") + bytes([len(server_point)])
    return header + server_point + AESGCM(key).encrypt(nonce, plaintext + b"\x02", None)


class WebPushBackend:
    """Deliver to Web Push endpoints, reaching only what the endpoint policy allows."""

    def __init__(
        self, vapid: Vapid02, resolver: AbstractResolver, policy: EndpointPolicy
    ) -> None:
        """Use async_create. `policy` is the hub's, for devices an admin added."""
        self._vapid = vapid
        self._public_key = _application_server_key(vapid)
        self._resolver = resolver
        self._policy = policy
        self._sessions: dict[AddressRule, aiohttp.ClientSession] = {}
        # Signed VAPID headers per push service origin, with their signing time.
        self._vapid_headers: dict[str, tuple[float, dict[str, str]]] = {}
        self._subscriptions: dict[str, _Subscription] = {}

    @classmethod
    async def async_create(
        cls, hass: HomeAssistant, data: Mapping[str, Any], options: Mapping[str, Any]
    ) -> WebPushBackend:
        """Load the hub's VAPID key in the executor."""
        raw: str = data[CONF_VAPID_PRIVATE_KEY]
        vapid = await hass.async_add_executor_job(Vapid02.from_raw, raw.encode())
        connector = async_get_clientsession(hass).connector
        assert isinstance(connector, HomeAssistantTCPConnector)
        policy = EndpointPolicy(
            allow_local_network=bool(options.get(CONF_ALLOW_LOCAL_PUSH_SERVICES)),
            own_server=own_server(hass),
        )
        return cls(vapid, _HassResolver(connector), policy)

    def _session(self, rule: AddressRule) -> aiohttp.ClientSession:
        """Return the session for one rule.

        Not Home Assistant's shared session: its connector would resolve
        without the policy. One per rule, so a pooled connection only ever
        carries pushes its rule allows; there are at most three.
        """
        if (session := self._sessions.get(rule)) is None:
            session = self._sessions[rule] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    ssl=client_context(),
                    resolver=PolicyResolver(self._resolver, rule),
                    # Home Assistant's connector behind the resolver caches.
                    use_dns_cache=False,
                    # Per push service, not per session: the devices on one
                    # service do not hold up those on another.
                    limit=0,
                    limit_per_host=CONNECTIONS_PER_HOST,
                ),
                headers={"User-Agent": SERVER_SOFTWARE},
            )
        return session

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

    def _subscription(self, device: Device) -> _Subscription:
        """Return a device's subscription, checked and decoded once for this backend.

        Checked again after every reload: the policy or Home Assistant's port
        may have changed since the device was added. Raises InputError for an
        endpoint the policy refuses, ValueError for keys that do not decode.
        """
        config = device.config
        source = (
            config[CONF_ENDPOINT],
            config[CONF_P256DH],
            config[CONF_AUTH],
            config.get(CONF_TRUST, Trust.ADMIN),
        )
        found = self._subscriptions.get(device.device_id)
        if found is None or found.source != source:
            endpoint = source[0]
            policy = _device_policy(self._policy, device)
            url = check_endpoint(endpoint, policy)
            point = _b64url(config[CONF_P256DH])
            # RFC 8291 derives the keys from the uncompressed point: encrypted
            # to a compressed one, the browser could not read the push.
            if len(point) != _P256_POINT:
                raise ValueError("not an uncompressed P-256 point")
            found = self._subscriptions[device.device_id] = _Subscription(
                source,
                url,
                _origin(endpoint),
                policy.rule(url.scheme),
                point,
                ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point),
                _b64url(config[CONF_AUTH]),
            )
        return found

    async def async_send(self, device: Device, message: Message) -> Delivery:
        """Encrypt and post once; map the push service's answer to an outcome."""
        try:
            payload, truncated = build_webpush_payload(message)
            plaintext = payload_json(payload)
        except MessageError as err:  # checked before sending: a second guard
            return Delivery(Outcome.FAILED, err.key)
        try:
            subscription = self._subscription(device)
        except InputError as err:
            return _refused(err.key)
        except ValueError:
            # A subscription stored before it was checked as strictly: fail
            # this device, not the whole send.
            return Delivery(Outcome.FAILED, "invalid_subscription")
        body = _encrypt(subscription, plaintext)
        origin = subscription.origin
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
                self._session(subscription.rule).post(
                    subscription.url, data=body, headers=headers, allow_redirects=False
                ) as response,
            ):
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as err:
            if isinstance(err, aiohttp.ClientConnectorError) and isinstance(
                err.os_error, EndpointRefusedError
            ):
                # The name resolved to an address the policy refuses.
                return _refused(err.os_error.key)
            if isinstance(err, aiohttp.ClientConnectorDNSError):
                LOGGER.debug("Web Push service's host name did not resolve")
                return Delivery(Outcome.UNREACHABLE, "dns_error", retryable=True)
            LOGGER.debug("Web Push connection failed: %s", type(err).__name__)
            return Delivery(Outcome.UNREACHABLE, "connection_error", retryable=True)
        return _delivery(status, retry_after, truncated)

    async def async_close(self) -> None:
        """Close this backend's sessions; Home Assistant's resolver stays."""
        sessions = list(self._sessions.values())
        self._sessions.clear()
        for session in sessions:
            await session.close()


def _refused(key: str) -> Delivery:
    """Fail one device whose endpoint the policy refuses; never retried."""
    # The reason only: the endpoint and its address are the device's secret.
    LOGGER.debug("Web Push endpoint refused: %s", key)
    return Delivery(Outcome.FAILED, "endpoint_refused")


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


async def _async_create_backend(
    hass: HomeAssistant, data: Mapping[str, Any], options: Mapping[str, Any]
) -> WebPushBackend | None:
    """Build the hub's Web Push backend, if the hub has its VAPID key."""
    if CONF_VAPID_PRIVATE_KEY not in data:
        return None
    return await WebPushBackend.async_create(hass, data, options)


def _log_id(data: Mapping[str, Any]) -> str:
    """The push service's host and the end of the endpoint's path (its secret)."""
    parts = urlsplit(str(data.get(CONF_ENDPOINT, "")))
    return f"{parts.hostname or ''} {redact_token(parts.path)}"


def _renew(
    hass: HomeAssistant,
    user_input: Mapping[str, Any],
    data: Mapping[str, Any],
    others: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """Take the app's new subscription."""
    subscription = parse_subscription_json(
        user_input[CONF_SUBSCRIPTION], admin_policy(hass)
    )
    endpoint = subscription[CONF_ENDPOINT]
    if endpoint == data.get(CONF_ENDPOINT):
        raise InputError(CONF_SUBSCRIPTION, "same_endpoint")
    if any(other.get(CONF_ENDPOINT) == endpoint for other in others):
        raise InputError(CONF_SUBSCRIPTION, "endpoint_in_use")
    return {**data, **subscription}


async def _async_diagnostics(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> dict[str, Any]:
    """The hub's application server key: public by design, apps subscribe with it."""
    public_key = None
    if private_key := data.get(CONF_VAPID_PRIVATE_KEY):
        public_key = await hass.async_add_executor_job(vapid_public_key, private_key)
    return {"vapid_public_key": public_key}


WEB_PUSH: Final = PushBackendDescription(
    kind=SUBENTRY_WEBPUSH,
    model="Web Push",
    async_create=_async_create_backend,
    check_message=check_webpush_message,
    log_id=_log_id,
    # An endpoint is a capability: whoever has it can push.
    secrets=frozenset({CONF_VAPID_PRIVATE_KEY, CONF_ENDPOINT, CONF_P256DH, CONF_AUTH}),
    renew_field=CONF_SUBSCRIPTION,
    renew_schema=lambda data: vol.Schema(
        {vol.Required(CONF_SUBSCRIPTION, default=""): str}
    ),
    renew=_renew,
    async_diagnostics=_async_diagnostics,
)
