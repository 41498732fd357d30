"""Importing an apple_push folder, its files uploaded, or the YAML: the real flow.

Every test writes real files to tmp_path and proves the credentials against the
local APNs server, exactly as the token step does.
"""

from __future__ import annotations

from collections.abc import Mapping
import json
import logging
from pathlib import Path
import re
from typing import Any, Final

from aiohttp.test_utils import TestClient
from homeassistant.config_entries import (
    SOURCE_IMPORT,
    SOURCE_USER,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlowResult,
)
from homeassistant.core import DOMAIN as HOMEASSISTANT_DOMAIN, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
import voluptuous as vol

from custom_components.direct_push import async_import_yaml
from custom_components.direct_push.apns import _PROBE_ERRORS, PROBE_TOKEN, SUBENTRY_APNS
from custom_components.direct_push.apple_credentials import (
    CERT_DEVELOPMENT,
    CERT_PRODUCTION,
    CERT_UNIVERSAL,
    AppleCredentialError,
)
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
    CONF_VAPID_PRIVATE_KEY,
    DOMAIN,
    ENV_AUTO,
    ENV_PRODUCTION,
    ENV_SANDBOX,
)
from custom_components.direct_push.hub_import import IMPORT_PLACEHOLDERS
from custom_components.direct_push.import_flow import IMPORT_SUBENTRY
from custom_components.direct_push.validation import escape_markdown

from .apns_server import ApnsServer, ApnsTestCredentials
from .conftest import ALICE_TOKEN, BOB_TOKEN, CAROL_TOKEN, token_entry_data, upload

OTHER_TOPIC = "com.example.other"
DAVE_TOKEN = "d4" * 32
COMPONENT = Path(__file__).parent.parent / "custom_components" / DOMAIN
STRINGS: dict[str, Any] = json.loads(
    (COMPONENT / "translations" / "en.json").read_text(encoding="utf-8")
)
DEFAULT_DEVICES: list[dict[str, Any]] = [
    {"name": "Alice", "token": ALICE_TOKEN, "admin": True},
    {"name": "Bob", "token": BOB_TOKEN},
]


@pytest.fixture
def config_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Home Assistant's configuration folder, in tmp_path."""
    folder = tmp_path / "config"
    folder.mkdir()
    hass.config.config_dir = str(folder)
    return folder


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The home folder of the user Home Assistant runs as."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    return folder


def write_folder(
    folder: Path,
    credentials: ApnsTestCredentials,
    *,
    devices: list[dict[str, Any]] | None = None,
    key_ref: str = "./AuthKey.p8",
    topic: str | None = None,
    key_id: str | None = None,
    certificate: str | None = None,
    key: bool = True,
) -> Path:
    """Write a dmt-system apple_push folder, its remark after the topic included."""
    folder.mkdir(parents=True, exist_ok=True)
    if key:
        (folder / "AuthKey.p8").write_text(credentials.key_pem)
    if certificate is not None:
        (folder / "notify-development-push.pem").write_text(certificate)
    topic = topic or credentials.topic
    config = {
        "server_auth": {
            "token": {
                "key": key_ref,
                "keyId": key_id or credentials.key_id,
                "teamId": credentials.team_id,
            },
            "topic": topic,
        },
        "devices": DEFAULT_DEVICES if devices is None else devices,
    }
    text = json.dumps(config, indent=2).replace(
        f'"topic": "{topic}"', f'"topic": "{topic}" (change this to match your app)'
    )
    (folder / "config.json").write_text(text)
    return folder


def flows(hass: HomeAssistant, result: Any) -> Any:
    """Return the manager of a result's flow: the config flow's, or the hub's subentry flows'."""
    if isinstance(result["handler"], tuple):
        return hass.config_entries.subentries
    return hass.config_entries.flow


