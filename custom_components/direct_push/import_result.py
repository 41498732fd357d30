"""What an import found, or why it cannot be imported.

Plain Python: no Home Assistant here. The folder, the upload and the YAML all
come to the same result: the hub's credentials, its devices and notes for the
user; or an AppleImportError, whose key and placeholders become the form's
error or the repair issue. None of them ever holds key material or a whole
device token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .const import (
    AUTH_CERTIFICATE,
    CONF_ADMIN,
    CONF_AUTH_METHOD,
    CONF_CERTIFICATE,
    CONF_ENVIRONMENT,
    CONF_KEY,
    CONF_KEY_ID,
    CONF_NAME,
    CONF_TEAM_ID,
    CONF_TOKEN,
    CONF_TOPIC,
)
from .import_files import TextEncodingError
from .validation import InputError


class AppleImportError(Exception):
    """The folder or upload cannot be imported.

    `key` is a translation key; `placeholders` name the file and, where known,
    the line and column. Neither ever holds key material or a device token.
    """

    def __init__(self, key: str, placeholders: Mapping[str, str] | None = None) -> None:
        """Keep the translation key and its placeholders."""
        self.key = key
        self.placeholders: dict[str, str] = dict(placeholders or {})
        super().__init__(key, self.placeholders)

    def __str__(self) -> str:
        """Return the key and placeholders, for logs."""
        return f"{self.key} {self.placeholders}"


@dataclass(frozen=True, slots=True)
class ImportNote:
    """Something the user should know about the import: a translation key."""

    key: str
    placeholders: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImportedCredentials:
    """The hub's APNs credentials, in the form of the hub entry's data."""

    auth_method: str
    topic: str
    environment: str
    key: str | None = field(default=None, repr=False)
    key_id: str | None = None
    team_id: str | None = None
    certificate: str | None = field(default=None, repr=False)

    def as_entry_data(self) -> dict[str, str]:
        """Return the data of a hub config entry."""
        data = {
            CONF_AUTH_METHOD: self.auth_method,
            CONF_TOPIC: self.topic,
            CONF_ENVIRONMENT: self.environment,
        }
        if self.auth_method == AUTH_CERTIFICATE:
            assert self.certificate is not None
            data[CONF_CERTIFICATE] = self.certificate
        else:
            assert self.key is not None
            assert self.key_id is not None
            assert self.team_id is not None
            data |= {
                CONF_KEY: self.key,
                CONF_KEY_ID: self.key_id,
                CONF_TEAM_ID: self.team_id,
            }
        return data


@dataclass(frozen=True, slots=True)
class ImportedDevice:
    """One Apple device from the `devices` list."""

    name: str
    token: str = field(repr=False)
    admin: bool
    environment: str

    def as_subentry_data(self) -> dict[str, Any]:
        """Return the data of a device subentry."""
        return {
            CONF_NAME: self.name,
            CONF_TOKEN: self.token,
            CONF_ADMIN: self.admin,
            CONF_ENVIRONMENT: self.environment,
        }


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import found: credentials, devices and notes for the user."""

    credentials: ImportedCredentials
    devices: tuple[ImportedDevice, ...]
    notes: tuple[ImportNote, ...]


def import_error(err: InputError | TextEncodingError, source: str) -> AppleImportError:
    """Return the import error for a refused file or text, naming the file.

    An InputError keeps its key and placeholders: a file's error names the
    file itself, a text's its field. An encoding error names the file and
    its encoding.
    """
    if isinstance(err, InputError):
        if "file" in err.placeholders:
            return AppleImportError(err.key, err.placeholders)
        return AppleImportError(
            err.key, {"file": source, "field": err.field, **err.placeholders}
        )
    if err.encoding is None:
        return AppleImportError("not_utf8", {"file": source})
    return AppleImportError("text_encoding", {"file": source, "encoding": err.encoding})
