"""The demo that scripts/develop runs: its configuration and its apple_push folder.

The configuration is checked as scripts/develop lays it out once Direct Push is set up
(config/ as shipped, the blueprints, an empty automations.yaml), so that the demo cannot
rot unnoticed. The apple_push folder scripts/dev_servers.py writes must import through
the config flow, which is how the demo's hub is made.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
import shutil

import aiohttp
from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.check_config import async_check_ha_config_file
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.direct_push.const import (
    DOMAIN,
    ENV_DEV_APNS_SERVER,
    ENV_DEV_CA_FILE,
)
from scripts.dev_servers import (
    CLIENT_NAME,
    DEMO_DEVICES,
    DeviceNames,
    demo_credentials,
    pair_reference_client,
    run_reference_client,
)

from .apns_server import ApnsServer

REPO = Path(__file__).resolve().parent.parent


def _lay_out(config: Path) -> None:
    """Do what scripts/develop does before it starts Home Assistant."""
    shutil.copy(REPO / "config/configuration.yaml", config)
    shutil.copy(REPO / "config/demo_automations.yaml", config)
    (config / "automations.yaml").write_text("[]\n")
    shutil.copytree(
        REPO / "blueprints/automation/direct_push",
        config / "blueprints/automation/direct_push",
    )


async def test_demo_config_passes_the_check(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    await hass.async_add_executor_job(_lay_out, tmp_path)
    hass.config.config_dir = str(tmp_path)
    result = await async_check_ha_config_file(hass)
    assert result.errors == []
    assert result.warnings == []
    assert {"automation", "input_button", "template", "person"} <= set(result)
    # Direct Push is set up in the UI, not in YAML.
    assert DOMAIN not in result
    assert len(result["automation"]) == 4


async def test_demo_folder_imports_through_the_config_flow(
    hass: HomeAssistant,
    socket_enabled: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dev = tmp_path / "dev"
    credentials = await hass.async_add_executor_job(demo_credentials, dev)
    async with ApnsServer(credentials) as server:
        monkeypatch.setenv(ENV_DEV_APNS_SERVER, f"127.0.0.1:{server.port}")
        monkeypatch.setenv(ENV_DEV_CA_FILE, str(credentials.ca_file))
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": config_entries.SOURCE_USER}
        )
        for user_input in (
            {"next_step_id": "import_folder"},
            {"folder": str(dev / "apple_push")},
            {},
        ):
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], user_input
            )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert sorted(sub.title for sub in entry.subentries.values()) == sorted(
        device["name"] for device in DEMO_DEVICES
    )
    # A second start keeps the key the hub has stored.
    again = await hass.async_add_executor_job(demo_credentials, dev)
    assert again.key_pem == credentials.key_pem


def test_device_names_come_from_home_assistant_storage(tmp_path: Path) -> None:
    names = DeviceNames(tmp_path)
    assert names.get("a1" * 32) is None  # no storage yet
    storage = tmp_path / ".storage"
    storage.mkdir()
    (storage / "core.config_entries").write_text(
        '{"data": {"entries": [{"domain": "direct_push", "subentries": ['
        '{"title": "Alice", "data": {"token": "' + "a1" * 32 + '"}},'
        '{"title": "Pixel", "data": {"endpoint": "https://push.example/x"}}]},'
        '{"domain": "other", "subentries": [{"title": "No", "data": {"token": "x"}}]}]}}'
    )
    assert names.get("a1" * 32) == "Alice"
    assert names.get("https://push.example/x") == "Pixel"
    assert names.get("x") is None


async def test_the_demo_pairs_the_reference_client_which_shows_pushes(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What the demo's first start does, then what it prints for a push to everyone."""
    for component in ("api", "config"):  # the REST API the demo's set-up uses
        assert await async_setup_component(hass, component, {})
    (tmp_path / "dev").mkdir()
    base = str((await hass_client()).make_url("")).rstrip("/")
    paired = asyncio.Event()
    client = asyncio.create_task(run_reference_client(tmp_path / "dev", paired))
    try:
        await _pair_and_show(
            hass, loaded_entry, base, hass_access_token, tmp_path, capsys, paired
        )
    finally:
        client.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await client


async def _pair_and_show(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    base: str,
    hass_access_token: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    paired: asyncio.Event,
) -> None:
    async with aiohttp.ClientSession() as session:
        await pair_reference_client(
            session,
            base,
            {"Authorization": f"Bearer {hass_access_token}"},
            loaded_entry.entry_id,
            tmp_path,
        )
    paired.set()
    await hass.async_block_till_done()
    assert CLIENT_NAME in {s.title for s in loaded_entry.subentries.values()}
    await hass.services.async_call(
        DOMAIN, "send", {"target": CLIENT_NAME, "message": "Washer done"}, blocking=True
    )
    for _ in range(100):
        if "Washer done" in (shown := capsys.readouterr().out):
            break
        await asyncio.sleep(0.05)
    assert f"Reference client → {CLIENT_NAME}: " in shown
