"""Apple Push Notification service backend, on aioapns."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from functools import partial
import os
import ssl
import tempfile
import time
from typing import Any, Final, override

from aioapns.common import NotificationRequest, NotificationResult, PushType
from aioapns.connection import (
    APNsBaseClientProtocol,
    APNsBaseConnectionPool,
    AuthorizationHeaderProvider,
)
from aioapns.exceptions import (
    ConnectionClosed,
    ConnectionError as ApnsConnectionError,
    MaxAttemptsExceeded,
)
from cryptography.hazmat.primitives.asymmetric import ec
from h2.exceptions import NoAvailableStreamIDError, ProtocolError
from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey
from homeassistant.util.ssl import create_client_context
import jwt

from .backend import Delivery, Device, Outcome
from .const import (
    AUTH_CERTIFICATE,
    CONF_AUTH_METHOD,
    CONF_CERTIFICATE,
    CONF_ENVIRONMENT,
    CONF_KEY,
    CONF_KEY_ID,
    CONF_TEAM_ID,
    CONF_TOKEN,
    CONF_TOPIC,
    DOMAIN,
    ENV_DEV_APNS_SERVER,
    ENV_DEV_CA_FILE,
    ENV_PRODUCTION,
    ENV_SANDBOX,
    LOGGER,
)
from .importer import (
    AppleCredentialError,
    certificate_topic,
    load_push_certificate,
    load_signing_key,
)
from .message import Message, PayloadTooLargeError, PushKind, build_apns_payload

# Apple allows a provider token refresh at most every 20 minutes and requires
# one within 60: refresh at 50 minutes, whatever the connections do.
TOKEN_REFRESH_SECONDS: Final = 50 * 60
SEND_TIMEOUT: Final = 30
# A syntactically valid token that no device has: Apple answers BadDeviceToken
# once it has accepted the credentials and topic.
PROBE_TOKEN: Final = "0" * 64

_GONE_REASONS: Final = {"Unregistered", "BadDeviceToken", "DeviceTokenNotForTopic"}
_AUTH_REASONS: Final = {
    "InvalidProviderToken",
    "ExpiredProviderToken",
    "BadCertificate",
    "BadCertificateEnvironment",
    "Forbidden",
}
_RETRY_STATUSES: Final = {"429", "500", "503"}


class CredentialError(ValueError):
    """Credentials that cannot work; `key` is the translation key."""

    def __init__(self, key: str) -> None:
        """Keep the translation key."""
        super().__init__(key)
        self.key = key


def parse_signing_key(pem: str) -> ec.EllipticCurvePrivateKey:
    """Parse an Apple .p8 key: an EC P-256 private key in PEM. Blocking (CPU)."""
    try:
        return load_signing_key(pem)
    except AppleCredentialError as err:
        raise CredentialError(err.key) from err


def parse_certificate(pem: str) -> str | None:
    """Check a push certificate PEM holds a certificate and its own key. Blocking.

    Returns the certificate's topic (its UID), if it names one.
    """
    try:
        return certificate_topic(load_push_certificate(pem))
    except AppleCredentialError as err:
        raise CredentialError(err.key) from err


class SharedTokenProvider(AuthorizationHeaderProvider):
    """One provider token per hub, shared by every connection.

    aioapns mints a token per connection and drops idle connections after 10 s,
    so a doorbell every few minutes would present a new token each time and
    Apple would answer 429 TooManyProviderTokenUpdates.
    """

    def __init__(
        self, key: ec.EllipticCurvePrivateKey, key_id: str, team_id: str
    ) -> None:
        """Hold the parsed key; nothing is signed until the first push."""
        self._key = key
        self._key_id = key_id
        self._team_id = team_id
        self._issued_at = 0.0
        self._header = ""

    @override
    def get_header(self) -> str:
        now = time.time()
        # A clock set back makes the token look young while Apple sees it age.
        if not self._header or not 0 <= now - self._issued_at < TOKEN_REFRESH_SECONDS:
            self._issued_at = now
            token = jwt.encode(
                {"iss": self._team_id, "iat": int(now)},
                self._key,
                algorithm="ES256",
                headers={"kid": self._key_id},
            )
            self._header = f"bearer {token}"
        return self._header


# Providers outlive the backends: a reload (a device added, options changed)
# or the config flow's probe right before set-up would otherwise present a new
# token within 20 minutes of the last one.
_TOKEN_PROVIDERS: Final[HassKey[dict[tuple[str, str, str], SharedTokenProvider]]] = (
    HassKey(f"{DOMAIN}_token_providers")
)


async def _async_token_provider(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> SharedTokenProvider:
    """Return the one provider for this key, parsing the key the first time."""
    providers = hass.data.setdefault(_TOKEN_PROVIDERS, {})
    cache_key = (data[CONF_TEAM_ID], data[CONF_KEY_ID], data[CONF_KEY])
    if (provider := providers.get(cache_key)) is None:
        key = await hass.async_add_executor_job(parse_signing_key, data[CONF_KEY])
        provider = providers.setdefault(
            cache_key, SharedTokenProvider(key, data[CONF_KEY_ID], data[CONF_TEAM_ID])
        )
    return provider


class _Pool(APNsBaseConnectionPool):
    """aioapns's pool, with our TLS context, token provider and server."""

    def __init__(
        self,
        *,
        environment: str,
        topic: str,
        ssl_context: ssl.SSLContext,
        auth: AuthorizationHeaderProvider | None,
        server: tuple[str, int] | None,
    ) -> None:
        super().__init__(
            topic=topic,
            use_sandbox=environment == ENV_SANDBOX,
        )
        self.ssl_context = ssl_context
        self._topic = topic
        self._auth = auth
        self._server = server or (self.protocol_class.APNS_SERVER, 443)

    @override
    async def create_connection(self) -> APNsBaseClientProtocol:
        host, port = self._server
        _, protocol = await self.loop.create_connection(
            partial(
                self.protocol_class,
                self._topic,
                self.loop,
                self.discard_connection,  # type: ignore[arg-type]  # aioapns says NoReturn
                self._auth,
            ),
            host=host,
            port=port,
            ssl=self.ssl_context,
            server_hostname=self.protocol_class.APNS_SERVER,
        )
        return protocol

    @override
    async def send_notification(
        self, request: NotificationRequest
    ) -> NotificationResult:
        """Send once, on one connection: the outbox retries, with its own backoff.

        aioapns would sleep a second after a failed connection before giving up,
        holding the action that waits for this attempt.
        """
        connection = await self.acquire()
        try:
            return await connection.send_notification(request)
        except NoAvailableStreamIDError:
            # Every stream id of this connection is used: the next push needs a new one.
            self.discard_connection(connection)
            connection.close()
            raise

    @override
    def discard_connection(self, connection: APNsBaseClientProtocol) -> None:
        # Called again once the connection is lost, after send_notification
        # may have dropped it already.
        if connection in self.connections:
            super().discard_connection(connection)


