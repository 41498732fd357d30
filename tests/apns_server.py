"""A local Apple Push Notification service (APNs) for the tests.

HTTP/2 over TLS on 127.0.0.1, built on h2 directly, answering like Apple does
so that the real aioapns client can be driven end to end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
import ipaddress
import json
import logging
from pathlib import Path
import re
import ssl
import time
from types import TracebackType
from typing import Any, Final, Self, TypedDict, Unpack
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes, Settings
import jwt

from .blackhole import Blackhole

_LOGGER = logging.getLogger(__name__)

KEY_ID: Final = "ABC123DEFG"
TEAM_ID: Final = "DEF123GHIJ"
PRODUCTION_HOST: Final = "api.push.apple.com"
SANDBOX_HOSTS: Final = frozenset(
    {"api.development.push.apple.com", "api.sandbox.push.apple.com"}
)
ENVIRONMENTS: Final = frozenset({"production", "sandbox"})
PUSH_TYPES: Final = frozenset(
    {
        "alert",
        "background",
        "voip",
        "complication",
        "fileprovider",
        "mdm",
        "liveactivity",
        "location",
        "pushtotalk",
        "widgets",
    }
)
PRIORITIES: Final = frozenset({"1", "5", "10"})
MAX_PAYLOAD: Final = 4096
MAX_VOIP_PAYLOAD: Final = 5120
MAX_COLLAPSE_ID: Final = 64
TOKEN_MAX_AGE: Final = 3600.0
TOKEN_MAX_SKEW: Final = 60.0
TOKEN_REFRESH_INTERVAL: Final = 20 * 60.0
MAX_CONCURRENT_STREAMS: Final = 1000
# Extra connection-level receive window, so many concurrent 4 KB bodies never
# stall behind WINDOW_UPDATE round trips (aioapns ignores flow control).
CONNECTION_WINDOW: Final = 16 * 1024 * 1024

# Apple marks push certificates for the sandbox, for production, and the
# topics of universal ones (Apple WWDR certification practice statement).
APNS_DEVELOPMENT_OID: Final = x509.ObjectIdentifier("1.2.840.113635.100.6.3.1")
APNS_PRODUCTION_OID: Final = x509.ObjectIdentifier("1.2.840.113635.100.6.3.2")
APNS_TOPICS_OID: Final = x509.ObjectIdentifier("1.2.840.113635.100.6.3.6")

_DEVICE_PATH: Final = "/3/device/"
_TOKEN_RE: Final = re.compile(r"(?:[0-9a-fA-F]{2}){32,100}")
_UUID_RE: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
# Fixed validity, so certificates made under freezegun still pass OpenSSL,
# which checks against the real clock.
_NOT_BEFORE: Final = datetime(2000, 1, 1, tzinfo=UTC)
_NOT_AFTER: Final = datetime(2099, 12, 31, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ApnsTestCredentials:
    """Provider key, push certificate and TLS files for one test server."""

    key_pem: str
    key_id: str
    team_id: str
    topic: str
    cert_pem: str
    ca_file: Path
    server_cert_file: Path
    server_key_file: Path
    # The test CA, to issue more push certificates the server trusts.
    ca_cert_pem: str = field(repr=False)
    ca_key_pem: str = field(repr=False)


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    """Serialize a private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _issue(
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    extensions: Iterable[tuple[x509.ExtensionType, bool]],
    *,
    not_before: datetime = _NOT_BEFORE,
    not_after: datetime = _NOT_AFTER,
) -> x509.Certificate:
    """Build a certificate; issuer None means self-signed."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
    )
    if issuer is not None:
        # Python 3.13 verifies with X509_STRICT, which requires the AKI.
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            False,
        )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    return builder.sign(issuer_key, hashes.SHA256())


def _key_usage(*, digital_signature: bool, cert_sign: bool) -> x509.KeyUsage:
    """Return a KeyUsage extension for a leaf or a CA."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_credentials(
    directory: Path, topic: str = "com.example.app"
) -> ApnsTestCredentials:
    """Generate a test CA, server certificate, provider key and push certificate.

    Blocking (key generation and file writes): call it from an executor.
    """
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Direct Push Test APNs CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Direct Push Tests"),
        ]
    )
    ca_cert = _issue(
        ca_name,
        ca_key.public_key(),
        None,
        ca_key,
        [
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (_key_usage(digital_signature=False, cert_sign=True), True),
        ],
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _issue(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, PRODUCTION_HOST)]),
        server_key.public_key(),
        ca_cert,
        ca_key,
        [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (_key_usage(digital_signature=True, cert_sign=False), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (
                x509.SubjectAlternativeName(
                    [
                        *(
                            x509.DNSName(name)
                            for name in (PRODUCTION_HOST, *sorted(SANDBOX_HOSTS))
                        ),
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                False,
            ),
        ],
    )

    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "apns_ca.pem"
    server_cert_file = directory / "apns_server.pem"
    server_key_file = directory / "apns_server_key.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    server_key_file.write_text(_pem(server_key))

    ca_key_pem = _pem(ca_key)
    ca_cert_pem = ca_cert.public_bytes(serialization.Encoding.PEM).decode()
    return ApnsTestCredentials(
        key_pem=_pem(ec.generate_private_key(ec.SECP256R1())),
        key_id=KEY_ID,
        team_id=TEAM_ID,
        topic=topic,
        cert_pem=_push_certificate(ca_cert, ca_key, topic),
        ca_file=ca_file,
        server_cert_file=server_cert_file,
        server_key_file=server_key_file,
        ca_cert_pem=ca_cert_pem,
        ca_key_pem=ca_key_pem,
    )


class PushCertificateOptions(TypedDict, total=False):
    """How a test push certificate differs from make_credentials' own."""

    kind: str | None
    """"development", "production" or "universal": Apple's extensions for it."""
    common_name: str | None
    not_before: datetime
    not_after: datetime
    password: bytes
    """Encrypt the key, as an export without `-nodes` does."""
    key_first: bool
    chain: bool
    """Apple's intermediate certificate first, as some exports have it."""


def issue_push_certificate(
    credentials: ApnsTestCredentials, **options: Unpack[PushCertificateOptions]
) -> str:
    """Issue another push certificate the server trusts, with its key, in one PEM.

    Blocking (RSA key generation).
    """
    ca_cert = x509.load_pem_x509_certificate(credentials.ca_cert_pem.encode())
    ca_key = serialization.load_pem_private_key(
        credentials.ca_key_pem.encode(), password=None
    )
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    return _push_certificate(ca_cert, ca_key, credentials.topic, **options)


def _push_certificate(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    topic: str,
    **options: Unpack[PushCertificateOptions],
) -> str:
    """A push certificate and its key as `openssl pkcs12` writes them."""
    # Apple's push certificates carry RSA 2048 keys and UID = bundle id.
    client_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kind = options.get("kind")
    common_name = options.get("common_name") or (
        f"Apple Development IOS Push Services: {topic}"
        if kind in (None, "development")
        else f"Apple Push Services: {topic}"
    )
    client_cert = _issue(
        x509.Name(
            [
                x509.NameAttribute(NameOID.USER_ID, topic),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEAM_ID),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Developer"),
                x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            ]
        ),
        client_key.public_key(),
        ca_cert,
        ca_key,
        [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (_key_usage(digital_signature=True, cert_sign=False), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
            *(
                (x509.UnrecognizedExtension(oid, value), False)
                for oid, value in _push_extensions(kind, topic)
            ),
        ],
        not_before=options.get("not_before", _NOT_BEFORE),
        not_after=options.get("not_after", _NOT_AFTER),
    )
    cert_pem = client_cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = client_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password)
        if (password := options.get("password"))
        else serialization.NoEncryption(),
    ).decode()
    blocks = [cert_pem, key_pem]
    if options.get("key_first"):
        blocks.reverse()
    if options.get("chain"):
        blocks.insert(0, ca_cert.public_bytes(serialization.Encoding.PEM).decode())
    return "".join(blocks)


