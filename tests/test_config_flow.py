"""The config flow, device subentry flows and options, against the local APNs server."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
import logging
import socket
from typing import Any
from unittest.mock import ANY

from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    SOURCE_REAUTH,
    SOURCE_USER,
    ConfigEntry,
    ConfigEntryChange,
    ConfigEntryState,
    ConfigSubentryData,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.dispatcher import async_dispatcher_connect
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.direct_push.apns import PROBE_TOKEN, SUBENTRY_APNS
from custom_components.direct_push.const import (
    AUTH_CERTIFICATE,
    AUTH_TOKEN,
    CONF_ADMIN,
    CONF_ALLOW_LOCAL_PUSH_SERVICES,
    CONF_AUTH_METHOD,
    CONF_CERTIFICATE,
    CONF_ENVIRONMENT,
    CONF_INTERRUPTION_LEVEL,
    CONF_KEY,
    CONF_KEY_FILE,
    CONF_KEY_ID,
    CONF_LEASE_DAYS,
    CONF_NAME,
    CONF_SOUND,
    CONF_TEAM_ID,
    CONF_TITLE_FROM_DEVICE,
    CONF_TOKEN,
    CONF_TOPIC,
    CONF_UNREACHABLE_DAYS,
    CONF_VAPID_PRIVATE_KEY,
    DOMAIN,
    ENV_AUTO,
    ENV_DEV_APNS_SERVER,
    ENV_PRODUCTION,
    ENV_SANDBOX,
)
from custom_components.direct_push.hub import entity_unique_id
from custom_components.direct_push.issues import inactive_issue_id

from .apns_server import ApnsServer, ApnsTestCredentials, issue_push_certificate
from .conftest import (
    ALICE_TOKEN,
    BOB_TOKEN,
    CAROL_TOKEN,
    apns_device,
    token_entry_data,
    upload,
)

OTHER_TOPIC = "com.example.other"


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _certificate_without_uid() -> str:
    """A self-signed certificate and its key, with no bundle id (UID) in it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "No topic here")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2000, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2099, 12, 31, tzinfo=UTC))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode() + _pem(key)


# Generated once at import, outside the event loop (key generation is CPU work).
UNKNOWN_KEY_PEM = _pem(ec.generate_private_key(ec.SECP256R1()))
RSA_KEY_PEM = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
P384_KEY_PEM = _pem(ec.generate_private_key(ec.SECP384R1()))
NO_UID_CERT_PEM = _certificate_without_uid()
# Push certificates that parse, yet cannot work.
PEM_CHANGES: dict[str, dict[str, Any]] = {
    "encrypted": {"password": b"secret"},
    "expired": {
        "not_before": datetime(2020, 1, 1, tzinfo=UTC),
        "not_after": datetime(2021, 1, 1, tzinfo=UTC),
    },
    "early": {
        "not_before": datetime(2090, 1, 1, tzinfo=UTC),
        "not_after": datetime(2091, 1, 1, tzinfo=UTC),
    },
}


def token_input(credentials: ApnsTestCredentials, **changes: Any) -> dict[str, Any]:
    """Return the token form as a user fills it in; a None change drops the field."""
    data = {
        CONF_KEY: credentials.key_pem,
        CONF_KEY_ID: credentials.key_id,
        CONF_TEAM_ID: credentials.team_id,
        CONF_TOPIC: credentials.topic,
        CONF_ENVIRONMENT: ENV_PRODUCTION,
        **changes,
    }
    return {key: value for key, value in data.items() if value is not None}


def certificate_only(credentials: ApnsTestCredentials) -> str:
    """Return the push certificate without its private key."""
    cert, end, _ = credentials.cert_pem.partition("-----END CERTIFICATE-----")
    return f"{cert}{end}\n"


def pem_body(pem: str) -> str:
    """Return the base64 lines of a PEM, the part that must never be logged."""
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


def integration_log(caplog: pytest.LogCaptureFixture) -> str:
    """Return what everything but the test servers logged."""
    return "\n".join(
        record.getMessage()
        for record in caplog.records
        if not record.name.startswith("tests.")
    )


def probes(apns_server: ApnsServer) -> list[str]:
    """Return the outcome of every probe the server saw: "accepted" or a reason."""
    return [
        *("accepted" for _ in apns_server.pushes_for(PROBE_TOKEN)),
        *(
            reason
            for token, _, reason in apns_server.rejections
            if token == PROBE_TOKEN
        ),
    ]


