"""Pairing codes, device secrets and the failed-attempt limit, on their own."""

from __future__ import annotations

import hashlib

from custom_components.direct_push.pairing import (
    CODE_ALPHABET,
    CODE_LIFETIME,
    FailureLimit,
    PairingCodes,
    hash_secret,
    new_secret,
    secret_matches,
)


def test_a_code_is_long_readable_and_single_use() -> None:
    """At least 8 characters a person cannot misread; it works once."""
    codes = PairingCodes()
    made = codes.create(now=100.0)
    assert len(made.code) >= 8
    assert set(made.code) <= set(CODE_ALPHABET)
    assert not set(made.code) & set("0O1IL")
    assert made.expires == 100.0 + CODE_LIFETIME
    assert codes.redeem(made.code, now=101.0)
    assert not codes.redeem(made.code, now=102.0)


def test_a_code_is_read_as_people_type_it() -> None:
    """Lower case, spaces and dashes do not matter."""
    codes = PairingCodes()
    code = codes.create(now=0.0).code
    typed = f" {code[:5].lower()}-{code[5:]} "
    assert codes.redeem(typed, now=1.0)


def test_a_code_expires() -> None:
    """Ten minutes, then it is as wrong as a made-up one."""
    codes = PairingCodes()
    code = codes.create(now=0.0).code
    assert not codes.redeem(code, now=CODE_LIFETIME)
    assert not codes.redeem("ABCDEFGHJK", now=1.0)


def test_codes_differ() -> None:
    """Codes are random, not a sequence."""
    codes = PairingCodes()
    assert len({codes.create(now=0.0).code for _ in range(200)}) == 200


def test_secrets_are_random_and_stored_hashed() -> None:
    """256 random bits; only their SHA-256 is kept, and it is checked exactly."""
    secret = new_secret()
    assert len(secret) >= 43
    assert new_secret() != secret
    stored = hash_secret(secret)
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert secret_matches(secret, stored)
    assert not secret_matches(secret[:-1] + "x", stored)
    assert not secret_matches(secret, None)
    assert not secret_matches(secret, "")


def test_ten_failures_a_minute_block_an_address() -> None:
    """The eleventh try within a minute waits; other addresses do not."""
    limit = FailureLimit(limit=10, window=60.0)
    for second in range(10):
        assert limit.blocked_for("192.0.2.1", now=float(second)) == 0
        limit.failed("192.0.2.1", now=float(second))
    assert limit.blocked_for("192.0.2.1", now=10.0) == 50.0
    assert limit.blocked_for("192.0.2.2", now=10.0) == 0
    # The oldest failure leaves the window: one more try.
    assert limit.blocked_for("192.0.2.1", now=60.0) == 0
    assert limit.blocked_for("192.0.2.1", now=120.0) == 0
