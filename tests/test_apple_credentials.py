"""Apple's rules for keys, certificates, IDs, topics and device tokens: pure logic."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
import pytest

from custom_components.direct_push.apple_credentials import (
    AppleCredentialError,
    InvalidCertificateError,
    InvalidDeviceTokenError,
    InvalidKeyIdError,
    InvalidSigningKeyError,
    InvalidTeamIdError,
    InvalidTopicError,
    SigningKeyTypeError,
    certificate_environment,
    check_device_token,
    check_key_id,
    check_team_id,
    check_topic,
    clean_device_token,
    load_push_certificate,
    load_signing_key,
    push_certificate_topic,
    valid_device_token,
)
from custom_components.direct_push.backend import CredentialError
from custom_components.direct_push.const import (
    CONF_CERTIFICATE,
    CONF_KEY,
    CONF_KEY_ID,
    CONF_TEAM_ID,
    CONF_TOKEN,
    CONF_TOPIC,
    ENV_SANDBOX,
)

from .apns_server import ApnsTestCredentials, make_credentials


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Plain Python: skip conftest's hass fixture."""


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> ApnsTestCredentials:
    """A .p8 key and a development push certificate, made once."""
    return make_credentials(Path(tmp_path_factory.mktemp("apple")))


def _pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> str:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


@pytest.mark.parametrize(
    ("pem", "error"),
    [
        ("not a key", InvalidSigningKeyError),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            InvalidSigningKeyError,
        ),
        (_pem(ed25519.Ed25519PrivateKey.generate()), SigningKeyTypeError),
        (_pem(ec.generate_private_key(ec.SECP384R1())), SigningKeyTypeError),
    ],
)
def test_signing_key_refused(pem: str, error: type[AppleCredentialError]) -> None:
    with pytest.raises(error) as err:
        load_signing_key(pem)
    assert err.value.field == CONF_KEY
    assert err.value.key in ("invalid_key", "invalid_key_type")
    # The parser's own message could quote the key: it is never chained.
    assert err.value.__cause__ is None
    assert "AAAA" not in str(err.value)


def test_signing_key(credentials: ApnsTestCredentials) -> None:
    # Apple's .p8 files come with surrounding whitespace.
    key = load_signing_key(f"\n{credentials.key_pem}\n")
    assert isinstance(key.curve, ec.SECP256R1)


def test_push_certificate(credentials: ApnsTestCredentials) -> None:
    cert = load_push_certificate(credentials.cert_pem)
    assert push_certificate_topic(credentials.cert_pem) == credentials.topic
    # make_credentials issues a development certificate, as Xcode builds use.
    assert certificate_environment(cert) == ENV_SANDBOX


@pytest.mark.parametrize("mistake", ["garbage", "no key", "another key"])
def test_push_certificate_refused(
    credentials: ApnsTestCredentials, mistake: str
) -> None:
    certificate = credentials.cert_pem.partition("-----BEGIN PRIVATE KEY")[0]
    pem = {
        "garbage": "garbage",
        "no key": certificate,
        "another key": certificate + _pem(ec.generate_private_key(ec.SECP256R1())),
    }[mistake]
    with pytest.raises(InvalidCertificateError) as err:
        load_push_certificate(pem)
    assert (err.value.key, err.value.field) == ("invalid_certificate", CONF_CERTIFICATE)


@pytest.mark.parametrize(
    ("check", "good", "bad", "error"),
    [
        (check_key_id, "ABC123DEFG", "abc123defg", InvalidKeyIdError),
        (check_key_id, "ABC123DEFG", "ABC123DEF", InvalidKeyIdError),
        (check_team_id, "DEF123GHIJ", "DEF123GHIJK", InvalidTeamIdError),
        (check_topic, "com.example.app", "app", InvalidTopicError),
        (check_topic, "com.exa-mple.app2", "com.example.", InvalidTopicError),
    ],
)
def test_ids_and_topics(
    check: Callable[[str], str],
    good: str,
    bad: str,
    error: type[AppleCredentialError],
) -> None:
    assert check(good) == good
    with pytest.raises(error):
        check(bad)


@pytest.mark.parametrize(
    ("text", "token"),
    [
        (" " + "AB" * 32 + "\n", "ab" * 32),
        ("a1" * 100, "a1" * 100),
    ],
)
def test_device_token(text: str, token: str) -> None:
    assert check_device_token(text) == token


@pytest.mark.parametrize(
    "text", ["a1" * 31, "a1" * 101, "a" * 65, "g1" * 32, "<" + "a1" * 32 + ">"]
)
def test_device_token_refused(text: str) -> None:
    assert not valid_device_token(text)
    with pytest.raises(InvalidDeviceTokenError) as err:
        check_device_token(text)
    assert (err.value.key, err.value.field) == ("invalid_device_token", CONF_TOKEN)
    # No token in the error, for logs and tracebacks.
    assert text.strip() not in str(err.value)


def test_clean_device_token() -> None:
    # As Xcode prints it.
    assert clean_device_token("<A1A1 a1a1\n" + "a1" * 28 + ">") == "a1" * 32


def test_one_error_base() -> None:
    """Every rule's error is an AppleCredentialError, which setup maps to reauth."""
    for error in (
        InvalidSigningKeyError,
        SigningKeyTypeError,
        InvalidCertificateError,
        InvalidKeyIdError,
        InvalidTeamIdError,
        InvalidTopicError,
        InvalidDeviceTokenError,
    ):
        assert issubclass(error, AppleCredentialError)
        assert issubclass(error, CredentialError)
    assert {InvalidKeyIdError.field, InvalidTeamIdError.field} == {
        CONF_KEY_ID,
        CONF_TEAM_ID,
    }
    assert InvalidTopicError.field == CONF_TOPIC
    # Apple's own refusals carry their key and belong to no single field.
    refusal = AppleCredentialError("topic_disallowed")
    assert (refusal.key, refusal.field) == ("topic_disallowed", "base")
