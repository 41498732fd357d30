"""The device API: apps register themselves, with a pairing code or an HA login, and unregister.

HTTP views under /api/direct_push/, documented in the README ("For app
authors"). Every answer is JSON; errors are {"error", "message", "field"?}.
A registered device is a device subentry like any an admin adds, never an
admin, and holds a secret of which only the hash is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http import HTTPStatus
import json
import math
import time
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlencode

from aiohttp import web
from homeassistant.auth.permissions.const import POLICY_CONTROL
from homeassistant.components.http.const import KEY_HASS_USER
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import (
    Context,
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
)
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.helpers.network import NoURLAvailableError, get_url
from homeassistant.util.hass_dict import HassKey

from .answers import DATA_ANSWERS, Answer, AnswerLog, signal_action
from .apns import SUBENTRY_APNS
from .apple_credentials import AppleCredentialError, check_device_token
from .const import (
    CONF_ADMIN,
    CONF_ALLOW_LOCAL_PUSH_SERVICES,
    CONF_AUTH_METHOD,
    CONF_ENDPOINT,
    CONF_ENVIRONMENT,
    CONF_LEASE_DAYS,
    CONF_LEASE_EXPIRES,
    CONF_NAME,
    CONF_OWNER,
    CONF_PRIVATE,
    CONF_SECRET_HASH,
    CONF_SERVICE_EXTENSION,
    CONF_TOKEN,
    CONF_TRUST,
    CONF_VAPID_PRIVATE_KEY,
    DEFAULT_LEASE_DAYS,
    DEVICE_ENVIRONMENTS,
    DOMAIN,
    ENV_PRODUCTION,
    EVENT_ACTION,
    LOGGER,
)
from .endpoint_policy import Trust
from .hub import DirectPushHub
from .issues import async_delete_inactive_issue, async_delete_lease_issue
from .leases import DAY, iso, timeout_message
from .names import DeviceNames
from .pairing import FailureLimit, PairingCodes, hash_secret, new_secret, secret_matches
from .services import async_wait_hub
from .validation import InputError, check_name, check_text
from .webpush import (
    SUBENTRY_WEBPUSH,
    SubscriptionError,
    admin_policy,
    parse_subscription,
    vapid_public_key,
)

SERVICE_CREATE_PAIRING_CODE: Final = "create_pairing_code"
MAX_BODY: Final = 16 * 1024
HEADER_DEVICE: Final = "X-Direct-Push-Device"
HEADER_SECRET: Final = "X-Direct-Push-Secret"  # noqa: S105 (a header's name)
PLATFORMS: Final = {"apns": SUBENTRY_APNS, "webpush": SUBENTRY_WEBPUSH}
_REGISTER_FIELDS: Final = frozenset(
    {
        "code",
        "name",
        "platform",
        "token",
        "environment",
        "subscription",
        "private",
        "service_extension",
    }
)
# A renewal may bring a rotated token or a new subscription.
_RENEW_FIELDS: Final = frozenset({"token", "environment", "subscription"})
# Subscription errors that are the endpoint policy's refusal, not a typing mistake.
_MALFORMED_ENDPOINT: Final = frozenset({"invalid_endpoint", "endpoint_whitespace"})


@dataclass(slots=True)
class DeviceApi:
    """What the views share: the live pairing codes and the failed attempts."""

    codes: PairingCodes = field(default_factory=PairingCodes)
    failures: FailureLimit = field(default_factory=FailureLimit)


DATA_DEVICE_API: HassKey[DeviceApi] = HassKey(f"{DOMAIN}_device_api")


class ApiError(Exception):
    """An answer other than success: its status, error code and field."""

    def __init__(
        self, status: HTTPStatus, error: str, message: str, field: str | None = None
    ) -> None:
        """Keep what the JSON answer says."""
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.field = field

    def response(self) -> web.Response:
        """Return the JSON answer."""
        body: dict[str, str] = {"error": self.error, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return web.json_response(body, status=self.status)


def _new_lease(options: Mapping[str, Any]) -> float:
    """Return when a lease taken or renewed now ends."""
    days: float = options.get(CONF_LEASE_DAYS, DEFAULT_LEASE_DAYS)
    return time.time() + days * DAY


async def _async_loaded_hub(hass: HomeAssistant) -> DirectPushHub:
    """Return the loaded hub, waiting out a reload (devices pairing in a row), or answer 503."""
    try:
        return await async_wait_hub(hass)
    except ServiceValidationError:
        raise ApiError(
            HTTPStatus.SERVICE_UNAVAILABLE, "not_loaded", "Direct Push is not loaded."
        ) from None


def _check_unclaimed(
    others: Iterable[ConfigSubentry], kind: str, data: Mapping[str, Any]
) -> None:
    """Refuse a token or endpoint that another device has already."""
    unique = CONF_TOKEN if kind == SUBENTRY_APNS else CONF_ENDPOINT
    if any(s.data.get(unique) == data[unique] for s in others):
        raise ApiError(
            HTTPStatus.CONFLICT,
            "already_registered",
            "Another device has this token or subscription: unregister it first.",
            "token" if kind == SUBENTRY_APNS else "subscription",
        )


def _invalid_code() -> ApiError:
    return ApiError(
        HTTPStatus.UNAUTHORIZED,
        "invalid_code",
        "The pairing code is wrong, used or expired.",
    )


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(HTTPStatus.BAD_REQUEST, "invalid_field", message, field)


async def async_setup_device_api(hass: HomeAssistant) -> None:
    """Register the views and direct_push.create_pairing_code (once, at set-up)."""
    api = hass.data[DATA_DEVICE_API] = DeviceApi()
    answers = hass.data[DATA_ANSWERS] = AnswerLog(hass)
    await answers.async_load()
    hass.http.register_view(RegisterView(api))
    hass.http.register_view(DeviceView(api))
    hass.http.register_view(RenewView(api))
    hass.http.register_view(ActionsView(api))
    hass.http.register_view(MessagesView(api))
    hass.http.register_view(MessageView(api))

    async def _async_create_code(call: ServiceCall) -> ServiceResponse:
        return dict(await async_create_pairing_code(hass, call.context))

    hass.services.async_register(
        DOMAIN,
        SERVICE_CREATE_PAIRING_CODE,
        _async_create_code,
        supports_response=SupportsResponse.ONLY,
    )


async def async_create_pairing_code(
    hass: HomeAssistant, context: Context | None
) -> dict[str, str]:
    """Make a one-time code: {code, expires_at, url}; only an admin (or an automation) may."""
    if context is not None and context.user_id is not None:
        user = await hass.auth.async_get_user(context.user_id)
        if user is None or not user.is_admin:
            raise Unauthorized(context=context, permission=POLICY_CONTROL)
    hub = await async_wait_hub(hass)
    made = hass.data[DATA_DEVICE_API].codes.create(time.monotonic())
    expires_at = datetime.fromtimestamp(
        time.time() + made.expires - time.monotonic(), UTC
    )
    query = {"code": made.code}
    with suppress(NoURLAvailableError):  # without it, the app asks for the address
        query["server"] = get_url(hass)
    query["vapid"] = await hass.async_add_executor_job(
        vapid_public_key, hub.entry.data[CONF_VAPID_PRIVATE_KEY]
    )
    return {
        "code": made.code,
        "expires_at": expires_at.isoformat(timespec="seconds"),
        "url": f"directpush://pair?{urlencode(query)}",
    }


async def _read_json(request: web.Request) -> dict[str, Any]:
    """Read a JSON object of at most MAX_BODY bytes, however it is sent."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large", "The body is over 16 KB."
        )
    # Chunked bodies announce no length: read one byte past the limit to tell.
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large", "The body is over 16 KB."
        )
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise ApiError(
            HTTPStatus.BAD_REQUEST, "invalid_json", "The body is not a JSON object."
        )
    return body


