"""Importing a folder as dmt-system read it, through the real flow.

Its environment (production), its key paths, its admin rule for duplicates,
its certificates and the encodings Windows tools save: real files, proven
against the local APNs server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.direct_push.apns import PROBE_TOKEN
from custom_components.direct_push.const import (
    AUTH_CERTIFICATE,
    CONF_ADMIN,
    CONF_AUTH_METHOD,
    CONF_DETECTED_ENVIRONMENT,
    CONF_ENVIRONMENT,
    DOMAIN,
    ENV_AUTO,
    ENV_PRODUCTION,
    ENV_SANDBOX,
)

from .apns_server import ApnsServer, ApnsTestCredentials, issue_push_certificate
from .conftest import ALICE_TOKEN, BOB_TOKEN, upload
from .test_import_flow import (
    description,
    devices_of,
    error_text,
    import_folder,
    placeholders_of,
    probes,
    start,
    submit,
    write_folder,
)


async def _certificate(
    hass: HomeAssistant, credentials: ApnsTestCredentials, **options: Any
) -> str:
    """A push certificate the local APNs server trusts (RSA: made in the executor)."""
    return await hass.async_add_executor_job(
        partial(issue_push_certificate, credentials, **options)
    )


def _blocks(markdown: str) -> list[str]:
    """Split Markdown into its blocks, as a renderer sees them."""
    return [block for block in markdown.split("\n\n") if block.strip()]


async def test_summary_lists_notes_apart_from_devices(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
) -> None:
    """Notes under their own heading: Markdown starts a new list after it.

    Separated only by a blank line, two lists are one list: the notes showed
    as more devices.
    """
    folder = write_folder(
        tmp_path / "apple_push",
        apns_credentials,
        devices=[
            {"name": "Alice", "token": ALICE_TOKEN, "admin": True},
            {"name": "Bob", "token": BOB_TOKEN},
            {"name": "Dave", "token": "abc"},
        ],
    )
    result = await import_folder(hass, folder)
    blocks = _blocks(description(result))
    devices = blocks.index("**Devices**")
    assert blocks[devices + 1] == "- Alice (admin)\n- Bob"
    assert blocks[devices + 2] == "**Notes**"
    notes = blocks[devices + 3].split("\n")
    assert [note[:2] for note in notes] == ["- "] * 3
    assert "line 8: a remark in parentheses" in notes[0]
    assert "always sent to production" in notes[1]
    assert notes[2].startswith("- Dave: the token ending")
    assert blocks[devices + 4].startswith("Submit to send one test push")


async def test_key_path_as_dmt_system_joined_it(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
) -> None:
    """ "/AuthKey.p8" meant the key in the folder."""
    folder = write_folder(
        tmp_path / "apple_push", apns_credentials, key_ref="/AuthKey.p8"
    )
    result = await import_folder(hass, folder)
    assert result["step_id"] == "import_confirm", result.get("errors")
    result = await submit(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    # Into that hub, through its own import.
    [hub] = hass.config_entries.async_entries(DOMAIN)
    folder = write_folder(
        tmp_path / "other", apns_credentials, key_ref="/nowhere/AuthKey.p8", key=False
    )
    result = await import_folder(hass, folder, hub)
    assert error_text(result) == (
        "config.json names the key /nowhere/AuthKey.p8, which is not there. Direct"
        f" Push looked for it at: /nowhere/AuthKey.p8, {folder}/nowhere/AuthKey.p8."
        " Put the .p8 file there, or upload it together with config.json."
    )


async def test_duplicates_become_one_admin_device(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
) -> None:
    folder = write_folder(
        tmp_path / "apple_push",
        apns_credentials,
        devices=[
            {"name": "Alice", "token": ALICE_TOKEN},
            {"name": "Alice's iPad", "token": ALICE_TOKEN.upper(), "admin": True},
        ],
    )
    result = await import_folder(hass, folder)
    assert placeholders_of(result)["devices"] == "- Alice (admin)"
    assert (
        "Alice and Alice's iPad have the same token (ending …a1a1): they become one"
        " device, Alice, which keeps the admin flag since one of them had it."
    ) in description(result)
    result = await submit(hass, result)
    await hass.async_block_till_done()
    [entry] = hass.config_entries.async_entries(DOMAIN)
    assert devices_of(entry)["Alice"][CONF_ADMIN] is True
    assert len(devices_of(entry)) == 1


async def test_universal_certificate_devices_find_the_sandbox(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
) -> None:
    """No key: a universal certificate, production first; a sandbox token moves."""
    pem = await _certificate(hass, apns_credentials, kind="universal", key_first=True)
    folder = write_folder(
        tmp_path / "apple_push", apns_credentials, certificate=pem, key=False
    )
    result = await import_folder(hass, folder)
    assert placeholders_of(result)["environment"] == "Production"
    assert "make it a certificate for both environments" in description(result)
    result = await submit(hass, result)
    assert result["data"][CONF_AUTH_METHOD] == AUTH_CERTIFICATE
    await hass.async_block_till_done()
    [entry] = hass.config_entries.async_entries(DOMAIN)
    hub = entry.runtime_data

    server.register(BOB_TOKEN, ENV_SANDBOX)
    await hass.services.async_call(DOMAIN, "send", {"message": "Hi"}, blocking=True)
    sent = {push.token: push.environment for push in server.pushes_for(BOB_TOKEN)}
    assert sent == {BOB_TOKEN: ENV_SANDBOX}
    assert [push.environment for push in server.pushes_for(ALICE_TOKEN)] == [
        ENV_PRODUCTION
    ]
    bob = devices_of(entry)["Bob"]
    assert (bob[CONF_ENVIRONMENT], bob[CONF_DETECTED_ENVIRONMENT]) == (
        ENV_AUTO,
        ENV_SANDBOX,
    )
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data is hub


@pytest.mark.parametrize(
    ("dates", "note", "error"),
    [
        (
            (datetime(2019, 3, 1, tzinfo=UTC), datetime(2020, 3, 1, tzinfo=UTC)),
            "notify-development-push.pem expired on 2020-03-01 (it was valid from"
            " 2019-03-01).",
            "certificate_expired",
        ),
        (
            (datetime(2090, 3, 1, tzinfo=UTC), datetime(2091, 3, 1, tzinfo=UTC)),
            "notify-development-push.pem is valid only from 2090-03-01 (until"
            " 2091-03-01).",
            "certificate_not_yet_valid",
        ),
    ],
)
async def test_out_of_date_certificate(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
    dates: tuple[datetime, datetime],
    note: str,
    error: str,
) -> None:
    """Said in the summary with its dates; the confirm step does not blame the network."""
    pem = await _certificate(
        hass, apns_credentials, not_before=dates[0], not_after=dates[1]
    )
    folder = write_folder(
        tmp_path / "apple_push", apns_credentials, certificate=pem, key=False
    )
    result = await import_folder(hass, folder)
    assert note in description(result)
    assert probes(server) == 0
    result = await submit(hass, result)
    assert result["errors"] == {"base": error}
    assert "internet" not in error_text(result)
    assert probes(server) == 0
    assert server.connections_made == 0
    assert not hass.config_entries.async_entries(DOMAIN)


async def test_encrypted_certificate_and_no_key(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
) -> None:
    pem = await _certificate(hass, apns_credentials, password=b"secret")
    folder = write_folder(
        tmp_path / "apple_push", apns_credentials, certificate=pem, key=False
    )
    result = await import_folder(hass, folder)
    assert result["errors"] == {"base": "import_encrypted_certificate_key"}
    assert error_text(result) == (
        "The private key in notify-development-push.pem is protected with a"
        " password, which Direct Push cannot ask for. Export it again without one"
        " (openssl pkcs12 -in cert.p12 -out push.pem -nodes), or put the .p8"
        " signing key that config.json names next to it."
    )


async def test_utf16_folder(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
) -> None:
    """Saved by Windows tools: UTF-16 with a byte order mark, read as such."""
    folder = write_folder(tmp_path / "apple_push", apns_credentials)
    for name in ("config.json", "AuthKey.p8"):
        path = folder / name
        path.write_bytes(path.read_text().encode("utf-16"))
    result = await import_folder(hass, folder)
    assert result["step_id"] == "import_confirm", result.get("errors")
    assert placeholders_of(result)["devices"] == "- Alice (admin)\n- Bob"
    result = await submit(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def test_upload_encodings(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
    upload_client: TestClient[Any, Any],
) -> None:
    folder = write_folder(tmp_path / "apple_push", apns_credentials)
    config = (folder / "config.json").read_text()
    result = await start(hass, "import_upload")
    result = await submit(
        hass,
        result,
        config_file=await upload(
            upload_client,
            "config.json",
            json.dumps({"name": "Zoë"}, ensure_ascii=False).encode("cp1252"),
        ),
    )
    assert result["errors"] == {"config_file": "import_not_utf8"}
    assert error_text(result, "config_file").startswith(
        "config.json is not UTF-8 text. Save it as UTF-8"
    )

    result = await submit(
        hass,
        result,
        config_file=await upload(upload_client, "config.json", config.encode("utf-16")),
        key_file=await upload(
            upload_client, "AuthKey.p8", apns_credentials.key_pem.encode("utf-16-le")
        ),
    )
    assert result["errors"] == {"key_file": "import_text_encoding"}
    assert error_text(result, "key_file") == (
        "AuthKey.p8 is saved as UTF-16 without a byte order mark, which Direct Push"
        " cannot read. Save it as UTF-8 and try again."
    )

    result = await submit(
        hass,
        result,
        key_file=await upload(
            upload_client, "AuthKey.p8", apns_credentials.key_pem.encode("utf-16")
        ),
    )
    assert result["step_id"] == "import_confirm"
    assert probes(server) == 0
    result = await submit(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    [probe] = server.pushes_for(PROBE_TOKEN)
    assert probe.environment == ENV_PRODUCTION
    await hass.async_block_till_done()