async def start_flow(hass: HomeAssistant, method: str) -> str:
    """Open the user step's menu, pick a method and return the flow id."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": method}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == method
    return result["flow_id"]


async def setup_entry(
    hass: HomeAssistant,
    data: dict[str, Any],
    devices: list[ConfigSubentryData] | None = None,
) -> MockConfigEntry:
    """Add a hub entry with these credentials and set it up."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Direct Push",
        data=data,
        subentries_data=devices or [],
        minor_version=2,
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def record_states(
    hass: HomeAssistant, entry: MockConfigEntry
) -> list[ConfigEntryState]:
    """Record the entry's states from now on; a reload ends in one more LOADED."""
    states: list[ConfigEntryState] = []

    @callback
    def _changed(change: ConfigEntryChange, changed: ConfigEntry) -> None:
        if changed.entry_id == entry.entry_id and (
            not states or states[-1] is not changed.state
        ):
            states.append(changed.state)

    async_dispatcher_connect(hass, SIGNAL_CONFIG_ENTRY_CHANGED, _changed)
    return states


def ha_device(
    hass: HomeAssistant, entry: MockConfigEntry, device_id: str
) -> dr.DeviceEntry | None:
    """Return the HA device of a Direct Push device."""
    entries = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    return next((d for d in entries if (DOMAIN, device_id) in d.identifiers), None)


def suggested(result: Mapping[str, Any], field: str) -> Any:
    """Return the value a form suggests for a field."""
    for marker in result["data_schema"].schema:
        if marker == field:
            return (marker.description or {}).get("suggested_value")
    raise KeyError(field)


async def send(hass: HomeAssistant, **fields: Any) -> list[dict[str, Any]]:
    """Call direct_push.send and return its delivery rows."""
    response = await hass.services.async_call(
        DOMAIN, "send", fields, blocking=True, return_response=True
    )
    assert response is not None
    deliveries: list[dict[str, Any]] = response["deliveries"]  # type: ignore[assignment]
    return deliveries


# The hub entry: token (.p8) authentication.


