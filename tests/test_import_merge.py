"""Importing into the hub there is: the hub's import subentry flow.

HA allows one hub (single_config_entry): a second config flow is refused at
once, so more devices come in through "Import from apple_push" on the hub. It
runs the config flow's import steps, then adds the devices whose tokens are
new, asks which credentials to keep when they differ, and ends with an abort
that says what was done. Real files, the local APNs server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from homeassistant.config_entries import SOURCE_IMPORT, SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.loader import async_get_integration
import pytest

from custom_components.direct_push.apns import SUBENTRY_APNS
from custom_components.direct_push.config_flow import DirectPushConfigFlow
from custom_components.direct_push.const import (
    CONF_ADMIN,
    CONF_ENVIRONMENT,
    CONF_KEY_ID,
    CONF_NAME,
    CONF_TEAM_ID,
    CONF_TOKEN,
    CONF_TOPIC,
    CONF_VAPID_PRIVATE_KEY,
    DOMAIN,
    ENV_AUTO,
)
from custom_components.direct_push.import_flow import IMPORT_SUBENTRY

from .apns_server import ApnsServer, ApnsTestCredentials, make_credentials
from .conftest import (
    ALICE_TOKEN,
    BOB_TOKEN,
    CAROL_TOKEN,
    VAPID_KEY,
    token_entry_data,
    upload,
)
from .test_import_flow import (
    DAVE_TOKEN,
    OTHER_TOPIC,
    STRINGS,
    abort_text,
    description,
    devices_of,
    error_text,
    import_folder,
    pem_body,
    placeholders_of,
    probes,
    setup_hub,
    start,
    submit,
    write_folder,
)


async def test_merge_adds_new_devices_only(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
) -> None:
    entry = await setup_hub(
        hass,
        token_entry_data(apns_credentials),
        [
            {CONF_NAME: "Alice", CONF_TOKEN: ALICE_TOKEN, CONF_ADMIN: True},
            {CONF_NAME: "Bob", CONF_TOKEN: BOB_TOKEN, CONF_ADMIN: False},
        ],
    )
    assert entry.unique_id == DOMAIN  # set on setup: the hub predates imports
    alice_id = next(s for s in entry.subentries.values() if s.title == "Alice")
    folder = write_folder(
        tmp_path / "apple_push",
        apns_credentials,
        devices=[
            # Known token: left alone, even with another name and admin flag.
            {"name": "Alicia", "token": ALICE_TOKEN, "admin": False},
            {"name": "Carol", "token": CAROL_TOKEN},
            # A new token under a name already taken.
            {"name": "Bob", "token": DAVE_TOKEN, "admin": True},
        ],
    )
    result = await import_folder(hass, folder, entry)
    assert result["step_id"] == "import_merge"
    assert placeholders_of(result)["devices"] == (
        "- Alicia: already on the hub, stays as it is\n"
        "- Carol: new\n"
        "- Bob (admin): added as Bob 2, since another device has this name"
    )
    probes_before = probes(server)
    result = await submit(hass, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "import_merged"
    assert result["description_placeholders"] == {"added": "2", "skipped": "1"}
    assert abort_text(result).startswith("Imported: 2 new devices added; 1 were")
    # Same credentials: nothing to prove again.
    assert probes(server) == probes_before
    await hass.async_block_till_done()

    assert hass.config_entries.async_entries(DOMAIN) == [entry]
    assert entry.state is ConfigEntryState.LOADED
    devices = devices_of(entry)
    assert set(devices) == {"Alice", "Bob", "Carol", "Bob 2"}
    assert devices["Alice"][CONF_ADMIN] is True
    assert entry.subentries[alice_id.subentry_id].data[CONF_TOKEN] == ALICE_TOKEN
    assert devices["Bob 2"] == {
        CONF_NAME: "Bob 2",
        CONF_TOKEN: DAVE_TOKEN,
        CONF_ADMIN: True,
        CONF_ENVIRONMENT: ENV_AUTO,
    }
    # The reloaded hub sends to the new devices.
    await hass.services.async_call(
        DOMAIN, "send", {"message": "Hi", "target": ["Carol", "Bob 2"]}, blocking=True
    )
    assert len(server.pushes_for(CAROL_TOKEN)) == 1
    assert len(server.pushes_for(DAVE_TOKEN)) == 1

    # Importing again adds nothing.
    result = await submit(hass, await import_folder(hass, folder, entry))
    assert result["description_placeholders"] == {"added": "0", "skipped": "3"}
    await hass.async_block_till_done()
    assert len(devices_of(entry)) == 4


async def test_merge_renumbers_a_numbered_name(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
) -> None:
    """A second "Alice 2" becomes "Alice 3", never "Alice 2 2"."""
    entry = await setup_hub(
        hass,
        token_entry_data(apns_credentials),
        [
            {CONF_NAME: "Alice", CONF_TOKEN: ALICE_TOKEN, CONF_ADMIN: True},
            {CONF_NAME: "Alice 2", CONF_TOKEN: BOB_TOKEN, CONF_ADMIN: False},
        ],
    )
    folder = write_folder(
        tmp_path / "apple_push",
        apns_credentials,
        devices=[
            {"name": "alice 2", "token": CAROL_TOKEN},
            {"name": "Alice", "token": DAVE_TOKEN},
        ],
    )
    result = await import_folder(hass, folder, entry)
    assert placeholders_of(result)["devices"] == (
        "- alice 2: added as alice 3, since another device has this name\n"
        "- Alice: added as Alice 4, since another device has this name"
    )
    await submit(hass, result)
    await hass.async_block_till_done()
    assert set(devices_of(entry)) == {"Alice", "Alice 2", "alice 3", "Alice 4"}


async def test_merge_credentials_differ_keep(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
) -> None:
    server.topics.add(OTHER_TOPIC)
    entry = await setup_hub(hass, token_entry_data(apns_credentials), [])
    data_before = dict(entry.data)
    folder = write_folder(tmp_path / "apple_push", apns_credentials, topic=OTHER_TOPIC)
    result = await submit(hass, await import_folder(hass, folder, entry))
    assert result["step_id"] == "import_credentials"
    assert placeholders_of(result)["changes"] == (
        f"- Topic: {apns_credentials.topic} → {OTHER_TOPIC}"
    )
    description(result)
    result = await submit(hass, result, credentials="keep")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "import_merged"
    await hass.async_block_till_done()
    assert dict(entry.data) == data_before
    assert set(devices_of(entry)) == {"Alice", "Bob"}
    assert entry.state is ConfigEntryState.LOADED


async def test_merge_credentials_differ_replace(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
) -> None:
    """The imported credentials replace the hub's once Apple accepts them."""
    # The hub's key ID and team ID are ones Apple no longer knows.
    other = token_entry_data(apns_credentials) | {
        CONF_KEY_ID: "OLDKEY1234",
        CONF_TEAM_ID: "OLDTEAM123",
    }
    entry = await setup_hub(hass, other, [])
    vapid_key = entry.data[CONF_VAPID_PRIVATE_KEY]
    folder = write_folder(tmp_path / "apple_push", apns_credentials, topic=OTHER_TOPIC)
    result = await submit(hass, await import_folder(hass, folder, entry))
    assert result["step_id"] == "import_credentials"
    assert placeholders_of(result)["changes"] == (
        f"- Topic: {apns_credentials.topic} → {OTHER_TOPIC}\n"
        f"- Key ID: OLDKEY1234 → {apns_credentials.key_id}\n"
        f"- Team ID: OLDTEAM123 → {apns_credentials.team_id}"
    )

    # Apple does not allow the imported topic yet: nothing changes.
    result = await submit(hass, result, credentials="replace")
    assert result["step_id"] == "import_credentials"
    assert result["errors"] == {"base": "topic_disallowed"}
    assert entry.data[CONF_KEY_ID] == "OLDKEY1234"
    assert not entry.subentries

    server.topics.add(OTHER_TOPIC)
    result = await submit(hass, result, credentials="replace")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "import_merged_credentials"
    await hass.async_block_till_done()
    assert entry.data[CONF_KEY_ID] == apns_credentials.key_id
    assert entry.data[CONF_TOPIC] == OTHER_TOPIC
    assert entry.data[CONF_VAPID_PRIVATE_KEY] == vapid_key
    assert set(devices_of(entry)) == {"Alice", "Bob"}
    assert entry.state is ConfigEntryState.LOADED


