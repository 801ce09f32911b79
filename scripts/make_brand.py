"""Draw the integration's brand images (original artwork) into custom_components/gemini_live/brand.

icon.png 256x256, icon@2x.png 512x512: a rounded square with a blue-violet-teal gradient, a white
four-pointed sparkle and sound-wave bars. logo.png 480x160 / logo@2x.png 960x320: the mark with
the name beside it. Run once: ``.venv/bin/python scripts/make_brand.py``.
"""

from __future__ import annotations

from math import cos, radians, sin
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

OUT = Path(__file__).resolve().parent.parent / "custom_components" / "gemini_live" / "brand"
SS = 4  # supersampling factor
TOP_LEFT = (26, 82, 226)
MIDDLE = (124, 77, 255)
BOTTOM_RIGHT = (0, 191, 165)
TEXT = (32, 33, 36)


def _lerp(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _gradient(size: int) -> Image.Image:
    small = 64
    img = Image.new("RGB", (small, small))
    px = img.load()
    assert px is not None
    for y in range(small):
        for x in range(small):
            t = (x + y) / (2 * (small - 1))
            color = (
                _lerp(TOP_LEFT, MIDDLE, t * 2)
                if t < 0.5
                else _lerp(MIDDLE, BOTTOM_RIGHT, t * 2 - 1)
            )
            px[x, y] = color
    return img.resize((size, size), Image.Resampling.BICUBIC)


def _sparkle(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float) -> None:
    """A four-pointed star with concave sides (a superellipse with exponent > 2)."""
    exponent = 4.0
    points = []
    for i in range(720):
        a = radians(i / 2)
        c, s = cos(a), sin(a)
        points.append(
            (
                cx + r * (abs(c) ** exponent) * (1 if c >= 0 else -1),
                cy + r * (abs(s) ** exponent) * (1 if s >= 0 else -1),
            )
        )
    draw.polygon(points, fill="white")


def mark(size: int) -> Image.Image:
    """The square icon at ``size`` pixels."""
    big = size * SS
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, big - 1, big - 1), radius=big * 0.22, fill=255)
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    img.paste(_gradient(big), (0, 0), mask)
    draw = ImageDraw.Draw(img)
    _sparkle(draw, big * 0.34, big * 0.40, big * 0.22)
    # Sound-wave bars, rounded, centred on the lower right.
    heights = (0.16, 0.30, 0.46, 0.30, 0.20)
    bar_w = big * 0.055
    gap = big * 0.035
    x = big * 0.50
    cy = big * 0.62
    for h in heights:
        half = big * h / 2
        draw.rounded_rectangle(
            (x, cy - half, x + bar_w, cy + half), radius=bar_w / 2, fill=(255, 255, 255, 235)
        )
        x += bar_w + gap
    return img.resize((size, size), Image.Resampling.LANCZOS)


def logo(height: int) -> Image.Image:
    """The mark with the name beside it, ``height`` pixels high (3:1)."""
    width = height * 3
    big_h, big_w = height * SS, width * SS
    img = Image.new("RGBA", (big_w, big_h), (0, 0, 0, 0))
    icon = mark(height).resize((big_h, big_h), Image.Resampling.LANCZOS)
    img.paste(icon, (0, 0), icon)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=big_h * 0.30)
    x = big_h * 1.15
    draw.text((x, big_h * 0.50), "Gemini", font=font, fill=TEXT, anchor="ls")
    draw.text((x, big_h * 0.86), "Live", font=font, fill=MIDDLE, anchor="ls")
    img = img.resize((width, height), Image.Resampling.LANCZOS)
    bbox = img.getbbox()
    return img.crop((0, 0, bbox[2], height)) if bbox else img


def main() -> None:
    """Write the four PNGs."""
    OUT.mkdir(parents=True, exist_ok=True)
    mark(256).save(OUT / "icon.png", optimize=True)
    mark(512).save(OUT / "icon@2x.png", optimize=True)
    logo(160).save(OUT / "logo.png", optimize=True)
    logo(320).save(OUT / "logo@2x.png", optimize=True)


if __name__ == "__main__":
    main()
