"""Bad input through every import: the folder, the upload and the YAML.

One table: each case is a file or a text that must be refused, with the error
it must get. Every case runs with no hub yet (the config flow, the YAML's
first start) and with a working hub (its import subentry flow, the YAML's
update at a later start), and asserts the same things: a translated error that names the file or field,
no change to entries or devices, Home Assistant's storage still saving, no
traceback in the log, and no flow left hanging (a named pipe or /dev/zero
used to hold an executor thread for good).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
import contextlib
from dataclasses import dataclass
import json
import logging
import os
from pathlib import Path
import re
from typing import Any

from aiohttp.test_utils import TestClient
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.json import json_bytes
import pytest
from pytest_homeassistant_custom_component.common import flush_store

from custom_components.direct_push import async_import_yaml
from custom_components.direct_push.const import (
    CONF_ADMIN,
    CONF_ENVIRONMENT,
    CONF_NAME,
    CONF_TOKEN,
    DOMAIN,
    ENV_AUTO,
)
from custom_components.direct_push.import_flow import IMPORT_SUBENTRY
from custom_components.direct_push.safe_file import (
    MAX_CERTIFICATE_FILE,
    MAX_CONFIG_FILE,
    MAX_KEY_FILE,
)
from custom_components.direct_push.validation import MAX_NAME_LENGTH

from .apns_server import ApnsServer, ApnsTestCredentials
from .conftest import ALICE_TOKEN, BOB_TOKEN, CAROL_TOKEN, token_entry_data, upload
from .test_import_flow import (
    STRINGS,
    devices_of,
    error_text,
    placeholders_of,
    setup_hub,
    start,
    submit,
    write_folder,
    yaml_config,
)

# Long enough to show a hang, short enough to fail a run that would hang.
TIMEOUT = 30
DEEP = 100_000
YAML_NOT_IMPORTED = "The direct_push YAML configuration was not imported"


@dataclass(frozen=True)
class Context:
    """Where a case puts its files: the folder to import, HA's config folder."""

    folder: Path
    config_dir: Path
    credentials: ApnsTestCredentials
    socket: Path
    fifos: list[Path]

    def fifo(self, path: Path) -> Path:
        """Make a named pipe, whose write end the test opens at the end."""
        os.mkfifo(path)
        self.fifos.append(path)
        return path


@dataclass(frozen=True)
class Case:
    """One bad input and the error it must get.

    `make` writes the files: it returns the folder to type, the uploads
    (field → content), or the YAML. The error goes on the form field `on`;
    `names` is what its message must say.
    """

    id: str
    method: str  # "import_folder", "import_upload" or "yaml"
    make: Callable[[Context], Any]
    error: str
    on: str = "base"
    names: Callable[[Context], str] | None = None


def _folder(ctx: Context, **options: Any) -> Path:
    return write_folder(ctx.folder, ctx.credentials, **options)


def _key_is(make: Callable[[Context, Path], object]) -> Callable[[Context], Path]:
    """A folder whose ./AuthKey.p8 is what `make` puts there."""

    def folder(ctx: Context) -> Path:
        folder = _folder(ctx, key=False)
        make(ctx, folder / "AuthKey.p8")
        return folder

    return folder


def _config_is(make: Callable[[Context, Path], object]) -> Callable[[Context], Path]:
    """A folder with its key, whose config.json is what `make` puts there."""

    def folder(ctx: Context) -> Path:
        folder = _folder(ctx)
        (folder / "config.json").unlink()
        make(ctx, folder / "config.json")
        return folder

    return folder


def _config_text(text: str) -> Callable[[Context], Path]:
    return _config_is(lambda _ctx, path: path.write_text(text))


def _with_config(**server_auth: Any) -> Callable[[Context], Path]:
    """A folder whose config.json has these values in server_auth."""

    def folder(ctx: Context) -> Path:
        folder = _folder(ctx)
        config = json.loads(_json(ctx, **server_auth))
        (folder / "config.json").write_text(json.dumps(config))
        return folder

    return folder


def _json(ctx: Context, *, devices: list[Any] | None = None, **server_auth: Any) -> str:
    """A config.json as text; JSON escapes every lone surrogate and control."""
    credentials = ctx.credentials
    auth = {
        "token": {
            "key": "./AuthKey.p8",
            "keyId": credentials.key_id,
            "teamId": credentials.team_id,
        },
        "topic": credentials.topic,
    }
    for path, value in server_auth.items():
        *parents, last = path.split("__")
        target = auth
        for parent in parents:
            target = target[parent]
        target[last] = value
    return json.dumps(
        {
            "server_auth": auth,
            "devices": [{"name": "Alice", "token": ALICE_TOKEN}]
            if devices is None
            else devices,
        }
    )


