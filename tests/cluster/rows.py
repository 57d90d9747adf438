"""The pipeline's results as comparable rows: every table the stages write, each row without
its surrogate id, references replaced by the natural key of the row referred to (a message's
msgid, a conversation's key, a staff member's userid...), and the times a row was written
left out; sorted. Two stores that analysed the same archive give equal dumps whatever order
and however many processes did the work."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import Engine, select

from audit.store.models import Base

# the tables the pipeline writes, in the order they are written
TABLES = (
    "envelopes",
    "messages",
    "conversations",
    "findings",
    "scores",
    "alerts",
    "conversation_facts",
    "store_day",
    "store_day_findings",
)
# when a row was written, not what it says
WRITTEN_AT = {"received_at", "decrypted_at", "created_at", "updated_at"}
# what stands for a row of these tables when another refers to it
NATURAL = {
    "org_units": ("code",),
    "staff": ("userid",),
    "customers": ("external_userid",),
    "envelopes": ("msgid",),
    "messages": ("msgid",),
    "conversations": ("key",),
    "scan_runs": ("wordlist_hash", "scanner_version"),
    "findings": ("message_id", "rule", "start", "end"),
    "users": ("username",),
}
# id columns whose table the schema does not declare (pre-aggregated tables)
UNDECLARED = {
    "conversation_facts": {
        "conversation_id": "conversations",
        "org_unit_id": "org_units",
        "staff_id": "staff",
        "customer_id": "customers",
    },
    "store_day": {"org_unit_id": "org_units"},
    "store_day_findings": {"org_unit_id": "org_units"},
}


def _plain(value: Any) -> Any:
    value = getattr(value, "value", value)  # enums
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, float):
        return round(value, 9)
    return value if value is None or isinstance(value, int | str | bool) else str(value)


class _Keys:
    """id -> natural key, per table, resolved recursively and read once."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.maps: dict[str, dict[int, Any]] = {}

    def of(self, table: str, ident: Any) -> Any:
        if ident is None:
            return None
        if table not in self.maps:
            self.maps[table] = self._load(table)
        return self.maps[table][ident]

    def _load(self, table: str) -> dict[int, Any]:
        tb = Base.metadata.tables[table]
        cols = NATURAL[table]
        out = {}
        with self.engine.connect() as conn:
            for row in conn.execute(select(tb.c.id, *[tb.c[c] for c in cols])):
                values = []
                for col, value in zip(cols, row[1:], strict=True):
                    target = _target(table, col)
                    values.append(self.of(target, value) if target else _plain(value))
                out[row[0]] = tuple(values)
        return out


def _target(table: str, column: str) -> str | None:
    undeclared = UNDECLARED.get(table, {}).get(column)
    if undeclared:
        return undeclared
    col = Base.metadata.tables[table].c[column]
    for fk in col.foreign_keys:
        return fk.column.table.name
    return None


_QUALITY = re.compile(r"^quality:(?P<cause>[a-z_]+):(?P<conv>\d+)$")
_STREAK = re.compile(r"^quality:sla_streak:(?P<staff>\d+):(?P<conv>\d+)$")


def _dedupe_key(keys: _Keys, key: str) -> str:
    """Alert keys that carry ids (quality alerts) with the ids replaced by natural keys."""
    m = _STREAK.match(key)
    if m:
        staff = keys.of("staff", int(m["staff"]))
        return f"quality:sla_streak:{staff}:{keys.of('conversations', int(m['conv']))}"
    m = _QUALITY.match(key)
    if m:
        return f"quality:{m['cause']}:{keys.of('conversations', int(m['conv']))}"
    return key


def _deductions(keys: _Keys, items: Any) -> Any:
    """A score's deductions name the findings behind them by id."""
    out = []
    for item in items or []:
        if isinstance(item, dict) and "findings" in item:
            item = {**item, "findings": sorted(keys.of("findings", i) for i in item["findings"])}
        out.append(item)
    return out


def dump(engine: Engine, tables: tuple[str, ...] = TABLES) -> dict[str, list[tuple[Any, ...]]]:
    """``{table: sorted rows}``, comparable between two stores."""
    keys = _Keys(engine)
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in tables:
            tb = Base.metadata.tables[table]
            cols = [c.name for c in tb.columns if c.name != "id" and c.name not in WRITTEN_AT]
            rows = []
            for row in conn.execute(select(*[tb.c[c] for c in cols])):
                values: list[Any] = []
                for col, value in zip(cols, row, strict=True):
                    target = _target(table, col)
                    if target:
                        values.append((col, keys.of(target, value)))
                    elif table == "alerts" and col == "dedupe_key":
                        values.append((col, _dedupe_key(keys, value)))
                    elif table == "scores" and col == "deductions":
                        values.append((col, _plain(_deductions(keys, value))))
                    else:
                        values.append((col, _plain(value)))
                rows.append(tuple(values))
            out[table] = sorted(rows, key=repr)
    return out


def differences(a: dict[str, list[Any]], b: dict[str, list[Any]], show: int = 3) -> list[str]:
    """Readable differences between two dumps (empty when equal)."""
    out = []
    for table in a:
        left, right = a[table], b.get(table, [])
        if left == right:
            continue
        only_a = [r for r in left if r not in set(right)]
        only_b = [r for r in right if r not in set(left)]
        out.append(
            f"{table}: {len(left)} vs {len(right)} rows; only in first {only_a[:show]}; "
            f"only in second {only_b[:show]}"
        )
    return out
