"""The image stage reads the pictures of every source: the official SDK's GetMediaData (here
the SDK stand-in built from tests/standin_sdk.c, loaded as the binary is), and, for an
exported archive file, what ``audit media`` downloaded; a picture not downloaded waits in the
backlog. QR-only pictures (OCR off) keep these fast."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from simfixtures import chat, write_file_archive
from sqlalchemy import Engine, func, select
from standin_sdk import CUSTOMER, EXPECTED, PICTURES, STAFF, StandInArchive, md5, standin_archive

from audit.archive.keys import KeyRing, load_private_key
from audit.archive.media import download_media
from audit.archive.sources import FileSource
from audit.cli import cli
from audit.config import Settings, load_settings
from audit.images.status import image_status
from audit.pipeline import load_scanner, read_pictures, run
from audit.scan.scanner import Scanner
from audit.store.db import make_engine, session_scope
from audit.store.models import Finding, MediaFile, Message, MessageImage, ScanRun


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


def _ingest(engine: Engine, tmp_path: Path, scanner: Scanner, settings: Settings) -> StandInArchive:
    """The stand-in's archive, pulled from its file (``audit media`` would download only the
    flagged conversation's picture, i1's)."""
    served = standin_archive(tmp_path / "wecom")
    keys = KeyRing({1: load_private_key(served.key)})
    run(settings, engine, FileSource(served.archive), keys, scanner)
    return served


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


def _no_images(settings: Settings) -> Settings:
    images = settings.images.model_copy(update={"enabled": False})
    return settings.model_copy(update={"images": images})


def _sdk(tmp_path: Path, served: StandInArchive, library: Path, **archive: Any) -> Settings:
    """Settings of the sdk source served by the stand-in (``archive`` overrides them)."""
    env = served.env(library)
    given = {
        "source": "sdk",
        "corpid": env["AUDIT_ARCHIVE__CORPID"],
        "secret": env["AUDIT_ARCHIVE__SECRET"],
        "sdk_library": str(library),
        "timeout": 1,
    }
    return _settings(tmp_path, **{**given, **archive})


def _serve(monkeypatch: pytest.MonkeyPatch, served: StandInArchive, library: Path) -> None:
    for name, value in served.env(library).items():
        if name.startswith("STANDIN_"):
            monkeypatch.setenv(name, value)


def test_sdk_source_reads_pictures_through_get_media_data(
    engine: Engine,
    tmp_path: Path,
    scanner: Scanner,
    standin_sdk: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served = _ingest(engine, tmp_path, scanner, _no_images(_settings(tmp_path, source="file")))
    _serve(monkeypatch, served, standin_sdk)
    # no credentials: the stage says what to set; nothing failed, both pictures wait
    stats = read_pictures(_sdk(tmp_path, served, standin_sdk, secret=""), engine, scanner)
    assert stats.error is not None and "archive.corpid and archive.secret" in stats.error
    assert (stats.images, stats.failed, stats.skipped, stats.backlog) == (0, 0, 0, 2)
    assert _states(engine) == {}
    # credentials the SDK refuses: one error for the stage, not one failure per picture
    refused = _sdk(tmp_path, served, standin_sdk, secret="wrong-secret")
    stats = read_pictures(refused, engine, scanner)
    assert stats.error is not None and "10004" in stats.error and stats.backlog == 2
    assert _states(engine) == {}

    stats = read_pictures(_sdk(tmp_path, served, standin_sdk), engine, scanner)
    assert stats.error is None
    assert (stats.images, stats.qr_decoded, stats.findings, stats.failed, stats.backlog) == (
        2, 2, 2, 0, 0,
    )  # fmt: skip
    assert _qr_findings(engine) == EXPECTED
    assert _states(engine) == {"i1": ("read", 1), "i2": ("read", 1)}
    for _payload, data in PICTURES.values():  # stored by content hash
        sha = hashlib.sha256(data).hexdigest()
        assert (tmp_path / "media" / sha[:2] / sha).read_bytes() == data


def test_sdk_download_that_fails_its_md5_is_retried_not_read(
    engine: Engine,
    tmp_path: Path,
    scanner: Scanner,
    standin_sdk: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served = _ingest(engine, tmp_path, scanner, _no_images(_settings(tmp_path, source="file")))
    pay = PICTURES["fid-pay"][1]
    (served.media / "fid-pay").write_bytes(pay[:-1] + bytes([pay[-1] ^ 0xFF]))
    (served.media / "fid-group").unlink()  # the service does not know it (10005)
    _serve(monkeypatch, served, standin_sdk)
    settings = _sdk(tmp_path, served, standin_sdk)
    stats = read_pictures(settings, engine, scanner)
    assert stats.error is None and (stats.images, stats.findings, stats.failed) == (0, 0, 1)
    states = _states(engine)
    assert states["i1"] == ("failed", 1)  # md5 mismatch: retried on the next run
    assert states["i2"] == ("skipped", 1)  # a bad sdkfileid is final
    assert _qr_findings(engine) == {}
    (served.media / "fid-pay").write_bytes(pay)  # the next run's download is whole
    stats = read_pictures(settings, engine, scanner)
    assert (stats.images, stats.findings, stats.failed, stats.backlog) == (1, 1, 0, 0)
    assert _qr_findings(engine) == {"i1": EXPECTED["i1"]}


def test_audit_run_on_the_sdk_source_reads_its_pictures(
    db_url: str, tmp_path: Path, standin_sdk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = standin_archive(tmp_path / "wecom")
    for name, value in served.env(standin_sdk).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AUDIT_MEDIA__DIRECTORY", str(tmp_path / "media"))
    monkeypatch.setenv("AUDIT_IMAGES__OCR", "off")
    monkeypatch.setenv("AUDIT_IMAGES__WORKERS", "1")
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", db_url, "run"])
    assert result.exit_code == 0, result.output
    assert "images        2 read (2 new contents, 2 with QR, 0 OCR), 2 findings, backlog 0" in (
        result.output
    )
    result = runner.invoke(cli, ["--db", db_url, "status", "--json"])
    assert result.exit_code == 0, result.output
    images = json.loads(result.output)["images"]
    assert images == {"total": 2, "qr_decoded": 2, "ocr_read": 0, "findings": 2, "backlog": 0}
    engine = make_engine(db_url)
    try:
        assert _qr_findings(engine) == EXPECTED
    finally:
        engine.dispose()


def test_file_source_reads_the_pictures_audit_media_downloaded(
    engine: Engine,
    tmp_path: Path,
    scanner: Scanner,
    standin_sdk: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(tmp_path, source="file")
    served = _ingest(engine, tmp_path, scanner, settings)  # its image stage: none downloaded
    assert _states(engine) == {"i1": ("waiting", 0), "i2": ("waiting", 0)}
    assert _qr_findings(engine) == {}
    _serve(monkeypatch, served, standin_sdk)

    from audit.pipeline import fetch_media

    media = fetch_media(_sdk(tmp_path, served, standin_sdk), engine)  # audit media
    assert media.stored == 1  # only the flagged conversation's picture
    stats = read_pictures(settings, engine, scanner)
    assert stats.error is None
    assert (stats.images, stats.findings, stats.waiting, stats.failed, stats.backlog) == (
        1, 1, 1, 0, 1,
    )  # fmt: skip
    assert _qr_findings(engine) == {"i1": EXPECTED["i1"]}
    assert _states(engine) == {"i1": ("read", 1), "i2": ("waiting", 0)}
    with session_scope(engine) as session:
        assert image_status(session)["backlog"] == 1  # audit status: i2 still to read
        runs = session.scalar(select(func.count()).where(ScanRun.mode == "images"))
    assert runs == 2

    # downloaded later: read on the next run, no attempt spent while it waited
    from audit.archive.sdk_worker import SdkMediaFetcher
    from audit.pipeline import sdk_client

    with sdk_client(_sdk(tmp_path, served, standin_sdk), "test") as client:
        download_media(engine, SdkMediaFetcher(client), settings.media.directory, 10**7,
                       only_flagged=False)  # fmt: skip
    stats = read_pictures(settings, engine, scanner)
    assert (stats.images, stats.findings, stats.waiting, stats.backlog) == (1, 1, 0, 0)
    assert _qr_findings(engine) == EXPECTED
    assert _states(engine) == {"i1": ("read", 1), "i2": ("read", 1)}


def test_file_source_checks_a_stored_picture_against_the_message(
    engine: Engine, tmp_path: Path, scanner: Scanner
) -> None:
    """A file in the media store that is not the message's picture (md5) is not read."""
    settings = _settings(tmp_path, source="file")
    _ingest(engine, tmp_path, scanner, settings)
    from audit.archive.media import store_blob
    from audit.store.models import MediaFile

    with session_scope(engine) as session:
        ids = dict(session.execute(select(Message.msgid, Message.id)).all())
    sha, path = store_blob(settings.media.directory, PICTURES["fid-group"][1])  # not fid-pay's
    with session_scope(engine) as session:
        session.add(MediaFile(message_id=ids["i1"], sdkfileid="fid-pay", state="stored",
                              sha256=sha, path=str(path), attempts=1))  # fmt: skip
    stats = read_pictures(settings, engine, scanner)
    assert (stats.images, stats.findings, stats.failed) == (0, 0, 1)
    assert _states(engine)["i1"] == ("failed", 1)
    assert _qr_findings(engine) == {}


