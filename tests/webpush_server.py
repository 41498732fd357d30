"""A real Web Push receiver on 127.0.0.1 for the integration's tests.

It plays the push service (RFC 8030), e.g. a UnifiedPush distributor or a
browser's push service: it checks VAPID (RFC 8292) and the delivery headers,
then decrypts the aes128gcm body (RFC 8291) with the subscription's private
key exactly as the receiving user agent would. Tests can script error answers,
redirects and slow answers, and inspect what arrived.

Order of checks on ``POST /push/<id>``: unknown id (404), VAPID (401, 403),
delivery headers (400, 415), body size (413), scripted answer, decryption
(400), then 201 Created.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field
import json
import logging
import re
import secrets
import time
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
import http_ece

from .blackhole import Blackhole

_LOGGER = logging.getLogger(__name__)

# RFC 8030 section 7.2: push services must accept at least 4096 octets.
MAX_BODY = 4096
# RFC 8292 section 2: "exp" no more than 24 hours after the request.
MAX_VAPID_LIFETIME = 24 * 60 * 60
URGENCIES = frozenset({"very-low", "low", "normal", "high"})

_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_TOPIC_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_TTL_RE = re.compile(r"[0-9]+")
# aes128gcm header (RFC 8188 section 2.1): salt(16) rs(4) idlen(1) keyid.
_ECE_HEADER = 21
_P256_POINT = 65
# RFC 8188: a record holds at least the padding delimiter and the 16-byte tag.
_MIN_RECORD = 17


def b64url_encode(data: bytes) -> str:
    """Encode as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; ValueError if malformed."""
    # urlsafe_b64decode silently drops foreign characters, so check first.
    if not _B64URL_RE.fullmatch(text):
        raise ValueError("not base64url")
    stripped = text.rstrip("=")
    return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))


def _public_point(key: ec.EllipticCurvePublicKey) -> bytes:
    """Return the uncompressed P-256 point of a public key."""
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _load_point(text: str) -> ec.EllipticCurvePublicKey:
    """Load a base64url uncompressed P-256 point; ValueError if invalid."""
    raw = b64url_decode(text)
    if len(raw) != _P256_POINT or raw[0] != 0x04:
        raise ValueError("not an uncompressed P-256 point")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)


@dataclass(frozen=True)
class Subscription:
    """A push subscription as a user agent would hand it to the application."""

    id: str
    endpoint: str
    p256dh: str
    auth: str
    private_key: ec.EllipticCurvePrivateKey = field(repr=False, compare=False)
    name: str = ""
    application_server_key: str | None = None

    @property
    def auth_secret(self) -> bytes:
        """Return the 16-byte auth secret."""
        return b64url_decode(self.auth)

    def as_json(self) -> dict[str, Any]:
        """Return the W3C PushSubscription JSON (what pywebpush takes)."""
        return {
            "endpoint": self.endpoint,
            "keys": {"p256dh": self.p256dh, "auth": self.auth},
        }


@dataclass(frozen=True)
class ReceivedPush:
    """A push message the server accepted and decrypted."""

    subscription_id: str
    headers: dict[str, str]  # lower-cased names
    ttl: int
    urgency: str | None
    topic: str | None
    plaintext: bytes
    vapid_claims: dict[str, Any]
    vapid_key: str
    body: bytes = field(repr=False)
    received_at: float

    @property
    def json(self) -> Any:
        """Return the plaintext parsed as JSON."""
        return json.loads(self.plaintext)


@dataclass
class _Script:
    """A canned answer for one subscription."""

    status: int
    headers: dict[str, str]
    body: str
    remaining: int | None


class _RejectError(Exception):
    """A push the server refuses, with the status it answers."""

    def __init__(self, status: int, reason: str) -> None:
        """Store the status and the reason sent as the body."""
        super().__init__(reason)
        self.status = status
        self.reason = reason


class WebPushServer:
    """Push service on 127.0.0.1 that receives and decrypts Web Push messages."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Set up an unstarted server.

        `host` is the name its endpoints and VAPID audience use, as a push
        service's DNS name; it always listens on 127.0.0.1. Port 0 picks a
        free one at start.
        """
        self.host = host
        self.messages: list[ReceivedPush] = []
        self.rejections: list[tuple[str, int]] = []
        # Every request received, pushes or not.
        self.requests = 0
        # Pushes being answered now, and the most at once.
        self.in_flight = 0
        self.max_in_flight = 0
        # (method, path) of requests outside /push/, e.g. followed redirects.
        self.other_requests: list[tuple[str, str]] = []
        self.response_delay = 0.0
        # Real push services may take unauthenticated pushes to unrestricted
        # subscriptions; the integration always signs, so demand it by default.
        self.require_vapid = True
        # False closes every connection after its answer, so each push opens
        # (and resolves) a new one.
        self.keep_alive = True
        self._subscriptions: dict[str, Subscription] = {}
        self._scripts: dict[str, list[_Script]] = {}
        self._runner: web.AppRunner | None = None
        self._requested_port = port
        self._port: int | None = None
        self._stopping = asyncio.Event()
        # Faults, for the outbox's tests. Every push request as
        # (subscription id, Topic header), answered or not:
        self.received: list[tuple[str, str | None]] = []
        self._drops = 0
        self._blackhole = Blackhole()

    @property
    def port(self) -> int:
        """Return the bound port."""
        if self._port is None:
            raise RuntimeError("WebPushServer is not started")
        return self._port

    @property
    def origin(self) -> str:
        """Return the origin, which is also the VAPID audience."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Bind 127.0.0.1 on the port asked for (or the port it had, or a free one) and serve."""
        app = web.Application()
        app.router.add_post("/push/{sub_id}", self._handle_push)
        app.router.add_route("*", "/{tail:.*}", self._handle_other)
        app.on_response_prepare.append(self._on_response_prepare)
        # Short shutdown: a delayed handler must not hold up stop().
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(
            runner, "127.0.0.1", self._port or self._requested_port
        ).start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self._stopping.clear()

    async def go_down(self, *, hang: bool = False) -> None:
        """Refuse connections; with hang, accept them and never answer."""
        await self.stop()
        if hang:
            await self._blackhole.start(self.port)

    async def come_up(self) -> None:
        """Serve again on the same port."""
        await self._blackhole.stop()
        await self.start()

    def drop_next(self, n: int = 1) -> None:
        """Abort the connection instead of answering the next n pushes."""
        self._drops += n

    async def stop(self) -> None:
        """Stop serving."""
        await self._blackhole.stop()
        if self._runner is None:
            return
        # Wake handlers sleeping in response_delay so cleanup is quick.
        self._stopping.set()
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Self:
        """Start the server."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        await self.stop()

    def subscribe(
        self,
        name: str = "",
        *,
        application_server_key: str | None = None,
        keep: Subscription | None = None,
    ) -> Subscription:
        """Create a subscription with fresh user-agent keys.

        With application_server_key (base64url VAPID public key) the
        subscription is restricted: only pushes signed by that key pass.
        keep takes over the id and keys of an earlier server's subscription
        (the demo keeps its devices across restarts on the same port).
        """
        if application_server_key is not None:
            # PushManager.subscribe() refuses a malformed key the same way.
            _load_point(application_server_key)
        sub_id = keep.id if keep else secrets.token_urlsafe(16)
        private_key = (
            keep.private_key if keep else ec.generate_private_key(ec.SECP256R1())
        )
        sub = Subscription(
            id=sub_id,
            endpoint=f"{self.origin}/push/{sub_id}",
            p256dh=b64url_encode(_public_point(private_key.public_key())),
            auth=keep.auth if keep else b64url_encode(secrets.token_bytes(16)),
            private_key=private_key,
            name=name,
            application_server_key=application_server_key,
        )
        self._subscriptions[sub_id] = sub
        return sub

    def script(
        self,
        sub: Subscription | str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        body: str = "",
        times: int | None = None,
    ) -> None:
        """Answer pushes to sub with status instead of accepting them.

        Scripts queue per subscription; times=None lasts until clear_scripts().
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        self._scripts.setdefault(_sub_id(sub), []).append(
            _Script(status, dict(headers or {}), body, times)
        )

    def redirect(
        self,
        sub: Subscription | str,
        location: str | None = None,
        *,
        status: int = 307,
        times: int | None = None,
    ) -> str:
        """Answer pushes to sub with a redirect; return its Location.

        The default target lies outside /push/, so a client that follows it
        shows up in other_requests.
        """
        target = location or f"{self.origin}/redirected/{_sub_id(sub)}"
        self.script(sub, status, headers={"Location": target}, times=times)
        return target

    def clear_scripts(self) -> None:
        """Drop all scripted answers and redirects."""
        self._scripts.clear()

    def messages_for(self, sub: Subscription | str) -> list[ReceivedPush]:
        """Return the accepted pushes for one subscription."""
        sub_id = _sub_id(sub)
        return [msg for msg in self.messages if msg.subscription_id == sub_id]

    async def _on_response_prepare(
        self, _request: web.Request, response: web.StreamResponse
    ) -> None:
        if not self.keep_alive:
            response.force_close()

    async def _delay(self) -> None:
        """Sleep response_delay, or less if the server stops."""
        if self.response_delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.response_delay)

    async def _handle_other(self, request: web.Request) -> web.Response:
        """Record a request outside /push/ and answer 404."""
        self.requests += 1
        await request.read()
        self.other_requests.append((request.method, request.path))
        return web.Response(status=404, text="not found")

    async def _handle_push(self, request: web.Request) -> web.Response:
        """Receive one push message."""
        self.requests += 1
        sub_id = request.match_info["sub_id"]
        # Read it all first so every answer follows a complete request.
        body = await request.read()
        self.received.append((sub_id, request.headers.get("Topic")))
        if self._drops > 0 and request.transport is not None:
            self._drops -= 1
            request.transport.abort()
            raise web.HTTPServiceUnavailable  # never sent: the connection is gone
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self._delay()
        finally:
            self.in_flight -= 1
        try:
            outcome = self._receive(request, sub_id, body)
        except _RejectError as err:
            _LOGGER.debug("Push to %s refused (%s): %s", sub_id, err.status, err)
            self.rejections.append((sub_id, err.status))
            return web.Response(status=err.status, text=err.reason)
        if isinstance(outcome, _Script):
            self.rejections.append((sub_id, outcome.status))
            return web.Response(
                status=outcome.status, headers=outcome.headers, text=outcome.body
            )
        self.messages.append(outcome)
        # RFC 8030 section 5: Location names the push message resource.
        return web.Response(
            status=201,
            headers={
                "Location": f"{self.origin}/message/{secrets.token_urlsafe(12)}",
                "TTL": str(outcome.ttl),
            },
        )

    def _receive(
        self, request: web.Request, sub_id: str, body: bytes
    ) -> ReceivedPush | _Script:
        """Check and decrypt a push, unless a script answers it first."""
        sub = self._subscriptions.get(sub_id)
        if sub is None:
            raise _RejectError(404, "no such subscription")
        claims, key = self._check_vapid(request, sub)
        ttl, urgency, topic = _check_headers(request)
        if len(body) > MAX_BODY:
            raise _RejectError(413, f"body of {len(body)} bytes exceeds {MAX_BODY}")
        if (scripted := self._next_script(sub_id)) is not None:
            return scripted
        return ReceivedPush(
            subscription_id=sub_id,
            headers={k.lower(): v for k, v in request.headers.items()},
            ttl=ttl,
            urgency=urgency,
            topic=topic,
            plaintext=_decrypt(sub, body),
            vapid_claims=claims,
            vapid_key=key,
            body=body,
            received_at=time.time(),
        )

    def _next_script(self, sub_id: str) -> _Script | None:
        """Take the next scripted answer for a subscription, if any."""
        queue = self._scripts.get(sub_id)
        if not queue:
            return None
        scripted = queue[0]
        if scripted.remaining is not None:
            scripted.remaining -= 1
            if scripted.remaining == 0:
                queue.pop(0)
        return scripted

    def _check_vapid(
        self, request: web.Request, sub: Subscription
    ) -> tuple[dict[str, Any], str]:
        """Verify the VAPID authorization; return its claims and key."""
        credentials = _parse_authorization(request)
        if credentials is None:
            if self.require_vapid or sub.application_server_key is not None:
                raise _RejectError(401, "missing VAPID authorization")
            return {}, ""
        token, key = credentials
        # The audience is the origin the client pushed to (a name of ours, or our IP).
        claims = _verify_vapid_token(token, key, f"{request.scheme}://{request.host}")
        # Compare decoded points: padding may differ between encoders.
        wanted = sub.application_server_key
        if wanted is not None and b64url_decode(key) != b64url_decode(wanted):
            raise _RejectError(403, "VAPID key does not match the subscription")
        return claims, key