async def test_user_step_is_a_menu(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "user"
    assert result["menu_options"] == [
        AUTH_TOKEN,
        AUTH_CERTIFICATE,
        "webpush",
        "import_folder",
        "import_upload",
    ]


async def test_token_creates_entry(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    flow_id = await start_flow(hass, AUTH_TOKEN)
    # Pasted text often carries surrounding blank lines and stray spaces.
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        token_input(
            apns_credentials,
            key=f"\n{apns_credentials.key_pem}\n",
            key_id=f" {apns_credentials.key_id} ",
        ),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Direct Push"
    assert result["data"] == {
        CONF_AUTH_METHOD: AUTH_TOKEN,
        CONF_KEY: apns_credentials.key_pem.strip(),
        CONF_KEY_ID: apns_credentials.key_id,
        CONF_TEAM_ID: apns_credentials.team_id,
        CONF_TOPIC: apns_credentials.topic,
        CONF_ENVIRONMENT: ENV_PRODUCTION,
        # Every new hub gets its own VAPID identity for Web Push devices.
        CONF_VAPID_PRIVATE_KEY: ANY,
    }
    await hass.async_block_till_done()
    [entry] = hass.config_entries.async_entries(DOMAIN)
    assert entry.state is ConfigEntryState.LOADED
    # One probe, a background push signed with the key, to production.
    [probe] = server.pushes
    assert (probe.token, probe.push_type, probe.auth) == (
        PROBE_TOKEN,
        "background",
        "token",
    )
    assert probe.topic == apns_credentials.topic
    assert probe.environment == ENV_PRODUCTION
    assert pem_body(apns_credentials.key_pem) not in integration_log(caplog)


async def test_token_key_file_upload(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    upload_client: TestClient[Any, Any],
) -> None:
    file_id = await upload(upload_client, "AuthKey.p8", apns_credentials.key_pem)
    flow_id = await start_flow(hass, AUTH_TOKEN)
    result = await hass.config_entries.flow.async_configure(
        flow_id, token_input(apns_credentials, key=None, key_file=file_id)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_KEY] == apns_credentials.key_pem.strip()
    assert CONF_KEY_FILE not in result["data"]
    await hass.async_block_till_done()


async def test_uploaded_key_survives_an_error(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    upload_client: TestClient[Any, Any],
) -> None:
    """Reading consumes the upload: the form keeps its text, not a dead file id."""
    file_id = await upload(upload_client, "AuthKey.p8", apns_credentials.key_pem)
    flow_id = await start_flow(hass, AUTH_TOKEN)
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        token_input(apns_credentials, key=None, key_file=file_id, team_id="nope"),
    )
    assert result["errors"] == {CONF_TEAM_ID: "invalid_team_id"}
    assert suggested(result, CONF_KEY_FILE) is None
    key = suggested(result, CONF_KEY)
    assert key == apns_credentials.key_pem

    result = await hass.config_entries.flow.async_configure(
        flow_id, token_input(apns_credentials, key=key)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({CONF_KEY: None}, {"base": "key_required"}),
        ({CONF_KEY: "  \n"}, {"base": "key_required"}),
        ({CONF_KEY: "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49"}, {CONF_KEY: "invalid_key"}),
        (
            {CONF_KEY: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"},
            {CONF_KEY: "invalid_key"},
        ),
        ({CONF_KEY: RSA_KEY_PEM}, {CONF_KEY: "invalid_key_type"}),
        ({CONF_KEY: P384_KEY_PEM}, {CONF_KEY: "invalid_key_type"}),
        (
            {CONF_KEY: None, CONF_KEY_FILE: "0" * 32},
            {CONF_KEY_FILE: "invalid_key"},
        ),
        ({CONF_KEY_ID: "ABC123"}, {CONF_KEY_ID: "invalid_key_id"}),
        ({CONF_KEY_ID: "abc123defg"}, {CONF_KEY_ID: "invalid_key_id"}),
        ({CONF_TEAM_ID: "DEF123GHI!"}, {CONF_TEAM_ID: "invalid_team_id"}),
        ({CONF_TOPIC: "com example app"}, {CONF_TOPIC: "invalid_topic"}),
        ({CONF_TOPIC: "app"}, {CONF_TOPIC: "invalid_topic"}),
        # Apple's own answers to the probe.
        ({CONF_KEY: UNKNOWN_KEY_PEM}, {"base": "invalid_provider_token"}),
        ({CONF_KEY_ID: "ZZZ999ZZZZ"}, {"base": "invalid_provider_token"}),
        ({CONF_TEAM_ID: "ZZZ999ZZZZ"}, {"base": "invalid_provider_token"}),
        ({CONF_TOPIC: OTHER_TOPIC}, {"base": "topic_disallowed"}),
    ],
)
async def test_token_errors_then_recovery(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    changes: dict[str, Any],
    errors: dict[str, str],
) -> None:
    flow_id = await start_flow(hass, AUTH_TOKEN)
    result = await hass.config_entries.flow.async_configure(
        flow_id, token_input(apns_credentials, **changes)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == AUTH_TOKEN
    assert result["errors"] == errors
    assert not hass.config_entries.async_entries(DOMAIN)

    result = await hass.config_entries.flow.async_configure(
        flow_id, token_input(apns_credentials)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ((400, "MissingTopic"), "missing_topic"),
        ((403, "MissingProviderToken"), "missing_provider_token"),
        ((403, "UnrelatedKeyIdInToken"), "unrelated_key_id"),
        ((403, "BadEnvironmentKeyIdInToken"), "bad_environment_key_id"),
        ((403, "BadCertificate"), "bad_certificate"),
        ((403, "BadCertificateEnvironment"), "bad_certificate"),
        ((500, "InternalServerError"), "apns_error"),
        ((503, "ServiceUnavailable"), "apns_error"),
        ((403, "Forbidden"), "apns_error"),
    ],
)
async def test_token_apple_refuses_probe(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    answer: tuple[int, str],
    error: str,
) -> None:
    status, reason = answer
    server.script(PROBE_TOKEN, status, reason)
    flow_id = await start_flow(hass, AUTH_TOKEN)
    result = await hass.config_entries.flow.async_configure(
        flow_id, token_input(apns_credentials)
    )
    assert result["errors"] == {"base": error}
    # A flow answers the user now: even a retryable status is not retried.
    assert probes(server) == [reason]
    assert not hass.config_entries.async_entries(DOMAIN)

    server.clear_scripts()
    result = await hass.config_entries.flow.async_configure(
        flow_id, token_input(apns_credentials)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def test_token_probe_clock_wrong(
    hass: HomeAssistant, server: ApnsServer, apns_credentials: ApnsTestCredentials
) -> None:
    """Apple calls the token expired, even renewed: the clock is wrong, not the key."""
    server.clock_offset = 2 * 3600
    flow_id = await start_flow(hass, AUTH_TOKEN)
    result = await hass.config_entries.flow.async_configure(
        flow_id, token_input(apns_credentials)
    )
    assert result["errors"] == {"base": "clock_wrong"}
    # The token was signed for this probe: retried once, not signed again.
    assert probes(server) == ["ExpiredProviderToken"] * 2
    assert len(set(server.tokens_expired)) == 1

    server.clock_offset = 0
    result = await hass.config_entries.flow.async_configure(
        flow_id, token_input(apns_credentials)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


@pytest.mark.parametrize("reason", ["BadDeviceToken", "Unregistered"])
async def test_token_probe_device_unknown_is_success(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    reason: str,
) -> None:
    """Apple checks the device only after the credentials: this is its usual answer."""
    server.script(PROBE_TOKEN, 410 if reason == "Unregistered" else 400, reason)
    flow_id = await start_flow(hass, AUTH_TOKEN)
    result = await hass.config_entries.flow.async_configure(
        flow_id, token_input(apns_credentials)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def test_token_cannot_connect(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]
    monkeypatch.setenv(ENV_DEV_APNS_SERVER, f"127.0.0.1:{closed_port}")
    flow_id = await start_flow(hass, AUTH_TOKEN)
    result = await hass.config_entries.flow.async_configure(
        flow_id, token_input(apns_credentials)
    )
    assert result["errors"] == {"base": "cannot_connect"}
    assert not hass.config_entries.async_entries(DOMAIN)

    monkeypatch.setenv(ENV_DEV_APNS_SERVER, f"127.0.0.1:{server.port}")
    result = await hass.config_entries.flow.async_configure(
        flow_id, token_input(apns_credentials)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def test_single_instance(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """One hub serves the household: HA refuses a second before any step.

    Imports into the hub go through its own import (test_import_merge).
    """
    config_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "single_instance_allowed"


@pytest.mark.parametrize("method", [AUTH_TOKEN, AUTH_CERTIFICATE, "webpush"])
async def test_hub_made_in_another_window(
    hass: HomeAssistant, config_entry: MockConfigEntry, method: str
) -> None:
    """A flow opened before the hub was made stops at its next step."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    config_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": method}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


# The hub entry: certificate authentication.


@pytest.mark.parametrize(
    ("topic", "environment"),
    [(None, ENV_SANDBOX), ("com.example.app", ENV_PRODUCTION)],
)
async def test_certificate_creates_entry(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    topic: str | None,
    environment: str,
) -> None:
    flow_id = await start_flow(hass, AUTH_CERTIFICATE)
    user_input = {
        CONF_CERTIFICATE: apns_credentials.cert_pem,
        CONF_ENVIRONMENT: environment,
    }
    if topic is not None:
        user_input[CONF_TOPIC] = topic
    result = await hass.config_entries.flow.async_configure(flow_id, user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # Without a topic, the certificate's UID (the bundle id) is the topic.
    assert result["data"] == {
        CONF_AUTH_METHOD: AUTH_CERTIFICATE,
        CONF_CERTIFICATE: apns_credentials.cert_pem.strip(),
        CONF_TOPIC: apns_credentials.topic,
        CONF_ENVIRONMENT: environment,
        CONF_VAPID_PRIVATE_KEY: ANY,
    }
    [probe] = server.pushes
    assert (probe.auth, probe.topic, probe.environment) == (
        "certificate",
        apns_credentials.topic,
        environment,
    )
    await hass.async_block_till_done()
    [entry] = hass.config_entries.async_entries(DOMAIN)
    assert entry.state is ConfigEntryState.LOADED


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({CONF_CERTIFICATE: None}, {"base": "certificate_required"}),
        (
            {CONF_CERTIFICATE: "not a certificate"},
            {CONF_CERTIFICATE: "invalid_certificate"},
        ),
        ({CONF_CERTIFICATE: "cert_only"}, {CONF_CERTIFICATE: "invalid_certificate"}),
        ({CONF_CERTIFICATE: "wrong_key"}, {CONF_CERTIFICATE: "invalid_certificate"}),
        (
            {CONF_CERTIFICATE: "encrypted"},
            {CONF_CERTIFICATE: "encrypted_certificate_key"},
        ),
        # Refused before any probe: Apple would end the TLS handshake, which
        # looks like no internet connection.
        ({CONF_CERTIFICATE: "expired"}, {CONF_CERTIFICATE: "certificate_expired"}),
        (
            {CONF_CERTIFICATE: "early"},
            {CONF_CERTIFICATE: "certificate_not_yet_valid"},
        ),
        ({CONF_CERTIFICATE: NO_UID_CERT_PEM}, {CONF_TOPIC: "missing_topic"}),
        ({CONF_TOPIC: "not a topic"}, {CONF_TOPIC: "invalid_topic"}),
        ({CONF_TOPIC: OTHER_TOPIC}, {"base": "topic_disallowed"}),
    ],
)
async def test_certificate_errors_then_recovery(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    changes: dict[str, Any],
    errors: dict[str, str],
) -> None:
    certificate = certificate_only(apns_credentials)
    pems = {"cert_only": certificate, "wrong_key": certificate + UNKNOWN_KEY_PEM}
    issue = partial(issue_push_certificate, apns_credentials)
    if (value := changes.get(CONF_CERTIFICATE)) in PEM_CHANGES:
        pems[value] = await hass.async_add_executor_job(
            partial(issue, **PEM_CHANGES[value])
        )
    user_input = {
        CONF_CERTIFICATE: apns_credentials.cert_pem,
        CONF_ENVIRONMENT: ENV_SANDBOX,
        **{key: pems.get(value, value) for key, value in changes.items()},
    }
    flow_id = await start_flow(hass, AUTH_CERTIFICATE)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {key: value for key, value in user_input.items() if value is not None}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert not hass.config_entries.async_entries(DOMAIN)
    if errors.get(CONF_CERTIFICATE):
        assert (server.pushes, server.rejections) == ([], [])

    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {CONF_CERTIFICATE: apns_credentials.cert_pem, CONF_ENVIRONMENT: ENV_SANDBOX},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def test_certificate_in_another_order(
    hass: HomeAssistant, server: ApnsServer, apns_credentials: ApnsTestCredentials
) -> None:
    """Key first, Apple's intermediate before it all: found, and it signs in."""
    pem = await hass.async_add_executor_job(
        partial(
            issue_push_certificate,
            apns_credentials,
            kind="universal",
            key_first=True,
            chain=True,
        )
    )
    flow_id = await start_flow(hass, AUTH_CERTIFICATE)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_CERTIFICATE: pem, CONF_ENVIRONMENT: ENV_PRODUCTION}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    [entry] = hass.config_entries.async_entries(DOMAIN)
    assert entry.state is ConfigEntryState.LOADED
    [probe] = server.pushes
    assert (probe.auth, probe.environment) == ("certificate", ENV_PRODUCTION)


# Reauthentication.


async def test_reauth_token(
    hass: HomeAssistant, server: ApnsServer, apns_credentials: ApnsTestCredentials
) -> None:
    # Set up with a key Apple does not accept (setup itself never asks Apple).
    entry = await setup_entry(
        hass, token_entry_data(apns_credentials) | {CONF_KEY: UNKNOWN_KEY_PEM}
    )
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"

    # The refused key is no default: an empty form asks for a key.
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["errors"] == {"base": "key_required"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_KEY: UNKNOWN_KEY_PEM}
    )
    assert result["errors"] == {"base": "invalid_provider_token"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_KEY: apns_credentials.key_pem, CONF_KEY_ID: "nope"}
    )
    assert result["errors"] == {CONF_KEY_ID: "invalid_key_id"}
    states = record_states(hass, entry)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_KEY: apns_credentials.key_pem}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()

    assert entry.data == token_entry_data(apns_credentials) | {
        CONF_KEY: apns_credentials.key_pem.strip()
    }
    # Reloaded once, to sign with the new key.
    assert states.count(ConfigEntryState.LOADED) == 1
    assert entry.state is ConfigEntryState.LOADED
    await hass.config_entries.async_unload(entry.entry_id)


async def test_reauth_after_failed_setup(
    hass: HomeAssistant, server: ApnsServer, apns_credentials: ApnsTestCredentials
) -> None:
    """A stored key that cannot be read fails setup and asks for a new one."""
    entry = await setup_entry(
        hass, token_entry_data(apns_credentials) | {CONF_KEY: "garbage"}
    )
    assert entry.state in {ConfigEntryState.SETUP_ERROR}
    [flow] = entry.async_get_active_flows(hass, {SOURCE_REAUTH})

    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_KEY: apns_credentials.key_pem}
    )
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    await hass.config_entries.async_unload(entry.entry_id)