def _flag(body: dict[str, Any], name: str) -> bool:
    if not isinstance(value := body.get(name, False), bool):
        raise _invalid(name, f"'{name}' must be true or false.")
    return value


def _text(body: dict[str, Any], name: str) -> str:
    if not isinstance(value := body.get(name), str):
        raise _invalid(name, f"'{name}' must be text.")
    return value


class _ApiView(HomeAssistantView):
    """A device API view: answers errors as JSON and limits failed attempts."""

    requires_auth = False

    def __init__(self, api: DeviceApi) -> None:
        """Share the pairing codes and the failed-attempt limit."""
        self._api = api

    def _failed(self, request: web.Request, error: ApiError) -> ApiError:
        """Count a wrong code or secret against the address; return the error."""
        self._api.failures.failed(request.remote or "", time.monotonic())
        return error

    def _blocked_response(self, request: web.Request) -> web.Response | None:
        wait = self._api.failures.blocked_for(request.remote or "", time.monotonic())
        if not wait:
            return None
        response = ApiError(
            HTTPStatus.TOO_MANY_REQUESTS,
            "too_many_attempts",
            "Too many failed attempts: try again later.",
        ).response()
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response


class RegisterView(_ApiView):
    """POST /api/direct_push/register: a device registers itself."""

    url = "/api/direct_push/register"
    name = "api:direct_push:register"

    async def post(self, request: web.Request) -> web.Response:
        """Register a device with a pairing code, or as the logged-in HA user."""
        if (blocked := self._blocked_response(request)) is not None:
            return blocked
        try:
            return await self._async_register(request)
        except ApiError as err:
            return err.response()

    async def _async_register(self, request: web.Request) -> web.Response:
        hass = request.app[KEY_HASS]
        body = await _read_json(request)
        if unknown := sorted(set(body) - _REGISTER_FIELDS):
            # Such as "admin" or "device_id": a device cannot choose those.
            raise _invalid(unknown[0], f"'{unknown[0]}' is not a registration field.")
        owner: str | None = None
        if "code" in body:
            if not self._api.codes.is_valid(_text(body, "code"), time.monotonic()):
                raise self._failed(request, _invalid_code())
        elif (user := request.get(KEY_HASS_USER)) is not None:
            owner = user.id
        else:
            raise self._failed(
                request,
                ApiError(
                    HTTPStatus.UNAUTHORIZED,
                    "unauthorized",
                    "Send a pairing code, or a Home Assistant access token.",
                ),
            )
        hub = await _async_loaded_hub(hass)
        entry = hub.entry
        kind, data = _device_data(hass, entry.data, entry.options, body)
        others = list(entry.subentries.values())
        try:
            name = check_name(_text(body, CONF_NAME))
        except InputError as err:
            raise _invalid(CONF_NAME, f"The name is not usable ({err.key}).") from None
        name = DeviceNames(s.title for s in others).claim(name)
        _check_unclaimed(others, kind, data)
        private = _flag(body, CONF_PRIVATE)
        if (extension := _flag(body, CONF_SERVICE_EXTENSION)) and kind != SUBENTRY_APNS:
            raise _invalid(
                CONF_SERVICE_EXTENSION, "A notification service extension is Apple's."
            )
        # Spent only now, so that a refused body leaves the code usable.
        if "code" in body and not self._api.codes.redeem(
            body["code"], time.monotonic()
        ):
            raise self._failed(request, _invalid_code())
        secret = new_secret()
        expires = _new_lease(entry.options)
        data |= {
            CONF_NAME: name,
            CONF_ADMIN: False,
            CONF_OWNER: owner,
            CONF_SECRET_HASH: hash_secret(secret),
            CONF_LEASE_EXPIRES: expires,
            CONF_PRIVATE: private,
            CONF_SERVICE_EXTENSION: extension,
        }
        subentry = ConfigSubentry(
            data=MappingProxyType(data),
            subentry_type=kind,
            title=name,
            unique_id=None,
        )
        hass.config_entries.async_add_subentry(entry, subentry)
        LOGGER.info("A device registered itself as %s", name)
        return self.json(
            {
                "device_id": subentry.subentry_id,
                "device_secret": secret,
                "name": name,
                "lease_expires_at": iso(expires),
                "vapid_public_key": await hass.async_add_executor_job(
                    vapid_public_key, entry.data[CONF_VAPID_PRIVATE_KEY]
                ),
            },
            status_code=HTTPStatus.CREATED,
        )


