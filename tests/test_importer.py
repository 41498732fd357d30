"""The dmt-system `apple_push` folder importer, on real files in tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
import json
import logging
import os
from pathlib import Path
import re
import threading
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
import pytest

from custom_components.direct_push.const import (
    AUTH_CERTIFICATE,
    AUTH_TOKEN,
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
    ENV_AUTO,
    ENV_PRODUCTION,
    ENV_SANDBOX,
)
from custom_components.direct_push.importer import (
    AppleImportError,
    ImportedDevice,
    ImportNote,
    ImportResult,
    default_folder,
    parse_config,
    read_folder,
    read_yaml_config,
)

from .apns_server import ApnsTestCredentials, issue_push_certificate, make_credentials

KEY_ID = "ABC123DEFG"
TEAM_ID = "DEF123GHIJ"
TOPIC = "com.example.app"
ALICE = "a1" * 32
BOB = "b2" * 40
CAROL = "c3" * 32

# dmt-system's own example, verbatim from its "Push notifications" page.
REFERENCE_EXAMPLE = """{
  "server_auth": {
    "token": {
      "key": "./AuthKey.p8",
      "keyId": "<appleKeyId>",
      "teamId": "<appleTeamId>"
    },
    "topic": "com.uniqpath.notify" (change this to match your app)
  },

  "devices": [
    {
      "name": "Your name",
      "token": "<your apple push notifications token>",
      "admin": true
    },
    {
      "name": "Family member 1",
      "token": "<their apple push notifications token>"
    },
    {
      "name": "Family member N",
      "token": "<their apple push notifications token>"
    }
  ]
}
"""

# The same, filled in as a user would have it.
REALISTIC_EXAMPLE = f"""{{
  "server_auth": {{
    "token": {{
      "key": "./AuthKey.p8",
      "keyId": "{KEY_ID}",
      "teamId": "{TEAM_ID}"
    }},
    "topic": "{TOPIC}" (change this to match your app)
  }},

  "devices": [
    {{
      "name": "Alice",
      "token": "{ALICE}",
      "admin": true
    }},
    {{
      "name": "Bob",
      "token": "{BOB}"
    }},
    {{
      "name": "Carol",
      "token": "{CAROL}"
    }}
  ]
}}
"""


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """The importer needs no Home Assistant: skip conftest's hass fixture."""


def _pkcs8(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@dataclass(frozen=True, repr=False)
class Keys:
    """Test key material, made once per module."""

    p8: str
    p384: str
    rsa: str
    dev_cert: str
    prod_cert: str
    apple: ApnsTestCredentials


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    apple = make_credentials(tmp_path_factory.mktemp("apple"), TOPIC)
    return Keys(
        p8=_pkcs8(ec.generate_private_key(ec.SECP256R1())),
        p384=_pkcs8(ec.generate_private_key(ec.SECP384R1())),
        rsa=_pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        # Told apart by their subjects only, as older certificates are.
        dev_cert=apple.cert_pem,
        prod_cert=issue_push_certificate(
            apple, common_name=f"Apple Push Services: {TOPIC}"
        ),
        apple=apple,
    )


def _config(
    devices: list[Any] | None = None, /, *, key: str = "./AuthKey.p8", **token: Any
) -> dict[str, Any]:
    return {
        "server_auth": {
            "token": {"key": key, "keyId": KEY_ID, "teamId": TEAM_ID, **token},
            "topic": TOPIC,
        },
        "devices": [{"name": "Alice", "token": ALICE, "admin": True}]
        if devices is None
        else devices,
    }


def _folder(
    tmp_path: Path,
    config: dict[str, Any] | str | bytes | None,
    *,
    p8: str | None = None,
    pem: str | None = None,
) -> Path:
    """Write an apple_push folder the way a dmt-system user has it."""
    folder = tmp_path / "apple_push"
    folder.mkdir()
    if isinstance(config, dict):
        (folder / "config.json").write_text(json.dumps(config, indent=2))
    elif isinstance(config, str):
        (folder / "config.json").write_text(config, newline="")
    elif isinstance(config, bytes):
        (folder / "config.json").write_bytes(config)
    if p8 is not None:
        (folder / "AuthKey.p8").write_text(p8)
    if pem is not None:
        (folder / "notify-development-push.pem").write_text(pem)
    return folder


def _error(call: Callable[[], object]) -> AppleImportError:
    with pytest.raises(AppleImportError) as info:
        call()
    return info.value


def _note_keys(result: ImportResult) -> list[str]:
    return [note.key for note in result.notes]


def _device_notes(result: ImportResult) -> tuple[ImportNote, ...]:
    """The notes on devices, without the one that explains the environment."""
    return tuple(note for note in result.notes if note.key != "token_production")


# dmt-system's example and realistic folders


def test_reference_example_with_key_reports_placeholder_key_id(
    tmp_path: Path, keys: Keys
) -> None:
    """The example as published: its `<appleKeyId>` is the first real problem."""
    folder = _folder(tmp_path, REFERENCE_EXAMPLE, p8=keys.p8)
    err = _error(lambda: read_folder(folder))
    assert err.key == "invalid_key_id"
    assert err.placeholders == {"file": "config.json"}


def test_reference_example_with_certificate_only(tmp_path: Path, keys: Keys) -> None:
    """No AuthKey.p8 beside it: the development certificate signs instead.

    The placeholder tokens are skipped, each noted, none imported.
    """
    folder = _folder(tmp_path, REFERENCE_EXAMPLE, pem=keys.dev_cert)
    result = read_folder(folder)
    assert result.credentials.auth_method == AUTH_CERTIFICATE
    assert result.credentials.environment == ENV_SANDBOX
    assert result.credentials.topic == "com.uniqpath.notify"
    assert result.devices == ()
    assert result.notes[0] == ImportNote(
        "recovered_parenthetical", {"file": "config.json", "line": "8"}
    )
    assert _note_keys(result) == [
        "recovered_parenthetical",
        "certificate_used_development",
        "skipped_token",
        "skipped_token",
        "skipped_token",
        "no_devices",
    ]
    assert result.notes[2].placeholders == {
        "name": "Your name",
        "token": "…oken",
        "length": "31",
    }


def test_realistic_folder(tmp_path: Path, keys: Keys) -> None:
    """Real IDs and tokens, the remark after the topic kept from the example."""
    folder = _folder(tmp_path, REALISTIC_EXAMPLE, p8=keys.p8)
    result = read_folder(folder)
    creds = result.credentials
    assert creds.auth_method == AUTH_TOKEN
    assert (creds.key_id, creds.team_id, creds.topic) == (KEY_ID, TEAM_ID, TOPIC)
    assert creds.environment == ENV_PRODUCTION
    assert creds.key == keys.p8
    assert creds.certificate is None
    # dmt-system always sent to production: each device starts there.
    assert result.devices == (
        ImportedDevice("Alice", ALICE, admin=True, environment=ENV_AUTO),
        ImportedDevice("Bob", BOB, admin=False, environment=ENV_AUTO),
        ImportedDevice("Carol", CAROL, admin=False, environment=ENV_AUTO),
    )
    assert result.notes == (
        ImportNote("recovered_parenthetical", {"file": "config.json", "line": "8"}),
        ImportNote("token_production", {"key_file": "AuthKey.p8"}),
    )
    assert creds.as_entry_data() == {
        CONF_AUTH_METHOD: AUTH_TOKEN,
        CONF_KEY: keys.p8,
        CONF_KEY_ID: KEY_ID,
        CONF_TEAM_ID: TEAM_ID,
        CONF_TOPIC: TOPIC,
        CONF_ENVIRONMENT: ENV_PRODUCTION,
    }
    assert result.devices[0].as_subentry_data() == {
        CONF_NAME: "Alice",
        CONF_TOKEN: ALICE,
        CONF_ADMIN: True,
        CONF_ENVIRONMENT: ENV_AUTO,
    }


@pytest.mark.parametrize(
    ("line", "after"),
    [
        ('"topic": "com.example.app", (mine)', '"x": 1'),
        ('"topic": "com.example.app" (mine),', '"x": 1'),
        ('"topic":"com.example.app"(mine)', ""),
        ('"topic": "com.example.app"   (mine: see README)   ', ""),
    ],
)
def test_remark_forms(tmp_path: Path, keys: Keys, line: str, after: str) -> None:
    """The remark may sit before or after a comma, with or without spaces."""
    text = "\n".join(
        [
            '{"server_auth": {',
            f'  "token": {{"key": "AuthKey.p8", "keyId": "{KEY_ID}", "teamId": "{TEAM_ID}"}},',
            f"  {line}",
            f"  {after}",
            '}, "devices": []}',
        ]
    )
    result = read_folder(_folder(tmp_path, text, p8=keys.p8))
    assert result.credentials.topic == TOPIC
    assert result.notes[0] == ImportNote(
        "recovered_parenthetical", {"file": "config.json", "line": "3"}
    )


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ('{\n  "devices": [],\n}\n', "2", "16"),  # trailing comma
        ('{\n  // my devices\n  "devices": []\n}\n', "2", "3"),  # comment
        ('{\n  "devices": [\n    {"admin": true (me)}\n  ]\n}\n', "3", "20"),
        ('{\n  "topic": "a" (x) "b"\n}\n', "2", "16"),  # not at the end of the line
        ('{\n  "topic": "a", (x),\n}\n', "2", "17"),  # commas on both sides
        ("", "1", "1"),
    ],
)
def test_invalid_json(tmp_path: Path, text: str, line: str, column: str) -> None:
    """Only a remark after a string value is forgiven; the rest is located."""
    err = _error(lambda: read_folder(_folder(tmp_path, text)))
    assert err.key == "invalid_json"
    assert err.placeholders == {"file": "config.json", "line": line, "column": column}


