"""Config flow for Direct Push: the hub, its devices and its options."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from homeassistant.components.file_upload import process_uploaded_file
from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentry,
    ConfigSubentryData,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.core import DOMAIN as HOMEASSISTANT_DOMAIN, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.selector import (
    BooleanSelector,
    FileSelector,
    FileSelectorConfig,
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
from homeassistant.helpers.translation import async_get_translations
import voluptuous as vol

from .apns import ApnsBackend, CredentialError, parse_certificate
from .backend import Outcome
from .const import (
    AUTH_CERTIFICATE,
    AUTH_TOKEN,
    CONF_ADMIN,
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
    CONF_NAME,
    CONF_P256DH,
    CONF_SOUND,
    CONF_SUBSCRIPTION,
    CONF_TEAM_ID,
    CONF_TITLE_FROM_DEVICE,
    CONF_TOKEN,
    CONF_TOPIC,
    CONF_UNREACHABLE_DAYS,
    CONF_VAPID_PRIVATE_KEY,
    DEFAULT_SOUND,
    DEFAULT_UNREACHABLE_DAYS,
    DOMAIN,
    ENV_PRODUCTION,
    ENV_SANDBOX,
    ENVIRONMENTS,
    LOGGER,
    SUBENTRY_APNS,
    SUBENTRY_WEBPUSH,
)
from .hub import inactive_issue_id
from .importer import (
    APPLE_ID_RE,
    CONFIG_NAME,
    TOPIC_RE,
    YAML_SOURCE,
    AppleImportError,
    ImportedCredentials,
    ImportedDevice,
    ImportResult,
    default_folder,
    expand_user,
    parse_config,
    read_folder,
    read_yaml_config,
    valid_device_token,
)
from .message import InterruptionLevel
from .routing import TARGET_ADMIN, TARGET_ALL
from .webpush import (
    SubscriptionError,
    generate_vapid_key,
    parse_subscription,
    parse_subscription_json,
    vapid_public_key,
)

TITLE: Final = "Direct Push"

_PROBE_ERRORS: Final = {
    "InvalidProviderToken": "invalid_provider_token",
    "ExpiredProviderToken": "invalid_provider_token",
    "MissingTopic": "missing_topic",
    "TopicDisallowed": "topic_disallowed",
    "BadCertificate": "bad_certificate",
    "BadCertificateEnvironment": "bad_certificate",
    "connection_error": "cannot_connect",
}

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
# The form field each validation error belongs to; others go at the top ("base").
_ERROR_FIELDS: Final = {
    "invalid_key_id": CONF_KEY_ID,
    "invalid_team_id": CONF_TEAM_ID,
    "invalid_topic": CONF_TOPIC,
    "invalid_key": CONF_KEY,
    "invalid_key_type": CONF_KEY,
}

_MULTILINE = TextSelector(TextSelectorConfig(multiline=True))
ENVIRONMENT_SELECTOR = SelectSelector(
    SelectSelectorConfig(
        options=list(ENVIRONMENTS),
        translation_key=CONF_ENVIRONMENT,
        mode=SelectSelectorMode.DROPDOWN,
    )
)


def _file_selector(accept: str) -> FileSelector:
    return FileSelector(FileSelectorConfig(accept=accept))


def _read_upload(hass: HomeAssistant, file_id: str) -> str:
    """Read an uploaded file. Runs in the executor."""
    with process_uploaded_file(hass, file_id) as path:
        return path.read_text(encoding="utf-8-sig")


async def _async_take_upload(
    hass: HomeAssistant, user_input: dict[str, Any], text_key: str, file_key: str
) -> bool:
    """Move an uploaded file's text into the text field; False if unreadable.

    The upload is consumed on reading, so after an error the form shows its text
    instead of a file id that no longer exists.
    """
    if not (file_id := user_input.pop(file_key, None)):
        return True
    try:
        user_input[text_key] = await hass.async_add_executor_job(
            _read_upload, hass, file_id
        )
    except (OSError, ValueError):  # ValueError: unknown file id, or not text
        return False
    return True


async def async_validate_apns(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> str | None:
    """Check credentials locally, then against APNs; return an error key or None."""
    if data[CONF_AUTH_METHOD] == AUTH_TOKEN:
        if not APPLE_ID_RE.match(data[CONF_KEY_ID]):
            return "invalid_key_id"
        if not APPLE_ID_RE.match(data[CONF_TEAM_ID]):
            return "invalid_team_id"
    if not TOPIC_RE.match(data[CONF_TOPIC]):
        return "invalid_topic"
    try:
        backend = await ApnsBackend.async_create(hass, data)
    except CredentialError as err:
        return err.key
    try:
        delivery = await backend.async_probe(data[CONF_ENVIRONMENT])
    finally:
        await backend.async_close()
    if delivery.outcome in (Outcome.DELIVERED, Outcome.DEVICE_GONE):
        return None
    LOGGER.debug("APNs refused the credentials: %s", delivery.reason)
    return _PROBE_ERRORS.get(delivery.reason or "", "apns_error")


# The key may come as a file or as pasted text: which one is checked after.
TOKEN_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(CONF_KEY_FILE): _file_selector(".p8,.pem,.txt"),
        vol.Optional(CONF_KEY): _MULTILINE,
        vol.Required(CONF_KEY_ID): str,
        vol.Required(CONF_TEAM_ID): str,
        vol.Required(CONF_TOPIC): str,
        vol.Required(CONF_ENVIRONMENT, default=ENV_PRODUCTION): ENVIRONMENT_SELECTOR,
    }
)
CERTIFICATE_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(CONF_CERTIFICATE_FILE): _file_selector(".pem"),
        vol.Optional(CONF_CERTIFICATE): _MULTILINE,
        vol.Optional(CONF_TOPIC): str,
        vol.Required(CONF_ENVIRONMENT, default=ENV_SANDBOX): ENVIRONMENT_SELECTOR,
    }
)

# Importing a dmt-system apple_push folder, its files uploaded, or the YAML.
CONF_FOLDER: Final = "folder"
CONF_CONFIG_FILE: Final = "config_file"
CONF_CREDENTIALS: Final = "credentials"
KEEP_CREDENTIALS: Final = "keep"
REPLACE_CREDENTIALS: Final = "replace"
YAML_FAILED_ISSUE: Final = "yaml_import_failed"
# The hub's Apple settings. The rest of its data (its Web Push identity) stays
# when imported credentials replace them.
_APNS_DATA: Final = (
    CONF_AUTH_METHOD,
    CONF_KEY,
    CONF_KEY_ID,
    CONF_TEAM_ID,
    CONF_TOPIC,
    CONF_CERTIFICATE,
    CONF_ENVIRONMENT,
)
# What makes imported credentials differ from the hub's, in the order shown.
_CREDENTIAL_DATA: Final = (
    CONF_AUTH_METHOD,
    CONF_TOPIC,
    CONF_KEY_ID,
    CONF_TEAM_ID,
    CONF_KEY,
    CONF_CERTIFICATE,
)
_SECRET_DATA: Final = frozenset({CONF_KEY, CONF_CERTIFICATE})
# Every placeholder an import error's message may use. The frontend formats a
# form's errors with the form's placeholders, so each import form passes all.
_IMPORT_PLACEHOLDERS: Final = dict.fromkeys(
    ("file", "folder", "field", "line", "column", "path", "name", "first"), ""
)
# The form field an import error belongs to, where the form has that field.
_IMPORT_ERROR_FIELDS: Final = {
    "folder_not_found": CONF_FOLDER,
    "missing_config": CONF_FOLDER,
    "invalid_key": CONF_KEY_FILE,
    "invalid_key_type": CONF_KEY_FILE,
    "unreadable_key_file": CONF_KEY_FILE,
    "invalid_certificate": CONF_CERTIFICATE_FILE,
}
_IMPORT_UPLOAD_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(CONF_CONFIG_FILE): _file_selector(".json"),
        vol.Optional(CONF_KEY_FILE): _file_selector(".p8,.pem,.txt"),
        vol.Optional(CONF_CERTIFICATE_FILE): _file_selector(".pem"),
    }
)
_IMPORT_CREDENTIALS_SCHEMA: Final = vol.Schema(
    {
        vol.Required(CONF_CREDENTIALS, default=KEEP_CREDENTIALS): SelectSelector(
            SelectSelectorConfig(
                options=[KEEP_CREDENTIALS, REPLACE_CREDENTIALS],
                translation_key="import_credentials",
                mode=SelectSelectorMode.LIST,
            )
        ),
    }
)


def _existing_default_folder() -> str | None:
    """Return dmt-system's apple_push folder if this machine has one. Blocking."""
    try:
        folder = default_folder()
    except RuntimeError:  # no home folder
        return None
    return str(folder) if folder.is_dir() else None


