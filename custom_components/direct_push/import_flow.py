"""Importing an apple_push folder, its files uploaded, or the YAML: the flows.

Two entry points run the same steps (ImportSteps): the config flow, which
creates the hub from an import (ImportFlow, which DirectPushConfigFlow
inherits), and the hub's import subentry flow, which adds an import's devices
to the hub there is (ImportSubentryFlow): HA allows one hub, so a second config
flow is refused. Nothing is saved before the user has seen what was read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, Final

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowContext,
    ConfigFlowResult,
    ConfigSubentryData,
    ConfigSubentryFlow,
    SubentryFlowContext,
    SubentryFlowResult,
)
from homeassistant.data_entry_flow import FlowContext, FlowHandler, FlowResult
from homeassistant.helpers.selector import (
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)
import voluptuous as vol

from .apns import async_validate_credentials
from .const import (
    CONF_AUTH_METHOD,
    CONF_CERTIFICATE_FILE,
    CONF_KEY_FILE,
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
from .hub_import import (
    IMPORT_PLACEHOLDERS,
    SECRET_DATA,
    HubChange,
    add_device,
    async_change_hub,
    async_texts,
    credential_changes,
    device_subentry,
    import_entry_data,
    merge_plan,
    text,
    with_credentials,
)
from .import_files import TextEncodingError, expand_user
from .import_result import AppleImportError, ImportedDevice, ImportResult, import_error
from .importer import (
    CERTIFICATE_NAME,
    CONFIG_NAME,
    default_folder,
    parse_config,
    read_folder,
)
from .issues import YAML_IMPORT_FAILED, async_create_yaml_deprecated
from .safe_file import MAX_CONFIG_FILE
from .validation import InputError, check_text, escape_markdown
from .yaml_import import async_read_yaml

IMPORT_SUBENTRY: Final = "apple_push_import"
"""The hub's subentry type that imports more devices; none is ever created."""
CONF_FOLDER: Final = "folder"
CONF_CONFIG_FILE: Final = "config_file"
CONF_CREDENTIALS: Final = "credentials"
KEEP_CREDENTIALS: Final = "keep"
REPLACE_CREDENTIALS: Final = "replace"
IMPORT_METHODS: Final = ["import_folder", "import_upload"]
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


def _read_folder_at(config_dir: str, typed: str) -> tuple[Path, ImportResult]:
    """Read a folder given as typed: `~` expanded, relative to the config dir."""
    try:
        check_text(typed, CONF_FOLDER)
    except InputError:
        # Never echoed: it may be what the frontend cannot show.
        raise AppleImportError("invalid_folder") from None
    folder = expand_user(Path(typed.strip()))
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


def _summary_text(texts: Mapping[str, str], key: str, **placeholders: str) -> str:
    return text(texts, f"selector.import_summary.options.{key}", placeholders)


def _import_placeholders(
    result: ImportResult, source: str, texts: Mapping[str, str]
) -> dict[str, str]:
    """Describe an import for its summary: no key material, no device token."""
    credentials = result.credentials
    # A list of their own: the description sets them under their own heading.
    notes = [
        "- "
        + text(
            texts,
            f"selector.import_note.options.{note.key}",
            {key: escape_markdown(value) for key, value in note.placeholders.items()},
        )
        for note in result.notes
    ] or [_summary_text(texts, "none")]
    return {
        "source": escape_markdown(source),
        "auth_method": _summary_text(texts, f"auth_{credentials.auth_method}"),
        "topic": credentials.topic,
        "key_id": credentials.key_id or _summary_text(texts, "not_applicable"),
        "team_id": credentials.team_id or _summary_text(texts, "not_applicable"),
        "environment": text(
            texts, f"selector.environment.options.{credentials.environment}"
        ),
        "notes": "\n".join(notes),
    }


def _device_line(
    device: ImportedDevice, texts: Mapping[str, str], status: str | None = None
) -> str:
    """One device of a summary: name, admin flag and what happens to it, if said."""
    admin = f" ({_summary_text(texts, 'admin')})" if device.admin else ""
    line = f"- {escape_markdown(device.name)}{admin}"
    return line if status is None else f"{line}: {status}"