def _device_data(
    hass: HomeAssistant,
    hub_data: Any,
    options: Any,
    body: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    """Check the platform's fields; return the subentry type and its data."""
    if (kind := PLATFORMS.get(_text(body, "platform"))) is None:
        raise _invalid("platform", "'platform' must be 'apns' or 'webpush'.")
    if kind == SUBENTRY_APNS:
        if CONF_AUTH_METHOD not in hub_data:
            raise _invalid("platform", "This hub has no Apple key.")
        try:
            token = check_device_token(_text(body, CONF_TOKEN))
        except AppleCredentialError:
            raise _invalid(CONF_TOKEN, "The device token is not valid.") from None
        environment = body.get(
            CONF_ENVIRONMENT, hub_data.get(CONF_ENVIRONMENT, ENV_PRODUCTION)
        )
        if environment not in DEVICE_ENVIRONMENTS:
            raise _invalid(
                CONF_ENVIRONMENT,
                "'environment' must be 'production', 'sandbox' or 'auto'.",
            )
        return kind, {CONF_TOKEN: token, CONF_ENVIRONMENT: environment}
    subscription = body.get("subscription")
    keys = subscription.get("keys") if isinstance(subscription, dict) else None
    if not isinstance(subscription, dict) or not isinstance(keys, dict):
        raise _invalid(
            "subscription",
            "'subscription' must be {endpoint, keys: {p256dh, auth}}.",
        )
    policy = replace(
        admin_policy(hass),
        trust=Trust.SELF_REGISTERED,
        allow_local_network=bool(options.get(CONF_ALLOW_LOCAL_PUSH_SERVICES)),
    )
    endpoint, p256dh, auth = (
        subscription.get("endpoint"),
        keys.get("p256dh"),
        keys.get("auth"),
    )
    if not (
        isinstance(endpoint, str) and isinstance(p256dh, str) and isinstance(auth, str)
    ):
        raise _invalid(
            "subscription",
            "'subscription' must be {endpoint, keys: {p256dh, auth}}.",
        )
    try:
        checked = parse_subscription(endpoint, p256dh, auth, policy)
    except SubscriptionError as err:
        if err.field == CONF_ENDPOINT and err.key not in _MALFORMED_ENDPOINT:
            raise ApiError(
                HTTPStatus.FORBIDDEN,
                "endpoint_refused",
                f"Home Assistant may not post to this endpoint ({err.key}).",
                "subscription",
            ) from None
        raise _invalid(
            "subscription", f"The subscription is not usable ({err.key})."
        ) from None
    return kind, {**checked, CONF_TRUST: Trust.SELF_REGISTERED}


class _DeviceAuthView(_ApiView):
    """A view for one device, which proves itself with its id and secret."""

    async def _async_authenticate(
        self, request: web.Request, device_id: str
    ) -> DirectPushHub:
        """Check the device's headers before anything else; return the hub."""
        hub = await _async_loaded_hub(request.app[KEY_HASS])
        caller = request.headers.get(HEADER_DEVICE, "")
        subentry = hub.entry.subentries.get(caller)
        if subentry is None or not secret_matches(
            request.headers.get(HEADER_SECRET, ""), subentry.data.get(CONF_SECRET_HASH)
        ):
            raise self._failed(
                request,
                ApiError(
                    HTTPStatus.UNAUTHORIZED,
                    "unauthorized",
                    "The device or its secret is wrong.",
                ),
            )
        if device_id != caller:
            # Another device's id: whether it exists is not the caller's business.
            raise ApiError(HTTPStatus.NOT_FOUND, "not_found", "No such device.")
        return hub


class DeviceView(_DeviceAuthView):
    """DELETE /api/direct_push/devices/{device_id}: a device unregisters."""

    url = "/api/direct_push/devices/{device_id}"
    name = "api:direct_push:device"

    async def delete(self, request: web.Request, device_id: str) -> web.Response:
        """Send the device a last timeout push, then remove it."""
        if (blocked := self._blocked_response(request)) is not None:
            return blocked
        try:
            hub = await self._async_authenticate(request, device_id)
        except ApiError as err:
            return err.response()
        device = hub.devices[device_id]
        await hub.async_send_notice(
            device, timeout_message(device_id, "unregistered", None)
        )
        request.app[KEY_HASS].config_entries.async_remove_subentry(hub.entry, device_id)
        LOGGER.info("%s unregistered itself", device.name)
        return self.json({})


class RenewView(_DeviceAuthView):
    """POST /api/direct_push/devices/{device_id}/renew: a device renews its lease."""

    url = "/api/direct_push/devices/{device_id}/renew"
    name = "api:direct_push:device:renew"

    async def post(self, request: web.Request, device_id: str) -> web.Response:
        """Renew the lease; take a new token or subscription if the body has one."""
        if (blocked := self._blocked_response(request)) is not None:
            return blocked
        try:
            hub = await self._async_authenticate(request, device_id)
            changes = await self._changes(request, hub, device_id)
        except ApiError as err:
            return err.response()
        hass = request.app[KEY_HASS]
        expired = hub.lease_expired(device_id)
        hub.async_update_device(device_id, changes)
        async_delete_lease_issue(hass, device_id)
        if CONF_TOKEN in changes or CONF_ENDPOINT in changes:
            async_delete_inactive_issue(hass, device_id)
        if expired:
            # Its entities were set up unavailable.
            hass.config_entries.async_schedule_reload(hub.entry.entry_id)
        else:
            hub.leases.async_reschedule()
        return self.json({"lease_expires_at": iso(changes[CONF_LEASE_EXPIRES])})

    async def _changes(
        self, request: web.Request, hub: DirectPushHub, device_id: str
    ) -> dict[str, Any]:
        body = await _read_json(request) if request.can_read_body else {}
        if unknown := sorted(set(body) - _RENEW_FIELDS):
            raise _invalid(unknown[0], f"'{unknown[0]}' is not a renewal field.")
        entry = hub.entry
        changes: dict[str, Any] = {}
        if body:
            platform = {kind: name for name, kind in PLATFORMS.items()}[
                entry.subentries[device_id].subentry_type
            ]
            kind, data = _device_data(
                request.app[KEY_HASS],
                entry.data,
                entry.options,
                {**body, "platform": platform},
            )
            _check_unclaimed(
                (s for s in entry.subentries.values() if s.subentry_id != device_id),
                kind,
                data,
            )
            changes |= data
        changes[CONF_LEASE_EXPIRES] = _new_lease(entry.options)
        return changes


class ActionsView(_DeviceAuthView):
    """POST /api/direct_push/actions: a device answers a button of a push."""

    url = "/api/direct_push/actions"
    name = "api:direct_push:actions"

    async def post(self, request: web.Request) -> web.Response:
        """Fire direct_push_action for a button of a message this device got."""
        if (blocked := self._blocked_response(request)) is not None:
            return blocked
        caller = request.headers.get(HEADER_DEVICE, "")
        try:
            hub = await self._async_authenticate(request, caller)
            message_id, action, text = _answer_fields(await _read_json(request))
        except ApiError as err:
            return err.response()
        hass = request.app[KEY_HASS]
        answer = hass.data[DATA_ANSWERS].answer(message_id, caller, action, time.time())
        if answer is not Answer.ACCEPTED:
            return _REFUSED_ANSWERS[answer].response()
        device = hub.devices[caller]
        event_data = {
            "device_id": caller,
            "device_name": device.name,
            "owner": device.config.get(CONF_OWNER),
            "message_id": message_id,
            "action": action,
            "text": text,
        }
        hass.bus.async_fire(EVENT_ACTION, event_data)
        async_dispatcher_send(
            hass, signal_action(hub.entry.entry_id, caller), event_data
        )
        return self.json({})


_REFUSED_ANSWERS: Final = {
    Answer.UNKNOWN_MESSAGE: ApiError(
        HTTPStatus.NOT_FOUND, "not_found", "This device got no such message."
    ),
    Answer.UNKNOWN_ACTION: ApiError(
        HTTPStatus.BAD_REQUEST,
        "unknown_action",
        "The message has no such button.",
        "action",
    ),
    Answer.ALREADY_ANSWERED: ApiError(
        HTTPStatus.CONFLICT,
        "already_answered",
        "This device already answered this button of this message.",
    ),
}


def _answer_fields(body: dict[str, Any]) -> tuple[str, str, str | None]:
    """Return an answer's message id, button and text, checked."""
    if unknown := sorted(set(body) - {"message_id", "action", "text"}):
        raise _invalid(unknown[0], f"'{unknown[0]}' is not an answer field.")
    text = body.get("text")
    if text is not None and not isinstance(text, str):
        raise _invalid("text", "'text' must be text.")
    checked: dict[str, str] = {}
    for name, value in (
        ("message_id", _text(body, "message_id")),
        ("action", _text(body, "action")),
        ("text", text or ""),
    ):
        try:
            checked[name] = check_text(value, name, multiline=name == "text")
        except InputError:
            raise _invalid(name, f"'{name}' holds characters it cannot.") from None
    return checked["message_id"], checked["action"], text


class MessagesView(_DeviceAuthView):
    """GET /api/direct_push/messages: a private device's messages, for polling."""

    url = "/api/direct_push/messages"
    name = "api:direct_push:messages"

    async def get(self, request: web.Request) -> web.Response:
        """Return the device's kept messages whose time to live has not ended."""
        if (blocked := self._blocked_response(request)) is not None:
            return blocked
        caller = request.headers.get(HEADER_DEVICE, "")
        try:
            hub = await self._async_authenticate(request, caller)
        except ApiError as err:
            return err.response()
        return self.json({"messages": hub.mailbox.waiting(caller)})


class MessageView(_DeviceAuthView):
    """GET /api/direct_push/messages/{message_id}: the message a wake-up push announced."""

    url = "/api/direct_push/messages/{message_id}"
    name = "api:direct_push:message"

    async def get(self, request: web.Request, message_id: str) -> web.Response:
        """Return the message, if it went to this device and has not expired."""
        if (blocked := self._blocked_response(request)) is not None:
            return blocked
        caller = request.headers.get(HEADER_DEVICE, "")
        try:
            hub = await self._async_authenticate(request, caller)
        except ApiError as err:
            return err.response()
        if (message := hub.mailbox.read(caller, message_id)) is None:
            return ApiError(
                HTTPStatus.NOT_FOUND, "not_found", "This device has no such message."
            ).response()
        return self.json(message)
