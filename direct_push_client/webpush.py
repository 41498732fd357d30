"""The device side of Web Push: a key pair, decryption (RFC 8291) and VAPID (RFC 8292).

Home Assistant encrypts every push to the device's public key and auth secret,
and signs the request with the hub's VAPID key. A device that is its own push
endpoint does both checks a push service and an app would do.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
import json
import os
import struct
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


class PushError(ValueError):
    """A push that is not for us: bad signature, wrong key, or not decryptable."""


def b64url(data: bytes) -> str:
    """Encode without padding, as Web Push does everywhere."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(hashes.SHA256(), length, salt, info).derive(ikm)


@dataclass(frozen=True)
class Keys:
    """The device's P-256 key pair and 16-byte auth secret (RFC 8291 section 2)."""

    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    @classmethod
    def generate(cls) -> Keys:
        """Make new keys: once, when the device pairs."""
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Keys:
        """Read keys that to_dict wrote."""
        value = int.from_bytes(unb64url(data["private"]))
        return cls(ec.derive_private_key(value, ec.SECP256R1()), unb64url(data["auth"]))

    def to_dict(self) -> dict[str, str]:
        """Return the keys as text, to keep in the device's state file."""
        value = self.private_key.private_numbers().private_value
        return {"private": b64url(value.to_bytes(32)), "auth": b64url(self.auth_secret)}

    def subscription_keys(self) -> dict[str, str]:
        """Return the `keys` of a PushSubscription: what Home Assistant encrypts to."""
        return {
            "p256dh": b64url(_point(self.private_key.public_key())),
            "auth": b64url(self.auth_secret),
        }


def decrypt(body: bytes, keys: Keys) -> bytes:
    """Decrypt an aes128gcm body (RFC 8188 framing, RFC 8291 keys)."""
    if len(body) < 21:
        raise PushError("too short for the aes128gcm header")
    salt, record_size, id_length = body[:16], *struct.unpack("!IB", body[16:21])
    sender = body[21 : 21 + id_length]
    records = body[21 + id_length :]
    if id_length != 65 or record_size < 18:
        raise PushError("not a Web Push aes128gcm header")
    try:
        sender_key = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), sender
        )
    except ValueError as err:
        raise PushError("the sender's key is not a P-256 point") from err
    ours = _point(keys.private_key.public_key())
    shared = keys.private_key.exchange(ec.ECDH(), sender_key)
    ikm = _hkdf(keys.auth_secret, shared, b"WebPush: info\0" + ours + sender, 32)
    cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\0", 16)
    base_nonce = int.from_bytes(_hkdf(salt, ikm, b"Content-Encoding: nonce\0", 12))
    plaintext = b""
    chunks = [records[i : i + record_size] for i in range(0, len(records), record_size)]
    for seq, chunk in enumerate(chunks):
        nonce = (base_nonce ^ seq).to_bytes(12)
        try:
            record = AESGCM(cek).decrypt(nonce, chunk, None).rstrip(b"\0")
        except Exception as err:  # cryptography's InvalidTag
            raise PushError(
                "the body does not decrypt with this device's keys"
            ) from err
        last = seq == len(chunks) - 1
        # Each record ends with a delimiter: 2 for the last one, 1 for the others.
        if not record or record[-1] != (2 if last else 1):
            raise PushError("a record's padding delimiter is wrong")
        plaintext += record[:-1]
    return plaintext


def check_vapid(authorization: str, audience: str, server_key: str) -> None:
    """Check a request's `vapid t=…, k=…` header (RFC 8292) against the hub's key.

    `audience` is the origin of our endpoint; `server_key` is the hub's VAPID
    public key, which registration returned.
    """
    scheme, _, params = authorization.partition(" ")
    fields = dict(
        part.strip().split("=", 1) for part in params.split(",") if "=" in part
    )
    if scheme.lower() != "vapid" or "t" not in fields or "k" not in fields:
        raise PushError("no VAPID authorization")
    if unb64url(fields["k"]) != unb64url(server_key):
        raise PushError("signed with another key than the hub's")
    try:
        header, claims, signature = fields["t"].split(".")
        key = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), unb64url(fields["k"])
        )
        raw = unb64url(signature)
        key.verify(
            utils.encode_dss_signature(
                int.from_bytes(raw[:32]), int.from_bytes(raw[32:])
            ),
            f"{header}.{claims}".encode(),
            ec.ECDSA(hashes.SHA256()),
        )
        body = json.loads(unb64url(claims))
    except Exception as err:  # any malformed token is simply not valid
        raise PushError("the VAPID token is not valid") from err
    if body.get("aud") != audience:
        raise PushError("the VAPID token is for another push service")
    if not isinstance(body.get("exp"), int) or body["exp"] < time.time():
        raise PushError("the VAPID token has expired")