def _sub_id(sub: Subscription | str) -> str:
    """Return a subscription's id."""
    return sub.id if isinstance(sub, Subscription) else sub


def _parse_authorization(request: web.Request) -> tuple[str, str] | None:
    """Return (JWT, public key) from the VAPID headers, or None if absent.

    Accepts RFC 8292 ``vapid t=..., k=...`` and the draft-01 form that
    py_vapid's Vapid01 sends: ``WebPush <jwt>`` plus ``Crypto-Key: p256ecdsa=``.
    """
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() == "vapid":
        params: dict[str, str] = {}
        for part in rest.split(","):
            name, _, value = part.strip().partition("=")
            params[name.strip().lower()] = value.strip()
        if not params.get("t") or not params.get("k"):
            raise _RejectError(401, "vapid authorization needs t and k")
        return params["t"], params["k"]
    if scheme.lower() == "webpush":
        # Crypto-Key items are split by ';' or ',' depending on the sender.
        for item in re.split(r"[;,]", request.headers.get("Crypto-Key", "")):
            name, _, value = item.strip().partition("=")
            if name.lower() == "p256ecdsa" and value and rest.strip():
                return rest.strip(), value.strip()
        raise _RejectError(401, "WebPush authorization needs Crypto-Key p256ecdsa")
    raise _RejectError(401, f"unsupported authorization scheme {scheme!r}")


