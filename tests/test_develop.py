"""The demo that scripts/develop runs passes Home Assistant's config check.

It checks config/ as shipped, with the files scripts/develop adds at start (the
blueprints and dev/direct_push.yaml), so that the demo cannot rot unnoticed.
"""

from __future__ import annotations

from pathlib import Path
import shutil

from homeassistant.core import HomeAssistant
from homeassistant.helpers.check_config import async_check_ha_config_file

from scripts.dev_servers import write_config

from .apns_server import make_credentials

REPO = Path(__file__).resolve().parent.parent


def _lay_out(config: Path) -> None:
    """Do what scripts/develop does before it starts Home Assistant."""
    for name in ("configuration.yaml", "automations.yaml"):
        shutil.copy(REPO / "config" / name, config / name)
    shutil.copytree(
        REPO / "blueprints/automation/direct_push",
        config / "blueprints/automation/direct_push",
    )
    dev = config / "dev"
    dev.mkdir()
    write_config(dev, make_credentials(dev), 8443)


async def test_demo_config_passes_the_check(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    await hass.async_add_executor_job(_lay_out, tmp_path)
    hass.config.config_dir = str(tmp_path)
    result = await async_check_ha_config_file(hass)
    assert result.errors == []
    assert result.warnings == []
    # The demo really configures what it promises.
    assert {"direct_push", "automation", "input_button", "template", "person"} <= set(
        result
    )
    assert len(result["direct_push"]["devices"]) == 2
    assert len(result["automation"]) == 4
