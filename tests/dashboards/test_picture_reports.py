"""Pictures with findings on the conversation page's report, on SQLite and PostgreSQL: drawn
with their boxes for compliance, masked for a store supervisor before they leave the report.

On ``picture_seed.py``: a contact screenshot with a mobile number (an OCR privacy finding) and
a WeChat Pay code (a QR diversion finding) in conversation 1 (南京路店) of ``seed_chain.py``.
One test per backend: reading the pictures (OCR) is the cost, so it is paid once.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from picture_seed import SeededPicture, seed_pictures
from PIL import Image
from seed_chain import seed_chain
from sqlalchemy import Engine, func, select

from audit import reports
from audit.images.draw import HIDDEN_FILL, HIDE_MARGIN, OUTLINE, colour_of
from audit.reports.pictures import MISSING, PictureView
from audit.store.access import Principal
from audit.store.db import session_scope
from audit.store.models import Conversation, Finding, ImageScan, Role

Box = tuple[int, int, int, int]


def _pictures(
    engine: Engine, who: Principal, conversation: int, media: Path | None
) -> dict[int, PictureView]:
    view = reports.open_conversation(engine, who, conversation, media_dir=media)
    assert view is not None
    return {p.message_id: p for m in view.messages for p in m.pictures}


def _pixels(data: bytes) -> NDArray[np.int16]:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def _inside(box: Box, pad: int) -> tuple[slice, slice]:
    left, top, right, bottom = box
    return slice(max(0, top + pad), bottom - pad), slice(max(0, left + pad), right - pad)


def test_pictures_are_drawn_for_compliance_and_masked_for_a_supervisor(
    engine: Engine, tmp_path: Path
) -> None:
    seed = seed_chain(engine)
    media = tmp_path / "media"
    seeded = seed_pictures(engine, tmp_path / "served", media)
    with session_scope(engine) as s:
        conversation = s.scalar(select(func.min(Conversation.id)))
    assert conversation is not None
    officer = Principal(user_id=1, username="officer", role=Role.COMPLIANCE, unit_ids=None)
    supervisor = Principal(
        user_id=2, username="nanjing", role=Role.SUPERVISOR, unit_ids=(seed.nanjing,)
    )
    assert officer.may_unmask and not supervisor.may_unmask
    _check_in_the_clear(engine, seeded, _pictures(engine, officer, conversation, media))
    _check_masked(engine, seeded, _pictures(engine, supervisor, conversation, media))
    # a file gone from the media directory: why, and nothing of the picture, for everyone
    for who in (officer, supervisor):
        shown = _pictures(engine, who, conversation, tmp_path / "elsewhere")
        assert len(shown) == len(seeded)
        assert {(p.png, p.note) for p in shown.values()} == {(None, MISSING)}
        assert not _pictures(engine, who, conversation, None)  # no directory: no pictures


def _check_in_the_clear(
    engine: Engine, seeded: dict[str, SeededPicture], shown: dict[int, PictureView]
) -> None:
    for name, category, rule in (
        ("phone", "privacy", "ocr.privacy.phone"),
        ("pay", "diversion", "qr.payment_wechat"),
    ):
        original = seeded[name]
        picture = shown[original.message_id]
        assert picture.png is not None and not picture.masked
        [mark] = picture.marks
        assert (mark.category, mark.rule, mark.hidden) == (category, rule, False)
        assert original.content in mark.text.replace(" ", "")  # read there, in the clear
        box = _box_of(engine, original, mark.source)
        before, after = _pixels(original.data), _pixels(picture.png)
        assert before.shape == after.shape
        # the original but for the outline and the label just above the box
        changed = np.argwhere((before != after).any(axis=2))
        left, top, right, bottom = box
        assert changed.size and (changed[:, 1] >= left).all() and (changed[:, 1] < right + 80).all()
        assert (changed[:, 0] < bottom).all() and (changed[:, 0] >= top - 24).all()
        assert (after[_inside(box, OUTLINE)] == before[_inside(box, OUTLINE)]).all()
        assert tuple(after[(top + bottom) // 2, left]) == colour_of(category)


def _check_masked(
    engine: Engine, seeded: dict[str, SeededPicture], shown: dict[int, PictureView]
) -> None:
    for name, token in (("phone", "[手机号]"), ("pay", "[二维码内容]")):
        original = seeded[name]
        picture = shown[original.message_id]
        assert picture.png is not None and picture.masked
        [mark] = picture.marks
        assert mark.hidden and token in mark.text and original.content not in mark.text
        box = _box_of(engine, original, mark.source)
        before, after = _pixels(original.data), _pixels(picture.png)
        inside_before, inside_after = before[_inside(box, OUTLINE)], after[_inside(box, OUTLINE)]
        # what was there (a QR code's modules, a number's glyphs) is gone: one flat colour
        assert inside_before.std() > 30
        assert (inside_after == HIDDEN_FILL).all()
        margin = _inside(box, -HIDE_MARGIN)
        assert (after[margin] != before[margin]).any(axis=2).mean() > 0.3
    # beyond the finding, the name line of the contact screenshot is filled out too
    phone = shown[seeded["phone"].message_id]
    assert phone.png is not None
    with session_scope(engine) as s:
        lines = s.scalar(
            select(ImageScan.ocr_lines).where(ImageScan.sha256 == _sha(seeded["phone"].data))
        )
    [name_line] = [line for line in lines or [] if str(line["text"]).startswith("姓名")]
    assert (_pixels(phone.png)[_inside(tuple(name_line["box"]), 0)] == HIDDEN_FILL).all()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _box_of(engine: Engine, picture: SeededPicture, source: str) -> Box:
    with session_scope(engine) as s:
        detail = s.scalar(select(Finding.detail).where(Finding.message_id == picture.message_id))
    assert detail is not None and detail["source"] == source
    left, top, right, bottom = detail["box"]
    return left, top, right, bottom