async def test_one_hub_only(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
) -> None:
    """Once there is a hub, HA refuses a second config flow, an import too.

    So "Add hub" is never offered: it could only end in "already set up".
    The hub offers its import instead; it never makes a subentry of its own.
    """
    assert (await async_get_integration(hass, DOMAIN)).single_config_entry
    entry = await setup_hub(hass, token_entry_data(apns_credentials), [])
    for source in (SOURCE_USER, SOURCE_IMPORT):
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": source}, data={}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "single_instance_allowed"
    assert IMPORT_SUBENTRY in DirectPushConfigFlow.async_get_supported_subentry_types(
        entry
    )
    strings = STRINGS["config_subentries"][IMPORT_SUBENTRY]
    assert strings["initiate_flow"]["user"] == "Import from apple_push"

    result = await start(hass, "import_folder", entry)
    assert description(result).startswith("Give the folder that holds config.json")
    assert not hass.config_entries.flow.async_progress()
    assert {s.subentry_type for s in entry.subentries.values()} <= {SUBENTRY_APNS}


async def test_upload_into_the_hub(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
    upload_client: TestClient[Any, Any],
) -> None:
    entry = await setup_hub(
        hass,
        token_entry_data(apns_credentials),
        [{CONF_NAME: "Alice", CONF_TOKEN: ALICE_TOKEN, CONF_ADMIN: True}],
    )
    folder = write_folder(tmp_path / "apple_push", apns_credentials)
    result = await start(hass, "import_upload", entry)
    result = await submit(
        hass,
        result,
        config_file=await upload(
            upload_client, "config.json", (folder / "config.json").read_text()
        ),
    )
    assert result["errors"] == {"key_file": "import_missing_key_upload"}
    assert error_text(result, "key_file").startswith("config.json names the key")
    result = await submit(
        hass,
        result,
        key_file=await upload(upload_client, "AuthKey.p8", apns_credentials.key_pem),
    )
    assert result["step_id"] == "import_merge"
    assert placeholders_of(result)["devices"] == (
        "- Alice (admin): already on the hub, stays as it is\n- Bob: new"
    )
    assert description(result).startswith("Direct Push read config.json:")
    result = await submit(hass, result)
    assert result["type"] is FlowResultType.ABORT
    assert abort_text(result) == (
        "Imported: 1 new devices added; 1 were already on the hub and stay as they"
        " were."
    )
    await hass.async_block_till_done()
    assert set(devices_of(entry)) == {"Alice", "Bob"}
    assert entry.state is ConfigEntryState.LOADED


