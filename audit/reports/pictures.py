"""The pictures of a conversation's image findings, drawn for one reader.

Each picture with findings (an image message, or an image item of a ``mixed`` message or of
a forwarded chat record) is read from the media directory (where the image stage stored it by
content hash) and drawn with each finding's box outlined and labelled ``<n> <category>``. For
a reader who may not see personal data in the clear
(:attr:`~audit.store.access.Principal.may_unmask`, as for text), the picture is masked before
it is encoded: the boxes of privacy and diversion findings, every QR code decoded in it, and
every line of text read in it that text masking would change (a name, a number) are filled
out; the payloads and text shown beside it are masked as text findings are.
When the picture cannot be drawn, nothing of it is shown, only why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.archive.media import blob_path
from audit.export.masking import Masker, masker_for
from audit.images import Box, ImageUnreadable, is_image_rule
from audit.images.draw import Mark, draw_marks
from audit.store.access import Principal
from audit.store.models import Finding, ImageScan

HIDDEN_CATEGORIES = frozenset({"privacy", "diversion"})
MISSING = "图片文件不在媒体目录中 / the picture's file is not in the media directory"
UNREADABLE = "图片无法解码 / the picture cannot be decoded"


@dataclass(frozen=True)
class PictureMark:
    number: int  # the label drawn on the picture
    finding_id: int
    category: str
    rule: str
    source: str  # qr | ocr
    text: str  # the QR payload or the text read in the box, masked for the reader
    hidden: bool  # the box's content is filled out


@dataclass(frozen=True)
class PictureView:
    message_id: int
    item: int  # 0 for an image message, the item's index in a mixed message or chat record
    png: bytes | None  # None: not drawable (``note`` says why), and nothing of it is shown
    marks: tuple[PictureMark, ...]
    masked: bool  # drawn for a reader who may not see personal data
    note: str = ""


@dataclass
class _Found:
    id: int
    category: str
    rule: str
    box: Box | None
    source: str
    text: str


def conversation_pictures(
    s: Session, principal: Principal, conversation_id: int, media_dir: Path
) -> dict[int, tuple[PictureView, ...]]:
    """message id -> its pictures with findings, drawn (and masked) for ``principal``.

    The caller has checked that the conversation is in the principal's scope."""
    masker = masker_for(principal)
    groups: dict[tuple[int, int, str | None], list[_Found]] = {}
    rows = s.execute(
        select(Finding.id, Finding.message_id, Finding.category, Finding.rule, Finding.detail)
        .where(Finding.conversation_id == conversation_id, Finding.detail.is_not(None))
        .order_by(Finding.message_id, Finding.id)
    )
    for finding_id, message_id, category, rule, detail in rows:
        if not is_image_rule(rule) or not isinstance(detail, dict):
            continue
        sha = detail.get("sha256")
        key = (message_id, _int(detail.get("item")), sha if isinstance(sha, str) else None)
        source = str(detail.get("source") or "")
        text = str((detail.get("payload") if source == "qr" else detail.get("text")) or "")
        groups.setdefault(key, []).append(
            _Found(finding_id, category, rule, _box(detail.get("box")), source, text)
        )
    scans: dict[str, ImageScan] = {}
    shas = sorted({sha for _, _, sha in groups if sha})
    if masker.enabled and shas:
        scans = {
            scan.sha256: scan
            for scan in s.scalars(select(ImageScan).where(ImageScan.sha256.in_(shas)))
        }
    out: dict[int, list[PictureView]] = {}
    for (message_id, item, sha), found in groups.items():
        view = _picture(message_id, item, sha, found, scans.get(sha or ""), masker, media_dir)
        out.setdefault(message_id, []).append(view)
    return {m: tuple(views) for m, views in out.items()}


def _picture(
    message_id: int,
    item: int,
    sha: str | None,
    found: Sequence[_Found],
    scan: ImageScan | None,
    masker: Masker,
    media_dir: Path,
) -> PictureView:
    hide = masker.enabled
    marks: list[PictureMark] = []
    drawn: list[Mark] = []
    for number, f in enumerate(found, start=1):
        hidden = hide and f.category in HIDDEN_CATEGORIES and f.box is not None
        text = masker.payload(f.text) if f.source == "qr" else masker.text(f.text)
        marks.append(PictureMark(number, f.id, f.category, f.rule, f.source, text, hidden))
        if f.box is not None:
            drawn.append(Mark(f.box, f"{number} {f.category}", f.category, hidden))
    if hide:
        drawn = [Mark(box, hide=True) for box in _personal_regions(scan, masker)] + drawn
    if sha is None:
        return PictureView(message_id, item, None, tuple(marks), hide, MISSING)
    try:
        data = blob_path(media_dir, sha).read_bytes()
        png = draw_marks(data, drawn)
    except (OSError, ValueError) as exc:
        note = UNREADABLE if isinstance(exc, ImageUnreadable) else MISSING
        return PictureView(message_id, item, None, tuple(marks), hide, note)
    return PictureView(message_id, item, png, tuple(marks), hide)


def _personal_regions(scan: ImageScan | None, masker: Masker) -> list[Box]:
    """Beyond the findings: every QR code (its payload is an account's address) and every
    line of text that masking would change (a name, a number the scanner did not flag)."""
    if scan is None:
        return []
    boxes = [_box(code.get("box")) for code in scan.qr or () if isinstance(code, dict)]
    for line in scan.ocr_lines or ():
        if isinstance(line, dict):
            text = str(line.get("text") or "")
            if text and masker.text(text) != text:
                boxes.append(_box(line.get("box")))
    return [b for b in boxes if b is not None]


def _box(value: Any) -> Box | None:
    if not isinstance(value, list | tuple) or len(value) != 4:
        return None
    try:
        left, top, right, bottom = (int(v) for v in value)
    except (TypeError, ValueError):
        return None
    return left, top, right, bottom


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