def test_invalid_json_after_a_recovered_remark(tmp_path: Path) -> None:
    """Line numbers stay those of the file after a remark is stripped."""
    text = '{\n  "topic": "a" (mine),\n  "devices": [,]\n}\n'
    err = _error(lambda: read_folder(_folder(tmp_path, text)))
    assert err.placeholders == {"file": "config.json", "line": "3", "column": "15"}


def test_bom_and_crlf(tmp_path: Path, keys: Keys) -> None:
    """Windows editors: a UTF-8 BOM and CRLF in the config and the key."""
    text = "\ufeff" + REALISTIC_EXAMPLE.replace("\n", "\r\n")
    folder = _folder(tmp_path, text.encode())
    (folder / "AuthKey.p8").write_bytes(
        ("\ufeff" + keys.p8.replace("\n", "\r\n")).encode()
    )
    result = read_folder(folder)
    assert [device.name for device in result.devices] == ["Alice", "Bob", "Carol"]
    assert result.credentials.key == keys.p8
    assert result.notes[0].placeholders["line"] == "8"


def test_bom_in_uploaded_text(keys: Keys) -> None:
    """The flow may hand over text that still starts with a BOM."""
    result = parse_config(
        "\ufeff" + json.dumps(_config()),
        source="upload.json",
        read_file=lambda _path: keys.p8,
    )
    assert result.credentials.key_id == KEY_ID


# Errors in the credentials


def test_missing_server_auth(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"devices": []})
    err = _error(lambda: read_folder(folder))
    assert (err.key, err.placeholders) == (
        "missing_server_auth",
        {"file": "config.json"},
    )


def test_missing_token(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"server_auth": {"topic": TOPIC}})
    err = _error(lambda: read_folder(folder))
    assert (err.key, err.placeholders) == ("missing_token", {"file": "config.json"})


def test_missing_key_file(tmp_path: Path) -> None:
    folder = _folder(tmp_path, _config())
    err = _error(lambda: read_folder(folder))
    assert err.key == "missing_key_file"
    assert err.placeholders == {
        "file": "config.json",
        "path": "./AuthKey.p8",
        "tried": str(folder / "AuthKey.p8"),
    }


def test_key_file_not_utf8(tmp_path: Path) -> None:
    folder = _folder(tmp_path, _config())
    (folder / "AuthKey.p8").write_bytes(b"\xe9t\xe9 binary")
    err = _error(lambda: read_folder(folder))
    assert (err.key, err.placeholders) == ("not_utf8", {"file": "AuthKey.p8"})


