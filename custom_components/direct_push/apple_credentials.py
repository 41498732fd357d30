"""Apple's rules for push credentials and device tokens. Plain Python: no Home Assistant.

The config flow, the importer and the APNs backend all check a signing key,
a push certificate, IDs, topics and device tokens here, so each rule is
written once. Each broken rule raises its own AppleCredentialError: one class
per rule, carrying the translation key and the form field it belongs to.
Parsing keys and certificates is CPU work: call those from the executor.
Nothing raised here quotes key material or a device token.
"""

from __future__ import annotations

import re
from typing import ClassVar, Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from cryptography.x509.oid import NameOID

from .backend import CredentialError
from .const import (
    CONF_CERTIFICATE,
    CONF_KEY,
    CONF_KEY_ID,
    CONF_TEAM_ID,
    CONF_TOKEN,
    CONF_TOPIC,
    ENV_PRODUCTION,
    ENV_SANDBOX,
)

# Matched whole (fullmatch): `$` would let a trailing line break through,
# into the apns-topic header or the provider token.
# Key and team IDs as Apple's developer portal shows them.
APPLE_ID_RE: Final = re.compile(r"[A-Z0-9]{10}")
# A bundle ID, such as com.example.notify.
TOPIC_RE: Final = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
DEVICE_TOKEN_RE: Final = re.compile(r"[0-9a-f]+")
DEVICE_TOKEN_LENGTH: Final = range(64, 201)
# Xcode prints tokens as `<abcd ef01 ...>`; people paste them with spaces.
_TOKEN_JUNK_RE: Final = re.compile(r"[\s<>]+")
_SPKI: Final = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


class AppleCredentialError(CredentialError):
    """Something Apple would refuse. `key` is the translation key, `field` the form field."""

    key: str = "apns_error"
    field: ClassVar[str] = "base"

    def __init__(self, key: str | None = None) -> None:
        """Use the class's translation key, or the one given (Apple's refusals)."""
        super().__init__(key or self.key)


class InvalidSigningKeyError(AppleCredentialError):
    """Not a PEM private key."""

    key = "invalid_key"
    field = CONF_KEY


class SigningKeyTypeError(AppleCredentialError):
    """A private key, but not the EC P-256 key Apple issues."""

    key = "invalid_key_type"
    field = CONF_KEY


class InvalidCertificateError(AppleCredentialError):
    """Not a push certificate together with its own private key."""

    key = "invalid_certificate"
    field = CONF_CERTIFICATE


class InvalidKeyIdError(AppleCredentialError):
    """A key ID is 10 letters and digits."""

    key = "invalid_key_id"
    field = CONF_KEY_ID


class InvalidTeamIdError(AppleCredentialError):
    """A team ID is 10 letters and digits."""

    key = "invalid_team_id"
    field = CONF_TEAM_ID


class InvalidTopicError(AppleCredentialError):
    """A topic is an app's bundle ID."""

    key = "invalid_topic"
    field = CONF_TOPIC


class InvalidDeviceTokenError(AppleCredentialError):
    """A device token is an even number of hex digits, 64 to 200 of them."""

    key = "invalid_device_token"
    field = CONF_TOKEN


def normalise_pem(text: str) -> str:
    """Drop a byte order mark and Windows line ends, end with one newline."""
    return text.lstrip("\ufeff").replace("\r\n", "\n").strip() + "\n"


def load_signing_key(pem: str) -> ec.EllipticCurvePrivateKey:
    """Parse an Apple .p8 key: an EC P-256 private key in PEM. Blocking (CPU)."""
    if "-----BEGIN" not in pem:
        raise InvalidSigningKeyError
    try:
        key = load_pem_private_key(pem.strip().encode(), password=None)
    except (ValueError, TypeError):
        # Never chain: the parser's message could quote the key.
        raise InvalidSigningKeyError from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
        key.curve, ec.SECP256R1
    ):
        raise SigningKeyTypeError
    return key


def load_push_certificate(pem: str) -> x509.Certificate:
    """Check a push certificate PEM holds a certificate and its own key. Blocking."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise InvalidCertificateError from None
    if cert.public_key().public_bytes(*_SPKI) != key.public_key().public_bytes(*_SPKI):
        raise InvalidCertificateError
    return cert


def certificate_topic(cert: x509.Certificate) -> str | None:
    """Return the topic (bundle id) a push certificate names in its UID, if any."""
    uids = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    return str(uids[0].value) if uids else None


def push_certificate_topic(pem: str) -> str | None:
    """Check a push certificate PEM; return the topic it names, if any. Blocking."""
    return certificate_topic(load_push_certificate(pem))


def certificate_environment(cert: x509.Certificate) -> str:
    """Return the one environment a push certificate works in.

    Apple names development certificates "Apple Development IOS Push Services: …".
    """
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if names and "Development" in str(names[0].value):
        return ENV_SANDBOX
    return ENV_PRODUCTION


def check_key_id(value: str) -> str:
    """Return a key ID: 10 letters and digits."""
    if not APPLE_ID_RE.fullmatch(value):
        raise InvalidKeyIdError
    return value


def check_team_id(value: str) -> str:
    """Return a team ID: 10 letters and digits."""
    if not APPLE_ID_RE.fullmatch(value):
        raise InvalidTeamIdError
    return value


def check_topic(value: str) -> str:
    """Return a topic: an app's bundle ID."""
    if not TOPIC_RE.fullmatch(value):
        raise InvalidTopicError
    return value


def clean_device_token(value: str) -> str:
    """Lowercase a token and drop the spaces and `<>` Xcode prints around it."""
    return _TOKEN_JUNK_RE.sub("", value).lower()


def valid_device_token(token: str) -> bool:
    """Return True for a lowercase hex APNs device token of a plausible length."""
    return (
        bool(DEVICE_TOKEN_RE.fullmatch(token))
        and len(token) % 2 == 0
        and len(token) in DEVICE_TOKEN_LENGTH
    )


def check_device_token(value: str) -> str:
    """Return a pasted device token cleaned, as stored and sent."""
    if not valid_device_token(token := value.strip().lower()):
        raise InvalidDeviceTokenError
    return token