def _push_extensions(
    kind: str | None, topic: str
) -> list[tuple[x509.ObjectIdentifier, bytes]]:
    """The extensions Apple puts on each kind of push certificate (DER values)."""
    null = b"\x05\x00"
    topics = topic.encode()
    # SEQUENCE { UTF8String topic, SEQUENCE { UTF8String "app" } }
    app = b"\x0c" + bytes([len(topics)]) + topics + b"\x30\x05\x0c\x03app"
    topics_value = b"\x30" + bytes([len(app)]) + app
    return {
        None: [],
        "development": [(APNS_DEVELOPMENT_OID, null)],
        "production": [(APNS_PRODUCTION_OID, null)],
        "universal": [
            (APNS_DEVELOPMENT_OID, null),
            (APNS_PRODUCTION_OID, null),
            (APNS_TOPICS_OID, topics_value),
        ],
    }[kind]


@dataclass(slots=True)
class ApnsPush:
    """A push notification the server accepted."""

    token: str
    topic: str
    push_type: str
    priority: int | None
    expiration: int | None
    collapse_id: str | None
    apns_id: str
    payload: dict[str, Any]
    raw: bytes
    headers: dict[str, str]
    host: str
    auth: str
    received_at: float = 0.0
    """time.perf_counter() when the request's last byte arrived."""

    @property
    def environment(self) -> str:
        """Return "sandbox" or "production", from the host the client named."""
        return _environment(self.host)

    @property
    def stored(self) -> bool:
        """Whether Apple keeps the push for an offline device: not with expiration 0."""
        return self.expiration != 0


