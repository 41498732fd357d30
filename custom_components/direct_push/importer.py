"""Import an existing dmt-system `apple_push` folder: key, topic and devices.

dmt-system kept its Apple push setup in `~/.dmt/user/access_tokens/apple_push/`:
`config.json` (the `server_auth` of node-apn plus a `devices` list), the
`AuthKey.p8` signing key it points to and, in some folders, a development push
certificate `notify-development-push.pem`.

dmt-system itself read only the key, its IDs, the topic and the devices, and
always sent to production: imported devices start there (see the README,
"Coming from an apple_push setup", for every rule).

Plain Python without Home Assistant, so it runs in the executor and is easy to
test; all file I/O here is blocking. Nothing raised, noted or logged here holds
key material or a whole device token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
import json
import logging
from pathlib import Path
import re
from typing import Any, Final

from .apple_credentials import (
    AppleCredentialError,
    CertificateExpiredError,
    CertificateNotYetValidError,
    PushCertificate,
    check_key_id,
    check_team_id,
    check_topic,
    clean_device_token,
    load_signing_key,
    normalise_pem,
    read_push_certificate,
    valid_device_token,
)
from .backend import redact_token
from .const import (
    AUTH_CERTIFICATE,
    AUTH_TOKEN,
    CONF_ADMIN,
    CONF_ENVIRONMENT,
    CONF_KEY,
    CONF_KEY_FILE,
    CONF_KEY_ID,
    CONF_NAME,
    CONF_TEAM_ID,
    CONF_TOKEN,
    CONF_TOPIC,
    ENV_AUTO,
    ENV_PRODUCTION,
)
from .import_files import (
    KeyFileNotFoundError,
    TextEncodingError,
    expand_user,
    find_key_file,
    looks_like_key_text,
    read_text,
)
from .import_result import (
    AppleImportError,
    ImportedCredentials,
    ImportedDevice,
    ImportNote,
    ImportResult,
    import_error,
)
from .json_input import check_json_text, loads
from .names import NAME_IN_USE, RESERVED_NAME, DeviceNames, is_reserved
from .safe_file import MAX_CERTIFICATE_FILE, MAX_CONFIG_FILE, MAX_KEY_FILE
from .validation import InputError, check_name, check_text

_LOGGER = logging.getLogger(__name__)

CONFIG_NAME: Final = "config.json"
CERTIFICATE_NAME: Final = "notify-development-push.pem"
YAML_SOURCE: Final = "configuration.yaml"
CONF_DEVICES: Final = "devices"

# The one non-JSON form dmt-system's own example has:
#   "topic": "com.uniqpath.notify" (change this to match your app)
# Each run of spaces can match in one way only: with `\s*,?\s*` a long line
# of spaces took cubic time to refuse.
_STRING: Final = r'"(?:[^"\\]|\\.)*"'
_REMARK_RE: Final = re.compile(
    rf"^(?P<value>\s*(?:{_STRING}\s*:\s*)?{_STRING})\s*(?:(?P<comma1>,)\s*)?"
    r"\([^()]*\)\s*(?:(?P<comma2>,)\s*)?$"
)
_PEM_HEADER: Final = "-----BEGIN"
_TRUE: Final = frozenset({"true", "yes", "on", "1"})
_FALSE: Final = frozenset({"false", "no", "off", "0", ""})


def default_folder() -> Path:
    """Return where dmt-system keeps its Apple push setup."""
    return Path.home() / ".dmt/user/access_tokens/apple_push"


def read_import_file(path: Path, *, limit: int, label: str | None = None) -> str:
    """Read a file of an import, of at most `limit` bytes.

    A problem with the file itself (missing, a folder, a named pipe, too
    large) names it by `label` (its name by default); one with its text by
    its name.
    """
    try:
        return read_text(path, limit=limit, label=label or path.name)
    except (InputError, TextEncodingError) as err:
        raise import_error(err, path.name) from None


def _read_if_there(path: Path, limit: int) -> str | AppleImportError | None:
    """Read a file of the folder: None if it is not there, why not if unreadable."""
    try:
        return read_import_file(path, limit=limit)
    except AppleImportError as err:
        return None if err.key == "file_not_found" else err


def read_folder(folder: Path) -> ImportResult:
    """Import a dmt-system `apple_push` folder. Blocking; never waits on a file."""
    folder = expand_user(folder)
    if not folder.is_dir():
        raise AppleImportError("folder_not_found", {"folder": str(folder)})
    text = _read_if_there(folder / CONFIG_NAME, MAX_CONFIG_FILE)
    if text is None:
        raise AppleImportError("missing_config", {"folder": str(folder)})
    if isinstance(text, AppleImportError):
        raise text
    # A key may not need it: why it cannot be read is said if it is used.
    certificate = _read_if_there(folder / CERTIFICATE_NAME, MAX_CERTIFICATE_FILE)

    def read_key(path: str) -> str:
        # Anywhere: named by its path.
        place = find_key_file(folder, path)
        return read_import_file(place, limit=MAX_KEY_FILE, label=str(place))

    return parse_config(
        text, source=CONFIG_NAME, read_file=read_key, certificate=certificate
    )


def parse_config(
    text: str,
    *,
    source: str,
    read_file: Callable[[str], str] | None,
    certificate: str | AppleImportError | None = None,
    certificate_source: str = CERTIFICATE_NAME,
) -> ImportResult:
    """Import a dmt-system `config.json`. Blocking (key parsing, `read_file`).

    `read_file` returns the text of the key file that `server_auth.token.key`
    names, raising KeyFileNotFoundError if it is nowhere, AppleImportError if
    it cannot be read; for an upload it returns the uploaded key, and None
    means no key was uploaded. `certificate` is the text of a push
    certificate found beside the config, if any, or why it cannot be read.
    """
    notes: list[ImportNote] = []
    data = _load_json(text, source, notes)
    if not isinstance(data, dict):
        raise AppleImportError("invalid_structure", {"file": source, "field": "/"})
    cert = _Certificate.parse(certificate, certificate_source)

    credentials = _credentials(data, source, read_file, cert, notes)
    devices = _devices(data, source, notes)
    if not devices:
        notes.append(ImportNote("no_devices"))
    _LOGGER.debug(
        "Imported %s: %s auth, %s environment, %d devices, notes %s",
        source,
        credentials.auth_method,
        credentials.environment,
        len(devices),
        [note.key for note in notes],
    )
    return ImportResult(credentials, tuple(devices), tuple(notes))


def check_signing_key(pem: str, source: str) -> str:
    """Check an Apple .p8 key (EC P-256 in PEM); return it normalised."""
    pem = normalise_pem(pem)
    try:
        load_signing_key(pem)
    except AppleCredentialError as err:
        raise AppleImportError(err.key, {"file": source}) from None
    return pem


def read_yaml_config(conf: Mapping[str, Any], config_dir: Path) -> ImportResult:
    """Import the `direct_push:` YAML, already checked by its schema. Blocking.

    The key comes as text (`key`) or as a file (`key_file`), relative to the
    configuration folder or absolute. Unlike a dmt-system folder, a YAML mistake
    is an error, not a note: the user fixes the file and restarts.
    """
    if (pem := conf.get(CONF_KEY)) is not None:
        key = check_signing_key(pem, YAML_SOURCE)
    else:
        path = expand_user(
            Path(_string(conf[CONF_KEY_FILE], YAML_SOURCE, CONF_KEY_FILE) or "")
        )
        path = path if path.is_absolute() else config_dir / path
        try:
            text = read_import_file(path, limit=MAX_KEY_FILE, label=str(path))
        except AppleImportError as err:
            if err.key != "file_not_found":
                raise
            raise AppleImportError(
                "missing_key_file",
                {"file": YAML_SOURCE, "path": str(path), "tried": str(path)},
            ) from None
        key = check_signing_key(text, path.name)
    key_id = _apple_id(conf[CONF_KEY_ID], YAML_SOURCE, CONF_KEY_ID, check_key_id)
    team_id = _apple_id(conf[CONF_TEAM_ID], YAML_SOURCE, CONF_TEAM_ID, check_team_id)
    topic = _check_topic(
        _string(conf[CONF_TOPIC], YAML_SOURCE, CONF_TOPIC), YAML_SOURCE
    )
    environment = conf.get(CONF_ENVIRONMENT, ENV_PRODUCTION)

    devices: list[ImportedDevice] = []
    first_by_token: dict[str, str] = {}
    names = DeviceNames()
    for index, item in enumerate(conf.get(CONF_DEVICES, ())):
        name = _yaml_device_name(names, str(item[CONF_NAME]), index)
        token = clean_device_token(str(item[CONF_TOKEN]))
        if not valid_device_token(token):
            raise AppleImportError(
                "invalid_device_token", {"file": YAML_SOURCE, "name": name}
            )
        if (first := first_by_token.get(token)) is not None:
            raise AppleImportError(
                "duplicate_device_token",
                {"file": YAML_SOURCE, "name": name, "first": first},
            )
        names.take(name)
        first_by_token[token] = name
        devices.append(
            ImportedDevice(
                name=name,
                token=token,
                admin=bool(item.get(CONF_ADMIN, False)),
                environment=item.get(CONF_ENVIRONMENT) or environment,
            )
        )
    credentials = ImportedCredentials(
        auth_method=AUTH_TOKEN,
        topic=topic,
        environment=environment,
        key=key,
        key_id=key_id,
        team_id=team_id,
    )
    _LOGGER.debug("Imported %s: %d devices", YAML_SOURCE, len(devices))
    return ImportResult(credentials, tuple(devices), ())


def _yaml_device_name(names: DeviceNames, name: str, index: int) -> str:
    """Check a YAML device's name; return it as stored.

    The YAML is read at every start: a rename would never match it, so a name
    it cannot have is an error, as every other mistake in it. One that cannot
    be stored or shown is named by its place in the list, never echoed.
    """
    try:
        return names.check(name, f"devices[{index}].name")
    except InputError as err:
        if err.key not in (NAME_IN_USE, RESERVED_NAME):
            raise import_error(err, YAML_SOURCE) from None
        key = "duplicate_device_name" if err.key == NAME_IN_USE else err.key
        raise AppleImportError(
            key, {"file": YAML_SOURCE, "name": name.strip()}
        ) from None


@dataclass(frozen=True, slots=True)
class _Certificate:
    """A push certificate beside the config: usable, or why not."""

    source: str
    push: PushCertificate | None = field(default=None, repr=False)
    error: AppleImportError | None = None
    telling: bool = True
    """Whether it says more than that a .p8 is missing: it is one, usable or
    not (such as one whose key has a password)."""

    @classmethod
    def parse(
        cls, text: str | AppleImportError | None, source: str
    ) -> _Certificate | None:
        """Parse a certificate PEM holding the certificate and its key."""
        if text is None:
            return None
        if isinstance(text, AppleImportError):  # the file cannot be read
            return cls(source, error=text, telling=False)
        try:
            return cls(source, read_push_certificate(normalise_pem(text)))
        except AppleCredentialError as err:
            return cls(
                source,
                error=AppleImportError(err.key, {"file": source}),
                telling=err.key != "invalid_certificate",
            )


def _load_json(text: str, source: str, notes: list[ImportNote]) -> Any:
    """Parse JSON, stripping `"value" (a remark)` like dmt-system's example.

    One pass: a line that ends in such a remark is never valid JSON, so each
    is fixed where it stands, and line numbers stay those of the file.
    """
    lines = text.removeprefix("\ufeff").split("\n")  # as json counts lines
    for index, line in enumerate(lines):
        if "(" not in line:
            continue
        body = line.removesuffix("\r")
        if (match := _REMARK_RE.match(body)) is None or (
            match["comma1"] and match["comma2"]
        ):
            continue
        comma = "," if match["comma1"] or match["comma2"] else ""
        lines[index] = match["value"] + comma + line[len(body) :]
        notes.append(
            ImportNote(
                "recovered_parenthetical", {"file": source, "line": str(index + 1)}
            )
        )
    text = "\n".join(lines)
    try:
        # Measured first: a file nested 100,000 deep would exhaust the
        # parser's recursion.
        check_json_text(text, source, max_bytes=MAX_CONFIG_FILE)
        return loads(text, source)
    except InputError as err:
        raise import_error(err, source) from None
    except json.JSONDecodeError as err:
        raise AppleImportError(
            "invalid_json",
            {"file": source, "line": str(err.lineno), "column": str(err.colno)},
        ) from None


def _object(value: Any, source: str, path: str) -> dict[str, Any] | None:
    """Return a JSON object, None if absent; raise for another type."""
    if value is None or isinstance(value, dict):
        return value
    raise AppleImportError("invalid_structure", {"file": source, "field": path})


def _string(
    value: Any, source: str, path: str, *, multiline: bool = False
) -> str | None:
    """Return a stripped, non-empty text, None if absent or empty.

    Text that HA cannot store, or with control characters where it takes one
    line, is refused: the error names the field, never the text.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise AppleImportError("invalid_structure", {"file": source, "field": path})
    try:
        return check_text(value.strip(), path, multiline=multiline) or None
    except InputError as err:
        raise import_error(err, source) from None


