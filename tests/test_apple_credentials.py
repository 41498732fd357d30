"""Apple's rules for keys, certificates, IDs, topics and device tokens: pure logic."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
import re
import ssl
import tempfile

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
import pytest

from custom_components.direct_push.apple_credentials import (
    CERT_DEVELOPMENT,
    CERT_PRODUCTION,
    CERT_UNIVERSAL,
    AppleCredentialError,
    CertificateExpiredError,
    CertificateNotYetValidError,
    EncryptedCertificateKeyError,
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
    read_push_certificate,
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
    ENV_PRODUCTION,
    ENV_SANDBOX,
)

from .apns_server import ApnsTestCredentials, issue_push_certificate, make_credentials


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


@pytest.mark.parametrize(
    ("kind", "common_name", "expected", "environments"),
    [
        # Apple's extensions decide, whatever the subject says.
        ("development", None, CERT_DEVELOPMENT, (ENV_SANDBOX,)),
        ("production", None, CERT_PRODUCTION, (ENV_PRODUCTION,)),
        ("universal", None, CERT_UNIVERSAL, (ENV_PRODUCTION, ENV_SANDBOX)),
        ("universal", "Push", CERT_UNIVERSAL, (ENV_PRODUCTION, ENV_SANDBOX)),
        # Without them, the subject.
        (None, "Apple Development IOS Push Services: x", CERT_DEVELOPMENT, None),
        (None, "Apple Sandbox Push Services: x", CERT_DEVELOPMENT, None),
        (None, "Apple Push Services: x", CERT_UNIVERSAL, None),
        (None, "Apple Production IOS Push Services: x", CERT_PRODUCTION, None),
        # Unknown: production, where dmt-system always sent.
        (None, "Example", CERT_PRODUCTION, None),
    ],
)
def test_push_certificate_kind(
    credentials: ApnsTestCredentials,
    kind: str | None,
    common_name: str | None,
    expected: str,
    environments: tuple[str, ...] | None,
) -> None:
    pem = issue_push_certificate(credentials, kind=kind, common_name=common_name)
    certificate = read_push_certificate(pem)
    assert certificate.kind == expected
    assert certificate.environments == (
        environments
        or {
            CERT_DEVELOPMENT: (ENV_SANDBOX,),
            CERT_PRODUCTION: (ENV_PRODUCTION,),
            CERT_UNIVERSAL: (ENV_PRODUCTION, ENV_SANDBOX),
        }[expected]
    )
    assert (
        certificate_environment(certificate.certificate)
        == (certificate.environments[0])
    )
    assert certificate.topic == credentials.topic


@pytest.mark.parametrize(
    ("key_first", "chain"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_push_certificate_in_any_order(
    credentials: ApnsTestCredentials, key_first: bool, chain: bool
) -> None:
    """The key before the certificate, Apple's intermediate first: all fine.

    The certificate is stored with its key right after it, as OpenSSL loads it.
    """
    pem = issue_push_certificate(
        credentials, kind="universal", key_first=key_first, chain=chain
    )
    # openssl pkcs12 writes "Bag Attributes" before each block.
    pem = "Bag Attributes\n    friendlyName: Apple Push Services\n" + pem
    certificate = read_push_certificate(pem)
    assert certificate.topic == credentials.topic
    blocks = re.findall(r"-----BEGIN ([A-Z ]+)-----", certificate.pem)
    assert blocks == ["CERTIFICATE", "PRIVATE KEY"] + ["CERTIFICATE"] * chain
    again = read_push_certificate(certificate.pem)
    assert again.pem == certificate.pem
    assert again.certificate == certificate.certificate
    # OpenSSL takes the first certificate and the key from the file.
    context = ssl.create_default_context()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "push.pem"
        path.write_text(certificate.pem)
        context.load_cert_chain(path)


def test_push_certificate_among_other_blocks(credentials: ApnsTestCredentials) -> None:
    """Broken and unrelated PEM blocks around it are passed over."""
    broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    parameters = (
        "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
    )
    certificate = read_push_certificate(broken + parameters + credentials.cert_pem)
    assert certificate.topic == credentials.topic
    assert certificate.pem == credentials.cert_pem


def test_push_certificate_with_encrypted_key(credentials: ApnsTestCredentials) -> None:
    """Exported without -nodes: its own error, which says what to do."""
    pem = issue_push_certificate(credentials, password=b"secret")
    assert "ENCRYPTED PRIVATE KEY" in pem
    with pytest.raises(EncryptedCertificateKeyError) as err:
        read_push_certificate(pem)
    assert (err.value.key, err.value.field) == (
        "encrypted_certificate_key",
        CONF_CERTIFICATE,
    )
    assert isinstance(err.value, InvalidCertificateError)


@pytest.mark.parametrize(
    ("not_before", "not_after", "error"),
    [
        (datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC), "expired"),
        (datetime(2090, 1, 1, tzinfo=UTC), datetime(2091, 1, 1, tzinfo=UTC), "early"),
        (datetime(2020, 1, 1, tzinfo=UTC), datetime(2090, 1, 1, tzinfo=UTC), None),
    ],
)
def test_push_certificate_dates(
    credentials: ApnsTestCredentials,
    not_before: datetime,
    not_after: datetime,
    error: str | None,
) -> None:
    certificate = read_push_certificate(
        issue_push_certificate(credentials, not_before=not_before, not_after=not_after)
    )
    assert (certificate.valid_from, certificate.valid_until) == (not_before, not_after)
    if error is None:
        certificate.check_dates()
        return
    expected = {
        "expired": CertificateExpiredError,
        "early": CertificateNotYetValidError,
    }[error]
    with pytest.raises(expected) as err:
        certificate.check_dates()
    assert err.value.field == CONF_CERTIFICATE
    # Valid from its first second to its last.
    certificate.check_dates(not_after)
    certificate.check_dates(not_before)


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
        EncryptedCertificateKeyError,
        CertificateExpiredError,
        CertificateNotYetValidError,
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
