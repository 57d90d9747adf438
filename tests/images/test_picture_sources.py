"""The image stage reads the pictures of every source: the official SDK's GetMediaData (here
the SDK stand-in built from tests/standin_sdk.c, loaded as the binary is), and, for an
exported archive file, what ``audit media`` downloaded; a picture not downloaded waits in the
backlog. QR-only pictures (OCR off) keep these fast."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import pytest
from simfixtures import chat, write_file_archive
from sqlalchemy import Engine, func, select

from audit.archive.keys import KeyRing, load_private_key
from audit.archive.media import MediaError, download_media
from audit.archive.simulator.pictures import _content, render
from audit.archive.sources import FileSource
from audit.config import Settings, load_settings
from audit.images.status import image_status
from audit.pipeline import load_scanner, read_pictures, run
from audit.scan.scanner import Scanner
from audit.store.db import session_scope
from audit.store.models import Finding, Message, MessageImage, ScanRun

STAFF, CUSTOMER, QUIET = "li.s001", "wmCUST01", "wmQUIET1"


def _picture(kind: str) -> tuple[str, bytes]:
    key, content = _content(kind, random.Random(f"sources:{kind}"))
    return content, render(kind, key, content)


PICTURES = {"fid-pay": _picture("pay_wechat"), "fid-group": _picture("group_qr")}


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _image(msgid: str, sender: str, to: str, minute: int, fileid: str) -> dict[str, Any]:
    data = PICTURES[fileid][1]
    return chat(
        msgid, sender, to, minute, msgtype="image", sdkfileid=fileid, md5sum=_md5(data),
        filesize=len(data),
    )  # fmt: skip


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return load_scanner(load_settings(None, environ={}))


def _settings(tmp_path: Path, **archive: Any) -> Settings:
    return load_settings(
        None,
        environ={},
        overrides={
            "archive": {"workers": 1, **archive},
            "media": {"directory": str(tmp_path / "media")},
            "images": {"ocr": "off", "workers": 1},
        },
    )


def _ingest(engine: Engine, tmp_path: Path, scanner: Scanner, settings: Settings) -> None:
    """A staff member sends a WeChat Pay code in a flagged conversation and a group code in a
    quiet one (``audit media`` downloads only the flagged conversation's)."""
    plains = [
        chat("t1", STAFF, CUSTOMER, 0, "加我私人微信，发你照片"),
        _image("i1", STAFF, CUSTOMER, 1, "fid-pay"),
        chat("q1", STAFF, QUIET, 0, "您好，请问有什么可以帮您"),
        _image("i2", STAFF, QUIET, 1, "fid-group"),
    ]
    archive, key = write_file_archive(tmp_path, plains)
    run(settings, engine, FileSource(archive), KeyRing({1: load_private_key(key)}), scanner)


def _qr_findings(engine: Engine) -> dict[str, tuple[str, str]]:
    """msgid -> (rule, matched) of the QR findings."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Message.msgid, Finding.rule, Finding.matched)
            .join(Message, Message.id == Finding.message_id)
            .where(Finding.rule.startswith("qr."))
        ).all()
    return {m: (r, t) for m, r, t in rows}


def _states(engine: Engine) -> dict[str, tuple[str, int]]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(Message.msgid, MessageImage.state, MessageImage.attempts).join(
                Message, Message.id == MessageImage.message_id
            )
        ).all()
    return {m: (s, a) for m, s, a in rows}


def test_sdk_source_reads_pictures_through_get_media_data(
    engine: Engine,
    tmp_path: Path,
    scanner: Scanner,
    standin_sdk: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _ingest(engine, tmp_path, scanner, _settings(tmp_path, source="file").model_copy(
        update={"images": _settings(tmp_path).images.model_copy(update={"enabled": False})}
    ))  # fmt: skip
    # no credentials: the stage says what to set; nothing failed, both pictures wait
    stats = read_pictures(_settings(tmp_path, source="sdk"), engine, scanner)
    assert stats.error is not None and "archive.corpid and archive.secret" in stats.error
    assert (stats.images, stats.failed, stats.skipped, stats.backlog) == (0, 0, 0, 2)
    assert _states(engine) == {}
    served = tmp_path / "wecom-media"
    served.mkdir()
    for fileid, (_payload, data) in PICTURES.items():
        (served / fileid).write_bytes(data)
    monkeypatch.setenv("STANDIN_SDK_MEDIA", str(served))
    monkeypatch.setenv("STANDIN_SDK_CHUNK", "2048")  # several GetMediaData calls a picture
    sdk = {"corpid": "ww0123456789abcdef", "sdk_library": str(standin_sdk), "timeout": 1}
    # credentials the SDK refuses: one error for the stage, not one failure per picture
    stats = read_pictures(_settings(tmp_path, source="sdk", secret="wrong-secret", **sdk),
                          engine, scanner)  # fmt: skip
    assert stats.error is not None and "10004" in stats.error and stats.backlog == 2
    assert _states(engine) == {}
    stats = read_pictures(_settings(tmp_path, source="sdk", secret="s3cret", **sdk), engine, scanner)
    assert stats.error is None
    assert (stats.images, stats.qr_decoded, stats.findings, stats.failed, stats.backlog) == (
        2, 2, 2, 0, 0,
    )  # fmt: skip
    found = _qr_findings(engine)
    assert found == {
        "i1": ("qr.payment_wechat", PICTURES["fid-pay"][0]),
        "i2": ("qr.group_invite", PICTURES["fid-group"][0]),
    }
    assert _states(engine) == {"i1": ("read", 1), "i2": ("read", 1)}
    for _payload, data in PICTURES.values():  # stored by content hash, md5-checked
        sha = hashlib.sha256(data).hexdigest()
        assert (tmp_path / "media" / sha[:2] / sha).read_bytes() == data


def test_sdk_picture_the_service_does_not_have_is_a_failure_to_retry(
    engine: Engine,
    tmp_path: Path,
    scanner: Scanner,
    standin_sdk: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _ingest(engine, tmp_path, scanner, _settings(tmp_path, source="file").model_copy(
        update={"images": _settings(tmp_path).images.model_copy(update={"enabled": False})}
    ))  # fmt: skip
    served = tmp_path / "wecom-media"
    served.mkdir()
    pay = PICTURES["fid-pay"][1]
    (served / "fid-pay").write_bytes(pay[:-1] + bytes([pay[-1] ^ 0xFF]))  # md5 will not match
    monkeypatch.setenv("STANDIN_SDK_MEDIA", str(served))
    settings = _settings(
        tmp_path, source="sdk", corpid="ww01", secret="s", sdk_library=str(standin_sdk)
    )
    stats = read_pictures(settings, engine, scanner)
    assert stats.error is None and (stats.images, stats.findings) == (0, 0)
    states = _states(engine)
    assert states["i1"] == ("failed", 1)  # md5 mismatch: retried on the next run
    assert states["i2"][0] in ("failed", "skipped")  # unknown sdkfileid (10005)
    assert _qr_findings(engine) == {}


def test_file_source_reads_the_pictures_audit_media_downloaded(
    engine: Engine, tmp_path: Path, scanner: Scanner
) -> None:
    settings = _settings(tmp_path, source="file")
    _ingest(engine, tmp_path, scanner, settings)  # the run's image stage: nothing downloaded
    assert _states(engine) == {"i1": ("waiting", 0), "i2": ("waiting", 0)}
    assert _qr_findings(engine) == {}

    class WeComMedia:  # the media service `audit media` downloads from (SDK or stand-in)
        def fetch(self, sdkfileid: str, md5sum: str | None, max_bytes: int) -> bytes:
            if sdkfileid not in PICTURES:
                raise MediaError("bad sdkfileid (10005)", transient=False)
            return PICTURES[sdkfileid][1]

    media = download_media(engine, WeComMedia(), settings.media.directory, max_bytes=10**7)
    assert media.stored == 1  # only the flagged conversation's picture

    stats = read_pictures(settings, engine, scanner)
    assert stats.error is None
    assert (stats.images, stats.findings, stats.waiting, stats.failed, stats.backlog) == (
        1, 1, 1, 0, 1,
    )  # fmt: skip
    assert _qr_findings(engine) == {"i1": ("qr.payment_wechat", PICTURES["fid-pay"][0])}
    assert _states(engine) == {"i1": ("read", 1), "i2": ("waiting", 0)}
    with session_scope(engine) as session:
        assert image_status(session)["backlog"] == 1  # audit status: i2 still to read
        runs = session.scalar(select(func.count()).where(ScanRun.mode == "images"))
    assert runs == 2

    # downloaded later (a finding of its own, say): read on the next run, no attempt lost
    download_media(engine, WeComMedia(), settings.media.directory, 10**7, only_flagged=False)
    stats = read_pictures(settings, engine, scanner)
    assert (stats.images, stats.findings, stats.waiting, stats.backlog) == (1, 1, 0, 0)
    assert _qr_findings(engine)["i2"] == ("qr.group_invite", PICTURES["fid-group"][0])
    assert _states(engine) == {"i1": ("read", 1), "i2": ("read", 1)}


def test_file_source_checks_a_downloaded_picture_against_the_message(
    engine: Engine, tmp_path: Path, scanner: Scanner
) -> None:
    """A file in the media store that is not what the message says (md5) is not read."""
    settings = _settings(tmp_path, source="file")
    _ingest(engine, tmp_path, scanner, settings)

    class Tampered:
        def fetch(self, sdkfileid: str, md5sum: str | None, max_bytes: int) -> bytes:
            return PICTURES["fid-group"][1]  # the wrong picture for fid-pay

    with session_scope(engine) as session:  # stored as if downloaded without a check
        ids = dict(session.execute(select(Message.msgid, Message.id)).all())
    from audit.archive.media import store_blob
    from audit.store.models import MediaFile

    sha, path = store_blob(settings.media.directory, Tampered().fetch("fid-pay", None, 10**7))
    with session_scope(engine) as session:
        session.add(MediaFile(message_id=ids["i1"], sdkfileid="fid-pay", state="stored",
                              sha256=sha, path=str(path), attempts=1))  # fmt: skip
    stats = read_pictures(settings, engine, scanner)
    assert (stats.images, stats.findings, stats.failed) == (0, 0, 1)
    assert _states(engine)["i1"] == ("failed", 1)
    assert _qr_findings(engine) == {}