def _read_folder_at(config_dir: str, text: str) -> tuple[Path, ImportResult]:
    """Read a folder given as typed: `~` expanded, relative to the config dir."""
    folder = expand_user(Path(text.strip()))
    if not folder.is_absolute():
        folder = Path(config_dir) / folder
    return folder, read_folder(folder)


def _parse_uploads(uploads: Mapping[str, str]) -> ImportResult:
    """Import an uploaded config.json, with the key and certificate if uploaded."""
    key = uploads.get(CONF_KEY_FILE)
    return parse_config(
        uploads[CONF_CONFIG_FILE],
        source=CONFIG_NAME,
        # Whatever path the config names, the uploaded key is the one it means.
        read_file=None if key is None else lambda _path: key,
        certificate=uploads.get(CONF_CERTIFICATE_FILE),
    )


def _import_errors(err: AppleImportError, fields: Iterable[str]) -> dict[str, str]:
    """Return a form's errors for an import error: on its field, or on top."""
    field = _IMPORT_ERROR_FIELDS.get(err.key, "base")
    return {field if field in fields else "base": f"import_{err.key}"}


def _import_entry_data(credentials: ImportedCredentials) -> dict[str, Any]:
    """Return imported credentials as the hub's data, as the forms store it."""
    data: dict[str, Any] = credentials.as_entry_data()
    for key in _SECRET_DATA & data.keys():
        data[key] = data[key].strip()
    return data