def test_key_file_is_a_folder(tmp_path: Path) -> None:
    """A problem with the file itself names it where it is."""
    folder = _folder(tmp_path, _config())
    (folder / "AuthKey.p8").mkdir()
    err = _error(lambda: read_folder(folder))
    assert (err.key, err.placeholders) == (
        "file_is_folder",
        {"file": str(folder / "AuthKey.p8")},
    )


@pytest.mark.parametrize(
    ("which", "error"),
    [
        ("rsa", "invalid_key_type"),
        ("p384", "invalid_key_type"),
        ("garbage", "invalid_key"),
        ("truncated", "invalid_key"),
    ],
)
def test_key_not_ec_p256(tmp_path: Path, keys: Keys, which: str, error: str) -> None:
    text = {
        "garbage": "not a key at all",
        "truncated": keys.p8[:60],
    }.get(which) or getattr(keys, which)
    folder = _folder(tmp_path, _config(), p8=text)
    err = _error(lambda: read_folder(folder))
    assert (err.key, err.placeholders) == (error, {"file": "AuthKey.p8"})


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("keyId", "<appleKeyId>", "invalid_key_id"),
        ("keyId", "ABC123", "invalid_key_id"),
        ("teamId", "<appleTeamId>", "invalid_team_id"),
        ("teamId", "DEF123GHIJK", "invalid_team_id"),
    ],
)
def test_invalid_ids(
    tmp_path: Path, keys: Keys, field: str, value: str, error: str
) -> None:
    folder = _folder(tmp_path, _config(**{field: value}), p8=keys.p8)
    err = _error(lambda: read_folder(folder))
    assert (err.key, err.placeholders) == (error, {"file": "config.json"})


def test_ids_are_trimmed_and_uppercased(tmp_path: Path, keys: Keys) -> None:
    config = _config(keyId=f" {KEY_ID.lower()} ", teamId=TEAM_ID.lower())
    result = read_folder(_folder(tmp_path, config, p8=keys.p8))
    assert (result.credentials.key_id, result.credentials.team_id) == (KEY_ID, TEAM_ID)


@pytest.mark.parametrize(
    ("change", "error", "placeholders"),
    [
        (
            lambda c: c["server_auth"].pop("topic"),
            "missing_field",
            {"file": "config.json", "field": "server_auth.topic"},
        ),
        (
            lambda c: c["server_auth"].update(topic="<com.example.app>"),
            "invalid_topic",
            {"file": "config.json"},
        ),
        (
            lambda c: c["server_auth"]["token"].pop("keyId"),
            "missing_field",
            {"file": "config.json", "field": "server_auth.token.keyId"},
        ),
        (
            lambda c: c["server_auth"]["token"].update(key=""),
            "missing_field",
            {"file": "config.json", "field": "server_auth.token.key"},
        ),
        (
            lambda c: c["server_auth"]["token"].update(teamId=12),
            "invalid_structure",
            {"file": "config.json", "field": "server_auth.token.teamId"},
        ),
        (
            lambda c: c.update(server_auth="token"),
            "invalid_structure",
            {"file": "config.json", "field": "server_auth"},
        ),
        (
            lambda c: c.update(devices={"name": "Alice"}),
            "invalid_structure",
            {"file": "config.json", "field": "devices"},
        ),
    ],
)
def test_config_errors(
    tmp_path: Path,
    keys: Keys,
    change: Callable[[dict[str, Any]], object],
    error: str,
    placeholders: dict[str, str],
) -> None:
    config = _config()
    change(config)
    err = _error(lambda: read_folder(_folder(tmp_path, config, p8=keys.p8)))
    assert (err.key, err.placeholders) == (error, placeholders)


def test_config_not_an_object(tmp_path: Path) -> None:
    err = _error(lambda: read_folder(_folder(tmp_path, "[]")))
    assert (err.key, err.placeholders) == (
        "invalid_structure",
        {"file": "config.json", "field": "/"},
    )


def test_folder_not_found(tmp_path: Path) -> None:
    err = _error(lambda: read_folder(tmp_path / "nowhere"))
    assert (err.key, err.placeholders) == (
        "folder_not_found",
        {"folder": str(tmp_path / "nowhere")},
    )


def test_missing_config(tmp_path: Path, keys: Keys) -> None:
    folder = _folder(tmp_path, None, p8=keys.p8)
    err = _error(lambda: read_folder(folder))
    assert (err.key, err.placeholders) == ("missing_config", {"folder": str(folder)})


def test_config_not_utf8(tmp_path: Path) -> None:
    """Latin-1, say: the error says to save it as UTF-8."""
    err = _error(lambda: read_folder(_folder(tmp_path, b'{"name": "Zo\xeb"}')))
    assert (err.key, err.placeholders) == ("not_utf8", {"file": "config.json"})


def test_default_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_folder() == tmp_path / ".dmt/user/access_tokens/apple_push"


# Where the key is