async def test_import_gives_a_web_push_hub_apple(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
) -> None:
    """A hub without Apple credentials takes the imported ones, once proven."""
    entry = await setup_hub(hass, {CONF_VAPID_PRIVATE_KEY: VAPID_KEY}, [])
    vapid_key = entry.data[CONF_VAPID_PRIVATE_KEY]
    folder = write_folder(tmp_path / "apple_push", apns_credentials, topic=OTHER_TOPIC)
    result = await submit(hass, await import_folder(hass, folder, entry))
    assert result["step_id"] == "import_merge"
    assert result["errors"] == {"base": "topic_disallowed"}
    assert error_text(result).startswith("Apple does not allow this key")
    assert CONF_TOPIC not in entry.data

    server.topics.add(OTHER_TOPIC)
    result = await submit(hass, result)
    assert result["reason"] == "import_merged_credentials"
    assert abort_text(result).startswith(
        "Imported, and the hub now uses the imported credentials: 2 new devices"
    )
    await hass.async_block_till_done()
    assert entry.data[CONF_TOPIC] == OTHER_TOPIC
    assert entry.data[CONF_VAPID_PRIVATE_KEY] == vapid_key
    assert set(devices_of(entry)) == {"Alice", "Bob"}
    await hass.services.async_call(
        DOMAIN, "send", {"message": "Hi", "target": "Bob"}, blocking=True
    )
    assert len(server.pushes_for(BOB_TOKEN)) == 1


@pytest.mark.parametrize("imported", ["other_key", "certificate"])
async def test_differing_keys_are_named_never_shown(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    tmp_path: Path,
    imported: str,
) -> None:
    """A different key or certificate is named in the question, never shown."""
    other = make_credentials(tmp_path / "other", apns_credentials.topic)
    entry = await setup_hub(hass, token_entry_data(other), [])
    folder = write_folder(
        tmp_path / "apple_push",
        apns_credentials,
        key=imported == "other_key",
        certificate=apns_credentials.cert_pem if imported == "certificate" else None,
    )
    result = await submit(hass, await import_folder(hass, folder, entry))
    assert result["step_id"] == "import_credentials"
    changes = placeholders_of(result)["changes"]
    if imported == "other_key":
        # The same IDs, another key.
        assert changes == "- Signing key"
    else:
        assert changes == (
            "- Authentication: Signing key (.p8) → Push certificate (.pem)\n"
            f"- Key ID: {other.key_id} → —\n"
            f"- Team ID: {other.team_id} → —\n"
            "- Signing key\n"
            "- Push certificate"
        )
    description(result)
    for credentials in (other, apns_credentials):
        assert pem_body(credentials.key_pem) not in changes
    result = await submit(hass, result, credentials="keep")
    assert result["reason"] == "import_merged"
    await hass.async_block_till_done()
    assert entry.data[CONF_KEY_ID] == other.key_id