async def start(
    hass: HomeAssistant, method: str, hub: ConfigEntry | None = None
) -> Any:
    """Pick an import method: in the config flow, or in the hub's import subentry flow."""
    if hub is None:
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_USER}
        )
    else:
        result = await hass.config_entries.subentries.async_init(
            (hub.entry_id, IMPORT_SUBENTRY), context={"source": SOURCE_USER}
        )
    assert result["type"] is FlowResultType.MENU
    assert {"import_folder", "import_upload"} <= set(result["menu_options"])
    result = await flows(hass, result).async_configure(
        result["flow_id"], {"next_step_id": method}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == method
    return result


async def import_folder(
    hass: HomeAssistant, folder: Path | str, hub: ConfigEntry | None = None
) -> Any:
    """Import a folder up to its summary."""
    result = await start(hass, "import_folder", hub)
    return await submit(hass, result, folder=str(folder))


async def submit(hass: HomeAssistant, result: Any, **data: Any) -> Any:
    """Submit a form of the flow."""
    return await flows(hass, result).async_configure(result["flow_id"], data)


MARKDOWN_ESCAPE: Final = re.compile(r"\\([!-/:-@\[-`{-~])")


def placeholders_of(result: Any) -> Mapping[str, str]:
    """Return a result's description placeholders."""
    placeholders: Mapping[str, str] | None = result["description_placeholders"]
    assert placeholders is not None
    return placeholders


def strings(result: Any) -> dict[str, Any]:
    """Return the strings of a result's flow: the config flow's or the import subentry's."""
    if isinstance(result["handler"], tuple):
        section: dict[str, Any] = STRINGS["config_subentries"][IMPORT_SUBENTRY]
        return section
    config: dict[str, Any] = STRINGS["config"]
    return config


def description(result: Any) -> str:
    """Return a form's description as the frontend shows it."""
    template: str = strings(result)["step"][result["step_id"]]["description"]
    text = template.format(**(result["description_placeholders"] or {}))
    assert "{" not in text, text
    # Markdown shows an escaped character as the character itself.
    return MARKDOWN_ESCAPE.sub(r"\1", text)


def error_text(result: Any, field: str = "base") -> str:
    """Return a form's error message as the frontend shows it."""
    assert result["errors"] is not None
    template: str = strings(result)["error"][result["errors"][field]]
    text = template.format(**(result["description_placeholders"] or {}))
    assert "{" not in text, text
    return text


def abort_text(result: Any) -> str:
    """Return an abort's message as the frontend shows it."""
    template: str = strings(result)["abort"][result["reason"]]
    return template.format(**(result["description_placeholders"] or {}))


def pem_body(pem: str) -> str:
    """Return the base64 lines of a PEM: the part that must never be shown."""
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


def assert_no_secrets(text: str, credentials: ApnsTestCredentials) -> None:
    """No key material and no whole device token."""
    for pem in (credentials.key_pem, credentials.cert_pem):
        for line in pem.splitlines():
            if not line.startswith("-----"):
                assert line not in text
    for token in (ALICE_TOKEN, BOB_TOKEN, CAROL_TOKEN, DAVE_TOKEN):
        assert token not in text


def devices_of(entry: MockConfigEntry | Any) -> dict[str, dict[str, Any]]:
    """Return the hub's Apple devices by name."""
    return {
        subentry.title: dict(subentry.data)
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_APNS
    }


def probes(server: ApnsServer) -> int:
    """Count the probes the server saw, accepted or not."""
    return len(server.pushes_for(PROBE_TOKEN)) + sum(
        token == PROBE_TOKEN for token, _, _ in server.rejections
    )


async def setup_hub(
    hass: HomeAssistant, data: dict[str, Any], devices: list[dict[str, Any]]
) -> MockConfigEntry:
    """Add a hub made in the UI, with these devices, and set it up."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Direct Push",
        data=data,
        subentries_data=[
            {
                "data": {CONF_ENVIRONMENT: ENV_PRODUCTION, **device},
                "subentry_type": SUBENTRY_APNS,
                "title": device[CONF_NAME],
                "unique_id": None,
            }
            for device in devices
        ],
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


# Importing a folder.


async def test_folder_import_creates_hub(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
) -> None:
    folder = write_folder(
        tmp_path / "apple_push",
        apns_credentials,
        devices=[
            *DEFAULT_DEVICES,
            {"name": "Dave", "token": "abc"},
            {"name": "Carol", "token": f"<{CAROL_TOKEN[:8]} {CAROL_TOKEN[8:]}>"},
        ],
    )
    result = await import_folder(hass, folder)

    # Before anything is saved: what was found, and what was left out.
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "import_confirm"
    assert not hass.config_entries.async_entries(DOMAIN)
    assert probes(server) == 0
    placeholders = placeholders_of(result)
    assert placeholders["source"] == escape_markdown(str(folder))
    assert placeholders["topic"] == apns_credentials.topic
    assert placeholders["key_id"] == apns_credentials.key_id
    assert placeholders["team_id"] == apns_credentials.team_id
    assert placeholders["auth_method"] == "Signing key (.p8)"
    assert placeholders["environment"] == "Production"
    assert placeholders["devices"] == "- Alice (admin)\n- Bob\n- Carol"
    text = description(result)
    assert "config.json, line 8: a remark in parentheses" in text
    assert "Dave: the token ending … is not a device token" in text
    assert_no_secrets(json.dumps(placeholders), apns_credentials)

    result = await submit(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Direct Push"
    await hass.async_block_till_done()
    [entry] = hass.config_entries.async_entries(DOMAIN)
    assert entry.unique_id == DOMAIN
    assert entry.state is ConfigEntryState.LOADED
    assert {k: v for k, v in entry.data.items() if k != CONF_VAPID_PRIVATE_KEY} == {
        CONF_AUTH_METHOD: AUTH_TOKEN,
        CONF_KEY: apns_credentials.key_pem.strip(),
        CONF_KEY_ID: apns_credentials.key_id,
        CONF_TEAM_ID: apns_credentials.team_id,
        CONF_TOPIC: apns_credentials.topic,
        CONF_ENVIRONMENT: ENV_PRODUCTION,
    }
    assert CONF_VAPID_PRIVATE_KEY in entry.data
    # Each device finds its environment, starting in production.
    assert devices_of(entry) == {
        "Alice": {
            CONF_NAME: "Alice",
            CONF_TOKEN: ALICE_TOKEN,
            CONF_ADMIN: True,
            CONF_ENVIRONMENT: ENV_AUTO,
        },
        "Bob": {
            CONF_NAME: "Bob",
            CONF_TOKEN: BOB_TOKEN,
            CONF_ADMIN: False,
            CONF_ENVIRONMENT: ENV_AUTO,
        },
        "Carol": {
            CONF_NAME: "Carol",
            CONF_TOKEN: CAROL_TOKEN,
            CONF_ADMIN: False,
            CONF_ENVIRONMENT: ENV_AUTO,
        },
    }
    # The same test push as the token step, then a real push to an imported device.
    assert probes(server) == 1
    await hass.services.async_call(
        DOMAIN, "send", {"message": "Hello", "target": "Carol"}, blocking=True
    )
    assert len(server.pushes_for(CAROL_TOKEN)) == 1


async def test_folder_defaults_to_dmt_folder(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    home: Path,
) -> None:
    result = await start(hass, "import_folder")
    assert result["data_schema"] is not None
    [field] = result["data_schema"].schema
    assert field.default is vol.UNDEFINED

    folder = write_folder(home / ".dmt/user/access_tokens/apple_push", apns_credentials)
    result = await start(hass, "import_folder")
    assert result["data_schema"] is not None
    [field] = result["data_schema"].schema
    assert field.default() == str(folder)
    result = await submit(hass, result, folder=field.default())
    assert result["step_id"] == "import_confirm"
    result = await submit(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def test_folder_paths(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    *,
    tmp_path: Path,
    config_dir: Path,
    home: Path,
) -> None:
    """The key relative to the folder or absolute; the folder under ~ or config."""
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "AuthKey_ABC.p8").write_text(apns_credentials.key_pem)
    write_folder(
        home / "apple_push",
        apns_credentials,
        key_ref=str(keys / "AuthKey_ABC.p8"),
        key=False,
    )
    result = await import_folder(hass, "~/apple_push")
    assert result["step_id"] == "import_confirm", result.get("errors")
    assert placeholders_of(result)["source"] == escape_markdown(
        str(home / "apple_push")
    )

    write_folder(config_dir / "apple_push", apns_credentials, key_ref="AuthKey.p8")
    result = await import_folder(hass, "apple_push")
    assert result["step_id"] == "import_confirm", result.get("errors")
    assert placeholders_of(result)["source"] == escape_markdown(
        str(config_dir / "apple_push")
    )
    result = await submit(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_KEY] == apns_credentials.key_pem.strip()
    await hass.async_block_till_done()


async def test_folder_errors_name_file_and_line(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "apple_push"
    result = await import_folder(hass, folder)
    assert result["errors"] == {"folder": "import_folder_not_found"}
    assert error_text(result, "folder") == (
        f"There is no folder {folder} on the Home Assistant machine."
    )

    folder.mkdir()
    result = await submit(hass, result, folder=str(folder))
    assert result["errors"] == {"folder": "import_missing_config"}
    assert error_text(result, "folder").startswith(f"{folder} has no config.json.")

    (folder / "config.json").write_text('{\n  "server_auth": {\n    "topic": ,\n')
    result = await submit(hass, result, folder=str(folder))
    assert result["errors"] == {"base": "import_invalid_json"}
    assert error_text(result) == "config.json is not valid JSON: line 3, column 14."

    write_folder(folder, apns_credentials, key=False)
    result = await submit(hass, result, folder=str(folder))
    assert result["errors"] == {"base": "import_missing_key_file"}
    assert error_text(result).startswith(
        "config.json names the key ./AuthKey.p8, which is not there. Direct Push"
        f" looked for it at: {folder / 'AuthKey.p8'}."
    )

    write_folder(folder, apns_credentials, key_id="ABC")
    result = await submit(hass, result, folder=str(folder))
    assert result["errors"] == {"base": "import_invalid_key_id"}
    assert error_text(result).startswith("config.json: the key ID is not 10 letters")

    (folder / "AuthKey.p8").write_text("not a key")
    write_folder(folder, apns_credentials, key=False)
    result = await submit(hass, result, folder=str(folder))
    assert result["errors"] == {"base": "import_invalid_key"}
    assert error_text(result).startswith("AuthKey.p8 does not hold a PEM private key.")

    # Fixed: on to the summary, in the same flow.
    write_folder(folder, apns_credentials)
    result = await submit(hass, result, folder=str(folder))
    assert result["step_id"] == "import_confirm"
    assert not hass.config_entries.async_entries(DOMAIN)
    assert probes(server) == 0


async def test_folder_confirm_validates_like_the_token_step(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
) -> None:
    """Apple refuses the file's credentials: said on the summary, then a retry."""
    folder = write_folder(tmp_path / "apple_push", apns_credentials, topic=OTHER_TOPIC)
    result = await import_folder(hass, folder)
    result = await submit(hass, result)
    assert result["step_id"] == "import_confirm"
    assert result["errors"] == {"base": "topic_disallowed"}
    assert not hass.config_entries.async_entries(DOMAIN)

    server.script(PROBE_TOKEN, 403, "InvalidProviderToken", times=1)
    write_folder(folder, apns_credentials)
    result = await import_folder(hass, folder)
    result = await submit(hass, result)
    assert result["errors"] == {"base": "invalid_provider_token"}

    result = await submit(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def test_folder_without_devices(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
) -> None:
    folder = write_folder(tmp_path / "apple_push", apns_credentials, devices=[])
    result = await import_folder(hass, folder)
    assert placeholders_of(result)["devices"] == "None."
    assert "add each phone with Add Apple device" in description(result)
    result = await submit(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    [entry] = hass.config_entries.async_entries(DOMAIN)
    assert entry.subentries == {}
    assert entry.state is ConfigEntryState.LOADED


async def test_folder_with_development_certificate(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
) -> None:
    """The folder as dmt-system's guide lays it out: key, config, development .pem.

    dmt-system never read the .pem and always sent to production: its tokens
    are production tokens, and so the devices start there.
    """
    for token in (ALICE_TOKEN, BOB_TOKEN):
        server.register(token, ENV_PRODUCTION)
    folder = write_folder(
        tmp_path / "apple_push", apns_credentials, certificate=apns_credentials.cert_pem
    )
    result = await import_folder(hass, folder)
    assert placeholders_of(result)["environment"] == "Production"
    assert (
        "notify-development-push.pem is not used: dmt-system never read it"
        in description(result)
    )
    result = await submit(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_AUTH_METHOD] == AUTH_TOKEN
    assert result["data"][CONF_ENVIRONMENT] == ENV_PRODUCTION
    await hass.async_block_till_done()
    [entry] = hass.config_entries.async_entries(DOMAIN)
    assert {d[CONF_ENVIRONMENT] for d in devices_of(entry).values()} == {ENV_AUTO}
    [probe] = server.pushes_for(PROBE_TOKEN)
    assert probe.environment == ENV_PRODUCTION
    await hass.services.async_call(DOMAIN, "send", {"message": "Hello"}, blocking=True)
    assert [(p.token, p.environment) for p in server.pushes[1:]] == [
        (ALICE_TOKEN, ENV_PRODUCTION),
        (BOB_TOKEN, ENV_PRODUCTION),
    ]
    assert not [r for r in server.rejections if r[0] != PROBE_TOKEN]


async def test_folder_with_certificate_only(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
) -> None:
    """No key in the folder: the development certificate signs in instead."""
    folder = write_folder(
        tmp_path / "apple_push",
        apns_credentials,
        certificate=apns_credentials.cert_pem,
        key=False,
    )
    result = await import_folder(hass, folder)
    placeholders = placeholders_of(result)
    assert placeholders["auth_method"] == "Push certificate (.pem)"
    assert placeholders["key_id"] == "not used with a certificate"
    assert_no_secrets(json.dumps(placeholders), apns_credentials)
    result = await submit(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_AUTH_METHOD] == AUTH_CERTIFICATE
    assert result["data"][CONF_CERTIFICATE] == apns_credentials.cert_pem.strip()
    await hass.async_block_till_done()
    [probe] = server.pushes_for(PROBE_TOKEN)
    assert probe.auth == "certificate"


# Uploading the folder's files.


async def test_upload_import(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
    upload_client: TestClient[Any, Any],
) -> None:
    folder = write_folder(tmp_path / "apple_push", apns_credentials)
    config = (folder / "config.json").read_text()
    result = await start(hass, "import_upload")

    result = await submit(hass, result)
    assert result["errors"] == {"config_file": "import_config_required"}

    result = await submit(hass, result, config_file="0" * 32)
    assert result["errors"] == {"config_file": "import_unreadable_upload"}

    # The config alone: its key is missing. Then only the key: the config is kept.
    result = await submit(
        hass, result, config_file=await upload(upload_client, "config.json", config)
    )
    assert result["errors"] == {"key_file": "import_missing_key_upload"}
    assert error_text(result, "key_file") == (
        "config.json names the key ./AuthKey.p8. Upload that .p8 file together"
        " with config.json."
    )
    result = await submit(
        hass,
        result,
        key_file=await upload(upload_client, "AuthKey.p8", apns_credentials.key_pem),
    )
    assert result["step_id"] == "import_confirm"
    placeholders = placeholders_of(result)
    assert placeholders["source"] == escape_markdown("config.json")
    assert placeholders["devices"] == "- Alice (admin)\n- Bob"
    result = await submit(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    [entry] = hass.config_entries.async_entries(DOMAIN)
    assert set(devices_of(entry)) == {"Alice", "Bob"}


async def test_upload_errors(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
    upload_client: TestClient[Any, Any],
) -> None:
    result = await start(hass, "import_upload")
    result = await submit(
        hass,
        result,
        config_file=await upload(upload_client, "config.json", '{"devices": [}'),
    )
    assert result["errors"] == {"base": "import_invalid_json"}
    assert error_text(result) == "config.json is not valid JSON: line 1, column 14."

    folder = write_folder(tmp_path / "apple_push", apns_credentials)
    result = await submit(
        hass,
        result,
        config_file=await upload(
            upload_client, "config.json", (folder / "config.json").read_text()
        ),
        key_file=await upload(upload_client, "AuthKey.p8", "-----BEGIN nonsense"),
    )
    assert result["errors"] == {"key_file": "import_invalid_key"}
    assert error_text(result, "key_file").startswith("AuthKey.p8 does not hold")

    result = await submit(
        hass,
        result,
        key_file=await upload(upload_client, "AuthKey.p8", apns_credentials.key_pem),
        certificate_file=await upload(
            upload_client, "notify-development-push.pem", apns_credentials.cert_pem
        ),
    )
    assert result["step_id"] == "import_confirm"
    assert placeholders_of(result)["environment"] == "Production"
    assert "notify-development-push.pem is not used" in description(result)


@pytest.mark.parametrize("method", ["import_folder", "import_upload"])
async def test_import_renames_group_words(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
    upload_client: TestClient[Any, Any],
    method: str,
) -> None:
    """A device called like a group would be unreachable: it gets a number, and a note."""
    folder = write_folder(
        tmp_path / "apple_push",
        apns_credentials,
        devices=[
            {"name": "Admin", "token": ALICE_TOKEN, "admin": True},
            {"name": "all", "token": BOB_TOKEN},
            {"name": "Everyone", "token": CAROL_TOKEN},
        ],
    )
    if method == "import_folder":
        result = await import_folder(hass, folder)
    else:
        result = await submit(
            hass,
            await start(hass, method),
            config_file=await upload(
                upload_client, "config.json", (folder / "config.json").read_text()
            ),
            key_file=await upload(
                upload_client, "AuthKey.p8", apns_credentials.key_pem
            ),
        )
    assert result["step_id"] == "import_confirm"
    assert placeholders_of(result)["devices"] == (
        "- Admin 2 (admin)\n- all 2\n- Everyone 2"
    )
    text = description(result)
    assert (
        "Admin is a word that sends to a group of devices, so this device is "
        "added as Admin 2." in text
    )
    result = await submit(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    [entry] = hass.config_entries.async_entries(DOMAIN)
    assert set(devices_of(entry)) == {"Admin 2", "all 2", "Everyone 2"}

    # "admin" still means the admins, and each device has a name of its own.
    await hass.services.async_call(
        DOMAIN, "send", {"message": "Hi", "target": "admin"}, blocking=True
    )
    assert [push.token for push in server.pushes if push.token != PROBE_TOKEN] == [
        ALICE_TOKEN
    ]
    await hass.services.async_call(
        DOMAIN, "send", {"message": "Hi", "target": "all 2"}, blocking=True
    )
    assert len(server.pushes_for(BOB_TOKEN)) == 1


# The YAML.


def yaml_config(credentials: ApnsTestCredentials, **changes: Any) -> dict[str, Any]:
    """Return `direct_push:` as configuration.yaml has it; None drops a setting."""
    conf = {
        "key_file": "AuthKey.p8",
        "key_id": credentials.key_id,
        "team_id": credentials.team_id,
        "topic": credentials.topic,
        "devices": [
            {"name": "Alice", "token": ALICE_TOKEN, "admin": True},
            {"name": "Bob", "token": BOB_TOKEN, "environment": "sandbox"},
        ],
        **changes,
    }
    return {key: value for key, value in conf.items() if value is not None}


@pytest.fixture
def key_file(config_dir: Path, apns_credentials: ApnsTestCredentials) -> Path:
    """The key next to configuration.yaml."""
    path = config_dir / "AuthKey.p8"
    path.write_text(apns_credentials.key_pem)
    return path


async def test_yaml_first_start_creates_hub(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    key_file: Path,
    issue_registry: ir.IssueRegistry,
) -> None:
    assert await async_setup_component(
        hass, DOMAIN, {DOMAIN: yaml_config(apns_credentials)}
    )
    await hass.async_block_till_done()
    [entry] = hass.config_entries.async_entries(DOMAIN)
    assert entry.source == SOURCE_IMPORT
    assert entry.unique_id == DOMAIN
    assert entry.state is ConfigEntryState.LOADED
    assert entry.data[CONF_KEY] == apns_credentials.key_pem.strip()
    assert entry.data[CONF_ENVIRONMENT] == ENV_PRODUCTION
    assert devices_of(entry) == {
        "Alice": {
            CONF_NAME: "Alice",
            CONF_TOKEN: ALICE_TOKEN,
            CONF_ADMIN: True,
            CONF_ENVIRONMENT: ENV_PRODUCTION,
        },
        "Bob": {
            CONF_NAME: "Bob",
            CONF_TOKEN: BOB_TOKEN,
            CONF_ADMIN: False,
            CONF_ENVIRONMENT: ENV_SANDBOX,
        },
    }
    assert probes(server) == 1
    issue = issue_registry.async_get_issue(
        HOMEASSISTANT_DOMAIN, f"deprecated_yaml_{DOMAIN}"
    )
    assert issue is not None
    assert issue.issue_domain == DOMAIN
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_key == "deprecated_yaml"
    assert issue.translation_placeholders == {
        "domain": DOMAIN,
        "integration_title": "Direct Push",
    }
    assert issue_registry.async_get_issue(DOMAIN, "yaml_import_failed") is None


@pytest.mark.parametrize("form", ["text", "absolute"])
async def test_yaml_key_as_text_or_absolute_path(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    *,
    config_dir: Path,
    tmp_path: Path,
    form: str,
) -> None:
    if form == "text":
        changes: dict[str, Any] = {"key_file": None, "key": apns_credentials.key_pem}
    else:
        (tmp_path / "elsewhere.p8").write_text(apns_credentials.key_pem)
        changes = {"key_file": str(tmp_path / "elsewhere.p8")}
    conf = yaml_config(apns_credentials, **changes)
    assert await async_setup_component(hass, DOMAIN, {DOMAIN: conf})
    await hass.async_block_till_done()
    [entry] = hass.config_entries.async_entries(DOMAIN)
    assert entry.data[CONF_KEY] == apns_credentials.key_pem.strip()


async def test_yaml_later_starts_update_without_duplicates(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    key_file: Path,
) -> None:
    assert await async_setup_component(
        hass, DOMAIN, {DOMAIN: yaml_config(apns_credentials)}
    )
    await hass.async_block_till_done()
    [entry] = hass.config_entries.async_entries(DOMAIN)
    # A device added in the UI stays: the YAML does not list every device.
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_APNS), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_NAME: "Dave", CONF_TOKEN: DAVE_TOKEN, CONF_ADMIN: False},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    ids = {s.data[CONF_TOKEN]: s.subentry_id for s in entry.subentries.values()}
    probes_before = probes(server)

    # The next start: the same YAML changes nothing, and proves nothing again.
    async_import_yaml(hass, yaml_config(apns_credentials))
    await hass.async_block_till_done()
    assert hass.config_entries.async_entries(DOMAIN) == [entry]
    assert set(devices_of(entry)) == {"Alice", "Bob", "Dave"}
    assert probes(server) == probes_before

    # Then Bob is renamed and made admin, Alice moves to the sandbox, Carol joins.
    async_import_yaml(
        hass,
        yaml_config(
            apns_credentials,
            environment="sandbox",
            devices=[
                {"name": "Alice", "token": ALICE_TOKEN, "admin": True},
                {"name": "Robert", "token": BOB_TOKEN, "admin": True},
                {"name": "Carol", "token": CAROL_TOKEN},
            ],
        ),
    )
    await hass.async_block_till_done()
    assert hass.config_entries.async_entries(DOMAIN) == [entry]
    assert entry.state is ConfigEntryState.LOADED
    devices = devices_of(entry)
    assert set(devices) == {"Alice", "Robert", "Carol", "Dave"}
    assert devices["Robert"][CONF_ADMIN] is True
    assert devices["Alice"][CONF_ENVIRONMENT] == ENV_SANDBOX
    assert devices["Carol"][CONF_ENVIRONMENT] == ENV_SANDBOX
    assert entry.data[CONF_ENVIRONMENT] == ENV_SANDBOX
    # Updated in place: the same subentries, so the same HA devices and entities.
    new_ids = {s.data[CONF_TOKEN]: s.subentry_id for s in entry.subentries.values()}
    assert {k: new_ids[k] for k in ids} == ids
    assert len(new_ids) == 4
    await hass.services.async_call(
        DOMAIN, "send", {"message": "Hi", "target": "Robert"}, blocking=True
    )
    assert len(server.pushes_for(BOB_TOKEN)) == 1


async def test_yaml_updates_a_hub_made_in_the_ui(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    key_file: Path,
    issue_registry: ir.IssueRegistry,
) -> None:
    server.topics.add(OTHER_TOPIC)
    entry = await setup_hub(
        hass,
        token_entry_data(apns_credentials),
        [{CONF_NAME: "Alice", CONF_TOKEN: ALICE_TOKEN, CONF_ADMIN: False}],
    )
    async_import_yaml(hass, yaml_config(apns_credentials, topic=OTHER_TOPIC))
    await hass.async_block_till_done()
    assert hass.config_entries.async_entries(DOMAIN) == [entry]
    assert entry.data[CONF_TOPIC] == OTHER_TOPIC
    assert CONF_VAPID_PRIVATE_KEY in entry.data
    assert set(devices_of(entry)) == {"Alice", "Bob"}
    assert devices_of(entry)["Alice"][CONF_ADMIN] is True
    assert issue_registry.async_get_issue(
        HOMEASSISTANT_DOMAIN, f"deprecated_yaml_{DOMAIN}"
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"key_id": "ABC"},
            "configuration.yaml: the key ID is not 10 letters and digits.",
        ),
        ({"key_file": "missing.p8"}, "configuration.yaml names the key {config}"),
        (
            {"devices": [{"name": "Alice", "token": "abc"}]},
            "configuration.yaml: the token of Alice is not a device token.",
        ),
        (
            {
                "devices": [
                    {"name": "Alice", "token": ALICE_TOKEN},
                    {"name": "alice", "token": BOB_TOKEN},
                ]
            },
            "configuration.yaml: two devices are called alice.",
        ),
        (
            {"devices": [{"name": "Admin", "token": ALICE_TOKEN}]},
            "configuration.yaml: a device may not be called Admin: admin, admins,",
        ),
        (
            {"devices": [{"name": "all", "token": ALICE_TOKEN}]},
            "configuration.yaml: a device may not be called all:",
        ),
        (
            {"team_id": "ZZZ999ZZZZ"},
            "Apple refused the key: the key ID, team ID and key do not belong",
        ),
        # Caught by the schema: the setting named, its value never.
        ({"key_id": None}, "configuration.yaml: required key not provided"),
        (
            {"devices": [{"name": "Alice"}]},
            "configuration.yaml: required key not provided",
        ),
    ],
)
async def test_yaml_failure_raises_error_issue(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    *,
    key_file: Path,
    issue_registry: ir.IssueRegistry,
    changes: dict[str, Any],
    reason: str,
) -> None:
    conf = yaml_config(apns_credentials, **changes)
    assert await async_setup_component(hass, DOMAIN, {DOMAIN: conf})
    await hass.async_block_till_done()
    assert not hass.config_entries.async_entries(DOMAIN)
    issue = issue_registry.async_get_issue(DOMAIN, "yaml_import_failed")
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_key == "yaml_import_failed"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["reason"].startswith(
        reason.format(config=key_file.parent)
    )
    STRINGS["issues"]["yaml_import_failed"]["description"].format(
        **issue.translation_placeholders
    )
    assert (
        issue_registry.async_get_issue(
            HOMEASSISTANT_DOMAIN, f"deprecated_yaml_{DOMAIN}"
        )
        is None
    )
    assert_no_secrets(json.dumps(issue.translation_placeholders), apns_credentials)

    # Fixed by the next start: the hub is created and the error issue goes.
    async_import_yaml(hass, yaml_config(apns_credentials))
    await hass.async_block_till_done()
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1
    assert issue_registry.async_get_issue(DOMAIN, "yaml_import_failed") is None


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"key_id": None}, "key_id"),
        ({"devices": [{"name": "Alice"}]}, "token"),
        ({"environment": "staging"}, "environment"),
        ({"key": "-----BEGIN PRIVATE KEY-----"}, "key"),
    ],
)
async def test_yaml_schema_error_names_the_setting(
    hass: HomeAssistant,
    apns_credentials: ApnsTestCredentials,
    issue_registry: ir.IssueRegistry,
    changes: dict[str, Any],
    named: str,
) -> None:
    """The integration still loads: the issue names the setting, never its value."""
    conf = yaml_config(apns_credentials, **changes)
    assert await async_setup_component(hass, DOMAIN, {DOMAIN: conf})
    await hass.async_block_till_done()
    assert hass.services.has_service(DOMAIN, "send")
    issue = issue_registry.async_get_issue(DOMAIN, "yaml_import_failed")
    assert issue is not None
    assert issue.translation_placeholders is not None
    reason = issue.translation_placeholders["reason"]
    assert reason.startswith("configuration.yaml: ")
    assert named in reason
    assert "staging" not in reason
    assert "BEGIN" not in reason


