"""A picture as a reviewer sees it: each finding's box drawn and labelled, hidden content filled.

Pillow only (no OpenCV): the dashboard draws without the ``images`` extra. What to hide is the
caller's decision (:mod:`audit.reports.pictures` decides it by the reader's role); here a
hidden region is filled with one flat colour, a few pixels beyond its box, before anything is
drawn, so nothing of what was there (a QR code's modules, a number's glyphs) survives in the
bytes that leave.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from audit.images import Box, ImageUnreadable

CATEGORY_COLOURS = {
    "privacy": (224, 49, 49),
    "diversion": (247, 103, 7),
}
OTHER_COLOUR = (28, 126, 214)
HIDDEN_FILL = (134, 142, 150)
HIDE_MARGIN = 3  # pixels beyond a hidden box: OCR boxes hug the glyphs
OUTLINE = 3
MAX_SIDE = 1280  # larger pictures are scaled down after drawing (and hiding)
# a decompression bomb is refused, not drawn: the stage caps files at 10 MB, not pixels
MAX_PIXELS = 40_000_000


@dataclass(frozen=True)
class Mark:
    """A region of the picture: outlined and labelled when ``label``, filled when ``hide``."""

    box: Box
    label: str = ""
    category: str = ""
    hide: bool = False


def colour_of(category: str) -> tuple[int, int, int]:
    return CATEGORY_COLOURS.get(category, OTHER_COLOUR)


@cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # labels are ASCII (a number and the category id): Pillow's own font has them everywhere
    return ImageFont.load_default(size=14)


def open_picture(data: bytes) -> Image.Image:
    """The picture as RGB; :class:`ImageUnreadable` when it is not one Pillow can decode."""
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ImageUnreadable(f"not a decodable image ({len(data)} bytes): {exc}") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageUnreadable(f"{width}x{height} pixels is more than {MAX_PIXELS:,}")
    try:
        return image.convert("RGB")
    except (OSError, ValueError) as exc:  # a truncated or corrupt file fails on loading
        raise ImageUnreadable(f"not a decodable image ({len(data)} bytes): {exc}") from None


def draw_marks(data: bytes, marks: Sequence[Mark], max_side: int = MAX_SIDE) -> bytes:
    """The picture with ``marks`` applied, as PNG bytes: hidden regions filled first, then every
    labelled box outlined in its category's colour with its label above it (inside when the
    box touches the top)."""
    image = open_picture(data)
    draw = ImageDraw.Draw(image)
    width, height = image.size
    for mark in marks:
        if mark.hide:
            left, top, right, bottom = _clip(mark.box, width, height, HIDE_MARGIN)
            if right > left and bottom > top:
                draw.rectangle((left, top, right - 1, bottom - 1), fill=HIDDEN_FILL)
    font = _font()
    for mark in marks:
        if not mark.label:
            continue
        left, top, right, bottom = _clip(mark.box, width, height, 0)
        if right <= left or bottom <= top:
            continue
        colour = colour_of(mark.category)
        draw.rectangle((left, top, right - 1, bottom - 1), outline=colour, width=OUTLINE)
        text_left, text_top, text_right, text_bottom = draw.textbbox((0, 0), mark.label, font=font)
        label_w, label_h = text_right - text_left + 6, text_bottom - text_top + 4
        y = top - label_h if top >= label_h else top + OUTLINE
        x = min(left, max(0, width - label_w))
        draw.rectangle((x, y, x + label_w - 1, y + label_h - 1), fill=colour)
        draw.text(
            (x + 3 - text_left, y + 2 - text_top), mark.label, fill=(255, 255, 255), font=font
        )
    if max(width, height) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _clip(box: Box, width: int, height: int, margin: int) -> Box:
    left, top, right, bottom = box
    return (
        max(0, left - margin),
        max(0, top - margin),
        min(width, right + margin),
        min(height, bottom + margin),
    )