@pytest.mark.parametrize("key", ["./AuthKey.p8", "AuthKey.p8", "keys/../AuthKey.p8"])
def test_key_relative_to_folder(
    tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """Relative to the folder, never to the working directory."""
    folder = _folder(tmp_path, _config(key=key), p8=keys.p8)
    (folder / "keys").mkdir()
    monkeypatch.chdir(tmp_path)
    assert read_folder(folder).credentials.key == keys.p8


def test_key_absolute_path(tmp_path: Path, keys: Keys) -> None:
    elsewhere = tmp_path / "secrets" / "AuthKey_ABC123DEFG.p8"
    elsewhere.parent.mkdir()
    elsewhere.write_text(keys.p8)
    folder = _folder(tmp_path, _config(key=str(elsewhere)))
    assert read_folder(folder).credentials.key == keys.p8


@pytest.mark.parametrize("key", ["/AuthKey.p8", "//AuthKey.p8", "/keys/../AuthKey.p8"])
def test_key_absolute_path_in_the_folder(tmp_path: Path, keys: Keys, key: str) -> None:
    """dmt-system joined even an absolute key path to the folder."""
    folder = _folder(tmp_path, _config(key=key), p8=keys.p8)
    assert read_folder(folder).credentials.key == keys.p8


def test_key_absolute_path_that_exists_wins(tmp_path: Path, keys: Keys) -> None:
    elsewhere = tmp_path / "AuthKey.p8"
    elsewhere.write_text(keys.p8)
    folder = _folder(tmp_path, _config(key=str(elsewhere)), p8=keys.rsa)
    assert read_folder(folder).credentials.key == keys.p8


@pytest.mark.parametrize(
    ("key", "tried"),
    [
        ("/AuthKey.p8", ["/AuthKey.p8", "{folder}/AuthKey.p8"]),
        ("~/keys/AuthKey.p8", ["{home}/keys/AuthKey.p8", "{folder}/~/keys/AuthKey.p8"]),
        ("../AuthKey.p8", ["{root}/AuthKey.p8"]),
        ("AuthKey.p8", ["{folder}/AuthKey.p8"]),
    ],
)
def test_missing_key_names_every_place_tried(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    tried: list[str],
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    folder = _folder(tmp_path, _config(key=key))
    err = _error(lambda: read_folder(folder))
    assert err.key == "missing_key_file"
    assert err.placeholders["path"] == key
    names = {"folder": folder, "home": tmp_path / "home", "root": tmp_path}
    assert err.placeholders["tried"] == ", ".join(
        place.format(**names) for place in tried
    )


@pytest.mark.parametrize(
    "name",
    [
        # A long file name without separators.
        "AuthKeyABC123DEFGproductionKeyForTheNotifyAppOfTheFamily2021.p8",
        # A long absolute path with a long hexadecimal folder name.
        "{root}/0123456789abcdef0123456789abcdef0123456789abcdef/AuthKey.p8",
    ],
)
def test_long_key_paths_are_paths(tmp_path: Path, keys: Keys, name: str) -> None:
    """Only text with a PEM header is taken for the key itself."""
    path = name.format(root=tmp_path)
    folder = _folder(tmp_path, _config(key=path))
    err = _error(lambda: read_folder(folder))
    assert err.key == "missing_key_file"
    assert err.placeholders["path"] == path
    place = Path(path) if Path(path).is_absolute() else folder / path
    place.parent.mkdir(parents=True, exist_ok=True)
    place.write_text(keys.p8)
    assert read_folder(folder).credentials.key == keys.p8


def test_key_under_home(
    tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "AuthKey.p8").write_text(keys.p8)
    folder = _folder(tmp_path, _config(key="~/AuthKey.p8"))
    assert read_folder(folder).credentials.key == keys.p8


def test_key_inline(tmp_path: Path, keys: Keys) -> None:
    """node-apn also took the key's text in place of its path."""
    result = read_folder(_folder(tmp_path, _config(key=keys.p8)))
    assert result.credentials.key == keys.p8


@pytest.mark.parametrize(
    "cut",
    [
        lambda pem: "".join(pem.splitlines()[1:-1]),
        lambda pem: pem.splitlines()[1],
        lambda pem: pem.replace("-----BEGIN", ""),
        lambda pem: pem.replace("\n", " ").replace("-----BEGIN PRIVATE KEY-----", ""),
    ],
)
def test_key_text_without_begin_line(
    tmp_path: Path, keys: Keys, cut: Callable[[str], str]
) -> None:
    """Key text pasted as the path, its BEGIN line lost: not echoed as a path."""
    err = _error(lambda: read_folder(_folder(tmp_path, _config(key=cut(keys.p8)))))
    assert (err.key, err.placeholders) == ("invalid_key", {"file": "config.json"})


def test_uploaded_config_and_key(keys: Keys) -> None:
    """Uploads: the flow hands over the key text, whatever path the config names."""
    paths: list[str] = []

    def read_file(path: str) -> str:
        paths.append(path)
        return keys.p8

    result = parse_config(
        REALISTIC_EXAMPLE, source="config (1).json", read_file=read_file
    )
    assert paths == ["./AuthKey.p8"]
    assert result.credentials.key == keys.p8
    assert result.notes[0].placeholders == {"file": "config (1).json", "line": "8"}


def test_uploaded_config_without_key() -> None:
    err = _error(
        lambda: parse_config(REALISTIC_EXAMPLE, source="config.json", read_file=None)
    )
    assert (err.key, err.placeholders) == (
        "missing_key_upload",
        {"file": "config.json", "path": "./AuthKey.p8"},
    )


# Devices


def _import_devices(tmp_path: Path, keys: Keys, devices: list[Any]) -> ImportResult:
    return read_folder(_folder(tmp_path, _config(devices), p8=keys.p8))


def test_unnamed_devices(tmp_path: Path, keys: Keys) -> None:
    result = _import_devices(
        tmp_path,
        keys,
        [
            {"name": "Alice", "token": ALICE},
            {"token": BOB},
            {"name": "  ", "token": CAROL},
        ],
    )
    assert [d.name for d in result.devices] == ["Alice", "Device 2", "Device 3"]
    assert _device_notes(result) == (
        ImportNote("unnamed_device", {"name": "Device 2"}),
        ImportNote("unnamed_device", {"name": "Device 3"}),
    )


@pytest.mark.parametrize(
    ("token", "length"),
    [
        ("zz" * 32, 64),  # not hex
        ("a" * 65, 65),  # odd length
        ("ab" * 31, 62),  # too short
        ("ab" * 101, 202),  # too long
        ("{length = 32, bytes = 0xa1a1a1a1 ... a1a1a1a1 }", 39),  # iOS 13 description
    ],
)
def test_malformed_token_skipped(
    tmp_path: Path, keys: Keys, token: str, length: int
) -> None:
    result = _import_devices(
        tmp_path,
        keys,
        [{"name": "Alice", "token": ALICE}, {"name": "Bob", "token": token}],
    )
    assert [d.name for d in result.devices] == ["Alice"]
    [note] = _device_notes(result)
    assert note.key == "skipped_token"
    assert note.placeholders["name"] == "Bob"
    assert note.placeholders["length"] == str(length)
    shown = note.placeholders["token"]
    assert shown.startswith("…")
    assert len(shown) == 5


@pytest.mark.parametrize("token", [None, "", "   ", 1234, ["a1"]])
def test_missing_token_skipped(tmp_path: Path, keys: Keys, token: Any) -> None:
    result = _import_devices(tmp_path, keys, [{"name": "Bob", "token": token}])
    assert result.devices == ()
    assert _device_notes(result) == (
        ImportNote("missing_device_token", {"name": "Bob"}),
        ImportNote("no_devices"),
    )


def test_duplicate_tokens(tmp_path: Path, keys: Keys) -> None:
    result = _import_devices(
        tmp_path,
        keys,
        [
            {"name": "Alice", "token": ALICE},
            {"name": "Alice's iPad", "token": ALICE.upper()},
            {"name": "Bob", "token": BOB},
        ],
    )
    assert [d.name for d in result.devices] == ["Alice", "Bob"]
    assert _device_notes(result) == (
        ImportNote(
            "merged_device",
            {"name": "Alice's iPad", "first": "Alice", "token": "…a1a1"},
        ),
    )


@pytest.mark.parametrize(
    ("admins", "admin"),
    [((False, True), True), ((True, False), True), ((False, "yes"), True)],
)
def test_duplicates_merge_their_admin_flag(
    tmp_path: Path, keys: Keys, admins: tuple[Any, Any], admin: bool
) -> None:
    """Same token, however written: one device, an admin if any entry was."""
    spaced = "<" + " ".join(ALICE[i : i + 8] for i in range(0, 64, 8)).upper() + ">"
    result = _import_devices(
        tmp_path,
        keys,
        [
            {"name": "Alice", "token": ALICE, "admin": admins[0]},
            {"name": "Bob", "token": BOB},
            {"name": "Alice (iPhone)", "token": spaced, "admin": admins[1]},
        ],
    )
    assert result.devices == (
        ImportedDevice("Alice", ALICE, admin=admin, environment=ENV_AUTO),
        ImportedDevice("Bob", BOB, admin=False, environment=ENV_AUTO),
    )
    assert _device_notes(result) == (
        ImportNote(
            "merged_admin",
            {"name": "Alice (iPhone)", "first": "Alice", "token": "…a1a1"},
        ),
    )


def test_duplicate_names_renamed(tmp_path: Path, keys: Keys) -> None:
    """Names must be unique in the hub; a skipped device keeps no name."""
    result = _import_devices(
        tmp_path,
        keys,
        [
            {"name": "Alice", "token": ALICE},
            {"name": "alice", "token": "bad"},
            {"name": "ALICE", "token": BOB},
            {"name": "Alice 2", "token": CAROL},
            {"name": "alice", "token": "d4" * 32},
        ],
    )
    # A second "Alice 2" takes the next number, not "Alice 2 2".
    assert [d.name for d in result.devices] == [
        "Alice",
        "ALICE 2",
        "Alice 3",
        "alice 4",
    ]
    notes = _device_notes(result)
    assert [n.key for n in notes] == ["skipped_token"] + ["renamed_device"] * 3
    assert notes[1].placeholders == {"name": "ALICE", "new_name": "ALICE 2"}
    assert notes[2].placeholders == {"name": "Alice 2", "new_name": "Alice 3"}


def test_group_words_renamed(tmp_path: Path, keys: Keys) -> None:
    """A device called like a group could not be sent to: it gets a number."""
    result = _import_devices(
        tmp_path,
        keys,
        [
            {"name": "Admin", "token": ALICE},
            {"name": "all", "token": BOB},
            {"name": "Admin 2", "token": CAROL},
            {"name": "admins", "token": "d4" * 32},
        ],
    )
    assert [d.name for d in result.devices] == [
        "Admin 2",
        "all 2",
        "Admin 3",
        "admins 2",
    ]
    notes = _device_notes(result)
    assert [n.key for n in notes] == [
        "reserved_name",
        "reserved_name",
        "renamed_device",
        "reserved_name",
    ]
    assert notes[0].placeholders == {"name": "Admin", "new_name": "Admin 2"}


def test_unknown_keys_ignored(tmp_path: Path, keys: Keys) -> None:
    config = _config(
        [{"name": "Alice", "token": ALICE, "admin": True, "phone": "iPhone 15"}],
        production=True,
    )
    config["mqtt"] = {"host": "localhost"}
    config["server_auth"]["cert"] = "ignored.pem"
    result = read_folder(_folder(tmp_path, config, p8=keys.p8))
    assert [d.name for d in result.devices] == ["Alice"]
    assert _device_notes(result) == ()


def test_non_object_device_entry(tmp_path: Path, keys: Keys) -> None:
    result = _import_devices(tmp_path, keys, [ALICE, {"name": "Bob", "token": BOB}])
    assert [d.name for d in result.devices] == ["Bob"]
    assert _device_notes(result) == (
        ImportNote("invalid_device_entry", {"index": "1"}),
    )


@pytest.mark.parametrize("devices", [[], None])
def test_no_devices(tmp_path: Path, keys: Keys, devices: list[Any] | None) -> None:
    config = _config([])
    if devices is None:
        del config["devices"]
    result = read_folder(_folder(tmp_path, config, p8=keys.p8))
    assert result.devices == ()
    assert _device_notes(result) == (ImportNote("no_devices"),)


@pytest.mark.parametrize(
    ("admin", "expected"),
    [
        (True, True),
        ("true", True),
        (" TRUE ", True),
        ("yes", True),
        ("1", True),
        (1, True),
        (False, False),
        ("false", False),
        ("0", False),
        ("no", False),
        (0, False),
        (None, False),
        ("maybe", False),
    ],
)
def test_admin_flag(tmp_path: Path, keys: Keys, admin: Any, expected: bool) -> None:
    result = _import_devices(
        tmp_path, keys, [{"name": "A", "token": ALICE, "admin": admin}]
    )
    assert result.devices[0].admin is expected


def test_admin_absent(tmp_path: Path, keys: Keys) -> None:
    result = _import_devices(tmp_path, keys, [{"name": "A", "token": ALICE}])
    assert result.devices[0].admin is False


@pytest.mark.parametrize(
    "token",
    [
        "<" + " ".join(ALICE.upper()[i : i + 8] for i in range(0, 64, 8)) + ">",
        f"  {ALICE.upper()}\n",
        " ".join(ALICE[i : i + 2] for i in range(0, 64, 2)),
        f"<{ALICE}>",
    ],
)
def test_token_normalised(tmp_path: Path, keys: Keys, token: str) -> None:
    """As Xcode prints NSData, with spaces and angle brackets, in upper case."""
    result = _import_devices(tmp_path, keys, [{"name": "A", "token": token}])
    assert result.devices[0].token == ALICE
    assert _device_notes(result) == ()


@pytest.mark.parametrize("active", [False, "false", 0])
def test_inactive_devices_skipped(tmp_path: Path, keys: Keys, active: Any) -> None:
    """dmt-system never pushed to `"active": false` devices."""
    result = _import_devices(
        tmp_path,
        keys,
        [
            {"name": "Alice", "token": ALICE, "active": True},
            {"name": "Old", "token": BOB, "active": active},
        ],
    )
    assert [d.name for d in result.devices] == ["Alice"]
    assert _device_notes(result) == (ImportNote("inactive_device", {"name": "Old"}),)


# Push certificates


def test_certificate_without_key(tmp_path: Path, keys: Keys) -> None:
    """AuthKey.p8 missing, a development certificate present: it signs, in the sandbox."""
    folder = _folder(tmp_path, REALISTIC_EXAMPLE, pem=keys.dev_cert)
    result = read_folder(folder)
    creds = result.credentials
    assert creds.auth_method == AUTH_CERTIFICATE
    assert creds.environment == ENV_SANDBOX
    assert creds.topic == TOPIC
    assert creds.certificate == keys.dev_cert
    assert (creds.key, creds.key_id, creds.team_id) == (None, None, None)
    assert {d.environment for d in result.devices} == {ENV_AUTO}
    assert result.notes[1:] == (
        ImportNote(
            "certificate_used_development",
            {"certificate_file": "notify-development-push.pem"},
        ),
    )
    assert creds.as_entry_data() == {
        CONF_AUTH_METHOD: AUTH_CERTIFICATE,
        CONF_CERTIFICATE: keys.dev_cert,
        CONF_TOPIC: TOPIC,
        CONF_ENVIRONMENT: ENV_SANDBOX,
    }


@pytest.mark.parametrize(
    "config",
    [
        {"devices": [{"name": "Alice", "token": ALICE}]},
        {"server_auth": {}, "devices": [{"name": "Alice", "token": ALICE}]},
    ],
)
def test_certificate_without_token_section(
    tmp_path: Path, keys: Keys, config: dict[str, Any]
) -> None:
    """No topic in the config: the certificate's UID names the app."""
    result = read_folder(_folder(tmp_path, config, pem=keys.dev_cert))
    assert result.credentials.auth_method == AUTH_CERTIFICATE
    assert result.credentials.topic == TOPIC
    assert [d.name for d in result.devices] == ["Alice"]


@pytest.mark.parametrize(
    ("kind", "common_name", "environment", "note"),
    [
        # Apple's extensions: 1.2.840.113635.100.6.3.1 for the sandbox,
        # .3.2 for production, .3.6 (topics) on universal certificates.
        ("development", None, ENV_SANDBOX, "certificate_used_development"),
        ("production", None, ENV_PRODUCTION, "certificate_used_production"),
        ("universal", None, ENV_PRODUCTION, "certificate_used_universal"),
        # Without extensions, the subject.
        (
            None,
            f"Apple Push Services: {TOPIC}",
            ENV_PRODUCTION,
            "certificate_used_universal",
        ),
        (None, None, ENV_SANDBOX, "certificate_used_development"),
    ],
)
def test_certificate_only_environment(
    tmp_path: Path,
    keys: Keys,
    kind: str | None,
    common_name: str | None,
    environment: str,
    note: str,
) -> None:
    """A certificate-only folder takes its environment from the certificate."""
    pem = issue_push_certificate(keys.apple, kind=kind, common_name=common_name)
    result = read_folder(_folder(tmp_path, _config(), pem=pem))
    assert result.credentials.auth_method == AUTH_CERTIFICATE
    assert result.credentials.environment == environment
    assert result.devices[0].environment == ENV_AUTO
    assert _note_keys(result) == [note]


@pytest.mark.parametrize(
    ("key_first", "chain"), [(True, False), (False, True), (True, True)]
)
def test_certificate_in_any_order(
    tmp_path: Path, keys: Keys, key_first: bool, chain: bool
) -> None:
    """The key first, Apple's intermediate before the certificate: found."""
    pem = issue_push_certificate(
        keys.apple, kind="universal", key_first=key_first, chain=chain
    )
    result = read_folder(_folder(tmp_path, _config(), pem=pem))
    certificate = result.credentials.certificate
    assert certificate is not None
    # Stored as OpenSSL loads it: the push certificate, then its key.
    blocks = re.findall(r"-----BEGIN ([A-Z ]+)-----", certificate)
    assert blocks == ["CERTIFICATE", "PRIVATE KEY"] + ["CERTIFICATE"] * chain


def test_encrypted_certificate_without_key(tmp_path: Path, keys: Keys) -> None:
    """Exported without -nodes: its own error, not a missing .p8."""
    pem = issue_push_certificate(keys.apple, password=b"secret")
    for config in (_config(), {"devices": []}):
        root = tmp_path / str(len(config))
        root.mkdir()
        err = _error(lambda c=config, r=root: read_folder(_folder(r, c, pem=pem)))
        assert (err.key, err.placeholders) == (
            "encrypted_certificate_key",
            {"file": "notify-development-push.pem"},
        )


def test_encrypted_certificate_with_key(tmp_path: Path, keys: Keys) -> None:
    pem = issue_push_certificate(keys.apple, password=b"secret")
    result = read_folder(_folder(tmp_path, _config(), p8=keys.p8, pem=pem))
    assert result.credentials.auth_method == AUTH_TOKEN


@pytest.mark.parametrize(
    ("not_before", "not_after", "note"),
    [
        (
            datetime(2019, 4, 2, tzinfo=UTC),
            datetime(2020, 5, 3, tzinfo=UTC),
            "certificate_expired",
        ),
        (
            datetime(2090, 4, 2, tzinfo=UTC),
            datetime(2091, 5, 3, tzinfo=UTC),
            "certificate_not_yet_valid",
        ),
    ],
)
def test_certificate_out_of_date(
    tmp_path: Path,
    keys: Keys,
    not_before: datetime,
    not_after: datetime,
    note: str,
) -> None:
    """Imported, but the summary says so, with its dates, before any probe."""
    pem = issue_push_certificate(
        keys.apple, kind="development", not_before=not_before, not_after=not_after
    )
    result = read_folder(_folder(tmp_path, _config(), pem=pem))
    assert result.credentials.auth_method == AUTH_CERTIFICATE
    assert result.notes[1] == ImportNote(
        note,
        {
            "certificate_file": "notify-development-push.pem",
            "valid_from": not_before.date().isoformat(),
            "valid_until": not_after.date().isoformat(),
        },
    )


@pytest.mark.parametrize("pem", ["dev_cert", "prod_cert", "-----BEGIN nonsense"])
def test_certificate_beside_a_key_is_not_used(
    tmp_path: Path, keys: Keys, pem: str
) -> None:
    """dmt-system never read it: the key signs, and the devices start in production.

    Every folder that worked with dmt-system holds production tokens, even
    with the development certificate the guide puts next to the key.
    """
    text = getattr(keys, pem, pem)
    folder = _folder(tmp_path, REALISTIC_EXAMPLE, p8=keys.p8, pem=text)
    result = read_folder(folder)
    assert result.credentials.auth_method == AUTH_TOKEN
    assert result.credentials.certificate is None
    assert result.credentials.environment == ENV_PRODUCTION
    assert {d.environment for d in result.devices} == {ENV_AUTO}
    assert result.notes[1:] == (
        ImportNote("token_production", {"key_file": "AuthKey.p8"}),
        ImportNote(
            "certificate_ignored",
            {
                "certificate_file": "notify-development-push.pem",
                "key_file": "AuthKey.p8",
            },
        ),
    )


def test_key_and_certificate_without_topic(tmp_path: Path, keys: Keys) -> None:
    config = _config()
    del config["server_auth"]["topic"]
    result = read_folder(_folder(tmp_path, config, p8=keys.p8, pem=keys.dev_cert))
    assert result.credentials.topic == TOPIC


def test_certificate_without_its_key(tmp_path: Path, keys: Keys) -> None:
    """A certificate alone cannot sign; another's key does not match."""
    cert_only = keys.dev_cert.split("-----BEGIN PRIVATE KEY-----")[0]
    folder = _folder(tmp_path, {"devices": []}, pem=cert_only)
    err = _error(lambda: read_folder(folder))
    assert (err.key, err.placeholders) == (
        "invalid_certificate",
        {"file": "notify-development-push.pem"},
    )
    (folder / "notify-development-push.pem").write_text(cert_only + keys.p8)
    assert _error(lambda: read_folder(folder)).key == "invalid_certificate"


def test_broken_certificate_and_missing_key(tmp_path: Path, keys: Keys) -> None:
    """The config asks for a key: its absence is the problem to report."""
    folder = _folder(tmp_path, _config(), pem="garbage")
    assert _error(lambda: read_folder(folder)).key == "missing_key_file"


# Encodings


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-8-sig", "utf-32"])
def test_encodings_with_a_byte_order_mark(
    tmp_path: Path, keys: Keys, encoding: str
) -> None:
    """Windows tools save UTF-16 with a byte order mark: read like UTF-8."""
    codec = {"utf-16-be": "utf-16-be", "utf-32": "utf-32"}.get(encoding, encoding)
    bom = "\ufeff" if encoding == "utf-16-be" else ""
    folder = _folder(tmp_path, (bom + REALISTIC_EXAMPLE).encode(codec))
    (folder / "AuthKey.p8").write_bytes((bom + keys.p8).encode(codec))
    (folder / "notify-development-push.pem").write_bytes(
        (bom + keys.dev_cert).encode(codec)
    )
    result = read_folder(folder)
    assert result.credentials.key == keys.p8
    assert [d.name for d in result.devices] == ["Alice", "Bob", "Carol"]
    # The certificate was read too: it is noted as not used.
    assert _note_keys(result)[-1] == "certificate_ignored"


@pytest.mark.parametrize(
    ("data", "key", "encoding"),
    [
        (
            REALISTIC_EXAMPLE.encode("utf-16-le"),
            "text_encoding",
            "UTF-16 without a byte order mark",
        ),
        (b"\xff\xfe{\x00\x00", "text_encoding", "UTF-16"),  # odd: cut short
        (b"\xef\xbb\xbf{\xff}", "text_encoding", "UTF-8"),
        ('{"name": "Zoë"}'.encode("cp1252"), "not_utf8", None),
    ],
)
def test_encodings_refused(
    tmp_path: Path, data: bytes, key: str, encoding: str | None
) -> None:
    err = _error(lambda: read_folder(_folder(tmp_path, data)))
    expected = {"file": "config.json"}
    if encoding is not None:
        expected["encoding"] = encoding
    assert (err.key, err.placeholders) == (key, expected)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\xff\xfe-\x00-", {"key": "text_encoding", "encoding": "UTF-16"}),
        (b"\xe9", {"key": "not_utf8"}),
        (None, {"key": "file_is_folder", "file": "{path}"}),
    ],
)
def test_yaml_key_file_encodings(
    tmp_path: Path, keys: Keys, data: bytes | None, error: dict[str, str]
) -> None:
    """The YAML's key_file is read like the folder's: UTF-16 too, or a clear error."""
    conf = {
        "key_file": "AuthKey.p8",
        "key_id": KEY_ID,
        "team_id": TEAM_ID,
        "topic": TOPIC,
    }
    path = tmp_path / "AuthKey.p8"
    path.write_bytes(keys.p8.encode("utf-16"))
    assert read_yaml_config(conf, tmp_path).credentials.key == keys.p8
    path.unlink()
    if data is None:
        path.mkdir()
    else:
        path.write_bytes(data)
    err = _error(lambda: read_yaml_config(conf, tmp_path))
    key = error.pop("key")
    expected = {"file": "AuthKey.p8", **error}
    expected["file"] = expected["file"].format(path=path)
    assert (err.key, err.placeholders) == (key, expected)


