"""The image stage on real pictures drawn by the simulator, read by the real QR decoder and
OCR model: QR codes classified, privacy numbers in screenshots found, nothing on ordinary
pictures, findings stored with their box, and the contracts (status, inspect)."""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from audit.archive import simulator
from audit.archive.simulator.pictures import (
    IMAGE_TRUTH_FILE,
    KINDS,
    MEDIA_DIR,
    SimulatedMediaFetcher,
    _content,
    render,
)
from audit.archive.sources import SimulatedServer
from audit.cli import cli
from audit.config import ImagesConfig, SimulatorConfig, load_settings
from audit.images.qr import classify, decode
from audit.images.read import ImageReading, image_findings, read_image
from audit.images.stage import ImagePolicy, read_images
from audit.pipeline import analyse, ingest, load_scanner
from audit.reports.status import status
from audit.scan.inspect import inspect_stream
from audit.scan.scanner import Scanner
from audit.store.db import session_scope
from audit.store.models import Finding, Message, MessageImage

pytestmark = pytest.mark.slow  # long-running: scheduled first (tests/conftest.py)

ALLOW = tuple(ImagesConfig().allow_payloads)
QR_KINDS = {
    "personal_qr": "personal_contact",
    "group_qr": "group_invite",
    "pay_wechat": "payment_wechat",
    "pay_alipay": "payment_alipay",
    "official_qr": "allowed",
    "wecom_qr": "allowed",
}
PRIVACY = {"shot_phone": "privacy.phone", "shot_id": "privacy.resident_id",
           "shot_bank": "privacy.bank_card"}  # fmt: skip
SIM = SimulatorConfig(
    seed=5, regions=1, cities_per_region=1, stores=2, staff_per_store=3,
    customers_per_staff=5, days=1, messages=700, key_bits=1024,
)  # fmt: skip


def _picture(kind: str, variant: int = 0) -> tuple[str, bytes]:
    key, content = _content(kind, random.Random(f"test:{kind}:{variant}"))
    return content, render(kind, key, content)


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return load_scanner(load_settings(None, environ={}))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pictures")
    simulator.simulate(SIM, out, workers=1)
    return out


def _truth(archive: Path) -> list[dict[str, Any]]:
    with (archive / IMAGE_TRUTH_FILE).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.mark.parametrize("kind", sorted(QR_KINDS))
def test_every_qr_code_is_decoded_and_classified(kind: str) -> None:
    for variant in range(3):
        payload, data = _picture(kind, variant)
        codes = decode(_grey(data))
        assert [c.payload for c in codes] == [payload]
        assert classify(payload, ALLOW).kind == QR_KINDS[kind]
        left, top, right, bottom = codes[0].box
        assert 20 <= left < right <= 340 and 30 <= top < bottom <= 450  # on the card's code


def _grey(data: bytes):  # type: ignore[no-untyped-def]
    import cv2
    import numpy as np

    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)


def test_ordinary_pictures_carry_no_qr_code() -> None:
    for kind in ("photo", "plan_page", "bill", "shot_phone"):
        assert read_image(_picture(kind)[1], ocr=False).qr == ()


def test_ocr_finds_the_numbers_in_screenshots(scanner: Scanner) -> None:
    for kind, rule in PRIVACY.items():
        number, data = _picture(kind)
        found = image_findings(read_image(data), scanner, "staff", ALLOW)
        assert [(f.finding.rule, f.finding.matched) for f in found] == [("ocr." + rule, number)]
        detail = found[0].detail
        assert detail["source"] == "ocr" and number in detail["text"].replace(" ", "")
        left, top, right, bottom = detail["box"]
        assert 0 <= left < right <= 360 and 56 < top < bottom < 640


def test_ocr_reads_ordinary_pictures_without_findings(scanner: Scanner) -> None:
    for kind in ("plan_page", "bill", "photo"):
        reading = read_image(_picture(kind)[1])
        assert reading.lines is not None
        assert image_findings(reading, scanner, "staff", ALLOW) == []
    plan = read_image(_picture("plan_page")[1])
    assert "套餐详情" in plan.text  # the model really read the page