def _item(kind: str, fileid: str) -> dict[str, Any]:
    """A picture item of a mixed message (``image``) or a chat record (``ChatRecordImage``)."""
    data = PICTURES[fileid][1]
    content = {"md5sum": md5(data), "filesize": len(data), "sdkfileid": fileid}
    return {"type": kind, "content": json.dumps(content)}


def test_audit_media_downloads_every_picture_of_a_mixed_message_and_a_chat_record(
    engine: Engine,
    tmp_path: Path,
    scanner: Scanner,
    standin_sdk: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An archive file's pictures inside a mixed message and a forwarded chat record are
    downloaded one by one (a row per item) and then read, each once."""
    served = standin_archive(tmp_path / "wecom")  # its media service and key
    text = {"type": "text", "content": json.dumps({"content": "看图"})}
    plains = [
        chat("t1", STAFF, CUSTOMER, 0, "加我私人微信，发你照片"),
        chat("m1", STAFF, CUSTOMER, 1, msgtype="mixed",
             item=[text, _item("image", "fid-pay"), _item("image", "fid-group")]),
        chat("c1", STAFF, CUSTOMER, 2, msgtype="chatrecord", title="聊天记录",
             item=[_item("ChatRecordImage", "fid-group")]),
    ]  # fmt: skip
    archive, key = write_file_archive(tmp_path / "mine", plains)
    settings = _settings(tmp_path, source="file")
    run(settings, engine, FileSource(archive), KeyRing({1: load_private_key(key)}), scanner)
    assert _states(engine) == {"m1": ("waiting", 0), "c1": ("waiting", 0)}
    _serve(monkeypatch, served, standin_sdk)

    from audit.archive.sdk_worker import SdkMediaFetcher
    from audit.pipeline import sdk_client

    with sdk_client(_sdk(tmp_path, served, standin_sdk), "test") as client:
        fetcher = SdkMediaFetcher(client)
        first = download_media(engine, fetcher, settings.media.directory, 10**7)
        again = download_media(engine, fetcher, settings.media.directory, 10**7)
    assert (first.stored, first.failed, again.stored + again.failed) == (3, 0, 0)
    with session_scope(engine) as session:
        rows = session.execute(
            select(Message.msgid, MediaFile.item, MediaFile.sdkfileid, MediaFile.state).join(
                Message, Message.id == MediaFile.message_id
            )
        ).all()
    assert sorted(rows) == [
        ("c1", 0, "fid-group", "stored"),
        ("m1", 1, "fid-pay", "stored"),
        ("m1", 2, "fid-group", "stored"),
    ]
    stats = read_pictures(settings, engine, scanner)
    assert (stats.error, stats.waiting, stats.failed, stats.backlog) == (None, 0, 0, 0)
    with session_scope(engine) as session:
        found = session.execute(
            select(Message.msgid, Finding.rule)
            .join(Message, Message.id == Finding.message_id)
            .where(Finding.rule.startswith("qr."))
        ).all()
    assert sorted(found) == [
        ("c1", "qr.group_invite"),
        ("m1", "qr.group_invite"),
        ("m1", "qr.payment_wechat"),
    ]