def _socket_key(ctx: Context) -> Path:
    return _folder(ctx, key=False, key_ref=str(ctx.socket))


def _certificate_fifo(ctx: Context) -> Path:
    """No key in config.json: the certificate beside it would be used."""
    folder = _folder(ctx, key=False)
    (folder / "config.json").write_text(
        json.dumps({"server_auth": {"topic": ctx.credentials.topic}, "devices": []})
    )
    ctx.fifo(folder / "notify-development-push.pem")
    return folder


def _deep_json() -> str:
    return '{"devices": ' + "[" * DEEP + "]" * DEEP + "}"


def _uploads(**files: Callable[[Context], str | bytes]) -> Callable[[Context], Any]:
    """Uploads: config.json and the key as they should be, unless given."""

    def make(ctx: Context) -> dict[str, str | bytes]:
        contents: dict[str, Callable[[Context], str | bytes]] = {
            "config_file": _json,
            "key_file": lambda ctx: ctx.credentials.key_pem,
            **files,
        }
        return {name: content(ctx) for name, content in contents.items()}

    return make


def _yaml(**changes: Any) -> Callable[[Context], dict[str, Any]]:
    def make(ctx: Context) -> dict[str, Any]:
        (ctx.config_dir / "AuthKey.p8").write_text(ctx.credentials.key_pem)
        return yaml_config(ctx.credentials, **changes)

    return make


def _yaml_key(make_file: Callable[[Context], Path]) -> Callable[[Context], Any]:
    def make(ctx: Context) -> dict[str, Any]:
        return yaml_config(ctx.credentials, key_file=str(make_file(ctx)))

    return make


def _big(size: int) -> Callable[[Context, Path], object]:
    return lambda _ctx, path: path.write_bytes(b" " * size)


def _yaml_device(name: str) -> Callable[[Context], dict[str, Any]]:
    return _yaml(devices=[{"name": name, "token": ALICE_TOKEN}])