def _credential_changes(
    current: Mapping[str, Any], imported: Mapping[str, Any]
) -> list[str]:
    """Return the credential fields that differ between the hub and an import."""
    return [
        key
        for key in _CREDENTIAL_DATA
        if str(current.get(key) or "").strip() != str(imported.get(key) or "").strip()
    ]


def _device_subentry(device: ImportedDevice, name: str) -> ConfigSubentryData:
    """Return an imported device as a device subentry, under its final name."""
    return ConfigSubentryData(
        data={**device.as_subentry_data(), CONF_NAME: name},
        subentry_type=SUBENTRY_APNS,
        title=name,
        unique_id=None,
    )


def _add_device(
    hass: HomeAssistant, hub: ConfigEntry, device: ImportedDevice, name: str
) -> Callable[[], object]:
    """Return the change that adds an imported device to the hub."""
    subentry = ConfigSubentry(
        data=MappingProxyType({**device.as_subentry_data(), CONF_NAME: name}),
        subentry_type=SUBENTRY_APNS,
        title=name,
        unique_id=None,
    )
    return lambda: hass.config_entries.async_add_subentry(hub, subentry)


def _merge_plan(
    hub: ConfigEntry, result: ImportResult
) -> tuple[list[tuple[ImportedDevice, str]], list[ImportedDevice]]:
    """Split imported devices into new ones (with a free name) and known tokens."""
    subentries = hub.subentries.values()
    tokens = {
        s.data.get(CONF_TOKEN) for s in subentries if s.subentry_type == SUBENTRY_APNS
    }
    names = {s.title.casefold() for s in subentries}
    add: list[tuple[ImportedDevice, str]] = []
    known: list[ImportedDevice] = []
    for device in result.devices:
        if device.token in tokens:
            known.append(device)
            continue
        name, number = device.name, 2
        while name.casefold() in names:
            name, number = f"{device.name} {number}", number + 1
        names.add(name.casefold())
        add.append((device, name))
    return add, known


async def _async_texts(hass: HomeAssistant, category: str) -> dict[str, str]:
    """Return this integration's strings of one category, in HA's language."""
    return await async_get_translations(hass, hass.config.language, category, [DOMAIN])


def _text(
    texts: Mapping[str, str], key: str, placeholders: Mapping[str, str] | None = None
) -> str:
    """Return one string, formatted; its key where it has no translation."""
    template = texts.get(f"component.{DOMAIN}.{key}", key)
    try:
        return template.format_map(dict(placeholders or {}))
    except (KeyError, IndexError, ValueError):
        return template


def _summary_text(texts: Mapping[str, str], key: str, **placeholders: str) -> str:
    return _text(texts, f"selector.import_summary.options.{key}", placeholders)


