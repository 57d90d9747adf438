"""Picture findings judged against a picture truth file (``audit eval --simulated``), on a
chain with hand-placed picture findings: what is found, missed, a false alarm, not read.

(The same report on a simulated archive read by the real stage is checked at the end of
``test_images.py::test_stage_records_findings_with_boxes``.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from seed_chain import seed_chain
from sqlalchemy import Engine, select

from audit.archive.simulator.pictures import IMAGE_TRUTH_FILE
from audit.images.evaluate import ImageTruthError, image_truth_report, load_image_truth
from audit.store.db import session_scope
from audit.store.models import Finding, Message, MessageImage, ScanRun, Severity

# msgid, item, kind, category, stage state, findings (rule, category)
PICTURES: list[tuple[str, int, str, str | None, str | None, list[tuple[str, str]]]] = [
    ("msg1", 0, "personal_qr", "diversion", "read", [("qr.personal_contact", "diversion")]),
    ("msg1", 1, "pay_alipay", "diversion", "read", []),  # missed
    ("msg2", 0, "shot_id", "privacy", "read",
     [("ocr.privacy.resident_id", "privacy"), ("ocr.complaint.12300", "complaint")]),
    ("msg3", 0, "bill", None, "read", [("ocr.complaint.12300", "complaint")]),  # the price
    ("msg4", 0, "official_qr", None, "read", [("qr.official_account", "diversion")]),
    ("msg5", 0, "photo", None, "read", []),
    ("msg6", 0, "shot_bank", "privacy", "read", [("qr.other", "privacy")]),  # wrong reader
    ("msg7", 0, "shot_phone", "privacy", "failed", []),  # download to retry: not judged
    ("msg99", 0, "group_qr", "diversion", None, []),  # not in the database
]  # fmt: skip


def _seed(engine: Engine, directory: Path) -> Path:
    seed_chain(engine)
    with session_scope(engine) as s:
        run_id = s.scalars(select(ScanRun.id)).first()
        messages = {m.msgid: m for m in s.scalars(select(Message))}
        for msgid, item, _kind, _category, state, findings in PICTURES:
            if state is None:
                continue
            m = messages[msgid]
            s.add(MessageImage(message_id=m.id, item=item, state=state, sha256="0" * 64))
            for rule, category in findings:
                s.add(
                    Finding(
                        message_id=m.id,
                        conversation_id=m.conversation_id,
                        scan_run_id=run_id,
                        category=category,
                        rule=rule,
                        severity=Severity.HIGH,
                        start=0,
                        end=1,
                        matched="x",
                        explanation="",
                        detail={"source": rule.split(".")[0], "box": [0, 0, 1, 1], "item": item},
                    )
                )
    directory.mkdir(exist_ok=True)
    rows = [
        {"msgid": m, "item": i, "kind": k, "category": c, "role": "staff", "content": ""}
        for m, i, k, c, *_ in PICTURES
    ]
    (directory / IMAGE_TRUTH_FILE).write_text(
        "".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8"
    )
    return directory


def test_pictures_are_judged_found_missed_or_false_alarm(engine: Engine, tmp_path: Path) -> None:
    report = image_truth_report(engine, _seed(engine, tmp_path / "sim"))

    rows = {
        k.kind: (k.pictures, k.found, k.false_alarms, dict(k.alarm_categories))
        for k in report.kinds
        if k.pictures
    }
    assert rows == {
        "personal_qr": (1, 1, 0, {}),
        "pay_alipay": (1, 0, 0, {}),
        "shot_id": (1, 1, 1, {"complaint": 1}),
        "bill": (1, 0, 1, {"complaint": 1}),
        "official_qr": (1, 0, 1, {"diversion": 1}),
        "photo": (1, 0, 0, {}),
        "shot_bank": (1, 0, 0, {}),  # a privacy finding, but not read by OCR
    }
    assert (report.pictures, report.unread) == (9, 2)
    summary = report.summary()
    assert (summary["qr_codes"].found, summary["qr_codes"].pictures) == (1, 2)
    assert summary["own_codes"].false_alarms == 1
    assert (summary["screenshots"].found, summary["screenshots"].recall) == (1, 0.5)
    assert (summary["ordinary"].false_alarms, summary["ordinary"].pictures) == (1, 2)
    data: dict[str, Any] = report.as_dict()
    assert data["summary"]["ordinary"]["false_alarm_rate"] == 0.5
    assert data["kinds"]["shot_id"]["false_alarm_categories"] == {"complaint": 1}
    assert (data["read"], data["unread"]) == (7, 2)
    text = report.format()
    assert "QR personal contact, group and payment codes: recall 50.0% (1/2)" in text
    assert "the operator's own codes flagged: 1 of 1" in text
    assert "ordinary pictures with a finding (false alarms): 1 of 2 (50.0%): complaint 1" in text


def test_when_the_picture_truth_is_missing_or_bad_then_it_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ImageTruthError, match="no picture truth here"):
        load_image_truth(tmp_path)
    (tmp_path / IMAGE_TRUTH_FILE).write_text(
        '{"msgid": "a", "item": 0, "kind": "photo", "category": null}\n{"msgid": "b"}\n'
    )
    with pytest.raises(ImageTruthError, match=r"image_truth.jsonl:2: bad line"):
        load_image_truth(tmp_path)