CASES = [
    # The folder: its files are anything a path can name.
    Case(
        "key-fifo",
        "import_folder",
        _key_is(lambda ctx, path: ctx.fifo(path)),
        "file_not_regular",
        names=lambda ctx: str(ctx.folder / "AuthKey.p8"),
    ),
    Case(
        "key-dev-zero",
        "import_folder",
        lambda ctx: _folder(ctx, key=False, key_ref="/dev/zero"),
        "file_not_regular",
        names=lambda _: "/dev/zero",
    ),
    Case(
        "key-folder",
        "import_folder",
        _key_is(lambda _ctx, path: path.mkdir()),
        "file_is_folder",
        names=lambda ctx: str(ctx.folder / "AuthKey.p8"),
    ),
    Case(
        "key-socket",
        "import_folder",
        _socket_key,
        "file_not_regular",
        names=lambda ctx: str(ctx.socket),
    ),
    Case(
        "key-too-large",
        "import_folder",
        _key_is(_big(MAX_KEY_FILE + 1)),
        "file_too_large",
        names=lambda _: str(MAX_KEY_FILE),
    ),
    Case(
        "config-fifo",
        "import_folder",
        _config_is(lambda ctx, path: ctx.fifo(path)),
        "file_not_regular",
        names=lambda _: "config.json",
    ),
    Case(
        "config-folder",
        "import_folder",
        _config_is(lambda _ctx, path: path.mkdir()),
        "file_is_folder",
        names=lambda _: "config.json",
    ),
    Case(
        "config-too-large",
        "import_folder",
        _config_is(_big(MAX_CONFIG_FILE + 1)),
        "file_too_large",
        names=lambda _: "config.json",
    ),
    Case(
        "config-too-deep",
        "import_folder",
        _config_text(_deep_json()),
        "json_too_deep",
        names=lambda _: "config.json",
    ),
    Case(
        "config-nan",
        "import_folder",
        _config_text('{"devices": [], "battery": NaN}'),
        "json_not_finite",
        names=lambda _: "config.json",
    ),
    Case(
        "certificate-fifo",
        "import_folder",
        _certificate_fifo,
        "file_not_regular",
        names=lambda _: "notify-development-push.pem",
    ),
    Case(
        "topic-nul",
        "import_folder",
        _with_config(topic="com.example.app\x00"),
        "invalid_character",
        names=lambda _: "server_auth.topic",
    ),
    Case(
        "key-id-surrogate",
        "import_folder",
        _with_config(token__keyId="ABC\ud800DEFGHI"),
        "lone_surrogate",
        names=lambda _: "server_auth.token.keyId",
    ),
    Case(
        "key-path-surrogate",
        "import_folder",
        _with_config(token__key="./Auth\udc00Key.p8"),
        "lone_surrogate",
        names=lambda _: "server_auth.token.key",
    ),
    Case(
        "key-path-escape",
        "import_folder",
        _with_config(token__key="./AuthKey\x1b[2J.p8"),
        "invalid_character",
        names=lambda _: "server_auth.token.key",
    ),
    Case(
        "folder-name-nul",
        "import_folder",
        lambda ctx: f"{_folder(ctx)}\x00",
        "invalid_folder",
        on="folder",
    ),
    Case(
        "folder-name-surrogate",
        "import_folder",
        lambda ctx: f"{_folder(ctx)}\ud800",
        "invalid_folder",
        on="folder",
    ),
    # The upload: the same limits for the same files.
    Case(
        "upload-config-too-large",
        "import_upload",
        _uploads(config_file=lambda _: b" " * (MAX_CONFIG_FILE + 1)),
        "file_too_large",
        on="config_file",
        names=lambda _: f"config.json is larger than {MAX_CONFIG_FILE} bytes",
    ),
    Case(
        "upload-key-too-large",
        "import_upload",
        _uploads(key_file=lambda _: b"k" * (MAX_KEY_FILE + 1)),
        "file_too_large",
        on="key_file",
        names=lambda _: f"AuthKey.p8 is larger than {MAX_KEY_FILE} bytes",
    ),
    Case(
        "upload-certificate-too-large",
        "import_upload",
        _uploads(certificate_file=lambda _: b"c" * (MAX_CERTIFICATE_FILE + 1)),
        "file_too_large",
        on="certificate_file",
        names=lambda _: "notify-development-push.pem",
    ),
    Case(
        "upload-config-too-deep",
        "import_upload",
        _uploads(config_file=lambda _: _deep_json()),
        "json_too_deep",
        names=lambda _: "config.json",
    ),
    Case(
        "upload-topic-surrogate",
        "import_upload",
        _uploads(config_file=lambda ctx: _json(ctx, topic="com.\udfffexample")),
        "lone_surrogate",
        names=lambda _: "server_auth.topic",
    ),
    Case(
        "upload-team-id-nul",
        "import_upload",
        _uploads(config_file=lambda ctx: _json(ctx, token__teamId="\x00" * 10)),
        "invalid_character",
        names=lambda _: "server_auth.token.teamId",
    ),
    Case(
        "upload-config-binary",
        "import_upload",
        _uploads(config_file=lambda _: b"\x00\x01\x02\xff"),
        "text_encoding",
        on="config_file",
        names=lambda _: "config.json",
    ),
    # The YAML: the same files, and its own texts.
    Case(
        "yaml-key-fifo",
        "yaml",
        _yaml_key(lambda ctx: ctx.fifo(ctx.config_dir / "fifo.p8")),
        "file_not_regular",
        names=lambda ctx: str(ctx.config_dir / "fifo.p8"),
    ),
    Case(
        "yaml-key-dev-zero",
        "yaml",
        _yaml_key(lambda _: Path("/dev/zero")),
        "file_not_regular",
        names=lambda _: "/dev/zero",
    ),
    Case(
        "yaml-key-folder",
        "yaml",
        _yaml_key(lambda ctx: ctx.config_dir),
        "file_is_folder",
        names=lambda ctx: str(ctx.config_dir),
    ),
    Case(
        "yaml-key-socket",
        "yaml",
        _yaml_key(lambda ctx: ctx.socket),
        "file_not_regular",
        names=lambda ctx: str(ctx.socket),
    ),
    Case(
        "yaml-key-too-large",
        "yaml",
        _yaml_key(
            lambda ctx: _written(ctx.config_dir / "big.p8", b"k" * (MAX_KEY_FILE + 1))
        ),
        "file_too_large",
        names=lambda ctx: str(ctx.config_dir / "big.p8"),
    ),
    Case(
        "yaml-key-path-surrogate",
        "yaml",
        _yaml(key_file="Auth\ud800Key.p8"),
        "lone_surrogate",
        names=lambda _: "key_file",
    ),
    Case(
        "yaml-topic-nul",
        "yaml",
        _yaml(topic="com.example.\x00app"),
        "invalid_character",
        names=lambda _: "topic",
    ),
    Case(
        "yaml-key-id-surrogate",
        "yaml",
        _yaml(key_id="\udc80" * 10),
        "lone_surrogate",
        names=lambda _: "key_id",
    ),
    Case(
        "yaml-name-nul",
        "yaml",
        _yaml_device("Alice\x00"),
        "invalid_character",
        names=lambda _: "devices[0].name",
    ),
    Case(
        "yaml-name-surrogate",
        "yaml",
        _yaml_device("Al\ud83dice"),
        "lone_surrogate",
        names=lambda _: "devices[0].name",
    ),
    Case(
        "yaml-name-too-long",
        "yaml",
        _yaml_device("A" * (MAX_NAME_LENGTH + 1)),
        "name_too_long",
        names=lambda _: f"devices[0].name is longer than {MAX_NAME_LENGTH} characters",
    ),
    Case(
        "yaml-name-invisible",
        "yaml",
        _yaml_device("\u200b"),
        "name_blank",
        names=lambda _: "devices[0].name",
    ),
]


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def fifos() -> Iterator[list[Path]]:
    """Named pipes made by a case: a reader stuck on one is freed at the end."""
    made: list[Path] = []
    yield made
    for path in made:
        with contextlib.suppress(OSError):  # no reader: nothing is stuck
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def _state(hass: HomeAssistant) -> list[Any]:
    """Everything an import could change: entries, their data and devices."""
    return [
        (
            entry.entry_id,
            dict(entry.data),
            dict(entry.options),
            {
                subentry_id: (s.subentry_type, s.title, dict(s.data))
                for subentry_id, s in entry.subentries.items()
            },
        )
        for entry in hass.config_entries.async_entries(DOMAIN)
    ]


