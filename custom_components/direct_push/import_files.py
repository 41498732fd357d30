"""The files of an import: their text encodings, and where a key path points.

Plain Python without Home Assistant; file I/O here is blocking. Files are read
by safe_file (regular files only, within a limit per kind) and decoded here.
"""

from __future__ import annotations

import base64
import binascii
import codecs
from collections.abc import Sequence
import errno
import os
from pathlib import Path
import re
from typing import Final

from .safe_file import read_file

# Byte order marks, longest first (UTF-32 LE starts like UTF-16 LE).
_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
_BASE64_RE: Final = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class TextEncodingError(ValueError):
    """Not text Direct Push can read; `encoding` names what it is, if known."""

    def __init__(self, encoding: str | None) -> None:
        """Keep the encoding's name."""
        super().__init__(encoding)
        self.encoding = encoding


class KeyFileNotFoundError(FileNotFoundError):
    """The key file is in none of the places its path may mean."""

    def __init__(self, tried: Sequence[Path]) -> None:
        """Keep every place looked at, for the error."""
        super().__init__(errno.ENOENT, "key file not found", str(tried[0]))
        self.tried = tuple(tried)


def decode_text(data: bytes) -> str:
    """Decode a text file: UTF-8, or UTF-8/16/32 with a byte order mark.

    Windows tools save UTF-16 with a mark (PowerShell's `>` does). Raises
    TextEncodingError for anything else.
    """
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                raise TextEncodingError(name) from None
    if b"\x00" in data:
        # No text has a zero byte; ASCII in UTF-16 has one in every other.
        raise TextEncodingError("UTF-16 without a byte order mark")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise TextEncodingError(None) from None


def read_text(path: Path, *, limit: int, label: str | None = None) -> str:
    """Read a small text file: a regular file of at most `limit` bytes.

    Raises InputError naming the file (`label`, the path by default) when it
    is missing, not a regular file, too large or unreadable, and
    TextEncodingError when it is not text.
    """
    return decode_text(read_file(path, limit=limit, label=label))


def expand_user(path: Path) -> Path:
    """Expand `~`; an unknown `~user` stays as typed, and so is reported missing."""
    try:
        return path.expanduser()
    except RuntimeError:
        return path


def key_places(folder: Path, path: str) -> list[Path]:
    """Return where a key path from config.json may point, in the order tried.

    dmt-system opened `path.join(folder, key)`, in which an absolute key path
    does not win: "/AuthKey.p8" meant the file in the folder. An absolute path
    (or one under `~`) that exists is used first.
    """
    places = []
    if (expanded := expand_user(Path(path))).is_absolute():
        places.append(expanded)
    joined = Path(os.path.normpath(f"{folder}/{path}"))
    if joined not in places:
        places.append(joined)
    return places


def find_key_file(folder: Path, path: str) -> Path:
    """Return the first of the key's places that exists; raise KeyFileNotFoundError."""
    places = key_places(folder, path)
    for place in places:
        # Never raises: a name too long or with a NUL byte is not there.
        if os.path.exists(place):
            return place
    raise KeyFileNotFoundError(places)


def looks_like_key_text(text: str) -> bool:
    """Return True for a key's text that lost its BEGIN line.

    Its base64 decodes to DER, which starts with a SEQUENCE (0x30): "MI…".
    No path does: "/", "~", ".", "_" and "-" are not base64, or not there.
    """
    if "\n" in text or "-----" in text:
        return True
    compact = "".join(text.split())
    if len(compact) < 64 or not _BASE64_RE.fullmatch(compact):
        return False
    try:
        der = base64.b64decode(compact + "=" * (-len(compact) % 4))
    except binascii.Error:
        return False
    return der[:1] == b"\x30"
