"""The brand images are what Home Assistant's brands integration serves for us.

HA 2026.3+ serves custom_components/<domain>/brand/<image> at
/api/brands/integration/<domain>/<image>, for these file names only.
"""

from __future__ import annotations

from pathlib import Path
import struct

import pytest

BRAND = Path(__file__).resolve().parent.parent / "custom_components/direct_push/brand"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RGBA = 6
# The names HA's brands integration accepts (homeassistant/components/brands/const.py).
ALLOWED = {
    f"{dark}{kind}{scale}.png"
    for dark in ("", "dark_")
    for kind in ("icon", "logo")
    for scale in ("", "@2x")
}


def _png_size(path: Path) -> tuple[int, int]:
    """Return a PNG's width and height; fail unless it is an RGBA PNG."""
    head = path.read_bytes()[:26]
    assert head[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    assert head[25] == RGBA, f"{path.name} has no alpha channel"
    return width, height


def test_only_names_home_assistant_serves() -> None:
    names = {path.name for path in BRAND.iterdir()}
    assert {"icon.png", "icon@2x.png", "logo.png", "logo@2x.png"} <= names
    assert names <= ALLOWED


@pytest.mark.parametrize(("name", "size"), [("icon.png", 256), ("icon@2x.png", 512)])
def test_icons_are_square_at_their_size(name: str, size: int) -> None:
    assert _png_size(BRAND / name) == (size, size)


@pytest.mark.parametrize("prefix", ["", "dark_"])
def test_logos_fit_the_brand_rules(prefix: str) -> None:
    """Shortest side 128 to 256 pixels, the @2x twice as large."""
    width, height = _png_size(BRAND / f"{prefix}logo.png")
    assert 128 <= min(width, height) <= 256
    assert _png_size(BRAND / f"{prefix}logo@2x.png") == (width * 2, height * 2)
