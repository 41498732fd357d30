"""Reading the files an import names: regular files only, never blocking, bounded.

Their text (encodings) is import_files' part: see test_import_files.
"""

from __future__ import annotations

from collections.abc import Callable
import os
from pathlib import Path
import threading

import pytest

from custom_components.direct_push import safe_file
from custom_components.direct_push.safe_file import (
    MAX_CERTIFICATE_FILE,
    MAX_CONFIG_FILE,
    MAX_KEY_FILE,
    read_file,
)
from custom_components.direct_push.validation import InputError

KEY = b"-----BEGIN PRIVATE KEY-----\nMIGTAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n"

type Make = Callable[[Path], Path]


def _read_soon(path: Path, limit: int = MAX_KEY_FILE) -> bytes | InputError:
    """Read in a thread and give up after 5 seconds, so a hang fails the test.

    A reader stuck on a FIFO is freed by opening its write end.
    """
    result: list[bytes | InputError] = []

    def read() -> None:
        try:
            result.append(read_file(path, limit=limit, field="key_file"))
        except InputError as err:
            result.append(err)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5)
        pytest.fail(f"reading {path.name} blocked")
    return result[0]


def _write(content: bytes) -> Make:
    def make(folder: Path) -> Path:
        path = folder / "AuthKey_ABC123.p8"
        path.write_bytes(content)
        return path

    return make


def _symlink_to(make: Make) -> Make:
    def link(folder: Path) -> Path:
        target = make(folder)
        path = folder / "linked.p8"
        path.symlink_to(target)
        return path

    return link


def _fifo(folder: Path) -> Path:
    path = folder / "notify-development-push.pem"
    os.mkfifo(path)
    return path


def _folder(folder: Path) -> Path:
    (path := folder / "keys").mkdir()
    return path


def _missing(folder: Path) -> Path:
    return folder / "nothing.p8"


def _dangling(folder: Path) -> Path:
    (path := folder / "dangling.p8").symlink_to(folder / "gone.p8")
    return path


def _loop(folder: Path) -> Path:
    (folder / "a").symlink_to(folder / "b")
    (folder / "b").symlink_to(folder / "a")
    return folder / "a"


def _device(name: str) -> Make:
    return lambda _folder: Path(name)


@pytest.mark.parametrize(
    "data",
    [
        KEY,
        b"\xef\xbb\xbf" + KEY,  # as it is: the decoding drops a BOM
        KEY.replace(b"\n", b"\r\n"),
        b"",
        b"x" * MAX_KEY_FILE,
        b"\x30\x82\x01\x0a\x00\xff",  # bytes: what they are is the reader's call
    ],
)
def test_reads_regular_files(tmp_path: Path, data: bytes) -> None:
    assert _read_soon(_write(data)(tmp_path)) == data


def test_follows_symbolic_links(tmp_path: Path) -> None:
    """A key linked into the import folder is an ordinary set-up."""
    assert _read_soon(_symlink_to(_write(KEY))(tmp_path)) == KEY


@pytest.mark.parametrize(
    ("make", "key"),
    [
        (_fifo, "file_not_regular"),
        (_symlink_to(_fifo), "file_not_regular"),
        (_folder, "file_is_folder"),
        (_device("/dev/zero"), "file_not_regular"),
        (_device("/dev/null"), "file_not_regular"),
        (_device("/dev/urandom"), "file_not_regular"),
        (_device("/dev/tty"), "file_not_regular"),
        (_missing, "file_not_found"),
        (_dangling, "file_not_found"),
        (_loop, "file_unreadable"),
        (_device("bad\x00path"), "file_unreadable"),
        (_device("/" + "x" * 5000), "file_unreadable"),  # name too long
        (_write(b"x" * (MAX_KEY_FILE + 1)), "file_too_large"),
        (_write(b"x" * (MAX_CONFIG_FILE + 1)), "file_too_large"),
    ],
)
def test_refuses_what_is_not_a_small_text_file(
    tmp_path: Path, make: Make, key: str
) -> None:
    path = make(tmp_path)
    err = _read_soon(path)
    assert isinstance(err, InputError)
    assert (err.field, err.key) == ("key_file", key)
    assert err.placeholders["file"] == str(path)
    if key == "file_too_large":
        assert err.placeholders["limit"] == str(MAX_KEY_FILE)


def test_refuses_a_socket(unix_socket: Path) -> None:
    err = _read_soon(unix_socket)
    assert isinstance(err, InputError)
    assert err.key == "file_not_regular"


def test_limits_per_kind(tmp_path: Path) -> None:
    certificate = tmp_path / "notify-development-push.pem"
    certificate.write_text("c" * (MAX_KEY_FILE + 1))
    assert _read_soon(certificate, MAX_CERTIFICATE_FILE) == b"c" * (MAX_KEY_FILE + 1)
    config = tmp_path / "config.json"
    config.write_text("{}" + " " * MAX_CERTIFICATE_FILE)
    assert _read_soon(config, MAX_CONFIG_FILE) == b"{}" + b" " * MAX_CERTIFICATE_FILE
    assert MAX_KEY_FILE < MAX_CERTIFICATE_FILE < MAX_CONFIG_FILE


def test_a_file_larger_than_it_says_is_cut_at_the_limit() -> None:
    """/proc files report size 0: the read stops one byte past the limit."""
    status = Path("/proc/self/status")
    assert status.stat().st_size == 0
    err = _read_soon(status, 16)
    assert isinstance(err, InputError)
    assert (err.key, err.placeholders["limit"]) == ("file_too_large", "16")


def test_a_read_error_is_reported() -> None:
    """/proc/self/mem is a regular file whose first page cannot be read (EIO)."""
    err = _read_soon(Path("/proc/self/mem"))
    assert isinstance(err, InputError)
    assert err.key == "file_unreadable"


def test_a_path_swapped_after_the_check_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path may change between the stat and the open: fstat decides."""
    (tmp_path / "regular").touch()
    regular = (tmp_path / "regular").stat()
    fifo = _fifo(tmp_path)
    real_stat = os.stat

    def swapped(path: Path) -> os.stat_result:
        # The check sees a regular file; the open then finds the FIFO.
        return regular if Path(path) == fifo else real_stat(path)

    monkeypatch.setattr(safe_file.os, "stat", swapped)
    err = _read_soon(fifo)
    assert isinstance(err, InputError)
    assert err.key == "file_not_regular"


def test_label_names_the_file_in_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        read_file(tmp_path / "missing.p8", limit=10, label="AuthKey.p8")
    assert (info.value.field, info.value.placeholders) == (
        "file",
        {"file": "AuthKey.p8"},
    )