# Remarks


def test_many_remarks_in_one_pass(tmp_path: Path, keys: Keys) -> None:
    """3,000 remarks, each after a value: all stripped, each noted, in order."""
    count = 3000
    devices = ",\n".join(
        f'    {{\n      "name": "Device {i}" (phone {i}),\n'
        f'      "token": "{i + 1:064x}"\n    }}'
        for i in range(count)
    )
    head = REALISTIC_EXAMPLE.split('"devices"', maxsplit=1)[0]
    text = f'{head}"devices": [\n{devices}\n  ]\n}}\n'
    result = read_folder(_folder(tmp_path, text, p8=keys.p8))
    assert len(result.devices) == count
    assert result.devices[-1] == ImportedDevice(
        f"Device {count - 1}", f"{count:064x}", admin=False, environment=ENV_AUTO
    )
    remarks = [n for n in result.notes if n.key == "recovered_parenthetical"]
    assert len(remarks) == count + 1  # and the topic's
    assert [n.placeholders["line"] for n in remarks[:3]] == ["8", "13", "17"]


def test_a_long_line_with_a_remark_is_quick(tmp_path: Path, keys: Keys) -> None:
    """Spaces around a remark: the recovery scans each line once.

    A config.json of one line with a million spaces on each side of a remark
    took cubic time to refuse, an executor thread lost for hours.
    """
    spaces = " " * 1_000_000
    line = f'"topic": "{TOPIC}"{spaces}(mine){spaces}x'
    text = REALISTIC_EXAMPLE.replace(f'"topic": "{TOPIC}" (change', f"{line} (change")
    folder = _folder(tmp_path, text, p8=keys.p8)
    done = threading.Event()
    errors: list[AppleImportError] = []

    def read() -> None:
        try:
            read_folder(folder)
        except AppleImportError as err:
            errors.append(err)
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(30), "the remark recovery did not finish"
    assert errors[0].key == "invalid_json"