def _credentials(
    data: dict[str, Any],
    source: str,
    read_file: Callable[[str], str] | None,
    cert: _Certificate | None,
    notes: list[ImportNote],
) -> ImportedCredentials:
    """Pick token or certificate authentication and check it."""
    server_auth = _object(data.get("server_auth"), source, "server_auth")
    topic = (
        _string(server_auth.get("topic"), source, "server_auth.topic")
        if server_auth is not None
        else None
    )
    token = (
        _object(server_auth.get("token"), source, "server_auth.token")
        if server_auth is not None
        else None
    )
    if token is None:
        return _certificate_credentials(
            cert,
            topic,
            source,
            notes,
            "missing_server_auth" if server_auth is None else "missing_token",
        )

    # A path, or (as node-apn takes it) the key's text.
    key_ref = _string(token.get("key"), source, "server_auth.token.key", multiline=True)
    if key_ref is None:
        raise AppleImportError(
            "missing_field", {"file": source, "field": "server_auth.token.key"}
        )
    if _PEM_HEADER in key_ref:
        # node-apn also takes the key's text in place of its path.
        key_source, key_text = source, key_ref
    else:
        key_source = Path(key_ref).name or key_ref
        try:
            key_text = _read_key(read_file, key_ref)
        except FileNotFoundError as err:
            if cert is not None and cert.telling:
                return _certificate_credentials(
                    cert, topic, source, notes, "missing_key_file"
                )
            raise _missing_key(err, key_ref, source) from None

    key_id = _apple_id(
        token.get("keyId"), source, "server_auth.token.keyId", check_key_id
    )
    team_id = _apple_id(
        token.get("teamId"), source, "server_auth.token.teamId", check_team_id
    )
    if topic is None and cert is not None and cert.push is not None:
        topic = cert.push.topic
    topic = _check_topic(topic, source)
    pem = check_signing_key(key_text, key_source)

    notes.append(ImportNote("token_production", {"key_file": key_source}))
    if cert is not None:
        # dmt-system never read it: its devices' tokens are production's.
        notes.append(
            ImportNote(
                "certificate_ignored",
                {"certificate_file": cert.source, "key_file": key_source},
            )
        )
    return ImportedCredentials(
        auth_method=AUTH_TOKEN,
        topic=topic,
        environment=ENV_PRODUCTION,
        key=pem,
        key_id=key_id,
        team_id=team_id,
    )


