"""Draw Direct Push's brand images into custom_components/direct_push/brand/.

Home Assistant 2026.3+ serves a custom integration's own brand/ folder through
/api/brands/integration/<domain>/<image>. The mark: a white bell with a notification
badge on a blue rounded square, with speed lines for a push that goes straight to the
phone. The logo adds the name; its dark variant writes the name in white.

Run from the repository root with Pillow (the develop venv has it):
    .venv/bin/python scripts/brand.py
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

BRAND = Path(__file__).resolve().parent.parent / "custom_components/direct_push/brand"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
SCALE = 4  # draw large, then shrink: smooth edges without an anti-aliasing pass
TOP, BOTTOM = (56, 132, 246), (29, 66, 200)  # the square's gradient
BADGE = (255, 159, 28)
INK, DARK_INK = (33, 37, 41), (255, 255, 255)


def _bell_outline(cx: float, top: float, height: float) -> list[tuple[float, float]]:
    """Return a bell's outline: a round dome, near-straight sides, a flared foot."""
    dome = height * 0.30
    right = []
    for step in range(61):
        y = step / 60 * height
        if y < dome:
            half = math.sqrt(dome**2 - (dome - y) ** 2)
        else:
            t = (y - dome) / (height - dome)
            half = dome * (1 + 0.12 * t + 0.75 * max(t - 0.55, 0) ** 2 / 0.45**2 * 0.45)
        right.append((cx + half, top + y))
    left = [(2 * cx - x, y) for x, y in reversed(right)]
    return right + left


def icon(size: int) -> Image.Image:
    """Return the square icon at size x size pixels."""
    big = size * SCALE
    gradient = Image.new("RGB", (1, big))
    for y in range(big):
        t = y / (big - 1)
        gradient.putpixel(
            (0, y),
            tuple(round(a + (b - a) * t) for a, b in zip(TOP, BOTTOM, strict=True)),
        )
    gradient = gradient.resize((big, big))
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).rounded_rectangle(
        (0, 0, big - 1, big - 1), radius=big * 0.22, fill=255
    )
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    image.paste(gradient, mask=mask)

    draw = ImageDraw.Draw(image)
    white = (255, 255, 255, 255)
    cx, top, height = big * 0.54, big * 0.24, big * 0.46
    # The knob, the body, the rim and the clapper.
    knob = big * 0.045
    draw.ellipse((cx - knob, top - knob * 1.6, cx + knob, top + knob * 0.4), fill=white)
    outline = _bell_outline(cx, top, height)
    draw.polygon(outline, fill=white)
    rim_half, rim_y = max(x for x, _ in outline) - cx + big * 0.02, top + height
    draw.rounded_rectangle(
        (cx - rim_half, rim_y - big * 0.035, cx + rim_half, rim_y + big * 0.035),
        radius=big * 0.035,
        fill=white,
    )
    clapper = big * 0.07
    draw.pieslice(
        (cx - clapper, rim_y - clapper * 0.2, cx + clapper, rim_y + clapper * 1.8),
        0,
        180,
        fill=white,
    )
    # Speed lines: the push comes straight in.
    for offset, length in ((-0.09, 0.13), (0.02, 0.18), (0.13, 0.11)):
        y = top + height * 0.5 + big * offset
        x_end = cx - height * 0.42 - big * 0.03
        draw.rounded_rectangle(
            (x_end - big * length, y - big * 0.022, x_end, y + big * 0.022),
            radius=big * 0.022,
            fill=white,
        )
    # The badge, ringed in the square's colour so it stands off the bell.
    bx, by, r = cx + height * 0.36, top + height * 0.06, big * 0.11
    ring = big * 0.03
    draw.ellipse((bx - r - ring, by - r - ring, bx + r + ring, by + r + ring), fill=TOP)
    draw.ellipse((bx - r, by - r, bx + r, by + r), fill=BADGE)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def logo(height: int, ink: tuple[int, int, int]) -> Image.Image:
    """Return the icon with the name beside it, height pixels tall, trimmed."""
    mark = icon(height)
    font = ImageFont.truetype(FONT, round(height * 0.42))
    text = "Direct Push"
    left, top, right, bottom = font.getbbox(text)
    gap = round(height * 0.22)
    image = Image.new("RGBA", (height + gap + right - left, height), (0, 0, 0, 0))
    image.paste(mark, (0, 0))
    ImageDraw.Draw(image).text(
        (height + gap - left, (height - (bottom - top)) / 2 - top),
        text,
        font=font,
        fill=(*ink, 255),
    )
    return image


def main() -> None:
    """Write every image."""
    BRAND.mkdir(exist_ok=True)
    images = {
        "icon.png": icon(256),
        "icon@2x.png": icon(512),
        "logo.png": logo(128, INK),
        "logo@2x.png": logo(256, INK),
        # The icon reads on dark backgrounds as it is; the name needs white ink.
        "dark_logo.png": logo(128, DARK_INK),
        "dark_logo@2x.png": logo(256, DARK_INK),
    }
    for name, image in images.items():
        image.save(BRAND / name, optimize=True)
        print(f"{BRAND / name}: {image.width}x{image.height}")


if __name__ == "__main__":
    main()