@pytest.mark.parametrize(
    ("text", "key", "placeholders"),
    [
        ("[" * 100_000 + "]" * 100_000, "json_too_deep", {"limit": "32"}),
        ('{"devices": [], "x": NaN}', "json_not_finite", {}),
        ('{"devices": [], "x": -Infinity}', "json_not_finite", {}),
        ('{"devices": [], "x": 1' + "0" * 5000 + "}", "json_number_too_large", {}),
        (
            " " * (4 * 1024 * 1024 + 1),
            "json_too_large",
            {"limit": str(4 * 1024 * 1024)},
        ),
    ],
)
def test_config_json_within_limits(
    text: str, key: str, placeholders: dict[str, str]
) -> None:
    """Each limit is an import error naming the file: never a RecursionError."""
    err = _error(lambda: parse_config(text, source="config.json", read_file=None))
    assert err.key == key
    assert err.placeholders["file"] == "config.json"
    assert placeholders.items() <= err.placeholders.items()


def test_certificate_that_cannot_be_read(tmp_path: Path, keys: Keys) -> None:
    """Why it cannot be read is said when it would be used, never waited on."""
    folder = _folder(tmp_path, {"server_auth": {"topic": TOPIC}, "devices": []})
    os.mkfifo(folder / "notify-development-push.pem")
    err = _error(lambda: read_folder(folder))
    assert (err.key, err.placeholders) == (
        "file_not_regular",
        {"file": "notify-development-push.pem"},
    )
    # With a key asked for and missing, the missing key is what to fix.
    (folder / "config.json").write_text(json.dumps(_config()))
    assert _error(lambda: read_folder(folder)).key == "missing_key_file"
    # With the key, it is not needed.
    (folder / "AuthKey.p8").write_text(keys.p8)
    assert read_folder(folder).credentials.key == keys.p8


