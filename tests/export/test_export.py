"""QA and training exports on SQLite and PostgreSQL: masking in every format, consent,
highlights, scope, permissions and the audit log."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections.abc import Callable, Iterator

import pytest
from openpyxl import load_workbook
from openpyxl.cell.rich_text import CellRichText, TextBlock
from qa_world import CARD, DAY, EMAIL, PHONE, RAW, RESIDENT_ID, WITHHELD_PHONE, World
from sqlalchemy import Engine, select

from audit.domain import Action
from audit.export.run import FORMATS, export_packs, export_training
from audit.export.selection import PackQuery
from audit.export.training import TrainingQuery
from audit.store.access import AccessDenied, Principal, principal_by_name
from audit.store.db import session_scope
from audit.store.models import AlertState, AuditLog, Finding, Message, ScanRun, Severity


def _as(engine: Engine, username: str) -> Principal:
    with session_scope(engine) as s:
        return principal_by_name(s, username)


def _xlsx_text(data: bytes) -> str:
    wb = load_workbook(io.BytesIO(data), rich_text=True)
    return "\n".join(
        str(cell) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for cell in row
    )


def _text(fmt: str, data: bytes) -> str:
    return _xlsx_text(data) if fmt == "xlsx" else data.decode("utf-8-sig")


@pytest.mark.parametrize("fmt", FORMATS)
def test_when_exported_masked_then_no_personal_data_in_any_format(
    engine: Engine, world: World, fmt: str
) -> None:
    out = io.BytesIO()
    result = export_packs(engine, PackQuery(start=DAY), fmt, out, Principal.operator("t"))  # type: ignore[arg-type]
    text = _text(fmt, out.getvalue())
    for raw in RAW:
        assert raw not in text, f"{raw} leaked into {fmt}"
    for label in ("手机号", "身份证号", "银行卡号", "邮箱", "客户"):
        assert re.search(rf"{label}-[A-Z2-7]{{8}}", text), label
    # conversation 3 (customer refused archiving) is not there at all
    assert result.counts.conversations == 2
    assert result.counts.messages == 6
    assert result.masked


def test_when_jsonl_then_spans_point_at_masked_text_and_pseudonyms_are_consistent(
    engine: Engine, world: World
) -> None:
    out = io.BytesIO()
    export_packs(engine, PackQuery(), "jsonl", out, Principal.operator("t"))
    packs = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    assert [p["conversation_id"] for p in packs] == [world.conv1, world.conv2]
    first = packs[0]
    customer = first["customer"]
    assert re.fullmatch(r"客户-[A-Z2-7]{8}", customer) and first["staff"] == "员工1"
    texts = [m["text"] for m in first["messages"]]
    assert texts[0].startswith(f"我叫[{customer}]")  # the customer's own name, same pseudonym
    assert texts[1].startswith("[员工1]为您服务")
    assert first["messages"][0]["sender"] == customer
    for m in first["messages"]:
        for f in m["findings"]:
            assert m["text"][f["start"] : f["end"]] == f["matched"]
    assert {f["matched"][:5] for f in first["messages"][1]["findings"]} == {"[身份证号", "加我微信"}
    assert first["score"]["score"] == 35.0
    assert PHONE not in json.dumps(first["score"]["deductions"], ensure_ascii=False)
    reviews = [r for a in first["alerts"] for r in a["reviews"]]
    assert {r["to_state"] for r in reviews} == {"confirmed", "false_positive"}
    assert all(r["reviewer"] == "审核员1" for r in reviews)
    assert any("[身份证号-" in r["comment"] for r in reviews)


def test_when_xlsx_then_it_opens_with_highlighted_findings(engine: Engine, world: World) -> None:
    out = io.BytesIO()
    export_packs(engine, PackQuery(), "xlsx", out, Principal.operator("t"))
    wb = load_workbook(io.BytesIO(out.getvalue()), rich_text=True)
    assert wb.sheetnames == ["对话", "消息", "发现", "扣分", "告警", "审核"]
    ws = wb["消息"]
    header = [c.value for c in ws[1]]
    col = header.index("text")
    rich = [row[col] for row in ws.iter_rows(min_row=2) if isinstance(row[col].value, CellRichText)]
    assert len(rich) == 3  # the three messages with findings
    cell = rich[0]
    assert cell.fill.fgColor.rgb.endswith("FFF2CC")
    runs = [p for p in cell.value if isinstance(p, TextBlock)]
    assert runs and all(r.font.b for r in runs)
    assert runs[0].text.startswith("[手机号-")
    assert wb["发现"].max_row == 1 + 4
    assert wb["审核"].max_row == 1 + 2
    # one value per cell: deductions and alerts get rows of their own, never JSON
    deductions = list(wb["扣分"].iter_rows(min_row=2, values_only=True))
    assert len(deductions) == 1
    item, points, reason = deductions[0][1], deductions[0][3], deductions[0][5]
    assert (item, points) == ("privacy", -60) and reason.startswith("泄露电话[手机号-")
    alerts = list(wb["告警"].iter_rows(min_row=2, values_only=True))
    assert len(alerts) == len({a[1] for a in alerts}) >= 1
    cells = [c for row in wb["对话"].iter_rows(values_only=True) for c in row]
    assert not any(isinstance(c, str) and c.startswith(("[", "{")) for c in cells)


def test_when_csv_then_one_row_per_message_with_bom(engine: Engine, world: World) -> None:
    out = io.BytesIO()
    export_packs(engine, PackQuery(), "csv", out, Principal.operator("t"))
    assert out.getvalue().startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    assert len(rows) == 6
    assert {r["store"] for r in rows} == {"南京路店", "徐家汇店"}


def test_when_unmasked_by_compliance_then_raw_and_logged(engine: Engine, world: World) -> None:
    out = io.BytesIO()
    actor = _as(engine, "comp1")
    result = export_packs(engine, PackQuery(), "jsonl", out, actor, unmask=True, target="x.jsonl")
    text = out.getvalue().decode()
    assert PHONE in text and EMAIL in text and CARD in text and "王小明" in text
    assert WITHHELD_PHONE not in text  # unmasking never brings back refused customers
    assert not result.masked
    with session_scope(engine) as s:
        log = s.scalars(select(AuditLog).where(AuditLog.action == "export")).one()
        assert log.actor == "comp1"
        assert log.detail["masked"] is False and log.detail["conversations"] == 2
        assert log.detail["role"] == "compliance" and log.target_id == "x.jsonl"


@pytest.mark.parametrize("who", ["sup2", None])
def test_when_unmask_without_role_then_denied_and_logged(
    engine: Engine, world: World, who: str | None
) -> None:
    actor = _as(engine, who) if who else Principal.operator("cli:root")
    with pytest.raises(AccessDenied):
        export_packs(engine, PackQuery(), "csv", io.BytesIO(), actor, unmask=True)
    with session_scope(engine) as s:
        [log] = s.scalars(select(AuditLog)).all()
    assert (log.action, log.target_type) == (Action.EXPORT_DENIED.value, "export")
    assert (log.actor, log.detail["role"]) == (
        ("sup2", "supervisor") if who else ("cli:root", None)
    )


def test_when_viewer_exports_then_denied(engine: Engine, world: World) -> None:
    with pytest.raises(AccessDenied):
        export_packs(engine, PackQuery(), "csv", io.BytesIO(), _as(engine, "viewer1"))


def test_when_supervisor_exports_then_only_their_stores(engine: Engine, world: World) -> None:
    out = io.BytesIO()
    # asking for the whole region still gives only the supervisor's store
    query = PackQuery(org_unit_ids=(world.region,))
    result = export_packs(engine, query, "jsonl", out, _as(engine, "sup2"))
    packs = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    assert [p["store_code"] for p in packs] == ["S2"] and result.counts.conversations == 1


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (PackQuery(band="worst", per_store=1), ["conv1", "conv2"]),
        (PackQuery(band="best", per_store=1, org_unit_ids=None), ["conv1", "conv2"]),
        (PackQuery(categories=("diversion",)), ["conv1"]),
        (PackQuery(review_states=(AlertState.CONFIRMED,)), ["conv1"]),
        (PackQuery(start=DAY.replace(day=18)), []),
    ],
)
def test_selection_filters(
    engine: Engine, world: World, query: PackQuery, expected: list[str]
) -> None:
    out = io.BytesIO()
    export_packs(engine, query, "jsonl", out, Principal.operator("t"))
    ids = [json.loads(line)["conversation_id"] for line in out.getvalue().decode().splitlines()]
    assert ids == [getattr(world, name) for name in expected]


def test_when_training_export_then_review_labels_masked(engine: Engine, world: World) -> None:
    out = io.BytesIO()
    result = export_training(engine, TrainingQuery(), out, Principal.operator("t"))
    lines = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    assert result.counts.rows == 2
    by_label = {line["label"]: line for line in lines}
    assert set(by_label) == {"privacy.resident_id", "diversion.contact_id"}
    assert by_label["privacy.resident_id"]["value"] == 1
    assert by_label["diversion.contact_id"]["value"] == 0
    assert all(set(line) == {"text", "role", "label", "value"} for line in lines)
    assert all(line["role"] == "staff" for line in lines)
    assert RESIDENT_ID not in out.getvalue().decode()
    assert "[身份证号-" in by_label["privacy.resident_id"]["text"]
    with session_scope(engine) as s:
        log = s.scalars(select(AuditLog).where(AuditLog.action == "export")).one()
        assert log.detail["kind"] == "training" and log.detail["examples"] == 2


def test_when_exported_then_every_format_shows_the_configured_time_zone(
    engine: Engine, world: World
) -> None:
    """JSONL, CSV and XLSX give a message the same local time (the query's zone), not UTC."""
    times = {}
    for fmt in FORMATS:
        out = io.BytesIO()
        export_packs(engine, PackQuery(timezone="Asia/Shanghai"), fmt, out, Principal.operator("t"))  # type: ignore[arg-type]
        if fmt == "jsonl":
            first = json.loads(out.getvalue().decode().splitlines()[0])["messages"][0]["time"]
            times[fmt] = first
        elif fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
            times[fmt] = rows[0]["time"]
        else:
            ws = load_workbook(io.BytesIO(out.getvalue()))["消息"]
            header = [c.value for c in ws[1]]
            times[fmt] = next(ws.iter_rows(min_row=2, values_only=True))[header.index("time")]
    assert times["jsonl"] == times["csv"] and times["jsonl"].endswith("+08:00")
    assert times["xlsx"].isoformat() == times["jsonl"].removesuffix("+08:00")
    out = io.BytesIO()
    export_packs(engine, PackQuery(timezone="Europe/London"), "jsonl", out, Principal.operator("t"))
    london = json.loads(out.getvalue().decode().splitlines()[0])["messages"][0]["time"]
    assert london.endswith("+00:00") and london != times["jsonl"]


def test_when_exporting_then_progress_counts_every_conversation_against_the_total(
    engine: Engine, world: World
) -> None:
    seen: list[tuple[str, int | None, int]] = []

    @contextlib.contextmanager
    def recording(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
        done = [0]
        yield lambda n: done.__setitem__(0, done[0] + n)
        seen.append((label, total, done[0]))

    result = export_packs(
        engine,
        PackQuery(start=DAY),
        "csv",
        io.BytesIO(),
        Principal.operator("t"),
        progress=recording,
    )
    assert seen == [("export", 2, 2)] == [("export", result.counts.conversations, 2)]


def test_when_a_picture_has_findings_then_its_payload_and_text_are_masked_on_their_own(
    engine: Engine, world: World
) -> None:
    payload = "wxp://f2f0PersonalCollectionCode7x"
    with session_scope(engine) as s:
        m = s.scalars(
            select(Message).where(Message.conversation_id == world.conv1).order_by(Message.id)
        ).first()
        assert m is not None
        run_id = s.scalars(select(ScanRun.id)).first()
        for rule, category, matched, explanation, detail in (
            ("qr.payment_wechat", "diversion", payload,
             f"QR code in an image: 微信个人收款码 ({payload})", {"payload": payload}),
            ("ocr.privacy.phone", "privacy", PHONE,
             f"text read in an image: mobile {PHONE}", {"text": f"手机：{PHONE}"}),
        ):  # fmt: skip
            s.add(
                Finding(message_id=m.id, conversation_id=world.conv1, scan_run_id=run_id,
                        category=category, rule=rule, severity=Severity.HIGH, start=3,
                        end=3 + len(matched), matched=matched, explanation=explanation,
                        detail={"source": rule[:rule.index(".")], "box": [0, 0, 9, 9], **detail})
            )  # fmt: skip
    shown: dict[bool, dict[str, dict[str, str]]] = {}
    for unmask, actor in ((False, Principal.operator("t")), (True, _as(engine, "comp1"))):
        out = io.BytesIO()
        export_packs(engine, PackQuery(), "jsonl", out, actor, unmask=unmask)
        text = out.getvalue().decode()
        assert (payload in text, PHONE in text) == (unmask, unmask)
        [first] = [
            p for p in map(json.loads, text.splitlines()) if p["conversation_id"] == world.conv1
        ]
        shown[unmask] = {f["rule"]: f for msg in first["messages"] for f in msg["findings"]}
        for fmt in ("xlsx", "csv"):  # the other formats too
            other = io.BytesIO()
            export_packs(engine, PackQuery(), fmt, other, actor, unmask=unmask)
            assert (payload in _text(fmt, other.getvalue())) == unmask
    qr, ocr = shown[False]["qr.payment_wechat"], shown[False]["ocr.privacy.phone"]
    assert re.fullmatch(r"\[二维码内容-[A-Z2-7]{8}\]", qr["matched"])
    assert qr["explanation"] == f"QR code in an image: 微信个人收款码 ({qr['matched']})"
    assert ocr["matched"].startswith("[手机号-") and PHONE not in ocr["explanation"]
    assert shown[True]["qr.payment_wechat"]["matched"] == payload
    assert (qr["start"], qr["end"]) == (3, 3 + len(payload))  # into the payload, as recorded