def _import_placeholders(
    result: ImportResult, source: str, texts: Mapping[str, str]
) -> dict[str, str]:
    """Describe an import for its summary: no key material, no device token."""
    credentials = result.credentials
    notes = []
    for note in result.notes:
        placeholders = dict(note.placeholders)
        if environment := placeholders.get(CONF_ENVIRONMENT):
            placeholders[CONF_ENVIRONMENT] = _text(
                texts, f"selector.environment.options.{environment}"
            )
        notes.append(
            f"- {_text(texts, f'selector.import_note.options.{note.key}', placeholders)}"
        )
    return {
        "source": source,
        "auth_method": _summary_text(texts, f"auth_{credentials.auth_method}"),
        "topic": credentials.topic,
        "key_id": credentials.key_id or _summary_text(texts, "not_applicable"),
        "team_id": credentials.team_id or _summary_text(texts, "not_applicable"),
        "environment": _text(
            texts, f"selector.environment.options.{credentials.environment}"
        ),
        "notes": "\n".join(notes),
    }


def _device_line(device: ImportedDevice, texts: Mapping[str, str], status: str) -> str:
    """One device of a merge's summary: name, admin flag and what happens to it."""
    admin = f" ({_summary_text(texts, 'admin')})" if device.admin else ""
    return f"- {device.name}{admin}: {status}"


def _changes_text(
    current: Mapping[str, Any], imported: Mapping[str, Any], texts: Mapping[str, str]
) -> str:
    """List how imported credentials differ; keys and certificates by name only."""
    lines = []
    for key in _credential_changes(current, imported):
        label = _summary_text(texts, key)
        if key in _SECRET_DATA:
            lines.append(f"- {label}")
            continue
        values = [str(data.get(key) or "—") for data in (current, imported)]
        if key == CONF_AUTH_METHOD:
            values = [
                _summary_text(texts, f"auth_{value}") if value != "—" else value
                for value in values
            ]
        lines.append(f"- {label}: {values[0]} → {values[1]}")
    return "\n".join(lines)


async def _async_change_hub(
    hass: HomeAssistant, hub: ConfigEntry, changes: list[Callable[[], object]]
) -> None:
    """Apply changes to the hub's data and devices, then reload it once.

    The update listener would reload a loaded hub after every single change:
    unload it first instead. A hub still setting up reloads once it is done.
    """
    if not changes:
        return
    state = hub.state
    unloaded = state is ConfigEntryState.LOADED and (
        await hass.config_entries.async_unload(hub.entry_id)
    )
    try:
        for change in changes:
            change()
    finally:
        # Never leave the hub unloaded, even when a change failed.
        if unloaded:
            await hass.config_entries.async_setup(hub.entry_id)
        elif state is not ConfigEntryState.NOT_LOADED:
            hass.config_entries.async_schedule_reload(hub.entry_id)


@callback
def async_yaml_import_failed(hass: HomeAssistant, reason: str) -> None:
    """Raise the error issue that says why the YAML was not imported."""
    LOGGER.error("The direct_push YAML configuration was not imported: %s", reason)
    ir.async_delete_issue(hass, HOMEASSISTANT_DOMAIN, f"deprecated_yaml_{DOMAIN}")
    ir.async_create_issue(
        hass,
        DOMAIN,
        YAML_FAILED_ISSUE,
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=YAML_FAILED_ISSUE,
        translation_placeholders={"reason": reason},
    )


@callback
def _async_yaml_imported(hass: HomeAssistant) -> None:
    """Ask the user to remove the imported YAML."""
    ir.async_delete_issue(hass, DOMAIN, YAML_FAILED_ISSUE)
    ir.async_create_issue(
        hass,
        HOMEASSISTANT_DOMAIN,
        f"deprecated_yaml_{DOMAIN}",
        breaks_in_ha_version=None,
        is_fixable=False,
        issue_domain=DOMAIN,
        severity=ir.IssueSeverity.WARNING,
        translation_key="deprecated_yaml",
        translation_placeholders={"domain": DOMAIN, "integration_title": TITLE},
    )


class DirectPushConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up the hub: APNs credentials proven against Apple."""

    VERSION = 1
    MINOR_VERSION = 2

    # An import in progress: what was read, from where, and the files uploaded.
    _import: ImportResult | None = None
    _import_source: str = ""
    _uploads: dict[str, str] | None = None

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Devices are subentries."""
        return {
            SUBENTRY_APNS: ApnsDeviceSubentryFlow,
            SUBENTRY_WEBPUSH: WebPushDeviceSubentryFlow,
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
    ) -> tuple[dict[str, Any] | None, dict[str, str]]:
        """Validate a token or certificate form; return data, or the errors.

        An empty key or certificate field falls back to the one in defaults.
        """
        if user_input is None:
            return None, {}
        text_key, file_key, required, unreadable = _CREDENTIAL_FIELDS[method]
        if not await _async_take_upload(self.hass, user_input, text_key, file_key):
            return None, {file_key: unreadable}
        pem = (user_input.get(text_key) or defaults.get(text_key) or "").strip()
        if not pem:
            return None, {"base": required}
        data = {**defaults, **user_input, CONF_AUTH_METHOD: method, text_key: pem}
        # Copied from Apple's portal, these often carry a stray space.
        for key in (CONF_KEY_ID, CONF_TEAM_ID, CONF_TOPIC):
            if isinstance(data.get(key), str):
                data[key] = data[key].strip()
        if method == AUTH_CERTIFICATE:
            try:
                topic = await self.hass.async_add_executor_job(parse_certificate, pem)
            except CredentialError as err:
                return None, {text_key: err.key}
            if not data.get(CONF_TOPIC):
                if topic is None:
                    return None, {CONF_TOPIC: "missing_topic"}
                data[CONF_TOPIC] = topic
        if error := await async_validate_apns(self.hass, data):
            return None, {_ERROR_FIELDS.get(error, "base"): error}
        return data, {}

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
            errors=errors,
        )

    async def async_step_import_folder(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Import a dmt-system apple_push folder on the Home Assistant machine."""
        errors: dict[str, str] = {}
        placeholders = dict(_IMPORT_PLACEHOLDERS)
        if user_input is not None:
            try:
                folder, self._import = await self.hass.async_add_executor_job(
                    _read_folder_at,
                    self.hass.config.config_dir,
                    user_input[CONF_FOLDER],
                )
            except AppleImportError as err:
                errors = _import_errors(err, {CONF_FOLDER})
                placeholders |= err.placeholders
            else:
                self._import_source = str(folder)
                return await self._async_show_import_summary()
        default = await self.hass.async_add_executor_job(_existing_default_folder)
        schema = vol.Schema(
            {vol.Required(CONF_FOLDER, default=default or vol.UNDEFINED): str}
        )
        return self.async_show_form(
            step_id="import_folder",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_import_upload(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Import an uploaded config.json, its key and its certificate.

        Reading consumes an upload: after an error the flow keeps the files it
        has, so the user uploads only the one to fix.
        """
        errors: dict[str, str] = {}
        placeholders = dict(_IMPORT_PLACEHOLDERS)
        if user_input is not None:
            uploads = self._uploads = dict(self._uploads or {})
            for field in (CONF_CONFIG_FILE, CONF_KEY_FILE, CONF_CERTIFICATE_FILE):
                if not (file_id := user_input.get(field)):
                    continue
                try:
                    uploads[field] = await self.hass.async_add_executor_job(
                        _read_upload, self.hass, file_id
                    )
                except (OSError, ValueError):  # unknown file id, or not text
                    errors[field] = "import_unreadable_upload"
            if not errors and CONF_CONFIG_FILE not in uploads:
                errors[CONF_CONFIG_FILE] = "import_config_required"
            if not errors:
                try:
                    self._import = await self.hass.async_add_executor_job(
                        _parse_uploads, uploads
                    )
                except AppleImportError as err:
                    errors = _import_errors(err, {CONF_KEY_FILE, CONF_CERTIFICATE_FILE})
                    placeholders |= err.placeholders
                else:
                    self._import_source = CONFIG_NAME
                    return await self._async_show_import_summary()
        return self.async_show_form(
            step_id="import_upload",
            data_schema=_IMPORT_UPLOAD_SCHEMA,
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _async_show_import_summary(
        self, errors: dict[str, str] | None = None
    ) -> ConfigFlowResult:
        """Show what the import found; nothing is saved yet."""
        assert self._import is not None
        result = self._import
        texts = await _async_texts(self.hass, "selector")
        placeholders = _import_placeholders(result, self._import_source, texts)
        if (hub := self._hub()) is None:
            step_id = "import_confirm"
            devices = result.device_summary(_summary_text(texts, "admin"))
        else:
            step_id = "import_merge"
            add, known = _merge_plan(hub, result)
            statuses = {
                device.token: _summary_text(texts, "existing") for device in known
            }
            for device, name in add:
                statuses[device.token] = (
                    _summary_text(texts, "new")
                    if name == device.name
                    else _summary_text(texts, "renamed", new_name=name)
                )
            devices = "\n".join(
                _device_line(device, texts, statuses[device.token])
                for device in result.devices
            )
        placeholders["devices"] = devices or _summary_text(texts, "none")
        return self.async_show_form(
            step_id=step_id,
            data_schema=vol.Schema({}),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_import_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Prove the imported credentials, then create the hub and its devices."""
        assert self._import is not None
        if user_input is None or self._hub() is not None:
            return await self._async_show_import_summary()
        data = _import_entry_data(self._import.credentials)
        if error := await async_validate_apns(self.hass, data):
            return await self._async_show_import_summary({"base": error})
        await self.async_set_unique_id(DOMAIN)
        self._abort_if_unique_id_configured()
        LOGGER.debug(
            "Creating the hub with %d imported devices", len(self._import.devices)
        )
        return await self._async_create_hub(
            data,
            [_device_subentry(device, device.name) for device in self._import.devices],
        )

    async def async_step_import_merge(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Add the new devices to the existing hub; ask if credentials differ."""
        assert self._import is not None
        if user_input is None or (hub := self._hub()) is None:
            return await self._async_show_import_summary()
        imported = _import_entry_data(self._import.credentials)
        if CONF_AUTH_METHOD not in hub.data:
            # A hub without Apple credentials has nothing to keep.
            if error := await async_validate_apns(self.hass, imported):
                return await self._async_show_import_summary({"base": error})
            return await self._async_merge(hub, imported)
        if _credential_changes(hub.data, imported):
            return await self.async_step_import_credentials()
        return await self._async_merge(hub, None)

    async def async_step_import_credentials(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The file's credentials differ from the hub's: keep which?"""
        assert self._import is not None
        if (hub := self._hub()) is None:
            return await self._async_show_import_summary()
        imported = _import_entry_data(self._import.credentials)
        errors: dict[str, str] = {}
        if user_input is not None:
            if user_input[CONF_CREDENTIALS] != REPLACE_CREDENTIALS:
                return await self._async_merge(hub, None)
            # The imported credentials replace working ones only once proven.
            if not (error := await async_validate_apns(self.hass, imported)):
                return await self._async_merge(hub, imported)
            errors["base"] = error
        texts = await _async_texts(self.hass, "selector")
        return self.async_show_form(
            step_id="import_credentials",
            data_schema=self.add_suggested_values_to_schema(
                _IMPORT_CREDENTIALS_SCHEMA, user_input
            ),
            errors=errors,
            description_placeholders={
                "source": self._import_source,
                "changes": _changes_text(hub.data, imported, texts),
            },
        )

    async def _async_merge(
        self, hub: ConfigEntry, credentials: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """Add the devices whose tokens are new; leave the others alone."""
        assert self._import is not None
        add, known = _merge_plan(hub, self._import)
        manager = self.hass.config_entries
        changes: list[Callable[[], object]] = []
        if credentials is not None:
            data = {k: v for k, v in hub.data.items() if k not in _APNS_DATA}
            changes.append(
                lambda: manager.async_update_entry(hub, data=data | credentials)
            )
        changes.extend(
            _add_device(self.hass, hub, device, name) for device, name in add
        )
        await _async_change_hub(self.hass, hub, changes)
        LOGGER.debug(
            "Imported into the hub: %d devices added, %d already there%s",
            len(add),
            len(known),
            ", credentials replaced" if credentials is not None else "",
        )
        return self.async_abort(
            reason="import_merged_credentials"
            if credentials is not None
            else "import_merged",
            description_placeholders={
                "added": str(len(add)),
                "skipped": str(len(known)),
            },
        )

    async def async_step_import(self, import_data: dict[str, Any]) -> ConfigFlowResult:
        """Import the direct_push: YAML; on later starts, update the hub from it."""
        try:
            result = await self.hass.async_add_executor_job(
                read_yaml_config, import_data, Path(self.hass.config.config_dir)
            )
        except AppleImportError as err:
            return await self._async_yaml_failed(f"import_{err.key}", err.placeholders)
        data = _import_entry_data(result.credentials)
        hub = self._hub()
        # Prove new credentials; unchanged ones need no test push at every start.
        # Unreachable Apple (no network yet at boot) is no reason to drop the
        # YAML: the first real push reports it, and Apple's refusals start reauth.
        if (
            (hub is None or _credential_changes(hub.data, data))
            and (error := await async_validate_apns(self.hass, data))
            and error != "cannot_connect"
        ):
            return await self._async_yaml_failed(error, {})
        if hub is None:
            await self.async_set_unique_id(DOMAIN, raise_on_progress=False)
            self._abort_if_unique_id_configured()
            _async_yaml_imported(self.hass)
            return await self._async_create_hub(
                data,
                [_device_subentry(device, device.name) for device in result.devices],
            )
        try:
            changes = self._yaml_changes(hub, data, result)
        except AppleImportError as err:
            return await self._async_yaml_failed(f"import_{err.key}", err.placeholders)
        await _async_change_hub(self.hass, hub, changes)
        _async_yaml_imported(self.hass)
        return self.async_abort(reason="yaml_updated")

    def _yaml_changes(
        self, hub: ConfigEntry, credentials: dict[str, Any], result: ImportResult
    ) -> list[Callable[[], object]]:
        """Return the updates that make the hub match the YAML.

        Devices are matched by token: a known token gets the YAML's name, admin
        flag and environment; a new one becomes a device. Devices that the YAML
        does not list stay, since they may have been added in the UI.
        """
        manager = self.hass.config_entries
        changes: list[Callable[[], object]] = []
        data = {k: v for k, v in hub.data.items() if k not in _APNS_DATA} | credentials
        if data != dict(hub.data):
            changes.append(lambda: manager.async_update_entry(hub, data=data))
        by_token = {
            s.data.get(CONF_TOKEN): s
            for s in hub.subentries.values()
            if s.subentry_type == SUBENTRY_APNS
        }
        titles = {s.subentry_id: s.title for s in hub.subentries.values()}
        new: list[ImportedDevice] = []
        for device in result.devices:
            if (subentry := by_token.get(device.token)) is None:
                new.append(device)
                continue
            titles[subentry.subentry_id] = device.name
            device_data = {**subentry.data, **device.as_subentry_data()}
            if device_data != dict(subentry.data) or subentry.title != device.name:
                changes.append(
                    partial(
                        manager.async_update_subentry,
                        hub,
                        subentry,
                        data=device_data,
                        title=device.name,
                    )
                )
        seen: set[str] = set()
        for name in [*titles.values(), *(device.name for device in new)]:
            if name.casefold() in seen:
                raise AppleImportError(
                    "name_in_use", {"file": YAML_SOURCE, "name": name}
                )
            seen.add(name.casefold())
        changes.extend(
            _add_device(self.hass, hub, device, device.name) for device in new
        )
        return changes

    async def _async_yaml_failed(
        self, key: str, placeholders: Mapping[str, str]
    ) -> ConfigFlowResult:
        """Raise the error issue, in words, and give up until the next start."""
        texts = await _async_texts(self.hass, "config")
        reason = _text(
            texts, f"config.error.{key}", {**_IMPORT_PLACEHOLDERS, **placeholders}
        )
        async_yaml_import_failed(self.hass, reason)
        return self.async_abort(reason=YAML_FAILED_ISSUE)

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
                    vol.Optional(CONF_CERTIFICATE_FILE): _file_selector(".pem"),
                    vol.Optional(CONF_CERTIFICATE): _MULTILINE,
                }
            )
        else:
            schema = vol.Schema(
                {
                    vol.Optional(CONF_KEY_FILE): _file_selector(".p8,.pem,.txt"),
                    vol.Optional(CONF_KEY): _MULTILINE,
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
            errors=errors,
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
            fields[vol.Optional(CONF_CERTIFICATE_FILE)] = _file_selector(".pem")
            fields[vol.Optional(CONF_CERTIFICATE)] = _MULTILINE
        else:
            fields[vol.Optional(CONF_KEY_FILE)] = _file_selector(".p8,.pem,.txt")
            fields[vol.Optional(CONF_KEY)] = _MULTILINE
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(fields), user_input
            ),
            errors=errors,
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

    def _schema(self, entry: ConfigEntry) -> vol.Schema:
        raise NotImplementedError

    def _validate(
        self, user_input: dict[str, Any], others: list[ConfigSubentry]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Return the device data to store, or the errors per field."""
        raise NotImplementedError

    async def _async_placeholders(self, entry: ConfigEntry) -> dict[str, str]:
        return {}

    async def _async_device_form(
        self, step_id: str, user_input: dict[str, Any] | None, device_id: str | None
    ) -> SubentryFlowResult:
        entry = self._get_entry()
        errors: dict[str, str] = {}
        current = entry.subentries[device_id].data if device_id else {}
        if user_input is not None:
            name = user_input[CONF_NAME].strip()
            others = [
                s for s in entry.subentries.values() if s.subentry_id != device_id
            ]
            data, errors = self._validate(user_input, others)
            # Names are unique across kinds, and not a routing word: automations
            # send to them.
            if name.casefold() in (TARGET_ADMIN, TARGET_ALL):
                errors[CONF_NAME] = "reserved_name"
            elif any(s.title.casefold() == name.casefold() for s in others):
                errors[CONF_NAME] = "name_in_use"
            if not errors:
                data[CONF_NAME] = name
                if device_id is None:
                    return self.async_create_entry(title=name, data=data)
                ir.async_delete_issue(self.hass, DOMAIN, inactive_issue_id(device_id))
                return self.async_update_and_abort(
                    entry, self._get_reconfigure_subentry(), title=name, data=data
                )
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(
                self._schema(entry), user_input if user_input is not None else current
            ),
            errors=errors,
            description_placeholders=await self._async_placeholders(entry),
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
                ): ENVIRONMENT_SELECTOR,
                vol.Optional(CONF_TOPIC): str,
            }
        )

    def _validate(
        self, user_input: dict[str, Any], others: list[ConfigSubentry]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        errors: dict[str, str] = {}
        token = user_input[CONF_TOKEN] = user_input[CONF_TOKEN].strip().lower()
        if not valid_device_token(token):
            errors[CONF_TOKEN] = "invalid_device_token"
        elif any(s.data.get(CONF_TOKEN) == token for s in others):
            errors[CONF_TOKEN] = "device_token_in_use"
        topic = user_input.get(CONF_TOPIC)
        if topic and not TOPIC_RE.match(topic):
            errors[CONF_TOPIC] = "invalid_topic"
        return dict(user_input), errors


class WebPushDeviceSubentryFlow(_DeviceSubentryFlow):
    """Add or edit a Web Push device: a UnifiedPush app or a browser."""

    def _schema(self, entry: ConfigEntry) -> vol.Schema:
        return vol.Schema(
            {
                vol.Required(CONF_NAME): str,
                vol.Optional(CONF_SUBSCRIPTION): _MULTILINE,
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
        self, user_input: dict[str, Any], others: list[ConfigSubentry]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        try:
            if text := (user_input.get(CONF_SUBSCRIPTION) or "").strip():
                subscription = parse_subscription_json(text)
            else:
                subscription = parse_subscription(
                    user_input.get(CONF_ENDPOINT, ""),
                    user_input.get(CONF_P256DH, ""),
                    user_input.get(CONF_AUTH, ""),
                )
        except SubscriptionError as err:
            return {}, {err.field: err.key}
        if any(
            s.data.get(CONF_ENDPOINT) == subscription[CONF_ENDPOINT] for s in others
        ):
            return {}, {CONF_ENDPOINT: "endpoint_in_use"}
        return {**subscription, CONF_ADMIN: user_input[CONF_ADMIN]}, {}


class DirectPushOptionsFlow(OptionsFlow):
    """Defaults for every message; the entry's update listener reloads it."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Default sound, interruption level and titles."""
        if user_input is not None:
            # The frontend leaves a cleared field out: that means silent.
            return self.async_create_entry(
                data={**user_input, CONF_SOUND: user_input.get(CONF_SOUND, "")}
            )
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
                ): vol.All(
                    NumberSelector(
                        NumberSelectorConfig(
                            min=1,
                            max=365,
                            step=1,
                            mode=NumberSelectorMode.BOX,
                            unit_of_measurement="d",
                        )
                    ),
                    vol.Coerce(int),
                ),
            }
        )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                schema, {CONF_SOUND: DEFAULT_SOUND, **self.config_entry.options}
            ),
        )
