"""Attachments of flagged conversations: md5-checked, stored once by content, size-capped."""

from __future__ import annotations

import hashlib
from pathlib import Path

from simfixtures import chat, write_file_archive
from sqlalchemy import Engine, select

from audit.archive.keys import KeyRing, load_private_key
from audit.archive.media import MediaError, download_media
from audit.archive.sources import FileSource
from audit.config import load_settings
from audit.pipeline import load_scanner, run
from audit.store.db import session_scope
from audit.store.models import MediaFile, Message

PHOTO = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
DOC = b"%PDF-1.7 contract " * 100


class StandInArchiveMedia:
    """Plays the WeCom media service: bytes by sdkfileid, with its known failure modes."""

    def __init__(self) -> None:
        self.files = {
            "fid-photo": PHOTO,
            "fid-photo-again": PHOTO,
            "fid-doc": DOC,
            "fid-flaky": DOC + b"v2",
            "fid-huge": b"x" * 10,
        }
        self.calls: list[str] = []
        self.flaky_failures = 1

    def fetch(self, sdkfileid: str, md5sum: str | None, max_bytes: int) -> bytes:
        self.calls.append(sdkfileid)
        if sdkfileid == "fid-flaky" and self.flaky_failures:
            self.flaky_failures -= 1
            raise MediaError("network error (10001)", transient=True)
        return self.files[sdkfileid]


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _archive(tmp_path: Path) -> tuple[Path, Path]:
    c, s, q = "wmCUST01", "li.s001", "wmQUIET1"
    plains = [
        chat("t1", s, c, 0, "加我私人微信，发你照片"),  # a finding: this conversation is flagged
        chat(
            "i1",
            s,
            c,
            1,
            msgtype="image",
            sdkfileid="fid-photo",
            md5sum=_md5(PHOTO),
            filesize=len(PHOTO),
        ),
        chat(
            "i2",
            c,
            s,
            2,
            msgtype="image",
            sdkfileid="fid-photo-again",
            md5sum=_md5(PHOTO),
            filesize=len(PHOTO),
        ),
        chat(
            "f1",
            s,
            c,
            3,
            msgtype="file",
            sdkfileid="fid-doc",
            md5sum="0" * 32,
            filename="合同.pdf",
            filesize=len(DOC),
        ),
        chat(
            "f2",
            s,
            c,
            4,
            msgtype="file",
            sdkfileid="fid-flaky",
            md5sum=_md5(DOC + b"v2"),
            filename="b.pdf",
            filesize=len(DOC) + 2,
        ),
        chat("v1", c, s, 5, msgtype="video", sdkfileid="fid-huge", md5sum="", filesize=10**9),
        chat("q1", s, q, 0, "您好，请问有什么可以帮您"),  # nothing found here
        chat("q2", q, s, 1, msgtype="image", sdkfileid="fid-photo", md5sum=_md5(PHOTO)),
    ]
    return write_file_archive(tmp_path, plains)


def test_media_of_flagged_conversations_downloaded_once(engine: Engine, tmp_path: Path) -> None:
    archive, key = _archive(tmp_path)
    settings = load_settings(None, environ={}, overrides={"archive": {"workers": 1}})
    run(
        settings,
        engine,
        FileSource(archive),
        KeyRing({1: load_private_key(key)}),
        load_scanner(settings),
    )
    media = StandInArchiveMedia()
    store = tmp_path / "media"
    first = download_media(engine, media, store, max_bytes=1_000_000)
    assert "q2" not in media.calls and len(media.calls) == 4  # v1 is refused before fetching
    assert (
        first.stored == 2 and first.deduplicated == 1 and first.skipped == 1 and first.failed == 2
    )
    with session_scope(engine) as session:
        rows = {
            m: f
            for m, f in session.execute(
                select(Message.msgid, MediaFile).join(MediaFile, MediaFile.message_id == Message.id)
            )
        }
    assert rows["i1"].state == rows["i2"].state == "stored"
    assert rows["i1"].sha256 == rows["i2"].sha256 == hashlib.sha256(PHOTO).hexdigest()
    assert Path(rows["i1"].path or "").read_bytes() == PHOTO
    assert len(list(store.rglob("*"))) == 2  # one folder, one blob
    assert rows["f1"].state == "failed" and "md5 mismatch" in (rows["f1"].error or "")
    assert rows["f2"].state == "failed" and "10001" in (rows["f2"].error or "")
    assert rows["v1"].state == "skipped" and "cap" in (rows["v1"].error or "")

    again = download_media(engine, media, store, max_bytes=1_000_000)
    assert again.stored == 1 and again.failed == 1  # the flaky one recovers; md5 still wrong
    third = download_media(engine, media, store, max_bytes=1_000_000, max_attempts=2)
    assert third.stored == third.failed == 0  # gave up on f1 after two attempts
