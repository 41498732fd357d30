"""Config flow for Direct Push: the hub, its devices and its options.

The import steps (a dmt-system folder, its files, the YAML), and the hub's
subentry flow that imports more devices, are in import_flow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlowResult,
    ConfigSubentry,
    ConfigSubentryData,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import voluptuous as vol

from .apns import (
    APNS,
    DEVICE_ENVIRONMENT_SELECTOR,
    ENVIRONMENT_SELECTOR,
    async_validate_credentials,
)
from .apple_credentials import (
    AppleCredentialError,
    check_device_token,
    check_topic,
    push_certificate_topic,
)
from .const import (
    AUTH_CERTIFICATE,
    AUTH_TOKEN,
    CONF_ADMIN,
    CONF_ALLOW_LOCAL_PUSH_SERVICES,
    CONF_AUTH,
    CONF_AUTH_METHOD,
    CONF_CERTIFICATE,
    CONF_CERTIFICATE_FILE,
    CONF_ENDPOINT,
    CONF_ENVIRONMENT,
    CONF_INTERRUPTION_LEVEL,
    CONF_KEY,
    CONF_KEY_FILE,
    CONF_KEY_ID,
    CONF_LEASE_DAYS,
    CONF_NAME,
    CONF_P256DH,
    CONF_PRIVATE,
    CONF_REPORTER,
    CONF_SECRET_HASH,
    CONF_SOUND,
    CONF_SUBSCRIPTION,
    CONF_TEAM_ID,
    CONF_TITLE_FROM_DEVICE,
    CONF_TOKEN,
    CONF_TOPIC,
    CONF_UNREACHABLE_DAYS,
    CONF_VAPID_PRIVATE_KEY,
    DEFAULT_LEASE_DAYS,
    DEFAULT_SOUND,
    DEFAULT_UNREACHABLE_DAYS,
    DOMAIN,
    ENV_PRODUCTION,
    ENV_SANDBOX,
    REGISTRATION_KEYS,
    TITLE,
)
from .errors import FormErrors
from .forms import (
    CERTIFICATE_FILE_TYPES,
    KEY_FILE_TYPES,
    MULTILINE,
    async_take_upload,
    file_selector,
)
from .import_flow import IMPORT_SUBENTRY, ImportFlow, ImportSubentryFlow
from .issues import async_delete_inactive_issue
from .message import InterruptionLevel
from .names import DeviceNames
from .reporter import REPORTER_SCHEMA, reporter_options_error
from .validation import check_fields, check_limited_field
from .webpush import (
    WEB_PUSH,
    SubscriptionError,
    admin_policy,
    generate_vapid_key,
    parse_subscription,
    parse_subscription_json,
    vapid_public_key,
)

# Per method: text field, file field, error when both are empty, and error
# when the upload cannot be read.
_CREDENTIAL_FIELDS: Final = {
    AUTH_TOKEN: (CONF_KEY, CONF_KEY_FILE, "key_required", "invalid_key"),
    AUTH_CERTIFICATE: (
        CONF_CERTIFICATE,
        CONF_CERTIFICATE_FILE,
        "certificate_required",
        "invalid_certificate",
    ),
}
# Pasted (or uploaded) keys and certificates: PEM text, which breaks lines.
_PEM_FIELDS: Final = (CONF_KEY, CONF_CERTIFICATE)
# The key may come as a file or as pasted text: which one is checked after.
TOKEN_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(CONF_KEY_FILE): file_selector(KEY_FILE_TYPES),
        vol.Optional(CONF_KEY): MULTILINE,
        vol.Required(CONF_KEY_ID): str,
        vol.Required(CONF_TEAM_ID): str,
        vol.Required(CONF_TOPIC): str,
        vol.Required(CONF_ENVIRONMENT, default=ENV_PRODUCTION): ENVIRONMENT_SELECTOR,
    }
)
CERTIFICATE_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(CONF_CERTIFICATE_FILE): file_selector(CERTIFICATE_FILE_TYPES),
        vol.Optional(CONF_CERTIFICATE): MULTILINE,
        vol.Optional(CONF_TOPIC): str,
        vol.Required(CONF_ENVIRONMENT, default=ENV_SANDBOX): ENVIRONMENT_SELECTOR,
    }
)


class DirectPushConfigFlow(ImportFlow, domain=DOMAIN):
    """Set up the hub: Apple credentials proven against Apple, or Web Push only.

    The import steps come from ImportFlow.
    """

    VERSION = 1
    MINOR_VERSION = 2

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Devices are subentries; an import adds several at once."""
        return {
            APNS.kind: ApnsDeviceSubentryFlow,
            WEB_PUSH.kind: WebPushDeviceSubentryFlow,
            IMPORT_SUBENTRY: ImportSubentryFlow,
        }

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> DirectPushOptionsFlow:
        """Return the options flow."""
        return DirectPushOptionsFlow()

    async def _async_create_hub(
        self,
        data: dict[str, Any],
        subentries: Iterable[ConfigSubentryData] = (),
    ) -> ConfigFlowResult:
        """Create the hub, with its own VAPID identity for Web Push devices."""
        vapid_key = await self.hass.async_add_executor_job(generate_vapid_key)
        return self.async_create_entry(
            title=TITLE,
            data={**data, CONF_VAPID_PRIVATE_KEY: vapid_key},
            subentries=subentries,
        )

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose how Apple authenticates this hub, or import an existing setup."""
        return self.async_show_menu(
            step_id="user",
            menu_options=[
                "token",
                "certificate",
                "webpush",
                "import_folder",
                "import_upload",
            ],
        )

    async def async_step_webpush(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Start a hub for Web Push devices only; Apple can be added later."""
        if self._hub() is not None:
            return self.async_abort(reason="already_configured")
        await self.async_set_unique_id(DOMAIN)
        if user_input is not None:
            return await self._async_create_hub({})
        return self.async_show_form(step_id="webpush")

    def _hub(self) -> ConfigEntry | None:
        """Return the hub, if Direct Push is set up."""
        return next(iter(self._async_current_entries(include_ignore=False)), None)

    async def _async_credentials(
        self,
        method: str,
        user_input: dict[str, Any] | None,
        defaults: Mapping[str, Any],
    ) -> tuple[dict[str, Any] | None, FormErrors]:
        """Validate a token or certificate form; return data, or the errors.

        An empty key or certificate field falls back to the one in defaults.
        """
        errors = FormErrors()
        if user_input is None:
            return None, errors
        text_key, file_key, required, unreadable = _CREDENTIAL_FIELDS[method]
        if not await async_take_upload(self.hass, user_input, text_key, file_key):
            errors.add(file_key, unreadable)
            return None, errors
        # Uploaded text included: nothing HA cannot store gets in.
        with errors.collect():
            check_fields(user_input, multiline=_PEM_FIELDS)
        if errors:
            return None, errors
        pem = (user_input.get(text_key) or defaults.get(text_key) or "").strip()
        if not pem:
            errors.add("base", required)
            return None, errors
        data = {**defaults, **user_input, CONF_AUTH_METHOD: method, text_key: pem}
        # Copied from Apple's portal, these often carry a stray space.
        for key in (CONF_KEY_ID, CONF_TEAM_ID, CONF_TOPIC):
            if isinstance(data.get(key), str):
                data[key] = data[key].strip()
        if method == AUTH_CERTIFICATE:
            try:
                topic = await self.hass.async_add_executor_job(
                    push_certificate_topic, pem
                )
            except AppleCredentialError as err:
                errors.add(text_key, err.key)
                return None, errors
            if not data.get(CONF_TOPIC):
                if topic is None:
                    errors.add(CONF_TOPIC, "missing_topic")
                    return None, errors
                data[CONF_TOPIC] = topic
        if error := await async_validate_credentials(self.hass, data):
            errors.add(error.field, error.key)
            return None, errors
        return data, errors

    @callback
    def _async_save_and_reload(
        self, entry: ConfigEntry, data: dict[str, Any]
    ) -> ConfigFlowResult:
        """Store new credentials and reload the hub.

        A loaded hub's update listener reloads it (reloading here as well would
        reload twice); a hub that failed to set up has no listener yet.
        """
        if entry.update_listeners:
            return self.async_update_and_abort(entry, data=data)
        return self.async_update_reload_and_abort(entry, data=data)

    async def async_step_token(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Authenticate with a .p8 signing key (Apple's recommended method)."""
        return await self._async_apple_step(AUTH_TOKEN, TOKEN_SCHEMA, user_input)

    async def async_step_certificate(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Authenticate with a push certificate and its key in one .pem."""
        return await self._async_apple_step(
            AUTH_CERTIFICATE, CERTIFICATE_SCHEMA, user_input
        )

    async def _async_apple_step(
        self, method: str, schema: vol.Schema, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """Create the hub with Apple credentials, or add them to a Web Push hub."""
        adding = self.source == SOURCE_RECONFIGURE
        if not adding:
            if self._hub() is not None:
                return self.async_abort(reason="already_configured")
            await self.async_set_unique_id(DOMAIN)
        data, errors = await self._async_credentials(method, user_input, {})
        if data is not None:
            if adding:
                entry = self._get_reconfigure_entry()
                return self._async_save_and_reload(entry, {**entry.data, **data})
            return await self._async_create_hub(data)
        return self.async_show_form(
            step_id=method,
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors.errors,
            description_placeholders=errors.placeholders or None,
        )

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """Apple refused the credentials: ask for new ones."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Take a new key (or certificate) and prove it."""
        entry = self._get_reauth_entry()
        method = entry.data[CONF_AUTH_METHOD]
        if method == AUTH_CERTIFICATE:
            schema = vol.Schema(
                {
                    vol.Optional(CONF_CERTIFICATE_FILE): file_selector(
                        CERTIFICATE_FILE_TYPES
                    ),
                    vol.Optional(CONF_CERTIFICATE): MULTILINE,
                }
            )
        else:
            schema = vol.Schema(
                {
                    vol.Optional(CONF_KEY_FILE): file_selector(KEY_FILE_TYPES),
                    vol.Optional(CONF_KEY): MULTILINE,
                    vol.Required(CONF_KEY_ID, default=entry.data[CONF_KEY_ID]): str,
                    vol.Required(CONF_TEAM_ID, default=entry.data[CONF_TEAM_ID]): str,
                }
            )
        # The refused key is no default: reauthenticating needs a new one.
        text_key = _CREDENTIAL_FIELDS[method][0]
        defaults = {k: v for k, v in entry.data.items() if k != text_key}
        data, errors = await self._async_credentials(method, user_input, defaults)
        if data is not None:
            return self._async_save_and_reload(entry, data)
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors.errors,
            description_placeholders=errors.placeholders or None,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change topic, environment or key without losing the devices."""
        entry = self._get_reconfigure_entry()
        if (method := entry.data.get(CONF_AUTH_METHOD)) is None:
            return self.async_show_menu(
                step_id="reconfigure", menu_options=["token", "certificate"]
            )
        # An empty key field keeps the current key.
        data, errors = await self._async_credentials(method, user_input, entry.data)
        if data is not None:
            return self._async_save_and_reload(entry, data)
        fields: dict[vol.Marker, Any] = {
            vol.Required(CONF_TOPIC, default=entry.data[CONF_TOPIC]): str,
            vol.Required(
                CONF_ENVIRONMENT, default=entry.data[CONF_ENVIRONMENT]
            ): ENVIRONMENT_SELECTOR,
        }
        if method == AUTH_CERTIFICATE:
            fields[vol.Optional(CONF_CERTIFICATE_FILE)] = file_selector(
                CERTIFICATE_FILE_TYPES
            )
            fields[vol.Optional(CONF_CERTIFICATE)] = MULTILINE
        else:
            fields[vol.Optional(CONF_KEY_FILE)] = file_selector(KEY_FILE_TYPES)
            fields[vol.Optional(CONF_KEY)] = MULTILINE
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(fields), user_input
            ),
            errors=errors.errors,
            description_placeholders=errors.placeholders or None,
        )


class _DeviceSubentryFlow(ConfigSubentryFlow):
    """Add or edit a device; each kind gives its fields and checks."""

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Add a device."""
        return await self._async_device_form("user", user_input, None)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Edit a device in place; new details make an inactive device active again."""
        subentry = self._get_reconfigure_subentry()
        return await self._async_device_form(
            "reconfigure", user_input, subentry.subentry_id
        )

    # Fields pasted whole, which may break lines.
    _multiline: tuple[str, ...] = ()

    def _schema(self, entry: ConfigEntry) -> vol.Schema:
        raise NotImplementedError

    def _validate(
        self,
        user_input: dict[str, Any],
        others: list[ConfigSubentry],
        errors: FormErrors,
    ) -> dict[str, Any]:
        """Return the device data to store; add what is wrong to errors."""
        raise NotImplementedError

    async def _async_placeholders(self, entry: ConfigEntry) -> dict[str, str]:
        return {}

    async def _async_device_form(
        self, step_id: str, user_input: dict[str, Any] | None, device_id: str | None
    ) -> SubentryFlowResult:
        entry = self._get_entry()
        errors = FormErrors()
        current = entry.subentries[device_id].data if device_id else {}
        # Only a device that registered itself can fetch messages, so only it may be private.
        registered = CONF_SECRET_HASH in current
        schema = self._schema(entry)
        if registered:
            schema = schema.extend(
                {vol.Required(CONF_PRIVATE, default=False): BooleanSelector()}
            )
        if user_input is not None:
            others = [
                s for s in entry.subentries.values() if s.subentry_id != device_id
            ]
            with errors.collect():
                check_fields(user_input, multiline=self._multiline)
            if not errors:
                data = self._validate(user_input, others, errors)
                # Automations send to names: unique across kinds, and no group word.
                with errors.collect():
                    name = DeviceNames(s.title for s in others).check(
                        user_input[CONF_NAME]
                    )
            if not errors:
                data[CONF_NAME] = name
                if registered:
                    data |= {k: current[k] for k in REGISTRATION_KEYS if k in current}
                    data[CONF_PRIVATE] = user_input[CONF_PRIVATE]
                if device_id is None:
                    return self.async_create_entry(title=name, data=data)
                async_delete_inactive_issue(self.hass, device_id)
                return self.async_update_and_abort(
                    entry, self._get_reconfigure_subentry(), title=name, data=data
                )
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input if user_input is not None else current
            ),
            errors=errors.errors,
            description_placeholders={
                **await self._async_placeholders(entry),
                **errors.placeholders,
            },
        )


class ApnsDeviceSubentryFlow(_DeviceSubentryFlow):
    """Add or edit an Apple device."""

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Add a device, once the hub has Apple credentials."""
        if CONF_AUTH_METHOD not in self._get_entry().data:
            return self.async_abort(reason="no_apple_credentials")
        return await super().async_step_user(user_input)

    def _schema(self, entry: ConfigEntry) -> vol.Schema:
        return vol.Schema(
            {
                vol.Required(CONF_NAME): str,
                vol.Required(CONF_TOKEN): str,
                vol.Required(CONF_ADMIN, default=False): BooleanSelector(),
                vol.Required(
                    CONF_ENVIRONMENT,
                    default=entry.data.get(CONF_ENVIRONMENT, ENV_PRODUCTION),
                ): DEVICE_ENVIRONMENT_SELECTOR,
                vol.Optional(CONF_TOPIC): str,
            }
        )

    def _validate(
        self,
        user_input: dict[str, Any],
        others: list[ConfigSubentry],
        errors: FormErrors,
    ) -> dict[str, Any]:
        token = user_input[CONF_TOKEN] = user_input[CONF_TOKEN].strip().lower()
        try:
            check_device_token(token)
        except AppleCredentialError as err:
            errors.add(err.field, err.key)
        else:
            if any(s.data.get(CONF_TOKEN) == token for s in others):
                errors.add(CONF_TOKEN, "device_token_in_use")
        if topic := user_input.get(CONF_TOPIC, "").strip():
            try:
                user_input[CONF_TOPIC] = check_topic(topic)
            except AppleCredentialError as err:
                errors.add(err.field, err.key)
        return dict(user_input)


class WebPushDeviceSubentryFlow(_DeviceSubentryFlow):
    """Add or edit a Web Push device: a UnifiedPush app or a browser."""

    # Keys copied from an app may carry line breaks (see webpush._b64url).
    _multiline = (CONF_SUBSCRIPTION, CONF_P256DH, CONF_AUTH)

    def _schema(self, entry: ConfigEntry) -> vol.Schema:
        return vol.Schema(
            {
                vol.Required(CONF_NAME): str,
                vol.Optional(CONF_SUBSCRIPTION): MULTILINE,
                vol.Optional(CONF_ENDPOINT): TextSelector(
                    TextSelectorConfig(type=TextSelectorType.URL)
                ),
                vol.Optional(CONF_P256DH): str,
                vol.Optional(CONF_AUTH): str,
                vol.Required(CONF_ADMIN, default=False): BooleanSelector(),
            }
        )

    async def _async_placeholders(self, entry: ConfigEntry) -> dict[str, str]:
        # Apps subscribe with the hub's public key, so the form shows it.
        key = await self.hass.async_add_executor_job(
            vapid_public_key, entry.data[CONF_VAPID_PRIVATE_KEY]
        )
        return {"vapid_public_key": key}

    def _validate(
        self,
        user_input: dict[str, Any],
        others: list[ConfigSubentry],
        errors: FormErrors,
    ) -> dict[str, Any]:
        # Home Assistant's own server is never a push endpoint.
        policy = admin_policy(self.hass)
        try:
            if text := (user_input.get(CONF_SUBSCRIPTION) or "").strip():
                subscription = parse_subscription_json(text, policy)
            else:
                subscription = parse_subscription(
                    user_input.get(CONF_ENDPOINT, ""),
                    user_input.get(CONF_P256DH, ""),
                    user_input.get(CONF_AUTH, ""),
                    policy,
                )
        except SubscriptionError as err:
            errors.refuse(err)
            return {}
        if any(
            s.data.get(CONF_ENDPOINT) == subscription[CONF_ENDPOINT] for s in others
        ):
            errors.add(CONF_ENDPOINT, "endpoint_in_use")
            return {}
        return {**subscription, CONF_ADMIN: user_input[CONF_ADMIN]}


def _days(least: int) -> vol.All:
    """A number of days, from least to a year, as a whole number."""
    return vol.All(
        NumberSelector(
            NumberSelectorConfig(
                min=least,
                max=365,
                step=1,
                mode=NumberSelectorMode.BOX,
                unit_of_measurement="d",
            )
        ),
        vol.Coerce(int),
    )


class DirectPushOptionsFlow(OptionsFlow):
    """Defaults for every message; the entry's update listener reloads it."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Default sound, interruption level and titles; where pushes may go."""
        errors = FormErrors()
        if user_input is not None:
            with errors.collect():
                # The frontend leaves a cleared field out: that means silent.
                sound = check_limited_field(
                    CONF_SOUND, user_input.get(CONF_SOUND, "").strip()
                )
            if error := reporter_options_error(
                self.hass, user_input.get(CONF_REPORTER) or {}
            ):
                errors.add("base", error)
            if not errors:
                return self.async_create_entry(data={**user_input, CONF_SOUND: sound})
        schema = vol.Schema(
            {
                vol.Optional(CONF_SOUND): str,
                vol.Optional(CONF_INTERRUPTION_LEVEL): SelectSelector(
                    SelectSelectorConfig(
                        options=[level.value for level in InterruptionLevel],
                        translation_key=CONF_INTERRUPTION_LEVEL,
                        mode=SelectSelectorMode.DROPDOWN,
                    )
                ),
                vol.Required(CONF_TITLE_FROM_DEVICE, default=False): BooleanSelector(),
                vol.Required(
                    CONF_UNREACHABLE_DAYS, default=DEFAULT_UNREACHABLE_DAYS
                ): _days(1),
                vol.Required(
                    CONF_ALLOW_LOCAL_PUSH_SERVICES, default=False
                ): BooleanSelector(),
                # The timeout push comes a day before the end: at least two days.
                vol.Required(CONF_LEASE_DAYS, default=DEFAULT_LEASE_DAYS): _days(2),
                vol.Optional(CONF_REPORTER, default={}): section(
                    REPORTER_SCHEMA, {"collapsed": True}
                ),
            }
        )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                schema,
                user_input or {CONF_SOUND: DEFAULT_SOUND, **self.config_entry.options},
            ),
            errors=errors.errors,
            description_placeholders=errors.placeholders or None,
        )