async def test_reauth_certificate(
    hass: HomeAssistant, server: ApnsServer, apns_credentials: ApnsTestCredentials
) -> None:
    data = {
        CONF_AUTH_METHOD: AUTH_CERTIFICATE,
        CONF_CERTIFICATE: certificate_only(apns_credentials) + UNKNOWN_KEY_PEM,
        CONF_TOPIC: apns_credentials.topic,
        CONF_ENVIRONMENT: ENV_SANDBOX,
    }
    entry = await setup_entry(hass, data)
    assert entry.state in {ConfigEntryState.SETUP_ERROR}
    [flow] = entry.async_get_active_flows(hass, {SOURCE_REAUTH})

    result = await hass.config_entries.flow.async_configure(flow["flow_id"], {})
    assert result["errors"] == {"base": "certificate_required"}
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_CERTIFICATE: data[CONF_CERTIFICATE]}
    )
    assert result["errors"] == {CONF_CERTIFICATE: "invalid_certificate"}
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_CERTIFICATE: apns_credentials.cert_pem}
    )
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data == data | {CONF_CERTIFICATE: apns_credentials.cert_pem.strip()}
    assert entry.state is ConfigEntryState.LOADED
    await hass.config_entries.async_unload(entry.entry_id)


async def test_refused_push_starts_reauth(
    hass: HomeAssistant, server: ApnsServer, apns_credentials: ApnsTestCredentials
) -> None:
    entry = await setup_entry(
        hass,
        token_entry_data(apns_credentials) | {CONF_KEY: UNKNOWN_KEY_PEM},
        [apns_device("Alice", ALICE_TOKEN)],
    )
    [delivery] = await send(hass, message="Ding dong")
    # Kept for when the new key is in.
    assert (delivery["status"], delivery["reason"]) == (
        "queued",
        "InvalidProviderToken",
    )
    assert server.rejections == [(ALICE_TOKEN, 403, "InvalidProviderToken")]
    [flow] = hass.config_entries.flow.async_progress()
    assert flow["context"]["source"] == SOURCE_REAUTH
    assert flow["context"]["entry_id"] == entry.entry_id
    await hass.config_entries.async_unload(entry.entry_id)


