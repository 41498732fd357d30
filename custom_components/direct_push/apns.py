"""Apple Push Notification service backend, on aioapns."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import replace
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
    APNsDevelopmentClientProtocol,
    APNsProductionClientProtocol,
    APNsTLSClientProtocol,
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
from homeassistant.helpers.selector import (
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)
from homeassistant.util.hass_dict import HassKey
from homeassistant.util.ssl import create_client_context
import jwt
import voluptuous as vol

from .apple_credentials import (
    AppleCredentialError,
    InvalidCertificateError,
    check_device_token,
    check_key_id,
    check_team_id,
    check_topic,
    load_signing_key,
    read_push_certificate,
)
from .backend import Delivery, Device, Outcome, PushBackendDescription, redact_token
from .const import (
    AUTH_CERTIFICATE,
    AUTH_TOKEN,
    CONF_AUTH_METHOD,
    CONF_CERTIFICATE,
    CONF_DETECTED_ENVIRONMENT,
    CONF_ENVIRONMENT,
    CONF_KEY,
    CONF_KEY_ID,
    CONF_TEAM_ID,
    CONF_TOKEN,
    CONF_TOPIC,
    DEVICE_ENVIRONMENTS,
    DOMAIN,
    ENV_AUTO,
    ENV_DEV_APNS_SERVER,
    ENV_DEV_CA_FILE,
    ENV_PRODUCTION,
    ENV_SANDBOX,
    ENVIRONMENTS,
    LOGGER,
)
from .message import (
    Message,
    MessageError,
    PushKind,
    build_apns_payload,
    check_apns_message,
)
from .validation import InputError

SUBENTRY_APNS: Final = "apns_device"

# Apple allows a provider token refresh at most every 20 minutes and requires
# one within 60: refresh at 50 minutes, whatever the connections do.
TOKEN_REFRESH_SECONDS: Final = 50 * 60
PROBE_TIMEOUT: Final = 30
# A syntactically valid token that no device has: Apple answers BadDeviceToken
# once it has accepted the credentials and topic.
PROBE_TOKEN: Final = "0" * 64

_GONE_REASONS: Final = {"Unregistered", "BadDeviceToken", "DeviceTokenNotForTopic"}
_AUTH_REASONS: Final = {
    "InvalidProviderToken",
    "MissingProviderToken",
    "UnrelatedKeyIdInToken",
    "BadEnvironmentKeyIdInToken",
    "BadCertificate",
    "BadCertificateEnvironment",
    "Forbidden",
}
# Apple asks for a new provider token; a new key does not help.
_RENEW_REASON: Final = "ExpiredProviderToken"
# The key is limited to the other environment (Apple's environment-scoped keys).
_KEY_ENVIRONMENT_REASON: Final = "BadEnvironmentKeyIdInToken"
# Answers after which an automatic device tries the other environment: its
# token, or the hub's key, belongs there.
_OTHER_ENVIRONMENT_REASONS: Final = {"BadDeviceToken", _KEY_ENVIRONMENT_REASON}
_RETRY_STATUSES: Final = {"429", "500", "503"}
# Apple's refusals of a probe, as the forms' error keys.
_PROBE_ERRORS: Final = {
    "InvalidProviderToken": "invalid_provider_token",
    "MissingProviderToken": "missing_provider_token",
    "UnrelatedKeyIdInToken": "unrelated_key_id",
    "BadEnvironmentKeyIdInToken": "bad_environment_key_id",
    # Expired even once renewed: the key is fine, the clock is not.
    "ExpiredProviderToken": "clock_wrong",
    "MissingTopic": "missing_topic",
    "TopicDisallowed": "topic_disallowed",
    "BadCertificate": "bad_certificate",
    "BadCertificateEnvironment": "bad_certificate",
    "connection_error": "cannot_connect",
}

ENVIRONMENT_SELECTOR: Final = SelectSelector(
    SelectSelectorConfig(
        options=list(ENVIRONMENTS),
        translation_key=CONF_ENVIRONMENT,
        mode=SelectSelectorMode.DROPDOWN,
    )
)
# A device's environment may also be found automatically.
DEVICE_ENVIRONMENT_SELECTOR: Final = SelectSelector(
    SelectSelectorConfig(
        options=list(DEVICE_ENVIRONMENTS),
        translation_key=CONF_ENVIRONMENT,
        mode=SelectSelectorMode.DROPDOWN,
    )
)


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
        self.generation = 0
        """How many tokens were signed; a send notes it to tell which token it carried."""
        self._renewed = False

    @override
    def get_header(self) -> str:
        now = time.time()
        # A clock set back makes the token look young while Apple sees it age.
        if not self._header or not 0 <= now - self._issued_at < TOKEN_REFRESH_SECONDS:
            self._sign(now)
            self._renewed = False
        return self._header

    def renew(self, generation: int) -> bool:
        """Apple called a token expired: sign a new one, unless there is a newer one.

        `generation` is the one a push noted when it was sent. Returns False
        when a new token cannot help: Apple refused the token signed for such
        an answer too, so our clock is wrong. Renewing at most once per
        scheduled token keeps a wrong clock from signing token after token
        (Apple allows one new token per 20 minutes).
        """
        if generation != self.generation:
            return True  # another push has renewed it already
        if self._renewed:
            return False
        self._sign(time.time())
        self._renewed = True
        return True

    def _sign(self, now: float) -> None:
        self._issued_at = now
        token = jwt.encode(
            {"iss": self._team_id, "iat": int(now)},
            self._key,
            algorithm="ES256",
            headers={"kid": self._key_id},
        )
        self._header = f"bearer {token}"
        self.generation += 1


class _Expiration(int):
    """An exact apns-expiration date, passed where aioapns takes a time to live.

    aioapns 4.0 sends int(time.time()) + time_to_live and cannot send 0 (deliver
    once, do not store). Python lets a subclass's reflected addition win over
    int's own, so that sum yields this value itself.
    """

    __slots__ = ()

    @override
    def __radd__(self, other: int) -> int:
        return int(self)


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
        key = await hass.async_add_executor_job(load_signing_key, data[CONF_KEY])
        provider = providers.setdefault(
            cache_key, SharedTokenProvider(key, data[CONF_KEY_ID], data[CONF_TEAM_ID])
        )
    return provider


class _Protocol(APNsTLSClientProtocol):
    """aioapns's connection, writing what one turn of the loop sends at once.

    aioapns writes each push as it is made: a TLS record, a system call and a
    new idle timer per push. A fan-out makes hundreds in one turn of the loop.
    """

    _write_soon: asyncio.Handle | None = None

    @override
    def flush(self) -> None:
        if self._write_soon is None:
            self._write_soon = self.loop.call_soon(self._write)

    def _write(self) -> None:
        self._write_soon = None
        if self.transport is not None and not self.transport.is_closing():
            super().flush()


class _ProductionProtocol(_Protocol):
    APNS_SERVER = APNsProductionClientProtocol.APNS_SERVER


class _DevelopmentProtocol(_Protocol):
    APNS_SERVER = APNsDevelopmentClientProtocol.APNS_SERVER


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
        self.protocol_class = (
            _DevelopmentProtocol if environment == ENV_SANDBOX else _ProductionProtocol
        )
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
        except asyncio.CancelledError:
            # The attempt timed out. aioapns keeps its cancelled future: Apple's
            # answer, should it come after all, would make aioapns close the
            # connection and fail every other push in flight on it.
            future = connection.requests.get(request.notification_id)
            if future is not None and future.cancelled():
                del connection.requests[request.notification_id]
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
                raise InvalidCertificateError from err
    return context


class ApnsBackend:
    """Deliver to Apple devices over one HTTP/2 connection pool per environment."""

    def __init__(
        self,
        *,
        topic: str,
        ssl_context: ssl.SSLContext,
        auth: SharedTokenProvider | None,
        server: tuple[str, int] | None = None,
        environments: tuple[str, ...] = ENVIRONMENTS,
    ) -> None:
        """Use async_create; pools open lazily on the first push.

        `environments` are those the credentials work in, preferred first: an
        automatic device tries them in this order.
        """
        self._topic = topic
        self._ssl_context = ssl_context
        self._auth = auth
        self._server = server
        self._environments = environments
        self._pools: dict[str, _Pool] = {}
        self._closed = False

    @classmethod
    async def async_create(
        cls, hass: HomeAssistant, data: Mapping[str, Any]
    ) -> ApnsBackend:
        """Parse the credentials in the executor and build the backend.

        Raises AppleCredentialError for a key or certificate that cannot work.
        """
        certificate: str | None = None
        auth: SharedTokenProvider | None = None
        environments: tuple[str, ...] = ENVIRONMENTS
        if data[CONF_AUTH_METHOD] == AUTH_CERTIFICATE:
            push_certificate = await hass.async_add_executor_job(
                read_push_certificate, data[CONF_CERTIFICATE]
            )
            # In the order OpenSSL needs, whatever order the file had.
            certificate = push_certificate.pem
            environments = push_certificate.environments
        else:
            auth = await _async_token_provider(hass, data)
        context = await hass.async_add_executor_job(_make_ssl_context, certificate)
        return cls(
            topic=data[CONF_TOPIC],
            ssl_context=context,
            auth=auth,
            server=_dev_server(),
            environments=environments,
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

    def _device_environments(self, config: Mapping[str, Any]) -> tuple[str, ...]:
        """Return where to send a device's pushes: its environment, or in turn."""
        environment = config.get(CONF_ENVIRONMENT, ENV_PRODUCTION)
        if environment != ENV_AUTO:
            return (environment,)
        detected = config.get(CONF_DETECTED_ENVIRONMENT)
        if detected not in self._environments:
            return self._environments
        return (detected, *(e for e in self._environments if e != detected))

    async def async_send(self, device: Device, message: Message) -> Delivery:
        """Send once; map Apple's answer to an outcome.

        An automatic device whose token Apple does not know in one environment
        (BadDeviceToken) is tried once in the other; if Apple accepts it there,
        the delivery asks the hub to store that environment for the device.
        """
        if self._closed:
            # An attempt that outlived its hub's reload: a new pool would leak.
            # The outbox keeps the push for the reloaded hub.
            return Delivery(Outcome.FAILED, "hub_closed", retryable=True)
        try:
            payload, truncated = build_apns_payload(message)
        except MessageError as err:  # checked before sending: a second guard
            return Delivery(Outcome.FAILED, err.key)
        request = NotificationRequest(
            device_token=device.config[CONF_TOKEN],
            message=payload,
            # The same apns-id on a resend lets the app drop a duplicate.
            notification_id=message.message_id,
            # A TTL of 0 is Apple's 0: deliver now or never, do not store.
            time_to_live=message.ttl or _Expiration(0),
            priority=message.apns_priority,
            collapse_key=message.tag or None,  # an empty tag is no tag
            push_type=PushType(message.push_type.value),
            apns_topic=device.config.get(CONF_TOPIC) or None,
        )
        first, *others = self._device_environments(device.config)
        delivery = await self._async_send_to(first, request, truncated)
        if not others or delivery.reason not in _OTHER_ENVIRONMENT_REASONS:
            return delivery
        retry = await self._async_send_to(others[0], request, truncated)
        if retry.ok:
            LOGGER.info(
                "Apple refused the push to %s in %s (%s) and accepted it in %s, "
                "where its pushes go from now on",
                device.name,
                first,
                delivery.reason,
                others[0],
            )
            return replace(retry, device_update={CONF_DETECTED_ENVIRONMENT: others[0]})
        # Refused in both. A passing failure there is tried again by the retry
        # policy; where the key cannot push, the answer from where it can counts
        # (a key limited to one environment is no reason to reauthenticate).
        if retry.retryable or delivery.reason == _KEY_ENVIRONMENT_REASON:
            return retry
        return delivery

    async def _async_send_to(
        self, environment: str, request: NotificationRequest, truncated: bool
    ) -> Delivery:
        """Send a request to one environment; map Apple's answer to an outcome."""
        try:
            # The outbox limits each attempt; async_probe limits its own.
            result = await self._async_send_request(self._pool(environment), request)
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
        elif reason == _RENEW_REASON:
            # Still expired with a new token: a new key would not help either.
            outcome = Outcome.CLOCK_WRONG
        else:
            outcome = Outcome.FAILED
        return Delivery(
            outcome,
            reason,
            status=int(result.status),
            retryable=result.status in _RETRY_STATUSES,
            truncated=truncated,
        )

    async def _async_send_request(
        self, pool: _Pool, request: NotificationRequest
    ) -> NotificationResult:
        """Send; retry once with a new provider token if Apple calls ours expired."""
        generation = self._auth.generation if self._auth else 0
        result = await pool.send_notification(request)
        if (
            result.description == _RENEW_REASON
            and self._auth is not None
            and self._auth.renew(generation)
        ):
            LOGGER.debug(
                "APNs called the provider token expired; retrying with a new one"
            )
            result = await pool.send_notification(request)
        return result

    async def async_probe(self, environment: str, topic: str | None = None) -> Delivery:
        """Prove the credentials: Apple checks them before the device token."""
        device = Device(
            device_id="probe",
            name="probe",
            kind=SUBENTRY_APNS,
            admin=False,
            config={
                CONF_TOKEN: PROBE_TOKEN,
                CONF_ENVIRONMENT: environment,
                CONF_TOPIC: topic,
            },
        )
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                return await self.async_send(
                    device, Message(message="", push_type=PushKind.BACKGROUND, ttl=0)
                )
        except TimeoutError:
            return Delivery(Outcome.UNREACHABLE, "connection_error", retryable=True)

    async def async_close(self) -> None:
        """Close every open connection."""
        self._closed = True
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


