"""The config flow's import steps: a dmt-system apple_push folder, its files, or the YAML.

DirectPushConfigFlow inherits these steps. Nothing is saved before the user has
seen what was read; the YAML, read at every start, updates the hub it made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentry,
    ConfigSubentryData,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import (
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)
from homeassistant.helpers.translation import async_get_translations
import voluptuous as vol

from .apns import APNS, async_validate_credentials
from .const import (
    CONF_AUTH_METHOD,
    CONF_CERTIFICATE,
    CONF_CERTIFICATE_FILE,
    CONF_ENVIRONMENT,
    CONF_KEY,
    CONF_KEY_FILE,
    CONF_KEY_ID,
    CONF_NAME,
    CONF_TEAM_ID,
    CONF_TOKEN,
    CONF_TOPIC,
    DOMAIN,
    LOGGER,
)
from .forms import (
    CERTIFICATE_FILE_TYPES,
    KEY_FILE_TYPES,
    UPLOAD_LIMITS,
    file_selector,
    read_upload,
)
from .import_files import TextEncodingError, expand_user
from .import_result import (
    AppleImportError,
    ImportedCredentials,
    ImportedDevice,
    ImportResult,
    import_error,
)
from .importer import (
    CERTIFICATE_NAME,
    CONFIG_NAME,
    YAML_SOURCE,
    default_folder,
    parse_config,
    read_folder,
    read_yaml_config,
)
from .issues import (
    YAML_IMPORT_FAILED,
    async_create_yaml_deprecated,
    async_create_yaml_import_failed,
)
from .names import NAME_IN_USE, DeviceNames
from .safe_file import MAX_CONFIG_FILE
from .validation import InputError, check_text

CONF_FOLDER: Final = "folder"
CONF_CONFIG_FILE: Final = "config_file"
CONF_CREDENTIALS: Final = "credentials"
KEEP_CREDENTIALS: Final = "keep"
REPLACE_CREDENTIALS: Final = "replace"
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
    (
        "file",
        "folder",
        "field",
        "line",
        "column",
        "path",
        "tried",
        "encoding",
        "name",
        "first",
        "limit",
    ),
    "",
)
# The form field an import error belongs to, where the form has that field.
_IMPORT_ERROR_FIELDS: Final = {
    "folder_not_found": CONF_FOLDER,
    "invalid_folder": CONF_FOLDER,
    "missing_config": CONF_FOLDER,
    "invalid_key": CONF_KEY_FILE,
    "invalid_key_type": CONF_KEY_FILE,
    "missing_key_upload": CONF_KEY_FILE,
    "invalid_certificate": CONF_CERTIFICATE_FILE,
    "encrypted_certificate_key": CONF_CERTIFICATE_FILE,
}
# What each upload is, for the errors that name it, and its size limit.
_UPLOAD_NAMES: Final = {
    CONF_CONFIG_FILE: CONFIG_NAME,
    CONF_KEY_FILE: "AuthKey.p8",
    CONF_CERTIFICATE_FILE: CERTIFICATE_NAME,
}
_UPLOAD_LIMITS: Final = {**UPLOAD_LIMITS, CONF_CONFIG_FILE: MAX_CONFIG_FILE}
_IMPORT_UPLOAD_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(CONF_CONFIG_FILE): file_selector(".json"),
        vol.Optional(CONF_KEY_FILE): file_selector(KEY_FILE_TYPES),
        vol.Optional(CONF_CERTIFICATE_FILE): file_selector(CERTIFICATE_FILE_TYPES),
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
    try:
        check_text(text, CONF_FOLDER)
    except InputError:
        # Never echoed: it may be what the frontend cannot show.
        raise AppleImportError("invalid_folder") from None
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
        subentry_type=APNS.kind,
        title=name,
        unique_id=None,
    )


def _add_device(
    hass: HomeAssistant, hub: ConfigEntry, device: ImportedDevice, name: str
) -> Callable[[], object]:
    """Return the change that adds an imported device to the hub."""
    subentry = ConfigSubentry(
        data=MappingProxyType({**device.as_subentry_data(), CONF_NAME: name}),
        subentry_type=APNS.kind,
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
        s.data.get(CONF_TOKEN) for s in subentries if s.subentry_type == APNS.kind
    }
    names = DeviceNames(s.title for s in subentries)
    add: list[tuple[ImportedDevice, str]] = []
    known: list[ImportedDevice] = []
    for device in result.devices:
        if device.token in tokens:
            known.append(device)
        else:
            add.append((device, names.claim(device.name)))
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
    # A list of their own: the description sets them under their own heading.
    notes = [
        f"- {_text(texts, f'selector.import_note.options.{note.key}', note.placeholders)}"
        for note in result.notes
    ] or [_summary_text(texts, "none")]
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


class ImportFlow(ConfigFlow):
    """The import steps; DirectPushConfigFlow gives the hub's own helpers."""

    # An import in progress: what was read, from where, and the files uploaded.
    _import: ImportResult | None = None
    _import_source: str = ""
    _uploads: dict[str, str] | None = None

    def _hub(self) -> ConfigEntry | None:
        """Return the hub, if Direct Push is set up."""
        raise NotImplementedError

    async def _async_create_hub(
        self,
        data: dict[str, Any],
        subentries: Iterable[ConfigSubentryData] = (),
    ) -> ConfigFlowResult:
        """Create the hub with its devices."""
        raise NotImplementedError

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
                name = _UPLOAD_NAMES[field]
                try:
                    uploads[field] = await self.hass.async_add_executor_job(
                        partial(
                            read_upload,
                            self.hass,
                            file_id,
                            limit=_UPLOAD_LIMITS[field],
                            label=name,
                        )
                    )
                except (InputError, TextEncodingError) as err:
                    error = import_error(err, name)
                    errors[field] = f"import_{error.key}"
                    placeholders |= error.placeholders
                except (OSError, ValueError):  # an unknown file id
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
        if error := await async_validate_credentials(self.hass, data):
            return await self._async_show_import_summary({"base": error.key})
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
            if error := await async_validate_credentials(self.hass, imported):
                return await self._async_show_import_summary({"base": error.key})
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
            if not (error := await async_validate_credentials(self.hass, imported)):
                return await self._async_merge(hub, imported)
            errors["base"] = error.key
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
            and (error := await async_validate_credentials(self.hass, data))
            and error.key != "cannot_connect"
        ):
            return await self._async_yaml_failed(error.key, {})
        if hub is None:
            await self.async_set_unique_id(DOMAIN, raise_on_progress=False)
            self._abort_if_unique_id_configured()
            async_create_yaml_deprecated(self.hass)
            return await self._async_create_hub(
                data,
                [_device_subentry(device, device.name) for device in result.devices],
            )
        try:
            changes = self._yaml_changes(hub, data, result)
        except AppleImportError as err:
            return await self._async_yaml_failed(f"import_{err.key}", err.placeholders)
        await _async_change_hub(self.hass, hub, changes)
        async_create_yaml_deprecated(self.hass)
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
            if s.subentry_type == APNS.kind
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
        names = DeviceNames()
        for name in [*titles.values(), *(device.name for device in new)]:
            if names.in_use(name):
                raise AppleImportError(NAME_IN_USE, {"file": YAML_SOURCE, "name": name})
            names.take(name)
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
        async_create_yaml_import_failed(self.hass, reason)
        return self.async_abort(reason=YAML_IMPORT_FAILED)