# Secrets


def test_no_secrets_in_errors_notes_or_logs(
    tmp_path: Path, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    """Key material and whole tokens never reach messages, reprs or logs."""
    caplog.set_level(logging.DEBUG)
    bad_token = "d4" * 31 + "d"  # skipped: odd length
    devices = [
        {"name": "Alice", "token": ALICE, "admin": True},
        {"name": "Twin", "token": ALICE},
        {"name": "Bad", "token": bad_token},
        {"name": "Bob", "token": BOB},
    ]
    seen: list[str] = []
    for index, (config, p8, pem) in enumerate(
        [
            (_config(devices), keys.p8, keys.dev_cert),
            (_config(devices), None, keys.dev_cert),
            (_config(devices, key=keys.p8), None, None),
            (_config(devices), keys.rsa, None),
            (_config(devices), "garbage " + keys.p8[30:], None),
            (_config(devices, keyId="<appleKeyId>"), keys.p8, None),
            (_config(devices, key="".join(keys.p8.splitlines()[1:-1])), None, None),
            (_config(devices, key=keys.p8.replace("-----BEGIN", "")), None, None),
        ]
    ):
        root = tmp_path / str(index)
        root.mkdir()
        folder = _folder(root, config, p8=p8, pem=pem)
        try:
            result = read_folder(folder)
        except AppleImportError as err:
            seen += [str(err), repr(err), str(err.args)]
        else:
            seen += [repr(result), repr(result.credentials)]
            seen += [str(note) for note in result.notes]
            seen += [repr(device) for device in result.devices]
    seen.append(caplog.text)
    text = "\n".join(seen)
    secrets = [ALICE, BOB, bad_token]
    for pem in (keys.p8, keys.rsa, keys.dev_cert):
        secrets += [line for line in pem.splitlines() if not line.startswith("-----")]
    assert not [secret for secret in secrets if secret in text]
    # The checks above did run: errors and notes are in the text.
    assert "invalid_key_type" in text
    assert "merged_admin" in text
    assert "Imported config.json" in caplog.text