async def test_yaml_name_taken_by_another_device(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    key_file: Path,
    issue_registry: ir.IssueRegistry,
) -> None:
    entry = await setup_hub(
        hass,
        token_entry_data(apns_credentials),
        [{CONF_NAME: "Bob", CONF_TOKEN: DAVE_TOKEN, CONF_ADMIN: False}],
    )
    async_import_yaml(hass, yaml_config(apns_credentials))
    await hass.async_block_till_done()
    issue = issue_registry.async_get_issue(DOMAIN, "yaml_import_failed")
    assert issue is not None
    assert issue.translation_placeholders == {
        "reason": "configuration.yaml: another Direct Push device is already called "
        "Bob. Names must be unique, because automations send to them."
    }
    assert set(devices_of(entry)) == {"Bob"}


# Secrets.


async def test_no_secrets_in_logs_summaries_or_diagnostics(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    *,
    tmp_path: Path,
    key_file: Path,
    upload_client: TestClient[Any, Any],
    hass_client: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    shown: list[ConfigFlowResult] = []
    devices = [
        *DEFAULT_DEVICES,
        {"name": "Carol", "token": CAROL_TOKEN},
        {"name": "Dave", "token": DAVE_TOKEN[:-2]},  # skipped, and noted
        {"name": "Dave again", "token": ALICE_TOKEN},  # a duplicate, noted
    ]

    # Folder, with a development certificate as well.
    folder = write_folder(
        tmp_path / "apple_push",
        apns_credentials,
        devices=devices,
        certificate=apns_credentials.cert_pem,
    )
    result = await import_folder(hass, folder)
    shown.append(result)
    result = await submit(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    [entry] = hass.config_entries.async_entries(DOMAIN)

    # Upload into the existing hub.
    result = await start(hass, "import_upload", entry)
    result = await submit(
        hass,
        result,
        config_file=await upload(
            upload_client, "config.json", (folder / "config.json").read_text()
        ),
        key_file=await upload(upload_client, "AuthKey.p8", apns_credentials.key_pem),
    )
    shown.append(result)
    assert result["step_id"] == "import_merge"
    result = await submit(hass, result)
    shown.append(result)
    assert result["reason"] == "import_merged"
    await hass.async_block_till_done()

    # YAML, also into the existing hub, with a failure first.
    async_import_yaml(
        hass,
        yaml_config(
            apns_credentials, key_file=None, key=apns_credentials.key_pem, key_id="X"
        ),
    )
    async_import_yaml(
        hass,
        yaml_config(
            apns_credentials, key_file=None, key=apns_credentials.key_pem, devices=[]
        ),
    )
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    for text in (
        caplog.text,
        "\n".join(record.getMessage() for record in caplog.records),
        json.dumps([r.get("description_placeholders") for r in shown]),
        json.dumps(diagnostics),
    ):
        assert_no_secrets(text, apns_credentials)
        assert pem_body(apns_credentials.key_pem) not in text
    # The summary does show the IDs.
    assert placeholders_of(shown[0])["key_id"] == apns_credentials.key_id
    assert placeholders_of(shown[0])["team_id"] == apns_credentials.team_id


# Translations.


def test_every_import_error_and_note_is_translated() -> None:
    """Each key the importer raises or notes, and each import step, has its text."""
    source = "".join(
        (COMPONENT / name).read_text()
        for name in ("importer.py", "import_result.py", "import_flow.py")
    )
    errors = set(re.findall(r'AppleImportError\(\s*"(\w+)"', source))
    # Passed through a variable.
    errors |= {"missing_server_auth", "missing_token", "invalid_key_id"}
    errors |= {"invalid_team_id", "missing_key_file", "name_in_use", "reserved_name"}
    errors |= {"invalid_certificate", "encrypted_certificate_key"}
    # The checks' own keys (safe_file, json_input, validation), kept as they are.
    errors |= {"file_not_found", "file_is_folder", "file_not_regular"}
    errors |= {"file_too_large", "file_unreadable", "json_too_large", "json_too_deep"}
    errors |= {"json_not_finite", "json_number_too_large", "lone_surrogate"}
    errors |= {"invalid_character", "name_blank", "name_too_long"}
    notes = set(re.findall(r'ImportNote\(\s*"(\w+)"', source))
    notes |= {"merged_device", "reserved_name", "renamed_device"}
    notes |= {"device_name_too_long", "device_name_invalid"}
    notes |= {
        f"certificate_used_{kind}"
        for kind in (CERT_DEVELOPMENT, CERT_PRODUCTION, CERT_UNIVERSAL)
    }
    assert len(errors) > 15
    assert len(notes) > 10
    assert notes <= STRINGS["selector"]["import_note"]["options"].keys()
    # Both entry points: the config flow (the first hub) and the hub's import.
    config = STRINGS["config"]
    merge = STRINGS["config_subentries"][IMPORT_SUBENTRY]
    for section, summary in ((config, "import_confirm"), (merge, "import_merge")):
        assert {f"import_{key}" for key in errors} <= section["error"].keys()
        for step in ("import_folder", "import_upload", summary):
            assert section["step"][step]["description"]
        assert {"import_folder", "import_upload"} <= section["step"]["user"][
            "menu_options"
        ].keys()
        # No string of these sections holds a placeholder the flow does not give.
        for key in errors:
            text = section["error"][f"import_{key}"]
            assert set(re.findall(r"{(\w+)}", text)) <= IMPORT_PLACEHOLDERS.keys()


def _subclasses(cls: type[AppleCredentialError]) -> list[type[AppleCredentialError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_both_entry_points_say_the_same() -> None:
    """The hub's import repeats the config flow's strings: kept in step."""
    config = STRINGS["config"]
    merge = STRINGS["config_subentries"][IMPORT_SUBENTRY]
    assert merge["error"].items() <= config["error"].items()
    # Every error the test push can give on the summary, as in the config flow.
    probe = {*_PROBE_ERRORS.values(), "apns_error"}
    probe |= {error.key for error in _subclasses(AppleCredentialError)}
    probe.remove("invalid_device_token")  # a device's, never the hub's
    assert probe <= merge["error"].keys()
    for step in ("import_folder", "import_upload"):
        assert merge["step"][step] == config["step"][step]
    assert "import_merge" not in config["step"]