def _dev_server() -> tuple[str, int] | None:
    """Return the local APNs server set for development, if any."""
    if not (value := os.environ.get(ENV_DEV_APNS_SERVER)):
        return None
    host, _, port = value.rpartition(":")
    return host, int(port)


def _make_ssl_context(certificate: str | None) -> ssl.SSLContext:
    """Build the TLS context for one hub. Blocking: loads CA and certificate files."""
    context = create_client_context()
    if ca_file := os.environ.get(ENV_DEV_CA_FILE):
        context.load_verify_locations(ca_file)
    context.set_alpn_protocols(["h2"])
    if certificate:
        # ssl can only load a client certificate from a file.
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "push.pem")
            with open(path, "w", encoding="utf-8") as file:
                file.write(certificate)
            try:
                context.load_cert_chain(path)
            except ssl.SSLError as err:
                # Parsed fine, yet refused by OpenSSL (a key too small, say).
                raise CredentialError("invalid_certificate") from err
    return context


class ApnsBackend:
    """Deliver to Apple devices over one HTTP/2 connection pool per environment."""

    def __init__(
        self,
        *,
        topic: str,
        ssl_context: ssl.SSLContext,
        auth: AuthorizationHeaderProvider | None,
        server: tuple[str, int] | None = None,
    ) -> None:
        """Use async_create; pools open lazily on the first push."""
        self._topic = topic
        self._ssl_context = ssl_context
        self._auth = auth
        self._server = server
        self._pools: dict[str, _Pool] = {}
        self._closed = False

    @classmethod
    async def async_create(
        cls, hass: HomeAssistant, data: Mapping[str, Any]
    ) -> ApnsBackend:
        """Parse the credentials in the executor and build the backend."""
        certificate: str | None = None
        auth: AuthorizationHeaderProvider | None = None
        if data[CONF_AUTH_METHOD] == AUTH_CERTIFICATE:
            certificate = data[CONF_CERTIFICATE]
            await hass.async_add_executor_job(parse_certificate, certificate)
        else:
            auth = await _async_token_provider(hass, data)
        context = await hass.async_add_executor_job(_make_ssl_context, certificate)
        return cls(
            topic=data[CONF_TOPIC], ssl_context=context, auth=auth, server=_dev_server()
        )

    def _pool(self, environment: str) -> _Pool:
        if (pool := self._pools.get(environment)) is None:
            pool = self._pools[environment] = _Pool(
                environment=environment,
                topic=self._topic,
                ssl_context=self._ssl_context,
                auth=self._auth,
                server=self._server,
            )
        return pool

    async def async_send(self, device: Device, message: Message) -> Delivery:
        """Send once; map Apple's answer to an outcome."""
        if self._closed:
            # An attempt that outlived its hub's reload: a new pool would leak.
            # The outbox keeps the push for the reloaded hub.
            return Delivery(Outcome.FAILED, "hub_closed", retryable=True)
        try:
            payload, truncated = build_apns_payload(message)
        except PayloadTooLargeError:
            return Delivery(Outcome.FAILED, "payload_too_large")
        request = NotificationRequest(
            device_token=device.config[CONF_TOKEN],
            message=payload,
            # The same apns-id on a resend lets the app drop a duplicate.
            notification_id=message.message_id,
            time_to_live=message.ttl,
            priority=message.apns_priority,
            collapse_key=message.tag or None,  # an empty tag is no tag
            push_type=PushType(message.push_type.value),
            apns_topic=device.config.get(CONF_TOPIC) or None,
        )
        environment = device.config.get(CONF_ENVIRONMENT, ENV_PRODUCTION)
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                result = await self._pool(environment).send_notification(request)
        except (
            ConnectionClosed,
            ApnsConnectionError,
            MaxAttemptsExceeded,
            OSError,
            # h2 refuses a send on a connection that Apple just closed (GOAWAY).
            ProtocolError,
            TimeoutError,
        ) as err:
            LOGGER.debug("APNs connection failed: %s", type(err).__name__)
            return Delivery(Outcome.UNREACHABLE, "connection_error", retryable=True)
        if result.is_successful:
            return Delivery(Outcome.DELIVERED, status=200, truncated=truncated)
        reason = result.description or "unknown"
        if reason in _GONE_REASONS or result.status == "410":
            outcome = Outcome.DEVICE_GONE
        elif reason in _AUTH_REASONS:
            outcome = Outcome.AUTH_FAILED
        else:
            outcome = Outcome.FAILED
        return Delivery(
            outcome,
            reason,
            status=int(result.status),
            retryable=result.status in _RETRY_STATUSES,
            truncated=truncated,
        )

    async def async_probe(self, environment: str, topic: str | None = None) -> Delivery:
        """Prove the credentials: Apple checks them before the device token."""
        device = Device(
            device_id="probe",
            name="probe",
            kind="apns",
            admin=False,
            config={
                CONF_TOKEN: PROBE_TOKEN,
                CONF_ENVIRONMENT: environment,
                CONF_TOPIC: topic,
            },
        )
        return await self.async_send(
            device, Message(message="", push_type=PushKind.BACKGROUND, ttl=0)
        )

    async def async_close(self) -> None:
        """Close every open connection."""
        self._closed = True
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