def _changes_text(
    current: Mapping[str, Any], imported: Mapping[str, Any], texts: Mapping[str, str]
) -> str:
    """List how imported credentials differ; keys and certificates by name only."""
    lines = []
    for key in credential_changes(current, imported):
        label = _summary_text(texts, key)
        if key in SECRET_DATA:
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


class ImportSteps[ContextT: FlowContext, ResultT: FlowResult[Any, Any], HandlerT](
    FlowHandler[ContextT, ResultT, HandlerT]
):
    """Read a folder or uploaded files, then show what was read.

    The flow that inherits these decides what the summary offers and what
    submitting it does.
    """

    # An import in progress: what was read, from where, and the files uploaded.
    _import: ImportResult | None = None
    _import_source: str = ""
    _uploads: dict[str, str] | None = None

    async def _async_show_import_summary(
        self, errors: dict[str, str] | None = None
    ) -> ResultT:
        """Show what the import found; nothing is saved yet."""
        raise NotImplementedError

    async def async_step_import_folder(
        self, user_input: dict[str, Any] | None = None
    ) -> ResultT:
        """Import a dmt-system apple_push folder on the Home Assistant machine."""
        errors: dict[str, str] = {}
        placeholders = dict(IMPORT_PLACEHOLDERS)
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
    ) -> ResultT:
        """Import an uploaded config.json, its key and its certificate.

        Reading consumes an upload: after an error the flow keeps the files it
        has, so the user uploads only the one to fix.
        """
        errors: dict[str, str] = {}
        placeholders = dict(IMPORT_PLACEHOLDERS)
        if user_input is not None:
            uploads = self._uploads = dict(self._uploads or {})
            for field, name in _UPLOAD_NAMES.items():
                if not (file_id := user_input.get(field)):
                    continue
                read = partial(
                    read_upload,
                    self.hass,
                    file_id,
                    limit=_UPLOAD_LIMITS[field],
                    label=name,
                )
                try:
                    uploads[field] = await self.hass.async_add_executor_job(read)
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

    async def _async_summary_form(
        self,
        step_id: str,
        devices: str,
        errors: dict[str, str] | None,
        texts: Mapping[str, str],
    ) -> ResultT:
        """Show the summary: the credentials, this list of devices and the notes."""
        assert self._import is not None
        placeholders = _import_placeholders(self._import, self._import_source, texts)
        placeholders["devices"] = devices or _summary_text(texts, "none")
        return self.async_show_form(
            step_id=step_id,
            data_schema=vol.Schema({}),
            errors=errors,
            description_placeholders=placeholders,
        )