# Reconfiguration.


async def test_reconfigure_keeps_key(
    hass: HomeAssistant,
    server: ApnsServer,
    apns_credentials: ApnsTestCredentials,
    loaded_entry: MockConfigEntry,
) -> None:
    result = await loaded_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    changes = {CONF_TOPIC: OTHER_TOPIC, CONF_ENVIRONMENT: ENV_SANDBOX}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOPIC: "not a topic", CONF_ENVIRONMENT: ENV_SANDBOX}
    )
    assert result["errors"] == {CONF_TOPIC: "invalid_topic"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], changes)
    assert result["errors"] == {"base": "topic_disallowed"}
    # What the user typed stays in the form.
    assert suggested(result, CONF_TOPIC) == OTHER_TOPIC

    server.topics.add(OTHER_TOPIC)
    states = record_states(hass, loaded_entry)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], changes | {CONF_KEY: ""}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert loaded_entry.data == token_entry_data(apns_credentials) | changes | {
        CONF_KEY: apns_credentials.key_pem.strip()
    }
    assert states.count(ConfigEntryState.LOADED) == 1
    assert [(p.topic, p.environment) for p in server.pushes] == [
        (OTHER_TOPIC, ENV_SANDBOX)
    ]
    # The devices are still there.
    assert len(loaded_entry.subentries) == 2


