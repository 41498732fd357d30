"""Apple's rules for push credentials and device tokens. Plain Python: no Home Assistant.

The config flow, the importer and the APNs backend all check a signing key,
a push certificate, IDs, topics and device tokens here, so each rule is
written once. Each broken rule raises its own AppleCredentialError: one class
per rule, carrying the translation key and the form field it belongs to.
Parsing keys and certificates is CPU work: call those from the executor.
Nothing raised here quotes key material or a device token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
import re
from typing import ClassVar, Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from cryptography.x509.oid import NameOID, ObjectIdentifier

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
_PEM_BLOCK_RE: Final = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL
)
# The extensions Apple's push certificates carry (Apple's WWDR certification
# practice statement): development (sandbox), production, and the topics of
# a universal "Apple Push Services" certificate, which works in both.
_OID_PUSH_DEVELOPMENT: Final = ObjectIdentifier("1.2.840.113635.100.6.3.1")
_OID_PUSH_PRODUCTION: Final = ObjectIdentifier("1.2.840.113635.100.6.3.2")
_OID_PUSH_TOPICS: Final = ObjectIdentifier("1.2.840.113635.100.6.3.6")
CERT_DEVELOPMENT: Final = "development"
CERT_PRODUCTION: Final = "production"
CERT_UNIVERSAL: Final = "universal"
# Where each kind of certificate may push, the one to try first first.
_CERT_ENVIRONMENTS: Final = {
    CERT_DEVELOPMENT: (ENV_SANDBOX,),
    CERT_PRODUCTION: (ENV_PRODUCTION,),
    CERT_UNIVERSAL: (ENV_PRODUCTION, ENV_SANDBOX),
}


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


class EncryptedCertificateKeyError(InvalidCertificateError):
    """The certificate's private key is protected with a password."""

    key = "encrypted_certificate_key"


class CertificateExpiredError(InvalidCertificateError):
    """The push certificate has expired: Apple refuses the connection."""

    key = "certificate_expired"


class CertificateNotYetValidError(InvalidCertificateError):
    """The push certificate is not valid yet: Apple refuses the connection."""

    key = "certificate_not_yet_valid"


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


@dataclass(frozen=True, slots=True)
class PushCertificate:
    """A push certificate with its own private key, as found in a .pem."""

    certificate: x509.Certificate
    pem: str = field(repr=False)
    """The certificate, its key, then any other certificates: the order OpenSSL loads."""

    @property
    def kind(self) -> str:
        """Return CERT_DEVELOPMENT, CERT_PRODUCTION or CERT_UNIVERSAL."""
        return certificate_kind(self.certificate)

    @property
    def environments(self) -> tuple[str, ...]:
        """Return the environments Apple accepts this certificate in, preferred first."""
        return _CERT_ENVIRONMENTS[self.kind]

    @property
    def topic(self) -> str | None:
        """Return the topic (bundle id) the certificate names, if any."""
        return certificate_topic(self.certificate)

    @property
    def valid_from(self) -> datetime:
        """Return the start of the certificate's validity, in UTC."""
        return self.certificate.not_valid_before_utc

    @property
    def valid_until(self) -> datetime:
        """Return the end of the certificate's validity, in UTC."""
        return self.certificate.not_valid_after_utc

    def check_dates(self, now: datetime | None = None) -> None:
        """Raise if the certificate has expired or is not valid yet."""
        now = now or datetime.now(UTC)
        if now > self.valid_until:
            raise CertificateExpiredError
        if now < self.valid_from:
            raise CertificateNotYetValidError


def read_push_certificate(pem: str) -> PushCertificate:
    """Find the push certificate and its private key in a .pem, in any order.

    `openssl pkcs12 -nodes` writes the key before or after the certificate, and
    may add Apple's intermediate certificate: the push certificate is the one
    whose public key matches the private key. Blocking (CPU).
    """
    certificates: list[tuple[x509.Certificate, str]] = []
    keys: list[tuple[bytes, str]] = []
    encrypted = False
    for match in _PEM_BLOCK_RE.finditer(pem):
        label, block = match[1], match[0]
        try:
            if label in ("CERTIFICATE", "TRUSTED CERTIFICATE"):
                cert = x509.load_pem_x509_certificate(block.encode())
                certificates.append((cert, block))
            elif label.endswith("PRIVATE KEY"):
                key = load_pem_private_key(block.encode(), password=None)
                keys.append((key.public_key().public_bytes(*_SPKI), block))
        except TypeError:  # the key needs a password
            encrypted = True
        except ValueError:
            continue
    by_public_key = {
        cert.public_key().public_bytes(*_SPKI): (cert, block)
        for cert, block in certificates
    }
    for public_key, key_block in keys:
        if (found := by_public_key.get(public_key)) is not None:
            cert, block = found
            others = [other for _, other in certificates if other is not block]
            return PushCertificate(cert, "\n".join([block, key_block, *others]) + "\n")
    if encrypted:
        raise EncryptedCertificateKeyError
    raise InvalidCertificateError


def load_push_certificate(pem: str) -> x509.Certificate:
    """Check a push certificate PEM holds a certificate and its own key. Blocking."""
    return read_push_certificate(pem).certificate


def certificate_topic(cert: x509.Certificate) -> str | None:
    """Return the topic (bundle id) a push certificate names in its UID, if any."""
    uids = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    return str(uids[0].value) if uids else None


def push_certificate_topic(pem: str) -> str | None:
    """Check a push certificate PEM; return the topic it names, if any. Blocking."""
    return certificate_topic(load_push_certificate(pem))


def certificate_kind(cert: x509.Certificate) -> str:
    """Tell a development, production or universal push certificate apart.

    Apple marks them with extensions: development 1.2.840.113635.100.6.3.1;
    production 1.2.840.113635.100.6.3.2, with the topics extension .6.3.6 on
    universal ("Sandbox & Production") ones. Without them, the subject names
    the kind: "Apple Development IOS Push Services: <bundle>",
    "Apple Production IOS Push Services: …" or "Apple Push Services: …".
    """
    oids = {extension.oid for extension in cert.extensions}
    if _OID_PUSH_PRODUCTION in oids:
        if oids & {_OID_PUSH_DEVELOPMENT, _OID_PUSH_TOPICS}:
            return CERT_UNIVERSAL
        return CERT_PRODUCTION
    if _OID_PUSH_DEVELOPMENT in oids:
        return CERT_DEVELOPMENT
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(names[0].value) if names else ""
    if "Development" in name or "Sandbox" in name:
        return CERT_DEVELOPMENT
    if name.startswith("Apple Push Services"):
        return CERT_UNIVERSAL
    # Older production certificates, and unknown ones: dmt-system pushed to production.
    return CERT_PRODUCTION


def certificate_environment(cert: x509.Certificate) -> str:
    """Return the environment a push certificate works in (its first, if both)."""
    return _CERT_ENVIRONMENTS[certificate_kind(cert)][0]


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
