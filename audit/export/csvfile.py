"""CSV: one row per message, each row carrying its conversation's context.

UTF-8 with a byte-order mark, so that Excel on a Chinese Windows opens it as UTF-8 rather
than GBK. Findings, deductions and reviews are JSON inside their cells. Every text cell goes
through :func:`audit.export.formulas.neutralise`, so no cell runs as a formula in Excel.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any, BinaryIO

from audit.export.counts import Counts
from audit.export.formulas import neutralise
from audit.export.packs import Pack

COLUMNS = (
    "conversation_id",
    "store_code",
    "store",
    "staff",
    "customer",
    "started_at",
    "score",
    "deductions",
    "alerts",
    "message_id",
    "time",
    "sender_kind",
    "sender",
    "msgtype",
    "text",
    "recalled",
    "findings",
)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _cells(row: list[Any]) -> list[Any]:
    return [neutralise(v) if isinstance(v, str) else v for v in row]


def write_csv(packs: Iterable[Pack], out: BinaryIO) -> Counts:
    counts = Counts()
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    try:
        writer = csv.writer(text)
        writer.writerow(COLUMNS)
        for pack in packs:
            data = pack.as_dict()
            context = [
                pack.conversation_id,
                pack.store_code,
                pack.store,
                pack.staff,
                pack.customer,
                data["started_at"],
                "" if pack.score is None else pack.score.score,
                "" if pack.score is None else _json(pack.score.deductions),
                _json(data["alerts"]) if pack.alerts else "",
            ]
            for m in data["messages"]:
                writer.writerow(
                    _cells(
                        [
                            *context,
                            m["id"],
                            m["time"],
                            m["sender_kind"],
                            m["sender"],
                            m["msgtype"],
                            m["text"],
                            int(m["recalled"]),
                            _json(m["findings"]) if m["findings"] else "",
                        ]
                    )
                )
                counts.rows += 1
            counts.add(pack)
    finally:
        text.detach()  # the caller owns ``out``
    return counts