def _verify_vapid_token(token: str, key: str, audience: str) -> dict[str, Any]:
    """Verify an ES256 VAPID JWT signed by key; return its claims."""
    try:
        public_key = _load_point(key)
        header_b64, claims_b64, sig_b64 = token.split(".")
        header = json.loads(b64url_decode(header_b64))
        claims = json.loads(b64url_decode(claims_b64))
        signature = b64url_decode(sig_b64)
    except ValueError as err:
        raise _RejectError(401, f"malformed VAPID token or key: {err}") from None
    if not isinstance(header, dict) or header.get("alg") != "ES256":
        raise _RejectError(401, "VAPID token must be ES256")
    if len(signature) != 64:
        raise _RejectError(401, "ES256 signature must be 64 bytes")
    # JWS carries r||s; cryptography wants DER.
    der = utils.encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public_key.verify(
            der,
            f"{header_b64}.{claims_b64}".encode("ascii"),
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature:
        raise _RejectError(401, "bad VAPID signature") from None
    if not isinstance(claims, dict):
        raise _RejectError(401, "VAPID claims must be an object")
    if claims.get("aud") != audience:
        raise _RejectError(401, f"VAPID aud {claims.get('aud')!r} is not {audience!r}")
    exp = claims.get("exp")
    now = time.time()
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise _RejectError(401, "VAPID exp missing")
    if exp <= now:
        raise _RejectError(401, "VAPID token expired")
    if exp > now + MAX_VAPID_LIFETIME:
        raise _RejectError(401, "VAPID exp more than 24 hours ahead")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
        raise _RejectError(401, "VAPID sub must be a mailto: or https: URI")
    return claims


def _check_headers(request: web.Request) -> tuple[int, str | None, str | None]:
    """Check the RFC 8030 delivery headers; return TTL, Urgency and Topic."""
    ttl = request.headers.get("TTL")
    if ttl is None or not _TTL_RE.fullmatch(ttl):
        raise _RejectError(400, "TTL must be a non-negative integer")
    encoding = request.headers.get("Content-Encoding")
    if encoding is None:
        raise _RejectError(400, "Content-Encoding missing")
    if encoding.strip().lower() != "aes128gcm":
        raise _RejectError(415, f"Content-Encoding {encoding!r} is not aes128gcm")
    urgency = request.headers.get("Urgency")
    if urgency is not None and urgency not in URGENCIES:
        raise _RejectError(400, f"bad Urgency {urgency!r}")
    topic = request.headers.get("Topic")
    if topic is not None and not _TOPIC_RE.fullmatch(topic):
        raise _RejectError(400, f"bad Topic {topic!r}")
    return int(ttl), urgency, topic


def _decrypt(sub: Subscription, body: bytes) -> bytes:
    """Decrypt an aes128gcm body as the user agent would (RFC 8291)."""
    if len(body) < _ECE_HEADER:
        raise _RejectError(400, "body too short for an aes128gcm header")
    record_size = int.from_bytes(body[16:20], "big")
    keyid_len = body[20]
    # RFC 8291 section 4: keyid is the sender's P-256 point, one record only.
    if keyid_len != _P256_POINT:
        raise _RejectError(400, "keyid must be an uncompressed P-256 point")
    record = len(body) - _ECE_HEADER - keyid_len
    if record_size <= _MIN_RECORD or not _MIN_RECORD <= record <= record_size:
        raise _RejectError(400, "aes128gcm body must be a single record")
    try:
        plaintext: bytes = http_ece.decrypt(
            body,
            private_key=sub.private_key,
            auth_secret=sub.auth_secret,
            version="aes128gcm",
        )
    except (http_ece.ECEException, ValueError) as err:
        raise _RejectError(400, f"decryption failed: {err}") from None
    return plaintext
