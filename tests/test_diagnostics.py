"""Diagnostics: everything useful, no secret."""

from __future__ import annotations

import json

from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.direct_push.const import (
    AUTH_CERTIFICATE,
    CONF_AUTH_METHOD,
    CONF_CERTIFICATE,
    CONF_ENVIRONMENT,
    CONF_TOPIC,
    DOMAIN,
    ENV_PRODUCTION,
)

from .apns_server import ApnsServer, ApnsTestCredentials
from .conftest import ALICE_TOKEN, BOB_TOKEN


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    apns_server: ApnsServer,
    *,
    apns_credentials: ApnsTestCredentials,
    snapshot: SnapshotAssertion,
) -> None:
    # Bob's app is gone: diagnostics show him inactive.
    apns_server.script(BOB_TOKEN, 410, "Unregistered")
    await hass.services.async_call(
        DOMAIN,
        "send",
        {"message": "Hello", "target": "Bob"},
        blocking=True,
        return_response=True,
    )

    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, loaded_entry
    )

    # Nothing random (entry or subentry ids) is in there: the snapshot is stable.
    assert diagnostics == snapshot
    text = json.dumps(diagnostics)
    key_body = "".join(apns_credentials.key_pem.splitlines()[1:-1])
    for secret in (
        key_body,
        key_body[:40],
        apns_credentials.key_id,
        apns_credentials.team_id,
        ALICE_TOKEN,
        BOB_TOKEN,
        ALICE_TOKEN[:16],
    ):
        assert secret not in text


async def test_diagnostics_certificate_hub(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    apns_server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    devices: list[ConfigSubentryData],
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Direct Push",
        data={
            CONF_AUTH_METHOD: AUTH_CERTIFICATE,
            CONF_CERTIFICATE: apns_credentials.cert_pem,
            CONF_TOPIC: apns_credentials.topic,
            CONF_ENVIRONMENT: ENV_PRODUCTION,
        },
        subentries_data=devices,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)

    assert diagnostics["entry"]["data"][CONF_CERTIFICATE] == "**REDACTED**"
    text = json.dumps(diagnostics)
    # Neither the certificate nor its private key, in any line.
    for line in apns_credentials.cert_pem.splitlines():
        if not line.startswith("-----"):
            assert line not in text
    await hass.config_entries.async_unload(entry.entry_id)
