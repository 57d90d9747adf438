"""XLSX for trainers: six sheets, findings highlighted where they are in the text.

- 对话 (conversations): store, staff, customer, times, score, and how many deductions and
  alerts it has;
- 消息 (messages): the transcript, one row per message; a message with findings has its text
  cell filled and the matched spans in bold red (rich text runs), so the sheet reads like the
  dashboard;
- 发现 (findings): one row per finding with its span and explanation;
- 扣分 (deductions): one row per scorecard deduction;
- 告警 (alerts): one row per alert with its state and title;
- 审核 (reviews): the reviewers' judgements and comments.

Every cell holds one value: nothing is JSON for a trainer to decode. Text that starts like a
formula is written as a string cell, never a formula (openpyxl would store any string
beginning with ``=`` as one; see :mod:`audit.export.formulas`).

The workbook is written in openpyxl's write-only mode: rows go to temporary files as they
come, so a 100,000-message export needs no more memory than a small one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, BinaryIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont
from openpyxl.styles import Font, PatternFill
from openpyxl.utils.cell import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.worksheet import Worksheet

from audit.days import DEFAULT_ZONE, zone
from audit.export.counts import Counts
from audit.export.formulas import starts_like_formula
from audit.export.packs import Pack, PackFinding
from audit.images import is_image_rule

CELL_LIMIT = 32_000  # Excel holds 32,767 characters in a cell
FINDING_FILL = PatternFill("solid", fgColor="FFF2CC")
HEADER_FONT = Font(bold=True)
SEVERITY_COLOR = {"critical": "C00000", "high": "C00000", "medium": "C55A11", "low": "7F6000"}
_ILLEGAL = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])

SHEETS: dict[str, tuple[tuple[str, int], ...]] = {
    "对话": (
        ("conversation_id", 14),
        ("store_code", 10),
        ("store", 14),
        ("staff", 10),
        ("customer", 10),
        ("started_at", 18),
        ("ended_at", 18),
        ("messages", 9),
        ("score", 7),
        ("deductions", 10),
        ("alerts", 8),
    ),
    "消息": (
        ("conversation_id", 14),
        ("message_id", 12),
        ("time", 18),
        ("sender_kind", 9),
        ("sender", 10),
        ("msgtype", 8),
        ("text", 80),
        ("findings", 30),
    ),
    "发现": (
        ("conversation_id", 14),
        ("message_id", 12),
        ("category", 10),
        ("rule", 22),
        ("severity", 8),
        ("start", 6),
        ("end", 6),
        ("matched", 16),
        ("explanation", 50),
    ),
    "扣分": (
        ("conversation_id", 14),
        ("item", 16),
        ("label", 20),
        ("points", 7),
        ("fatal", 6),
        ("reason", 60),
    ),
    "告警": (
        ("conversation_id", 14),
        ("alert_id", 10),
        ("category", 10),
        ("severity", 8),
        ("state", 12),
        ("title", 60),
        ("reviews", 8),
    ),
    "审核": (
        ("conversation_id", 14),
        ("alert_id", 10),
        ("category", 10),
        ("severity", 8),
        ("state", 12),
        ("at", 18),
        ("reviewer", 10),
        ("action", 12),
        ("from_state", 12),
        ("to_state", 12),
        ("comment", 50),
    ),
}


def _clean(text: str) -> str:
    return text.translate(_ILLEGAL)[:CELL_LIMIT]


def _text_cell(ws: WriteOnlyWorksheet | Worksheet, text: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"  # a string cell: Excel shows it, never evaluates it
    return cell


def _append(ws: WriteOnlyWorksheet, row: list[Any]) -> None:
    """``ws.append`` with every formula-like string kept as text."""
    ws.append(
        [_text_cell(ws, v) if isinstance(v, str) and starts_like_formula(v) else v for v in row]
    )


def highlighted(
    ws: WriteOnlyWorksheet | Worksheet, text: str, findings: Iterable[PackFinding]
) -> Any:
    """A text cell with the finding spans as bold coloured runs, filled when it has any."""
    text = _clean(text)
    marks: list[str | None] = [None] * len(text)  # severity per character
    order = {"low": 1, "medium": 2, "high": 3, "critical": 4}
    for f in findings:
        if is_image_rule(f.rule):  # its span is in the text read in a picture, not this one
            continue
        for i in range(max(0, f.start), min(len(text), f.end)):
            current = marks[i]
            if current is None or order.get(f.severity, 0) > order.get(current, 0):
                marks[i] = f.severity
    if not any(marks):
        return _text_cell(ws, text)
    cell = WriteOnlyCell(ws)
    parts: list[str | TextBlock] = []
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or marks[i] != marks[start]:
            piece = text[start:i]
            severity = marks[start]
            if severity is None:
                parts.append(piece)
            else:
                color = "FF" + SEVERITY_COLOR.get(severity, "C00000")
                parts.append(TextBlock(InlineFont(b=True, color=color), piece))
            start = i
    cell.value = CellRichText(parts)
    cell.fill = FINDING_FILL
    return cell


def _header(ws: WriteOnlyWorksheet, columns: tuple[tuple[str, int], ...]) -> None:
    for i, (_, width) in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    row = []
    for name, _ in columns:
        cell = WriteOnlyCell(ws, value=name)
        cell.font = HEADER_FONT
        row.append(cell)
    ws.append(row)


def write_xlsx(packs: Iterable[Pack], out: BinaryIO, timezone: str = DEFAULT_ZONE) -> Counts:
    tz = zone(timezone)

    def local(value: dt.datetime) -> dt.datetime:  # Excel has no time zones: local wall time
        return value.astimezone(tz).replace(tzinfo=None)

    wb = Workbook(write_only=True)
    sheets = {name: wb.create_sheet(name) for name in SHEETS}
    for name, ws in sheets.items():
        _header(ws, SHEETS[name])
    conversations, messages, findings, deductions, alerts, reviews = sheets.values()
    counts = Counts()
    for pack in packs:
        pack_deductions = pack.score.deductions if pack.score is not None else []
        _append(
            conversations,
            [
                pack.conversation_id,
                pack.store_code,
                pack.store,
                pack.staff,
                pack.customer,
                local(pack.started_at),
                local(pack.ended_at),
                len(pack.messages),
                None if pack.score is None else pack.score.score,
                len(pack_deductions),
                len(pack.alerts),
            ],
        )
        for d in pack_deductions:
            _append(
                deductions,
                [
                    pack.conversation_id,
                    d.get("item", ""),
                    _clean(str(d.get("label", ""))),
                    d.get("points"),
                    "是" if d.get("fatal") else "",
                    _clean(str(d.get("reason", ""))),
                ],
            )
        for m in pack.messages:
            _append(
                messages,
                [
                    pack.conversation_id,
                    m.id,
                    local(m.time),
                    m.sender_kind,
                    m.sender,
                    m.msgtype,
                    highlighted(messages, m.text, m.findings),
                    ", ".join(f.rule for f in m.findings),
                ],
            )
            counts.rows += 1
            for f in m.findings:
                _append(
                    findings,
                    [
                        pack.conversation_id,
                        m.id,
                        f.category,
                        f.rule,
                        f.severity,
                        f.start,
                        f.end,
                        _clean(f.matched),
                        _clean(f.explanation),
                    ],
                )
        for a in pack.alerts:
            _append(
                alerts,
                [
                    pack.conversation_id,
                    a.id,
                    a.category,
                    a.severity,
                    a.state,
                    _clean(a.title),
                    len(a.reviews),
                ],
            )
            for r in a.reviews:
                _append(
                    reviews,
                    [
                        pack.conversation_id,
                        a.id,
                        a.category,
                        a.severity,
                        a.state,
                        local(r.at),
                        r.reviewer,
                        r.action,
                        r.from_state,
                        r.to_state,
                        _clean(r.comment),
                    ],
                )
        counts.add(pack)
    wb.save(out)
    return counts