async def async_validate_credentials(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> AppleCredentialError | None:
    """Check credentials locally, then with a probe push; return what is wrong."""
    try:
        if data[CONF_AUTH_METHOD] == AUTH_TOKEN:
            check_key_id(data[CONF_KEY_ID])
            check_team_id(data[CONF_TEAM_ID])
        else:
            # Apple refuses an out-of-date certificate in the TLS handshake,
            # which would look like a missing internet connection.
            certificate = await hass.async_add_executor_job(
                read_push_certificate, data[CONF_CERTIFICATE]
            )
            certificate.check_dates()
        check_topic(data[CONF_TOPIC])
        backend = await ApnsBackend.async_create(hass, data)
    except AppleCredentialError as err:
        return err
    try:
        delivery = await backend.async_probe(data[CONF_ENVIRONMENT])
    finally:
        await backend.async_close()
    if delivery.outcome in (Outcome.DELIVERED, Outcome.DEVICE_GONE):
        return None
    LOGGER.debug("APNs refused the credentials: %s", delivery.reason)
    return AppleCredentialError(_PROBE_ERRORS.get(delivery.reason or "", "apns_error"))


async def _async_create_backend(
    hass: HomeAssistant, data: Mapping[str, Any], options: Mapping[str, Any]
) -> ApnsBackend | None:
    """Build the hub's APNs backend, if the hub has Apple credentials."""
    if CONF_AUTH_METHOD not in data:
        return None
    return await ApnsBackend.async_create(hass, data)


def _renew_schema(data: Mapping[str, Any]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(CONF_TOKEN, default=data.get(CONF_TOKEN, "")): str,
            # BadDeviceToken often means a sandbox token sent to production.
            vol.Required(
                CONF_ENVIRONMENT, default=data.get(CONF_ENVIRONMENT, ENV_PRODUCTION)
            ): DEVICE_ENVIRONMENT_SELECTOR,
        }
    )