def _host(headers: dict[str, str]) -> str:
    """Return the host a request names."""
    return headers.get("host") or headers.get(":authority", "")


def _environment(host: str) -> str:
    """Return the environment a request's host names."""
    return (
        "sandbox" if host.partition(":")[0].lower() in SANDBOX_HOSTS else "production"
    )


def _certificate_environments(cert: x509.Certificate) -> frozenset[str]:
    """Where Apple accepts a client certificate, by the extensions it carries."""
    oids = {extension.oid for extension in cert.extensions}
    environments = set()
    if oids & {APNS_DEVELOPMENT_OID, APNS_TOPICS_OID}:
        environments.add("sandbox")
    if oids & {APNS_PRODUCTION_OID, APNS_TOPICS_OID}:
        environments.add("production")
    return frozenset(environments) or ENVIRONMENTS


@dataclass(slots=True)
class _Request:
    """One HTTP/2 request being received."""

    stream_id: int
    headers: list[tuple[str, str]]
    body: bytearray = field(default_factory=bytearray)
    received_at: float = 0.0


@dataclass(slots=True)
class _Script:
    """A scripted error answer for one device token."""

    status: int
    reason: str
    remaining: int | None


class _RejectError(Exception):
    """Abort validation with an APNs error answer."""

    def __init__(self, status: int, reason: str) -> None:
        """Store the status and reason."""
        super().__init__(status, reason)
        self.status = status
        self.reason = reason


type _RequestHandler = Callable[
    ["_ApnsConnection", _Request], Coroutine[Any, Any, None]
]