def test_simulated_pictures_are_files_served_by_sdkfileid(archive: Path) -> None:
    truth = _truth(archive)
    assert len(truth) >= 8
    fetcher = SimulatedMediaFetcher(archive)
    assert sorted(set(fetcher.index.values())) == sorted({str(t["sha256"]) for t in truth})
    for sdkfileid, sha in fetcher.index.items():
        data = fetcher.fetch(sdkfileid, None, 10 * 1024 * 1024)
        assert hashlib.sha256(data).hexdigest() == sha
    assert (archive / MEDIA_DIR / "index.json").is_file()
    from audit.archive.media import MediaError

    with pytest.raises(MediaError, match="unknown sdkfileid"):
        fetcher.fetch("Ctnope", None, 1000)


def test_simulated_pictures_are_deterministic(archive: Path, tmp_path: Path) -> None:
    again = simulator.simulate(SIM, tmp_path / "again", workers=1)
    assert (tmp_path / "again" / IMAGE_TRUTH_FILE).read_bytes() == (
        archive / IMAGE_TRUTH_FILE
    ).read_bytes()
    manifest = json.loads((archive / simulator.MANIFEST_FILE).read_text("utf-8"))
    assert again.pictures == manifest["pictures"] == len(_truth(archive))


def test_stage_records_findings_with_boxes(engine: Engine, archive: Path, tmp_path: Path) -> None:
    settings = load_settings(
        None,
        environ={},
        overrides={
            "archive": {"workers": 1, "simulator_dir": str(archive)},
            "media": {"directory": str(tmp_path / "media")},
            "images": {"workers": 1},
        },
    )
    keys = simulator.key_files(archive)
    from audit.pipeline import load_keys

    report = ingest(settings, engine, SimulatedServer(archive), load_keys(settings, keys))
    report = analyse(settings, engine, load_scanner(settings), report=report)
    with session_scope(engine) as session:
        ids = {m: i for m, i in session.execute(select(Message.msgid, Message.id))}
        # the customer refused archiving, or no conversation: kept, not read
        unread = set(
            session.scalars(
                select(Message.id).where(
                    Message.consent_withheld.is_(True) | Message.conversation_id.is_(None)
                )
            )
        )
        read = {(r.message_id, r.item): r for r in session.scalars(select(MessageImage))}
        found = session.scalars(select(Finding).where(Finding.detail.is_not(None))).all()
        st = status(session)
    truth = _truth(archive)
    by_message: dict[int, list[Finding]] = {}
    for f in found:
        by_message.setdefault(f.message_id, []).append(f)
    expected_findings = 0
    assert len([t for t in truth if ids[str(t["msgid"])] in unread]) < len(truth) / 2
    for t in truth:
        mid = ids[str(t["msgid"])]
        if mid in unread:
            assert (mid, t["item"]) not in read and mid not in by_message
            continue
        assert read[(mid, t["item"])].state == "read"
        assert read[(mid, t["item"])].sha256 == t["sha256"]
        rules = sorted(f.rule for f in by_message.get(mid, []))
        kind = str(t["kind"])
        if kind in PRIVACY and t["role"] == "staff":
            assert rules == ["ocr." + PRIVACY[kind]]
        elif kind in QR_KINDS and QR_KINDS[kind] != "allowed":
            assert rules == ["qr." + QR_KINDS[kind]]
            (f,) = by_message[mid]
            assert f.matched == t["content"] and f.detail is not None
            assert f.detail["payload"] == t["content"] and f.detail["source"] == "qr"
        else:
            assert rules == [], kind
        expected_findings += len(rules)
    assert report.images.findings == expected_findings > 0
    seen = [t for t in truth if ids[str(t["msgid"])] not in unread]
    assert st["images"] == {
        "total": len(seen),
        "qr_decoded": sum(str(t["kind"]) in QR_KINDS for t in seen),
        "ocr_read": len(seen),
        "findings": expected_findings,
        "backlog": 0,
    }
    # `audit eval --simulated` judges the same pictures by the picture truth: all found,
    # no false alarm (as checked picture by picture above)
    db = engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        cli, ["--db", db, "eval", "--simulated", str(archive), "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    judged = json.loads(result.stdout)["simulated_images"]
    kinds = Counter(str(t["kind"]) for t in seen)
    assert (judged["read"], judged["unread"]) == (len(seen), len(truth) - len(seen))
    assert {k: row["pictures"] for k, row in judged["kinds"].items() if row["pictures"]} == kinds
    for kind, row in judged["kinds"].items():
        violation = kind in PRIVACY or QR_KINDS.get(kind, "allowed") != "allowed"
        assert row["found"] == (kinds[kind] if violation else 0), kind
        assert row["false_alarms"] == 0, kind
    summary = judged["summary"]
    flagged_codes = [k for k, kind in QR_KINDS.items() if kind != "allowed"]
    for group, members in (("qr_codes", flagged_codes), ("screenshots", list(PRIVACY))):
        pictures = sum(kinds[k] for k in members)
        assert summary[group]["pictures"] == pictures
        assert summary[group]["recall"] == (1.0 if pictures else None)
    assert summary["qr_codes"]["pictures"] > 0
    assert summary["ordinary"]["pictures"] > 0 and summary["own_codes"]["false_alarms"] == 0
    # a full rescan of the text leaves the pictures' findings alone
    analyse(settings, engine, load_scanner(settings), full_scan=True)
    with session_scope(engine) as session:
        kept = session.scalars(select(Finding.id).where(Finding.detail.is_not(None))).all()
    assert sorted(kept) == sorted(f.id for f in found)
    # a second run reads nothing again
    again = read_images(
        engine,
        SimulatedMediaFetcher(archive),
        load_scanner(settings),
        ImagePolicy(directory=tmp_path / "media", allow=ALLOW),
    )
    assert (again.messages, again.contents, again.findings) == (0, 0, 0)


def test_inspect_takes_image_lines(scanner: Scanner, tmp_path: Path) -> None:
    payload, data = _picture("pay_wechat")
    path = tmp_path / "pay.png"
    path.write_bytes(data)
    lines = [
        json.dumps({"id": "a", "image": str(path), "role": "staff"}),
        json.dumps({"id": "b", "image": str(tmp_path / "missing.png")}),
        json.dumps({"id": "c", "image": str(path), "role": "customer"}),
    ]
    out = io.StringIO()
    stats = inspect_stream(lines, out, scanner, image_allow=ALLOW)
    a, b, c = (json.loads(line) for line in out.getvalue().splitlines())
    assert (stats.ok, stats.errors, stats.findings) == (2, 1, 1)
    (finding,) = a["findings"]
    assert finding["rule"] == "qr.payment_wechat" and finding["category"] == "diversion"
    assert finding["matched"] == payload and finding["payload"] == payload
    assert (finding["start"], finding["end"]) == (0, len(payload))
    assert a["qr"] == [{"payload": payload, "kind": "payment_wechat", "box": finding["box"]}]
    assert b["id"] == "b" and b["error"].startswith("line 2: image ")
    assert c["findings"] == []  # a customer's own code is no diversion


def test_all_kinds_have_a_picture() -> None:
    assert set(KINDS) == set(QR_KINDS) | set(PRIVACY) | {"photo", "plan_page", "bill"}


# A bill the simulator draws with the monthly fee 「套餐月费 ¥123.00」 (the layout's key picks it)
PRICE_BILL_KEY = "price:10"


@pytest.fixture(scope="module")
def price_bill() -> ImageReading:
    return read_image(render("bill", PRICE_BILL_KEY, ""))


def test_the_price_bill_shows_123_00(price_bill: ImageReading) -> None:
    assert "套餐月费" in price_bill.text and "123.00" in price_bill.text


def test_a_price_read_in_a_customers_bill_is_no_complaint(
    price_bill: ImageReading, scanner: Scanner
) -> None:
    found = image_findings(price_bill, scanner, "customer", ALLOW)
    assert [f.finding.matched for f in found if f.finding.category == "complaint"] == []
