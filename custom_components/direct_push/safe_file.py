"""Read the small files an import names, without ever blocking or overreading.

Plain Python: no Home Assistant here. A path in a config.json, the YAML or a
form can name anything: a named pipe blocks a reader until a writer comes (an
executor thread lost for good), /dev/zero never ends. Only regular files are
read, and never more than their kind's limit. Symbolic links are followed: a
key linked into the import folder is an ordinary set-up. Their bytes become
text in import_files, which knows the encodings an import may meet.
"""

from __future__ import annotations

import os
from pathlib import Path
import stat
from typing import Final

from .validation import InputError

MAX_KEY_FILE: Final = 8 * 1024
"""Bytes: an Apple .p8 key is about 250; even a 4096-bit RSA key in PEM is 3.3 KB."""
MAX_CERTIFICATE_FILE: Final = 64 * 1024
"""Bytes: a push certificate with its key is about 4 KB, with a long chain 20."""
MAX_CONFIG_FILE: Final = 4 * 1024 * 1024
"""Bytes: a config.json lists credentials and devices; a few KB in practice."""

# O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer
# (regular files ignore it). O_NOCTTY: a terminal never becomes ours.
_OPEN_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_CHUNK: Final = 64 * 1024


def _not_regular(mode: int) -> str | None:
    """Return the error key for what is not a regular file, else None."""
    if stat.S_ISREG(mode):
        return None
    # Anything else is a named pipe, a device or a socket.
    return "file_is_folder" if stat.S_ISDIR(mode) else "file_not_regular"


def _open(path: Path, field: str, label: str) -> int:
    try:
        # Checked before opening too: opening some devices has side effects.
        if (key := _not_regular(os.stat(path).st_mode)) is None:
            return os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise InputError(field, "file_not_found", file=label) from None
    except (OSError, ValueError):
        # No permission, a symlink loop, a NUL in the path, a name too long.
        raise InputError(field, "file_unreadable", file=label) from None
    raise InputError(field, key, file=label)


def read_file(
    path: Path, *, limit: int, field: str = "file", label: str | None = None
) -> bytes:
    """Return a regular file's bytes. Blocking.

    `limit` is in bytes (MAX_KEY_FILE and the like); `label` names the file in
    errors (the path by default) and `field` is the form field they belong to.
    Every problem is an InputError naming the file.
    """
    label = str(path) if label is None else label
    fd = _open(path, field, label)
    try:
        # The path may have been swapped since the stat: check what is open.
        info = os.fstat(fd)
        if (key := _not_regular(info.st_mode)) is not None:
            raise InputError(field, key, file=label)
        if info.st_size > limit:
            raise InputError(field, "file_too_large", file=label, limit=str(limit))
        # One byte past the limit tells a file that grew (or lies about its
        # size, as /proc files do) from one that fits.
        chunks: list[bytes] = []
        size = 0
        while size <= limit and (chunk := os.read(fd, min(_CHUNK, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
    except OSError:
        raise InputError(field, "file_unreadable", file=label) from None
    finally:
        os.close(fd)
    if size > limit:
        raise InputError(field, "file_too_large", file=label, limit=str(limit))
    return b"".join(chunks)
