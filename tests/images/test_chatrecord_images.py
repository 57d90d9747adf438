"""Pictures in forwarded chat records (``chatrecord``) are read like those of ``mixed``
messages, their findings going to the message that forwards them; and the planning of the
distributed image tasks keeps each picture content in one task."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, select

from audit.archive.simulator.pictures import (
    MEDIA_DIR,
    MEDIA_INDEX,
    SimulatedMediaFetcher,
    _content,
    render,
)
from audit.config import ImagesConfig, load_settings
from audit.domain import ConversationKind
from audit.images.refs import batches_by_content, image_refs
from audit.images.stage import ImagePolicy, read_images
from audit.images.status import image_backlog
from audit.pipeline import load_scanner
from audit.store.db import session_scope
from audit.store.models import (
    Conversation,
    Envelope,
    Finding,
    ImageScan,
    Message,
    MessageImage,
    SenderKind,
)

T0 = dt.datetime(2026, 11, 16, 2, 0, tzinfo=dt.UTC)


def _text_item(line: str) -> dict[str, Any]:
    content = json.dumps({"content": line}, ensure_ascii=False)
    return {"type": "ChatRecordText", "msgtime": 1, "content": content, "from_chatroom": False}


def _image_item(fileid: str, md5: str = "", size: int = 0) -> dict[str, Any]:
    content = json.dumps({"sdkfileid": fileid, "md5sum": md5, "filesize": size})
    return {"type": "ChatRecordImage", "msgtime": 2, "content": content, "from_chatroom": False}


def _chatrecord(*items: dict[str, Any]) -> dict[str, Any]:
    return {"msgtype": "chatrecord", "chatrecord": {"title": "客户的聊天记录", "item": list(items)}}


def test_when_a_chatrecord_has_image_items_then_they_are_its_pictures() -> None:
    raw = _chatrecord(_text_item("你看下"), _image_item("f1", "ab"), _image_item("f2"))
    refs = image_refs(7, "chatrecord", raw)
    assert [(item, ref.sdkfileid, ref.md5sum) for item, ref in refs] == [
        (1, "f1", "ab"),
        (2, "f2", ""),
    ]
    assert all(ref.message_id == 7 for _, ref in refs)
    # a bad item (not JSON, no file id) is left out; a text-only record has no picture
    bad = {"type": "ChatRecordImage", "content": "{not json"}
    assert image_refs(7, "chatrecord", _chatrecord(bad, _image_item(""))) == []
    assert image_refs(7, "chatrecord", _chatrecord(_text_item("好的"))) == []
    assert image_refs(7, "chatrecord", {"chatrecord": "oops"}) == []
    assert image_refs(7, "text", {"text": {"content": "x"}}) == []


def _row(mid: int, *md5s: str) -> SimpleNamespace:
    items = [_image_item(f"id{mid}-{n}", md5) for n, md5 in enumerate(md5s)]
    return SimpleNamespace(id=mid, msgtype="chatrecord", raw=_chatrecord(*items))


def test_batches_keep_every_picture_content_in_one_batch() -> None:
    rows = [_row(1, "a"), _row(2, "b"), _row(3, "c", "a"), _row(4, "d"), _row(5, "b")]
    rows += [_row(6), _row(7, "e"), SimpleNamespace(id=8, msgtype="image", raw={})]
    batches = batches_by_content(rows, 2)
    # 1-3 share "a", 2-5 share "b": each pair in one batch; all ids once, in id order of groups
    assert batches == [[1, 3], [2, 5], [4, 6], [7, 8]]
    assert batches_by_content(rows, 100) == [[1, 3, 2, 5, 4, 6, 7, 8]]
    # seeded random archives: no content is in two batches, no message lost or repeated
    rng = random.Random(11)
    for _ in range(20):
        rows = [_row(i, *rng.choices("abcdefghij", k=rng.randint(0, 3))) for i in range(1, 40)]
        batches = batches_by_content(rows, rng.randint(1, 8))
        assert sorted(i for b in batches for i in b) == list(range(1, 40))
        where: dict[str, int] = {}
        for n, batch in enumerate(batches):
            for mid in batch:
                for _item, ref in image_refs(mid, "chatrecord", rows[mid - 1].raw):
                    assert where.setdefault(ref.md5sum, n) == n


def _served(folder: Path, pictures: dict[str, bytes]) -> None:
    (folder / MEDIA_DIR).mkdir(parents=True, exist_ok=True)
    index = {}
    for fileid, data in pictures.items():
        sha = hashlib.sha256(data).hexdigest()
        (folder / MEDIA_DIR / f"{sha}.png").write_bytes(data)
        index[fileid] = sha
    (folder / MEDIA_DIR / MEDIA_INDEX).write_text(json.dumps(index), encoding="utf-8")


def _message(session: Any, conv: Conversation, n: int, raw: dict[str, Any]) -> int:
    env = Envelope(source="test", seq=100 + n, msgid=f"rec{n}")
    session.add(env)
    session.flush()
    message = Message(
        envelope_id=env.id,
        msgid=env.msgid,
        seq=env.seq,
        action="send",
        msgtype=raw["msgtype"],
        sender="zhangwei",
        sender_kind=SenderKind.STAFF,
        tolist=["lina"],
        msgtime=T0 + dt.timedelta(minutes=n),
        text="",
        conversation_id=conv.id,
        raw=raw,
    )
    session.add(message)
    session.flush()
    return message.id


def test_a_chatrecord_picture_gives_its_findings_to_the_forwarding_message(
    engine: Engine, tmp_path: Path
) -> None:
    key, payload = _content("pay_wechat", random.Random("chatrecord:pay"))
    data = render("pay_wechat", key, payload)
    _served(tmp_path / "served", {"rec-pay": data})
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    with session_scope(engine) as s:
        conv = Conversation(
            key="internal:lina|zhangwei:1",
            thread="internal:lina|zhangwei",
            kind=ConversationKind.INTERNAL,
            started_at=T0,
            ended_at=T0,
        )
        s.add(conv)
        s.flush()
        forwarded = _message(
            s,
            conv,
            1,
            _chatrecord(_text_item("扫这个付款"), _image_item("rec-pay", md5, len(data))),
        )
        text_only = _message(s, conv, 2, _chatrecord(_text_item("宽带三天没修好")))
    policy = ImagePolicy(
        directory=tmp_path / "media", ocr="off", allow=tuple(ImagesConfig().allow_payloads)
    )
    scanner = load_scanner(load_settings(None, environ={}))
    stats = read_images(engine, SimulatedMediaFetcher(tmp_path / "served"), scanner, policy)
    assert (stats.messages, stats.images, stats.contents, stats.qr_decoded) == (2, 1, 1, 1)
    assert (stats.findings, stats.failed, stats.skipped, stats.backlog) == (1, 0, 0, 0)
    with session_scope(engine) as s:
        (finding,) = s.scalars(select(Finding)).all()
        assert (finding.message_id, finding.conversation_id) == (forwarded, conv.id)
        assert (finding.category, finding.rule, finding.matched) == (
            "diversion",
            "qr.payment_wechat",
            payload,
        )
        assert finding.detail is not None
        assert finding.detail["item"] == 1 and finding.detail["source"] == "qr"
        assert finding.detail["sha256"] == hashlib.sha256(data).hexdigest()
        records = {(r.message_id, r.item): r.state for r in s.scalars(select(MessageImage))}
        assert records == {(forwarded, 1): "read", (text_only, 0): "none"}
        assert [x.sha256 for x in s.scalars(select(ImageScan))] == [finding.detail["sha256"]]
        assert image_backlog(s) == 0
    # a second run reads nothing again
    again = read_images(engine, SimulatedMediaFetcher(tmp_path / "served"), scanner, policy)
    assert (again.messages, again.contents, again.findings) == (0, 0, 0)


def test_a_content_written_by_two_racing_readers_is_stored_once(engine: Engine) -> None:
    """Two readers that both found a content unread: the second's row is dropped, not an
    error; a reading with text adds the text to a row without, never the other way."""
    from audit.images.read import ImageReading
    from audit.images.stage import store_reading

    sha = "a" * 64
    bare = ImageReading((), None)
    line = {"text": "套餐", "box": [0, 0, 1, 1], "score": 0.9}
    with_text = ImageReading.from_json({"qr": [], "lines": [line]})
    with session_scope(engine) as s:
        store_reading(s, sha, 10, bare, None)
    with session_scope(engine) as s:
        store_reading(s, sha, 10, bare, None)
        (row,) = s.scalars(select(ImageScan)).all()
        assert (row.ocr_read, row.ocr_lines) == (False, [])
    with session_scope(engine) as s:
        store_reading(s, sha, 10, with_text, None)
    with session_scope(engine) as s:
        store_reading(s, sha, 10, bare, None)
        (row,) = s.scalars(select(ImageScan)).all()
        assert row.ocr_read and [x["text"] for x in row.ocr_lines] == ["套餐"]