async def test_reconfigure_changes_key(
    hass: HomeAssistant, server: ApnsServer, apns_credentials: ApnsTestCredentials
) -> None:
    entry = await setup_entry(
        hass, token_entry_data(apns_credentials) | {CONF_KEY: UNKNOWN_KEY_PEM}
    )
    result = await entry.start_reconfigure_flow(hass)
    same = {CONF_TOPIC: apns_credentials.topic, CONF_ENVIRONMENT: ENV_PRODUCTION}

    # Keeping the stored key proves it against Apple again.
    result = await hass.config_entries.flow.async_configure(result["flow_id"], same)
    assert result["errors"] == {"base": "invalid_provider_token"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], same | {CONF_KEY: RSA_KEY_PEM}
    )
    assert result["errors"] == {CONF_KEY: "invalid_key_type"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], same | {CONF_KEY: apns_credentials.key_pem}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_KEY] == apns_credentials.key_pem.strip()
    assert entry.state is ConfigEntryState.LOADED
    await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigure_certificate(
    hass: HomeAssistant, server: ApnsServer, apns_credentials: ApnsTestCredentials
) -> None:
    data = {
        CONF_AUTH_METHOD: AUTH_CERTIFICATE,
        CONF_CERTIFICATE: apns_credentials.cert_pem.strip(),
        CONF_TOPIC: apns_credentials.topic,
        CONF_ENVIRONMENT: ENV_SANDBOX,
    }
    entry = await setup_entry(hass, data)
    result = await entry.start_reconfigure_flow(hass)
    same = {CONF_TOPIC: apns_credentials.topic, CONF_ENVIRONMENT: ENV_PRODUCTION}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], same | {CONF_TOPIC: "not a topic"}
    )
    assert result["errors"] == {CONF_TOPIC: "invalid_topic"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], same | {CONF_CERTIFICATE: certificate_only(apns_credentials)}
    )
    assert result["errors"] == {CONF_CERTIFICATE: "invalid_certificate"}
    # An empty certificate field keeps the stored certificate.
    result = await hass.config_entries.flow.async_configure(result["flow_id"], same)
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data == data | {CONF_ENVIRONMENT: ENV_PRODUCTION}
    await hass.config_entries.async_unload(entry.entry_id)


# Devices (subentries).


