"""An import's files: encodings, and where dmt-system's key path points."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from custom_components.direct_push.import_files import (
    KeyFileNotFoundError,
    TextEncodingError,
    decode_text,
    expand_user,
    find_key_file,
    key_places,
    looks_like_key_text,
    read_text,
)
from custom_components.direct_push.validation import InputError

# The first line of a P-256 key's base64, as Apple's .p8 files have it.
KEY_LINE = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgevZzL1gdAFr88hb2"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Plain Python: skip conftest's hass fixture."""


@pytest.mark.parametrize(
    "data",
    [
        "é{}".encode(),
        codecs.BOM_UTF8 + "é{}".encode(),
        "é{}".encode("utf-16"),
        codecs.BOM_UTF16_BE + "é{}".encode("utf-16-be"),
        "é{}".encode("utf-32"),
    ],
)
def test_decode_text(data: bytes) -> None:
    assert decode_text(data) == "é{}"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ("{}".encode("utf-16-le"), "UTF-16 without a byte order mark"),
        (codecs.BOM_UTF16_LE + b"{", "UTF-16"),
        (codecs.BOM_UTF32_LE + b"{\x00\x00", "UTF-32"),
        (codecs.BOM_UTF8 + b"\xff", "UTF-8"),
        ("Zoë".encode("cp1252"), None),
    ],
)
def test_decode_text_refused(data: bytes, encoding: str | None) -> None:
    with pytest.raises(TextEncodingError) as err:
        decode_text(data)
    assert err.value.encoding == encoding
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (b"\xff\xfe\x00", "UTF-16"),  # a BOM, then half a character
        (b"\x30\x82\x01\x0a\x02\x82", None),  # DER, not PEM
        (b"text\x00with a NUL", "UTF-16 without a byte order mark"),
        (b"\xed\xa0\x80", None),  # an encoded surrogate: never a lone one in text
    ],
)
def test_read_text_refuses_what_is_not_text(
    tmp_path: Path, data: bytes, encoding: str | None
) -> None:
    (path := tmp_path / "AuthKey.p8").write_bytes(data)
    with pytest.raises(TextEncodingError) as err:
        read_text(path, limit=100)
    assert err.value.encoding == encoding


def test_read_text_within_the_limit(tmp_path: Path) -> None:
    """One reader: safe_file's limits and file checks, then the decoding."""
    (path := tmp_path / "config.json").write_bytes("é{}".encode("utf-16"))
    assert read_text(path, limit=8) == "é{}"
    with pytest.raises(InputError) as err:
        read_text(path, limit=7, label="config.json")
    assert (err.value.key, err.value.placeholders) == (
        "file_too_large",
        {"file": "config.json", "limit": "7"},
    )
    with pytest.raises(InputError) as err:
        read_text(tmp_path, limit=8)
    assert err.value.key == "file_is_folder"


@pytest.mark.parametrize(
    ("path", "places"),
    [
        ("AuthKey.p8", ["/f/AuthKey.p8"]),
        ("./keys/../AuthKey.p8", ["/f/AuthKey.p8"]),
        ("/AuthKey.p8", ["/AuthKey.p8", "/f/AuthKey.p8"]),
        ("~/AuthKey.p8", ["/home/me/AuthKey.p8", "/f/~/AuthKey.p8"]),
        # Nobody has this name: left as it is, so only the folder's.
        ("~nobody-by-this-name/k.p8", ["/f/~nobody-by-this-name/k.p8"]),
    ],
)
def test_key_places(
    monkeypatch: pytest.MonkeyPatch, path: str, places: list[str]
) -> None:
    """As path.join(folder, key) in node, then an absolute key as it is, first."""
    monkeypatch.setenv("HOME", "/home/me")
    assert key_places(Path("/f"), path) == [Path(place) for place in places]


def test_key_places_once_each() -> None:
    assert key_places(Path("/"), "/AuthKey.p8") == [Path("/AuthKey.p8")]


def test_expand_user_unknown_user() -> None:
    assert expand_user(Path("~nobody-by-this-name/x")) == Path("~nobody-by-this-name/x")


def test_find_key_file(tmp_path: Path) -> None:
    (tmp_path / "AuthKey.p8").write_text("key")
    assert find_key_file(tmp_path, "/AuthKey.p8") == tmp_path / "AuthKey.p8"
    with pytest.raises(KeyFileNotFoundError) as err:
        find_key_file(tmp_path, "x" * 5000)  # longer than any file name
    assert err.value.tried == (tmp_path / ("x" * 5000),)
    assert isinstance(err.value, FileNotFoundError)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (KEY_LINE, True),
        (KEY_LINE + "\n" + KEY_LINE, True),
        (KEY_LINE + "-----END PRIVATE KEY-----", True),
        (f"{KEY_LINE} {KEY_LINE}", True),
        ("AuthKey_ABC123DEFG.p8", False),
        ("MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgevZzL1gdAFr88hb2.p8", False),
        ("/home/me/0123456789abcdef0123456789abcdef0123456789abcdef/AuthKey", False),
        ("AuthKeyForTheNotifyAppOfTheFamilyABC123DEFGProductionKeyOf2021Backup", False),
        ("M" + "A" * 64, False),  # not base64: one character too many
        ("MIG", False),
    ],
)
def test_looks_like_key_text(text: str, key: bool) -> None:
    """Key text whose BEGIN line was lost, never a path, however long."""
    assert looks_like_key_text(text) is key