def _read_key(read_file: Callable[[str], str] | None, path: str) -> str:
    """Read the key file; without a reader (nothing uploaded) it is missing."""
    if read_file is None:
        raise FileNotFoundError(path)
    return read_file(path)


def _missing_key(err: FileNotFoundError, key_ref: str, source: str) -> AppleImportError:
    """Say the key is missing, and where it was looked for; never echo key text."""
    if looks_like_key_text(key_ref):
        return AppleImportError("invalid_key", {"file": source})
    if isinstance(err, KeyFileNotFoundError):
        return AppleImportError(
            "missing_key_file",
            {
                "file": source,
                "path": key_ref,
                "tried": ", ".join(str(place) for place in err.tried),
            },
        )
    return AppleImportError("missing_key_upload", {"file": source, "path": key_ref})


def _certificate_credentials(
    cert: _Certificate | None,
    topic: str | None,
    source: str,
    notes: list[ImportNote],
    error: str,
) -> ImportedCredentials:
    """Fall back to the push certificate when there is no signing key."""
    if cert is None:
        raise AppleImportError(error, {"file": source})
    if (push := cert.push) is None:
        assert cert.error is not None
        raise cert.error
    topic = _check_topic(topic or push.topic, source)
    # Its kind (subject and extensions) says where Apple accepts it.
    notes.append(
        ImportNote(f"certificate_used_{push.kind}", {"certificate_file": cert.source})
    )
    dates = {
        "certificate_file": cert.source,
        "valid_from": push.valid_from.date().isoformat(),
        "valid_until": push.valid_until.date().isoformat(),
    }
    try:
        push.check_dates(datetime.now(UTC))
    except CertificateExpiredError:
        notes.append(ImportNote("certificate_expired", dates))
    except CertificateNotYetValidError:
        notes.append(ImportNote("certificate_not_yet_valid", dates))
    return ImportedCredentials(
        auth_method=AUTH_CERTIFICATE,
        topic=topic,
        environment=push.environments[0],
        certificate=push.pem,
    )