class ImportFlow(ImportSteps[ConfigFlowContext, ConfigFlowResult, str], ConfigFlow):
    """The config flow's imports: they create the hub. DirectPushConfigFlow adds its own."""

    async def _async_create_hub(
        self,
        data: dict[str, Any],
        subentries: Iterable[ConfigSubentryData] = (),
    ) -> ConfigFlowResult:
        """Create the hub with its devices."""
        raise NotImplementedError

    async def _async_show_import_summary(
        self, errors: dict[str, str] | None = None
    ) -> ConfigFlowResult:
        """Show what the hub would be made of."""
        assert self._import is not None
        texts = await async_texts(self.hass, "selector")
        devices = "\n".join(
            _device_line(device, texts) for device in self._import.devices
        )
        return await self._async_summary_form("import_confirm", devices, errors, texts)

    async def async_step_import_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Prove the imported credentials, then create the hub and its devices."""
        assert self._import is not None
        if user_input is None:
            return await self._async_show_import_summary()
        data = import_entry_data(self._import.credentials)
        if error := await async_validate_credentials(self.hass, data):
            return await self._async_show_import_summary({"base": error.key})
        # A hub made meanwhile, in another window.
        await self.async_set_unique_id(DOMAIN)
        self._abort_if_unique_id_configured()
        LOGGER.debug(
            "Creating the hub with %d imported devices", len(self._import.devices)
        )
        return await self._async_create_hub(
            data,
            [device_subentry(device, device.name) for device in self._import.devices],
        )

    async def async_step_import(self, import_data: dict[str, Any]) -> ConfigFlowResult:
        """Create the hub from the direct_push: YAML, at the first start.

        Later starts update the hub without a flow (yaml_import).
        """
        if (read := await async_read_yaml(self.hass, import_data, None)) is None:
            return self.async_abort(reason=YAML_IMPORT_FAILED)
        result, data = read
        await self.async_set_unique_id(DOMAIN, raise_on_progress=False)
        self._abort_if_unique_id_configured()
        async_create_yaml_deprecated(self.hass)
        return await self._async_create_hub(
            data, [device_subentry(device, device.name) for device in result.devices]
        )


class ImportSubentryFlow(
    ImportSteps[SubentryFlowContext, SubentryFlowResult, tuple[str, str]],
    ConfigSubentryFlow,
):
    """Import more devices into the hub, from a folder or uploaded files.

    Devices whose tokens the hub has stay as they are; the others are added.
    Credentials that differ from the hub's replace them only if the user says
    so and Apple accepts them. It ends, as a reconfiguration does, with an
    abort that says what was done: no subentry of its own type is made.
    """

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Choose where the files are."""
        return self.async_show_menu(step_id="user", menu_options=IMPORT_METHODS)

    async def _async_show_import_summary(
        self, errors: dict[str, str] | None = None
    ) -> SubentryFlowResult:
        """Show what happens to each device."""
        assert self._import is not None
        texts = await async_texts(self.hass, "selector")
        add, known = merge_plan(self._get_entry(), self._import)
        statuses = {device.token: _summary_text(texts, "existing") for device in known}
        for device, name in add:
            statuses[device.token] = (
                _summary_text(texts, "new")
                if name == device.name
                else _summary_text(texts, "renamed", new_name=escape_markdown(name))
            )
        devices = "\n".join(
            _device_line(device, texts, statuses[device.token])
            for device in self._import.devices
        )
        return await self._async_summary_form("import_merge", devices, errors, texts)

    async def async_step_import_merge(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Add the new devices to the hub; ask first if credentials differ."""
        assert self._import is not None
        if user_input is None:
            return await self._async_show_import_summary()
        hub = self._get_entry()
        imported = import_entry_data(self._import.credentials)
        if CONF_AUTH_METHOD not in hub.data:
            # A hub without Apple credentials has nothing to keep.
            if error := await async_validate_credentials(self.hass, imported):
                return await self._async_show_import_summary({"base": error.key})
            return await self._async_merge(hub, imported)
        if credential_changes(hub.data, imported):
            return await self.async_step_import_credentials()
        return await self._async_merge(hub, None)

    async def async_step_import_credentials(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """The file's credentials differ from the hub's: keep which?"""
        assert self._import is not None
        hub = self._get_entry()
        imported = import_entry_data(self._import.credentials)
        errors: dict[str, str] = {}
        if user_input is not None:
            if user_input[CONF_CREDENTIALS] != REPLACE_CREDENTIALS:
                return await self._async_merge(hub, None)
            # The imported credentials replace working ones only once proven.
            if not (error := await async_validate_credentials(self.hass, imported)):
                return await self._async_merge(hub, imported)
            errors["base"] = error.key
        texts = await async_texts(self.hass, "selector")
        return self.async_show_form(
            step_id="import_credentials",
            data_schema=self.add_suggested_values_to_schema(
                _IMPORT_CREDENTIALS_SCHEMA, user_input
            ),
            errors=errors,
            description_placeholders={
                "source": escape_markdown(self._import_source),
                "changes": _changes_text(hub.data, imported, texts),
            },
        )

    async def _async_merge(
        self, hub: ConfigEntry, credentials: dict[str, Any] | None
    ) -> SubentryFlowResult:
        """Add the devices whose tokens are new; leave the others alone."""
        assert self._import is not None
        add, known = merge_plan(hub, self._import)
        manager = self.hass.config_entries
        changes: list[HubChange] = []
        if credentials is not None:
            data = with_credentials(hub, credentials)
            changes.append(lambda: manager.async_update_entry(hub, data=data))
        changes.extend(add_device(self.hass, hub, device, name) for device, name in add)
        await async_change_hub(self.hass, hub, changes)
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