async def add_device(
    hass: HomeAssistant, entry: MockConfigEntry, user_input: dict[str, Any]
) -> dict[str, Any]:
    """Run the add-device flow with this input; return the result."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_APNS), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return dict(
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], user_input
        )
    )


def device_input(name: str, token: str, **extra: Any) -> dict[str, Any]:
    """Return the device form as a user fills it in."""
    return {
        CONF_NAME: name,
        CONF_TOKEN: token,
        CONF_ADMIN: False,
        CONF_ENVIRONMENT: ENV_PRODUCTION,
        **extra,
    }


async def test_add_device(
    hass: HomeAssistant,
    server: ApnsServer,
    loaded_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # Pasted as an app may show it: upper case, surrounding spaces.
    result = await add_device(
        hass, loaded_entry, device_input(" Carol ", f" {CAROL_TOKEN.upper()} ")
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Carol"
    assert result["data"] == device_input("Carol", CAROL_TOKEN)
    await hass.async_block_till_done()

    [carol] = [s for s in loaded_entry.subentries.values() if s.title == "Carol"]
    device = ha_device(hass, loaded_entry, carol.subentry_id)
    assert device is not None
    assert device.name == "Carol"
    entity_id = er.async_get(hass).async_get_entity_id(
        Platform.NOTIFY,
        DOMAIN,
        entity_unique_id(loaded_entry.entry_id, carol.subentry_id),
    )
    assert entity_id is not None
    assert hass.states.get(entity_id) is not None

    await hass.services.async_call(
        Platform.NOTIFY,
        "send_message",
        {"entity_id": entity_id, "message": "Hello"},
        blocking=True,
    )
    [push] = server.pushes
    assert push.token == CAROL_TOKEN
    assert CAROL_TOKEN not in integration_log(caplog)


async def test_add_device_with_automatic_environment(
    hass: HomeAssistant, server: ApnsServer, loaded_entry: MockConfigEntry
) -> None:
    """Offered next to production and sandbox; the hub's default stays preselected."""
    result = await hass.config_entries.subentries.async_init(
        (loaded_entry.entry_id, SUBENTRY_APNS), context={"source": SOURCE_USER}
    )
    assert result["data_schema"] is not None
    schema = result["data_schema"].schema
    [field] = [key for key in schema if key == CONF_ENVIRONMENT]
    assert field.default() == ENV_PRODUCTION
    assert schema[field].config["options"] == [ENV_AUTO, ENV_PRODUCTION, ENV_SANDBOX]

    server.register(CAROL_TOKEN, ENV_SANDBOX)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        device_input("Carol", CAROL_TOKEN, **{CONF_ENVIRONMENT: ENV_AUTO}),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    [delivery] = await send(hass, message="Hi", target="Carol")
    assert delivery["status"] == "delivered"
    assert [push.environment for push in server.pushes] == [ENV_SANDBOX]


@pytest.mark.parametrize(
    "token",
    [
        "a1" * 31 + "a",  # odd length
        "zz" * 32,  # not hexadecimal
        "a1" * 31,  # 62 digits: too short
        "a1" * 101,  # 202 digits: too long
        "a1" * 16 + ":" + "a1" * 16,
    ],
)
async def test_add_device_invalid_token(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, token: str
) -> None:
    result = await add_device(hass, loaded_entry, device_input("Carol", token))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TOKEN: "invalid_device_token"}
    assert len(loaded_entry.subentries) == 2


@pytest.mark.parametrize("length", [64, 100, 160, 200])
async def test_add_device_token_lengths(
    hass: HomeAssistant, server: ApnsServer, loaded_entry: MockConfigEntry, length: int
) -> None:
    """Apple says tokens vary in length: any even count from 64 to 200 is taken."""
    token = ("0123456789abcdef" * 13)[:length]
    result = await add_device(hass, loaded_entry, device_input("Carol", token))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    [delivery] = await send(hass, message="Hi", target="Carol")
    assert delivery["status"] == "delivered"
    assert [push.token for push in server.pushes] == [token]


@pytest.mark.parametrize(
    ("user_input", "errors"),
    [
        (
            device_input("Carol", ALICE_TOKEN.upper()),
            {CONF_TOKEN: "device_token_in_use"},
        ),
        (device_input("aLiCe", CAROL_TOKEN), {CONF_NAME: "name_in_use"}),
        (
            device_input("bob", BOB_TOKEN),
            {CONF_NAME: "name_in_use", CONF_TOKEN: "device_token_in_use"},
        ),
        (
            device_input("Carol", CAROL_TOKEN, topic="not a topic"),
            {CONF_TOPIC: "invalid_topic"},
        ),
    ],
)
async def test_add_device_errors_then_recovery(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    user_input: dict[str, Any],
    errors: dict[str, str],
) -> None:
    result = await add_device(hass, loaded_entry, user_input)
    assert result["errors"] == errors
    assert len(loaded_entry.subentries) == 2

    result = dict(
        await hass.config_entries.subentries.async_configure(
            result["flow_id"],
            device_input("Carol", CAROL_TOKEN, topic="com.example.app.widget"),
        )
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_TOPIC] == "com.example.app.widget"
    await hass.async_block_till_done()
    assert len(loaded_entry.subentries) == 3