def _renew(
    hass: HomeAssistant,
    user_input: Mapping[str, Any],
    data: Mapping[str, Any],
    others: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """Take a new token, or the same token in another environment.

    The device then starts afresh: where an automatic device's old token was
    accepted says nothing about the new one.
    """
    environment = user_input.get(CONF_ENVIRONMENT, ENV_PRODUCTION)
    try:
        token = check_device_token(user_input[CONF_TOKEN])
    except AppleCredentialError as err:
        raise InputError(CONF_TOKEN, err.key) from err
    if (token, environment) == (
        data.get(CONF_TOKEN),
        data.get(CONF_ENVIRONMENT, ENV_PRODUCTION),
    ):
        raise InputError(CONF_TOKEN, "same_device_token")
    if any(other.get(CONF_TOKEN) == token for other in others):
        raise InputError(CONF_TOKEN, "device_token_in_use")
    kept = {k: v for k, v in data.items() if k != CONF_DETECTED_ENVIRONMENT}
    return {**kept, CONF_TOKEN: token, CONF_ENVIRONMENT: environment}


APNS: Final = PushBackendDescription(
    kind=SUBENTRY_APNS,
    model="Apple push (APNs)",
    async_create=_async_create_backend,
    check_message=check_apns_message,
    log_id=lambda data: redact_token(str(data.get(CONF_TOKEN, ""))),
    secrets=frozenset(
        {CONF_KEY, CONF_CERTIFICATE, CONF_KEY_ID, CONF_TEAM_ID, CONF_TOKEN}
    ),
    renew_field=CONF_TOKEN,
    renew_schema=_renew_schema,
    renew=_renew,
)