def _apple_id(value: Any, source: str, path: str, check: Callable[[str], str]) -> str:
    """Return a key or team ID (10 letters and digits), upper case."""
    if (text := _string(value, source, path)) is None:
        raise AppleImportError("missing_field", {"file": source, "field": path})
    try:
        return check(text.upper())
    except AppleCredentialError as err:
        raise AppleImportError(err.key, {"file": source}) from None


def _check_topic(topic: str | None, source: str) -> str:
    if topic is None:
        raise AppleImportError(
            "missing_field", {"file": source, "field": "server_auth.topic"}
        )
    try:
        return check_topic(topic)
    except AppleCredentialError as err:
        raise AppleImportError(err.key, {"file": source}) from None


def _flag(value: Any, default: bool) -> bool:
    """Read a JSON flag: true/false, 1/0, or such words in a string."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return default


def _devices(
    data: dict[str, Any], source: str, notes: list[ImportNote]
) -> list[ImportedDevice]:
    """Read the devices, skipping (and noting) any that cannot work.

    Each finds its environment automatically: production first, where
    dmt-system sent. Entries with one token are one device, an admin if any
    entry was (dmt-system sent admin messages to every entry marked so).
    """
    entries = data.get("devices")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise AppleImportError(
            "invalid_structure", {"file": source, "field": "devices"}
        )
    devices: list[ImportedDevice] = []
    by_token: dict[str, int] = {}
    names = DeviceNames()
    for index, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            notes.append(ImportNote("invalid_device_entry", {"index": str(index)}))
            continue
        if (name := _device_name(entry.get("name"), index, notes)) is None:
            continue
        # dmt-system never pushed to a device with "active": false.
        if not _flag(entry.get("active"), default=True):
            notes.append(ImportNote("inactive_device", {"name": name}))
            continue
        raw_token = entry.get("token")
        if not isinstance(raw_token, str) or not (
            token := clean_device_token(raw_token)
        ):
            notes.append(ImportNote("missing_device_token", {"name": name}))
            continue
        if not valid_device_token(token):
            # Its end is shown only if it is plain text.
            shown = token if token.isascii() and token.isprintable() else ""
            notes.append(
                ImportNote(
                    "skipped_token",
                    {
                        "name": name,
                        "token": redact_token(shown),
                        "length": str(len(token)),
                    },
                )
            )
            continue
        admin = _flag(entry.get("admin"), default=False)
        if (position := by_token.get(token)) is not None:
            first = devices[position]
            if admin and not first.admin:
                devices[position] = first = replace(first, admin=True)
            notes.append(
                ImportNote(
                    "merged_admin" if first.admin else "merged_device",
                    {"name": name, "first": first.name, "token": redact_token(token)},
                )
            )
            continue
        if (new_name := names.claim(name)) != name:
            # A group word, or a second device of the same name.
            reason = "reserved_name" if is_reserved(name) else "renamed_device"
            notes.append(ImportNote(reason, {"name": name, "new_name": new_name}))
            name = new_name
        by_token[token] = len(devices)
        devices.append(
            ImportedDevice(name=name, token=token, admin=admin, environment=ENV_AUTO)
        )
    return devices


def _device_name(value: Any, index: int, notes: list[ImportNote]) -> str | None:
    """Return a device entry's name, "Device N" if it has none; None to skip it.

    A name that HA cannot store or show (a control or broken character, or
    too long) leaves the device out with a note, as a broken token does; the
    note names it by its place in the list, never by the name.
    """
    name = (
        str(value)
        if isinstance(value, str | int) and not isinstance(value, bool)
        else ""
    )
    try:
        return check_name(name)
    except InputError as err:
        if err.key == "name_blank":
            name = f"Device {index}"
            notes.append(ImportNote("unnamed_device", {"name": name}))
            return name
        if err.key == "name_too_long":
            note = ImportNote(
                "device_name_too_long", {"index": str(index), **err.placeholders}
            )
        else:  # a control character, or half of one
            note = ImportNote("device_name_invalid", {"index": str(index)})
        notes.append(note)
        return None