async def _assert_storage_saves(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """HA's storage still saves: a lone surrogate in it failed every save."""
    hass.config_entries._async_schedule_save()
    await flush_store(hass.config_entries._store)
    stored = hass_storage["core.config_entries"]["data"]["entries"]
    assert [entry["entry_id"] for entry in stored] == [
        entry.entry_id for entry in hass.config_entries.async_entries()
    ]
    await flush_store(ir.async_get(hass)._store)


def _template_re(template: str) -> re.Pattern[str]:
    """Match a translated string with any text in its placeholders."""
    parts = re.split(r"\{\w+\}", template)
    return re.compile(".*".join(re.escape(part) for part in parts), re.DOTALL)


async def _run_flow(
    hass: HomeAssistant,
    upload_client: TestClient[Any, Any],
    case: Case,
    made: Any,
    hub: ConfigEntry | None,
) -> Any:
    """Submit the folder or the uploads; return the form with its error.

    Without a hub, in the config flow; with one, in the hub's import.
    """
    result = await start(hass, case.method, hub)
    if case.method == "import_folder":
        result = await submit(hass, result, folder=str(made))
    else:
        files = {
            name: await upload(upload_client, name, content)
            for name, content in made.items()
        }
        result = await submit(hass, result, **files)
    # What the frontend receives must be JSON: no lone surrogate in it.
    json_bytes(
        {
            "errors": result.get("errors"),
            "placeholders": result.get("description_placeholders"),
        }
    )
    return result


@pytest.mark.parametrize("hub", ["none", "existing"])
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_bad_input_is_refused(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    *,
    tmp_path: Path,
    upload_client: TestClient[Any, Any],
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    fifos: list[Path],
    unix_socket: Path,
    case: Case,
    hub: str,
) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    hass.config.config_dir = str(config_dir)
    entry = None
    if hub == "existing":
        entry = await setup_hub(
            hass,
            token_entry_data(apns_credentials),
            [{CONF_NAME: "Bob", CONF_TOKEN: BOB_TOKEN, CONF_ADMIN: False}],
        )
    ctx = Context(
        tmp_path / "apple_push", config_dir, apns_credentials, unix_socket, fifos
    )
    made = case.make(ctx)
    before = _state(hass)

    async with asyncio.timeout(TIMEOUT):
        if case.method == "yaml":
            async_import_yaml(hass, made)
            await hass.async_block_till_done()
            issue = ir.async_get(hass).async_get_issue(DOMAIN, "yaml_import_failed")
            assert issue is not None
            assert issue.translation_placeholders is not None
            text = issue.translation_placeholders["reason"]
            template = STRINGS["config"]["error"][f"import_{case.error}"]
            assert _template_re(template).search(text), text
            json_bytes(issue.translation_placeholders)
        else:
            result = await _run_flow(hass, upload_client, case, made, entry)
            assert result["type"] is FlowResultType.FORM
            assert result["errors"] == {case.on: f"import_{case.error}"}
            text = error_text(result, case.on)
        await hass.async_block_till_done()

    if case.names is not None:
        assert case.names(ctx) in text
    assert _state(hass) == before
    await _assert_storage_saves(hass, hass_storage)
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert "Traceback" not in caplog.text
    assert not [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR
        and not r.getMessage().startswith(YAML_NOT_IMPORTED)
    ]


@pytest.mark.parametrize("method", ["import_folder", "import_upload"])
async def test_broken_devices_are_left_out_with_a_note(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    *,
    tmp_path: Path,
    upload_client: TestClient[Any, Any],
    hass_storage: dict[str, Any],
    method: str,
) -> None:
    """A name HA cannot store or show leaves its device out, as a broken token does.

    The others are imported; the notes name the left-out ones by their place
    in the list; what is stored saves.
    """
    devices = [
        {"name": "Alice", "token": ALICE_TOKEN},
        {"name": "Bob\x00", "token": BOB_TOKEN},
        {"name": "Carol \ud83d", "token": CAROL_TOKEN},
        {"name": "D" * (MAX_NAME_LENGTH + 1), "token": "d4" * 32},
        {"name": "Erin", "token": "e5" * 31 + "\ud800e"},
        {"name": "\u200b\u200b", "token": "f6" * 32},
    ]
    ctx = Context(tmp_path / "apple_push", tmp_path, apns_credentials, tmp_path, [])
    async with asyncio.timeout(TIMEOUT):
        if method == "import_folder":
            made: Any = _folder(ctx, devices=devices)
        else:
            made = _uploads(config_file=lambda ctx: _json(ctx, devices=devices))(ctx)
        result = await _run_flow(
            hass, upload_client, Case("", method, lambda _: None, ""), made, None
        )
        assert result["step_id"] == "import_confirm", result["errors"]
        placeholders = placeholders_of(result)
        assert placeholders["devices"] == "- Alice\n- Device 6"
        notes = placeholders["notes"]
        assert "Device number 2: its name contains a control character" in notes
        assert "Device number 3: its name contains a control character" in notes
        assert (
            f"Device number 4: its name is longer than {MAX_NAME_LENGTH} characters"
            in notes
        )
        assert "Erin: the token ending … is not a device token" in notes
        assert "A device without a name is called Device 6." in notes
        result = await submit(hass, result)
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()

    [entry] = hass.config_entries.async_entries(DOMAIN)
    assert devices_of(entry) == {
        "Alice": {
            CONF_NAME: "Alice",
            CONF_TOKEN: ALICE_TOKEN,
            CONF_ADMIN: False,
            CONF_ENVIRONMENT: ENV_AUTO,
        },
        "Device 6": {
            CONF_NAME: "Device 6",
            CONF_TOKEN: "f6" * 32,
            CONF_ADMIN: False,
            CONF_ENVIRONMENT: ENV_AUTO,
        },
    }
    await _assert_storage_saves(hass, hass_storage)


async def test_certificate_that_cannot_be_read_is_not_needed_beside_a_key(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
    fifos: list[Path],
) -> None:
    """A named pipe where the unused certificate would be: read past, never waited on."""
    ctx = Context(tmp_path / "apple_push", tmp_path, apns_credentials, tmp_path, fifos)
    folder = _folder(ctx)
    ctx.fifo(folder / "notify-development-push.pem")
    async with asyncio.timeout(TIMEOUT):
        result = await start(hass, "import_folder")
        result = await submit(hass, result, folder=str(folder))
        assert result["step_id"] == "import_confirm", result["errors"]
        result = await submit(hass, result)
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()


def test_every_case_error_is_translated() -> None:
    """Each error of the table has its text, and the table covers each entry point."""
    for errors in (
        STRINGS["config"]["error"],
        STRINGS["config_subentries"][IMPORT_SUBENTRY]["error"],
    ):
        assert {f"import_{case.error}" for case in CASES} <= errors.keys()
    assert {case.method for case in CASES} == {"import_folder", "import_upload", "yaml"}