class _ApnsConnection(asyncio.Protocol):
    """One client connection: h2 framing, flow control and stream bookkeeping."""

    def __init__(
        self,
        on_open: Callable[[_ApnsConnection], None],
        on_close: Callable[[_ApnsConnection], None],
        on_request: _RequestHandler,
    ) -> None:
        """Initialize the connection state."""
        self._on_open = on_open
        self._on_close = on_close
        self._on_request = on_request
        self._h2 = H2Connection(
            H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self._transport: asyncio.Transport | None = None
        self._requests: dict[int, _Request] = {}
        self._outbound: dict[int, bytes] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.peer_topic: str | None = None
        # Where the client certificate may push; unmarked test certificates anywhere.
        self.peer_environments: frozenset[str] = ENVIRONMENTS

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send our preface and note the client certificate's topic, if any."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            der = ssl_object.getpeercert(binary_form=True)
            if der:
                peer = x509.load_der_x509_certificate(der)
                uid = peer.subject.get_attributes_for_oid(NameOID.USER_ID)
                if uid:
                    value = uid[0].value
                    self.peer_topic = (
                        value.decode() if isinstance(value, bytes) else value
                    )
                self.peer_environments = _certificate_environments(peer)
        self._h2.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
                SettingCodes.MAX_HEADER_LIST_SIZE: H2Connection.DEFAULT_MAX_HEADER_LIST_SIZE,
            },
        )
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(CONNECTION_WINDOW)
        self._flush()
        self._on_open(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection and cancel requests still being answered."""
        _LOGGER.debug("APNs test connection lost: %s", exc)
        self._transport = None
        for task in self._tasks:
            task.cancel()
        if not self.closed.done():
            self.closed.set_result(None)
        self._on_close(self)

    def data_received(self, data: bytes) -> None:
        """Feed bytes to h2 and act on the resulting events."""
        try:
            events = self._h2.receive_data(data)
        except ProtocolError:
            _LOGGER.debug("APNs test connection protocol error", exc_info=True)
            self._flush()
            self.abort()
            return
        for event in events:
            if not self._handle(event):
                return
        self._flush()

    def _handle(self, event: Event) -> bool:
        """Act on one h2 event; return False once the connection is closing."""
        if isinstance(event, RequestReceived):
            assert event.stream_id is not None
            self._requests[event.stream_id] = _Request(
                event.stream_id,
                [(str(name), str(value)) for name, value in event.headers or []],
            )
        elif isinstance(event, DataReceived):
            assert event.stream_id is not None
            if (request := self._requests.get(event.stream_id)) is not None:
                request.body += event.data or b""
            # Hand the window back at once, so large and many bodies flow.
            self._h2.acknowledge_received_data(
                event.flow_controlled_length or 0, event.stream_id
            )
        elif isinstance(event, StreamEnded):
            assert event.stream_id is not None
            if (request := self._requests.pop(event.stream_id, None)) is not None:
                request.received_at = time.perf_counter()
                task = asyncio.get_running_loop().create_task(
                    self._on_request(self, request)
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        elif isinstance(event, StreamReset):
            assert event.stream_id is not None
            self._requests.pop(event.stream_id, None)
            self._outbound.pop(event.stream_id, None)
        elif isinstance(event, WindowUpdated):
            for stream_id in list(self._outbound):
                self._send_outbound(stream_id)
        elif isinstance(event, ConnectionTerminated):
            self._flush()
            if self._transport is not None:
                self._transport.close()
            return False
        return True

    def respond(
        self, stream_id: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        """Send a response; no-op if the stream or connection is gone."""
        if self._transport is None or self._transport.is_closing():
            return
        try:
            self._h2.send_headers(stream_id, headers, end_stream=not body)
        except ProtocolError:
            _LOGGER.debug("Stream %s closed before the answer", stream_id)
            return
        if body:
            self._outbound[stream_id] = body
            self._send_outbound(stream_id)
        self._flush()

    def _send_outbound(self, stream_id: int) -> None:
        """Send as much of a stream's pending body as the peer's window allows."""
        data = self._outbound[stream_id]
        try:
            window = self._h2.local_flow_control_window(stream_id)
            while data and window > 0:
                size = min(len(data), window, self._h2.max_outbound_frame_size)
                chunk, data = data[:size], data[size:]
                self._h2.send_data(stream_id, chunk, end_stream=not data)
                window -= size
        except ProtocolError:
            _LOGGER.debug("Stream %s closed while answering", stream_id)
            data = b""
        if data:
            self._outbound[stream_id] = data
        else:
            del self._outbound[stream_id]

    def _flush(self) -> None:
        """Write whatever h2 has queued."""
        if (pending := self._h2.data_to_send()) and self._transport is not None:
            self._transport.write(pending)

    def goaway(self, last_stream_id: int | None = None) -> None:
        """Close cleanly: GOAWAY, then close the TLS connection.

        Streams after last_stream_id (default: the last one received) are left
        unanswered, as unprocessed.
        """
        if self._transport is None or self._transport.is_closing():
            return
        for task in self._tasks:
            task.cancel()
        self._h2.close_connection(ErrorCodes.NO_ERROR, last_stream_id=last_stream_id)
        self._flush()
        self._transport.close()

    def reset(self, stream_id: int) -> None:
        """Answer a stream with RST_STREAM instead of a response."""
        self._h2.reset_stream(stream_id, ErrorCodes.INTERNAL_ERROR)
        self._flush()

    def abort(self) -> None:
        """Drop the TCP connection without any goodbye."""
        if self._transport is not None:
            self._transport.abort()


class ApnsServer:
    """A local APNs endpoint enforcing Apple's request rules."""

    def __init__(
        self,
        credentials: ApnsTestCredentials,
        *,
        topics: Iterable[str] | None = None,
    ) -> None:
        """Prepare the server; call start() to listen."""
        self.credentials = credentials
        self.topics: set[str] = set(
            topics if topics is not None else {credentials.topic}
        )
        key = serialization.load_pem_private_key(
            credentials.key_pem.encode(), password=None
        )
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self._public_key = key.public_key()
        self.port = 0
        self.pushes: list[ApnsPush] = []
        self.rejections: list[tuple[str, int, str]] = []
        self.connections_made = 0
        self.token_updates = 0
        self.tokens_seen: list[str] = []
        self.tokens_expired: list[str] = []
        # Apple's limit; tests may lower it to let aioapns reconnect freely.
        self.token_refresh_interval = TOKEN_REFRESH_INTERVAL
        # Apple's hour; tests may shorten it to make tokens expire sooner.
        self.token_max_age = TOKEN_MAX_AGE
        # Apple's clock minus ours: tokens look this much older to Apple.
        self.clock_offset = 0.0
        # The one environment the key may push to (Apple's environment-scoped
        # keys), or None for a key made for both.
        self.key_environment: str | None = None
        self.response_delay = 0.0
        # A device token's own delay, instead of response_delay.
        self.response_delays: dict[str, float] = {}
        self.max_in_flight = 0
        self._in_flight = 0
        self._drops = 0
        self._scripts: dict[tuple[str, str | None], _Script] = {}
        # Device tokens by the environment that issued them; others go anywhere.
        self.token_environments: dict[str, str] = {}
        # kid -> (last accepted token, time.time() when it was first accepted)
        self._provider_tokens: dict[str, tuple[str, float]] = {}
        # Keys whose token was answered ExpiredProviderToken: Apple asked for a
        # new one, so the next is no refresh within 20 minutes.
        self._renewals_asked: set[str] = set()
        self._connections: set[_ApnsConnection] = set()
        self._server: asyncio.Server | None = None
        # Faults, for the outbox's tests. Every complete request as
        # (device token, apns-id), answered or not:
        self.received: list[tuple[str, str]] = []
        self._resets = 0
        self._goaway_after: int | None = None
        self._blackhole = Blackhole()

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        await self._listen(0)
        _LOGGER.debug("APNs test server listening on port %s", self.port)

    async def _listen(self, port: int) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(
            self.credentials.server_cert_file, self.credentials.server_key_file
        )
        context.load_verify_locations(cafile=self.credentials.ca_file)
        # Certificate auth is optional: token clients present no certificate.
        context.verify_mode = ssl.CERT_OPTIONAL
        context.set_alpn_protocols(["h2"])
        self._server = await asyncio.get_running_loop().create_server(
            self._make_connection,
            host="127.0.0.1",
            port=port,
            ssl=context,
            ssl_shutdown_timeout=5,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def go_down(self, *, hang: bool = False, tls: bool = True) -> None:
        """Drop every connection and refuse new ones.

        With hang, accept connections and never answer; with tls False, answer
        in plain text, so that every TLS handshake fails (a proxy in the way).
        """
        await self.stop()
        if hang or not tls:
            await self._blackhole.start(self.port, reply=b"" if hang else _NOT_TLS)

    async def come_up(self) -> None:
        """Serve again on the same port."""
        await self._blackhole.stop()
        await self._listen(self.port)

    def reset_next(self, n: int = 1) -> None:
        """Answer the next n requests with RST_STREAM."""
        self._resets += n

    def goaway_after(self, n: int) -> None:
        """Answer n more requests, then send GOAWAY with the rest unanswered."""
        self._goaway_after = n

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        await self._blackhole.stop()
        if self._server is None:
            return
        self._server.close()
        connections = list(self._connections)
        for connection in connections:
            connection.abort()
        if connections:
            await asyncio.wait([c.closed for c in connections], timeout=5)
        async with asyncio.timeout(5):
            await self._server.wait_closed()
        self._server = None

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

    def script(
        self,
        token: str,
        status: int,
        reason: str,
        *,
        times: int | None = None,
        environment: str | None = None,
    ) -> None:
        """Answer requests for token with this error, times times (None: until cleared).

        With an environment, only requests to that environment's host.
        """
        self._scripts[token, environment] = _Script(status, reason, times)

    def register(self, token: str, environment: str) -> None:
        """Know a device token as one environment's: the other answers BadDeviceToken."""
        self.token_environments[token.lower()] = environment

    def clear_scripts(self) -> None:
        """Forget all scripted answers."""
        self._scripts.clear()

    def drop_next(self, n: int = 1) -> None:
        """Abort the TCP connection instead of answering the next n requests."""
        self._drops += n

    async def close_connections(self) -> None:
        """Close every open connection cleanly, like Apple's idle disconnect."""
        connections = list(self._connections)
        for connection in connections:
            connection.goaway()
        if not connections:
            return
        _, pending = await asyncio.wait([c.closed for c in connections], timeout=5)
        if pending:
            # The peer never finished the TLS shutdown; stop waiting for it.
            for connection in connections:
                if not connection.closed.done():
                    connection.abort()
            await asyncio.wait(pending, timeout=5)

    def pushes_for(self, token: str) -> list[ApnsPush]:
        """Return the accepted pushes for one device token."""
        return [push for push in self.pushes if push.token == token]

    def _make_connection(self) -> _ApnsConnection:
        """Create the protocol for an accepted socket."""
        return _ApnsConnection(
            self._connection_opened, self._connections.discard, self._serve
        )

    def _connection_opened(self, connection: _ApnsConnection) -> None:
        """Track a connection whose TLS handshake completed."""
        self.connections_made += 1
        self._connections.add(connection)

    async def _serve(self, connection: _ApnsConnection, request: _Request) -> None:
        """Answer one complete request."""
        headers = dict(request.headers)
        token = headers.get(":path", "").removeprefix(_DEVICE_PATH)
        self.received.append((token, headers.get("apns-id", "")))
        if self._goaway_after == 0:
            self._goaway_after = None
            _LOGGER.debug("GOAWAY instead of answering stream %s", request.stream_id)
            connection.goaway(last_stream_id=request.stream_id - 2)
            return
        if self._goaway_after is not None:
            self._goaway_after -= 1
        if self._resets > 0:
            self._resets -= 1
            connection.reset(request.stream_id)
            return
        if self._drops > 0:
            self._drops -= 1
            _LOGGER.debug("Dropping connection on stream %s", request.stream_id)
            connection.abort()
            return
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if (delay := self.response_delays.get(token, self.response_delay)) > 0:
                await asyncio.sleep(delay)
            status, apns_id, reason = self._answer(connection, request)
        except Exception:
            _LOGGER.exception("APNs test server failed on a request")
            status, apns_id, reason = 500, str(uuid.uuid4()), "InternalServerError"
        finally:
            self._in_flight -= 1
        headers = [(":status", str(status)), ("apns-id", apns_id)]
        body = b""
        if reason is not None:
            answer: dict[str, Any] = {"reason": reason}
            if status == 410:
                answer["timestamp"] = int(time.time() * 1000)
            body = json.dumps(answer).encode()
            headers.append(("content-type", "application/json"))
            headers.append(("content-length", str(len(body))))
        connection.respond(request.stream_id, headers, body)

    def _answer(
        self, connection: _ApnsConnection, request: _Request
    ) -> tuple[int, str, str | None]:
        """Validate and record a request; return (status, apns-id, reason)."""
        headers = dict(request.headers)
        # Echo even a malformed apns-id: aioapns matches answers by it.
        apns_id = headers.get("apns-id") or str(uuid.uuid4())
        path = headers.get(":path", "")
        token = path.removeprefix(_DEVICE_PATH) if path.startswith(_DEVICE_PATH) else ""
        try:
            push = self._validate(connection, request, headers, token, apns_id)
        except _RejectError as err:
            _LOGGER.debug("Rejected push to %s: %s %s", token, err.status, err.reason)
            self.rejections.append((token, err.status, err.reason))
            return err.status, apns_id, err.reason
        self.pushes.append(push)
        return 200, apns_id, None

    def _validate(
        self,
        connection: _ApnsConnection,
        request: _Request,
        headers: dict[str, str],
        token: str,
        apns_id: str,
    ) -> ApnsPush:
        """Apply Apple's checks in roughly Apple's order."""
        if headers.get(":method") != "POST":
            raise _RejectError(405, "MethodNotAllowed")
        path = headers.get(":path", "")
        if not path.startswith(_DEVICE_PATH) or "/" in token or "?" in token:
            raise _RejectError(404, "BadPath")
        if not token:
            raise _RejectError(400, "MissingDeviceToken")
        self._check_script(token, _environment(_host(headers)))
        if not _TOKEN_RE.fullmatch(token):
            raise _RejectError(400, "BadDeviceToken")
        names = [
            name
            for name, _ in request.headers
            if name.startswith("apns-") or name == "authorization"
        ]
        if len(names) != len(set(names)):
            raise _RejectError(400, "DuplicateHeaders")

        topic, auth = self._authenticate(connection, headers)
        host = _host(headers)
        environment = _environment(host)
        if auth == "certificate" and environment not in connection.peer_environments:
            raise _RejectError(403, "BadCertificateEnvironment")
        # A token is only valid in the environment that issued it.
        if self.token_environments.get(token.lower(), environment) != environment:
            raise _RejectError(400, "BadDeviceToken")

        if headers.get("apns-id") is not None and not _UUID_RE.fullmatch(apns_id):
            raise _RejectError(400, "BadMessageId")
        push_type = headers.get("apns-push-type", "")
        if push_type not in PUSH_TYPES:
            raise _RejectError(400, "InvalidPushType")
        priority = _priority(headers.get("apns-priority"), push_type)
        expiration = _expiration(headers.get("apns-expiration"))
        collapse_id = headers.get("apns-collapse-id")
        if collapse_id is not None and len(collapse_id.encode()) > MAX_COLLAPSE_ID:
            raise _RejectError(400, "BadCollapseId")
        raw = bytes(request.body)
        payload = _payload(raw, push_type)

        return ApnsPush(
            token=token,
            topic=topic,
            push_type=push_type,
            priority=priority,
            expiration=expiration,
            collapse_id=collapse_id,
            apns_id=apns_id,
            payload=payload,
            raw=raw,
            headers=headers,
            host=host,
            auth=auth,
            received_at=request.received_at,
        )

    def _authenticate(
        self, connection: _ApnsConnection, headers: dict[str, str]
    ) -> tuple[str, str]:
        """Check the provider token or client certificate; return (topic, auth)."""
        topic = headers.get("apns-topic")
        authorization = headers.get("authorization")
        if authorization is not None:
            self._check_provider_token(authorization, _environment(_host(headers)))
            if not topic:
                raise _RejectError(400, "MissingTopic")
            if topic not in self.topics:
                raise _RejectError(400, "TopicDisallowed")
            return topic, "token"
        if connection.peer_topic is None:
            raise _RejectError(403, "MissingProviderToken")
        # A single-topic certificate makes apns-topic optional, as at Apple.
        topic = topic or connection.peer_topic
        if topic != connection.peer_topic:
            raise _RejectError(400, "TopicDisallowed")
        return topic, "certificate"

    def _check_script(self, token: str, environment: str) -> None:
        """Raise the scripted answer for token, if any is left."""
        for key in ((token, environment), (token, None)):
            if (script := self._scripts.get(key)) is None:
                continue
            if script.remaining is not None:
                script.remaining -= 1
                if script.remaining <= 0:
                    del self._scripts[key]
            raise _RejectError(script.status, script.reason)

    def _check_provider_token(self, authorization: str, environment: str) -> None:
        """Verify the JWT provider token, its environment and Apple's refresh rules."""
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _RejectError(403, "InvalidProviderToken")
        try:
            header = jwt.get_unverified_header(token)
            # Time claims are checked below against time.time(), for freezegun.
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["ES256"],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidTokenError as err:
            raise _RejectError(403, "InvalidProviderToken") from err
        kid = header.get("kid")
        if (
            kid != self.credentials.key_id
            or claims.get("iss") != self.credentials.team_id
        ):
            raise _RejectError(403, "InvalidProviderToken")
        if self.key_environment not in (None, environment):
            raise _RejectError(403, "BadEnvironmentKeyIdInToken")
        iat = claims.get("iat")
        if not isinstance(iat, int | float) or isinstance(iat, bool):
            raise _RejectError(403, "InvalidProviderToken")
        now = time.time() + self.clock_offset
        if now - iat > self.token_max_age:
            self._renewals_asked.add(kid)
            self.tokens_expired.append(token)
            raise _RejectError(403, "ExpiredProviderToken")
        if iat - now > TOKEN_MAX_SKEW:
            raise _RejectError(403, "InvalidProviderToken")
        previous = self._provider_tokens.get(kid)
        if previous is not None and previous[0] == token:
            return
        if (
            previous is not None
            and now - previous[1] < self.token_refresh_interval
            and kid not in self._renewals_asked
        ):
            raise _RejectError(429, "TooManyProviderTokenUpdates")
        self._renewals_asked.discard(kid)
        self._provider_tokens[kid] = (token, now)
        self.token_updates += 1
        self.tokens_seen.append(token)


_NOT_TLS: Final = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"


def _priority(raw: str | None, push_type: str) -> int | None:
    """Parse apns-priority; background pushes must use 5."""
    if raw is not None and raw not in PRIORITIES:
        raise _RejectError(400, "BadPriority")
    priority = int(raw) if raw is not None else None
    # Apple's default priority is 10, which background pushes may not use.
    if push_type == "background" and priority != 5:
        raise _RejectError(400, "BadPriority")
    return priority


def _expiration(raw: str | None) -> int | None:
    """Parse apns-expiration, a non-negative integer of epoch seconds.

    0 is valid: deliver once if the device is reachable now, and do not store.
    """
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise _RejectError(400, "BadExpirationDate")
    return int(raw)


def _payload(raw: bytes, push_type: str) -> dict[str, Any]:
    """Check size and shape of the JSON payload and return it."""
    if not raw:
        raise _RejectError(400, "PayloadEmpty")
    if len(raw) > (MAX_VOIP_PAYLOAD if push_type == "voip" else MAX_PAYLOAD):
        raise _RejectError(413, "PayloadTooLarge")
    try:
        payload = json.loads(raw.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        raise _RejectError(400, "BadPayload") from None
    if not isinstance(payload, dict) or not isinstance(aps := payload.get("aps"), dict):
        raise _RejectError(400, "BadPayload")
    if push_type == "background" and (
        aps.get("content-available") != 1
        or any(key in aps for key in ("alert", "sound", "badge"))
    ):
        raise _RejectError(400, "BadPayload")
    return payload