async def test_reconfigure_device_clears_inactive_issue(
    hass: HomeAssistant, server: ApnsServer, loaded_entry: MockConfigEntry
) -> None:
    bob_id = next(
        s.subentry_id for s in loaded_entry.subentries.values() if s.title == "Bob"
    )
    server.script(BOB_TOKEN, 410, "Unregistered")
    [delivery] = await send(hass, message="Hi", target="Bob")
    assert delivery["reason"] == "Unregistered"
    issues = ir.async_get(hass)
    assert issues.async_get_issue(DOMAIN, inactive_issue_id(bob_id)) is not None

    result = await loaded_entry.start_subentry_reconfigure_flow(hass, bob_id)
    assert result["step_id"] == "reconfigure"
    # The form shows the device as it is.
    assert suggested(result, CONF_TOKEN) == BOB_TOKEN
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], device_input("ALICE", ALICE_TOKEN)
    )
    assert result["errors"] == {
        CONF_NAME: "name_in_use",
        CONF_TOKEN: "device_token_in_use",
    }
    new_token = "b3" * 32
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], device_input("Bobby", new_token, admin=True)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()

    bob = loaded_entry.subentries[bob_id]
    assert bob.title == "Bobby"
    assert bob.data == device_input("Bobby", new_token, admin=True)
    assert issues.async_get_issue(DOMAIN, inactive_issue_id(bob_id)) is None
    device = ha_device(hass, loaded_entry, bob_id)
    assert device is not None
    assert device.name == "Bobby"
    [delivery] = await send(hass, message="Hi", target="Bobby")
    assert delivery["status"] == "delivered"
    assert [push.token for push in server.pushes] == [new_token]


async def test_reconfigure_device_keeps_own_name(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    bob_id = next(
        s.subentry_id for s in loaded_entry.subentries.values() if s.title == "Bob"
    )
    result = await loaded_entry.start_subentry_reconfigure_flow(hass, bob_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], device_input("BOB", BOB_TOKEN, environment=ENV_SANDBOX)
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert loaded_entry.subentries[bob_id].data[CONF_ENVIRONMENT] == ENV_SANDBOX


async def test_remove_device(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    bob_id = next(
        s.subentry_id for s in loaded_entry.subentries.values() if s.title == "Bob"
    )
    entities = er.async_get(hass)
    unique_id = entity_unique_id(loaded_entry.entry_id, bob_id)
    entity_id = entities.async_get_entity_id(Platform.NOTIFY, DOMAIN, unique_id)
    assert entity_id is not None
    assert ha_device(hass, loaded_entry, bob_id) is not None

    assert hass.config_entries.async_remove_subentry(loaded_entry, bob_id)
    await hass.async_block_till_done()

    assert ha_device(hass, loaded_entry, bob_id) is None
    assert entities.async_get_entity_id(Platform.NOTIFY, DOMAIN, unique_id) is None
    assert hass.states.get(entity_id) is None
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert list(loaded_entry.runtime_data.devices) == [
        s.subentry_id for s in loaded_entry.subentries.values()
    ]


# Options.


async def test_options_reach_the_push(
    hass: HomeAssistant, server: ApnsServer, loaded_entry: MockConfigEntry
) -> None:
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    options = {
        CONF_SOUND: "chime.caf",
        CONF_INTERRUPTION_LEVEL: "time-sensitive",
        CONF_TITLE_FROM_DEVICE: True,
    }
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], options
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    # An unreachable device gets its repair after three days, unless set
    # otherwise; left alone, the network option stays off, leases last 30 days,
    # and there is no reporter group.
    assert loaded_entry.options == options | {
        CONF_UNREACHABLE_DAYS: 3,
        CONF_ALLOW_LOCAL_PUSH_SERVICES: False,
        CONF_LEASE_DAYS: 30,
        "reporter": {"rank": 10, "missing_minutes": 3},
    }

    [delivery] = await send(hass, message="Ding dong", target="Alice")
    assert delivery["status"] == "delivered"
    [push] = server.pushes
    assert push.payload["aps"] == {
        "alert": {"title": "Alice", "body": "Ding dong"},
        "sound": "chime.caf",
        "interruption-level": "time-sensitive",
    }

    # The form shows the saved options next time.
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert suggested(result, CONF_SOUND) == "chime.caf"
    hass.config_entries.options.async_abort(result["flow_id"])


async def test_options_cleared_sound_is_silent(
    hass: HomeAssistant, server: ApnsServer, loaded_entry: MockConfigEntry
) -> None:
    # A new form suggests the standard sound that pushes use without options.
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert suggested(result, CONF_SOUND) == "default"
    # The frontend leaves a cleared text field out of what it submits.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TITLE_FROM_DEVICE: False}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert loaded_entry.options[CONF_SOUND] == ""
    await send(hass, message="Shh", target="Alice")
    [push] = server.pushes
    assert push.payload["aps"] == {"alert": {"body": "Shh"}}


@pytest.mark.parametrize("name", ["admin", "All", " ALL ", "Admins", "everyone"])
async def test_device_name_cannot_be_a_routing_word(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, name: str
) -> None:
    result = await hass.config_entries.subentries.async_init(
        (loaded_entry.entry_id, SUBENTRY_APNS), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], device_input(name, CAROL_TOKEN)
    )
    assert result["errors"] == {CONF_NAME: "reserved_name"}
