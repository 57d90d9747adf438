"""Aggregate reports over the store, for the dashboard, digests and exports.

Every count is aggregated in SQL (one ``GROUP BY`` per measure) so that a report over a
million messages moves a few hundred rows, not the messages. The same queries run on SQLite
and PostgreSQL. Days are China days (UTC+8): supervisors read "Monday" as Beijing time, while
the store keeps UTC.

Where a thing happened is decided by its conversation: a message belongs to the store of
``Conversation.org_unit_id``, a finding to the store of its message, an alert to its own
``org_unit_id`` or else to its conversation's. Messages not (yet) sessionized have no store
and show up in a row of their own when the report is not restricted to part of the tree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    Engine,
    Executable,
    and_,
    case,
    cast,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.orm import InstrumentedAttribute, aliased

from audit.store.models import Alert, AlertState, Conversation, Finding, Message, OrgUnit

CHINA = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
# The stable finding categories (ARCHITECTURE.md), in the order reports show them.
CATEGORIES = ("privacy", "diversion", "promise", "abuse", "complaint", "fraud", "illegal")
STORE_KIND = "store"
UNASSIGNED = "(unassigned)"

_Column = ColumnElement[Any] | InstrumentedAttribute[Any]

COUNT_COLUMNS = (
    "messages",
    "conversations",
    *CATEGORIES,
    "other",
    "findings",
    "alerts_open",
    "alerts_total",
)
STORE_COLUMNS = (
    "org_unit_id",
    "code",
    "region",
    "city",
    "store",
    "messages",
    "conversations",
    *CATEGORIES,
    "other",
    "findings",
    "findings_per_1k",
    "alerts_open",
    "alerts_total",
)


@dataclass(frozen=True)
class Period:
    """China calendar days, both ends included."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")

    def utc_bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """``[start 00:00, end + 1 day 00:00)`` China time, as aware datetimes."""
        lo = dt.datetime.combine(self.start, dt.time(), tzinfo=CHINA)
        hi = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), tzinfo=CHINA)
        return lo.astimezone(dt.UTC), hi.astimezone(dt.UTC)

    def days(self) -> list[dt.date]:
        n = (self.end - self.start).days + 1
        return [self.start + dt.timedelta(days=i) for i in range(n)]


@dataclass(frozen=True)
class ReportFilter:
    """What a report covers.

    ``org_unit_ids``: ``None`` is the whole company; otherwise these units and everything
    below them (an empty tuple covers nothing, which is what an unscoped user must get).
    """

    period: Period
    org_unit_ids: tuple[int, ...] | None = None


@dataclass(frozen=True)
class OrgNode:
    id: int
    code: str
    name: str
    kind: str
    parent_id: int | None
    region: str  # the nearest ancestor-or-self of kind "region", "" if none
    city: str  # likewise for "city"
    label: str  # names from the root down: "华东区 / 上海"
    depth: int
    has_children: bool


@dataclass(frozen=True)
class OverviewTotals:
    messages: int
    conversations: int
    findings: int
    alerts_open: int
    alerts_total: int
    stores: int  # store rows in the report (every store in scope, active or not)
    active_stores: int  # stores with at least one message in the period


# --------------------------------------------------------------------------- org tree


def org_tree(engine: Engine) -> list[OrgNode]:
    """Every org unit with its region, city and label, ordered as a tree (parents first)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(OrgUnit.id, OrgUnit.code, OrgUnit.name, OrgUnit.kind, OrgUnit.parent_id)
        ).all()
    by_id = {r.id: r for r in rows}
    parents = {r.parent_id for r in rows if r.parent_id is not None}

    def chain(unit_id: int) -> list[int]:
        # walked through parent_id rather than parsed from ``path``: correct even where the
        # materialized path was never filled in; the guard stops on a (broken) cycle
        out: list[int] = []
        current: int | None = unit_id
        while current is not None and current in by_id and current not in out:
            out.append(current)
            current = by_id[current].parent_id
        return out[::-1]

    nodes: list[OrgNode] = []
    for r in rows:
        ancestors = [by_id[i] for i in chain(r.id)]
        nodes.append(
            OrgNode(
                id=r.id,
                code=r.code,
                name=r.name,
                kind=r.kind,
                parent_id=r.parent_id,
                region=next((a.name for a in reversed(ancestors) if a.kind == "region"), ""),
                city=next((a.name for a in reversed(ancestors) if a.kind == "city"), ""),
                label=" / ".join(a.name for a in ancestors),
                depth=len(ancestors) - 1,
                has_children=r.id in parents,
            )
        )
    # parents before children, siblings by name: the order a tree-shaped selectbox wants
    sort_key = {n.id: [by_id[i].name for i in chain(n.id)] for n in nodes}
    nodes.sort(key=lambda n: (sort_key[n.id], n.id))
    return nodes


def _in_scope(column: _Column, org_unit_ids: Sequence[int] | None) -> ColumnElement[bool]:
    """``column`` is one of ``org_unit_ids`` or below one of them, as SQL."""
    if org_unit_ids is None:
        return true()
    if not org_unit_ids:
        return false()
    top = aliased(OrgUnit)
    below = (
        select(OrgUnit.id)
        .join(
            top,
            or_(
                OrgUnit.id == top.id,
                # the materialized path makes "everything below" one LIKE; an unfilled
                # path ("") must not match the whole tree
                and_(top.path != "", OrgUnit.path.like(top.path + literal_column("'%'"))),
            ),
        )
        .where(top.id.in_(list(org_unit_ids)))
    )
    return column.in_(below)


# --------------------------------------------------------------------------- periods


def data_period(engine: Engine) -> Period | None:
    """The China days from the first to the last message, or ``None`` without messages."""
    with engine.connect() as conn:
        query = select(func.min(Message.msgtime), func.max(Message.msgtime))
        first, last = conn.execute(query).one()
    if first is None or last is None:
        return None
    return Period(_china_date(first), _china_date(last))


def _china_date(value: dt.datetime) -> dt.date:
    if value.tzinfo is None:  # defensive: the column type always returns aware values
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(CHINA).date()


def _china_day(conn: Connection, column: _Column) -> ColumnElement[Any]:
    """The China calendar day of a UTC timestamp column, per dialect.

    Constants are literal so that the same expression in SELECT and GROUP BY compiles to
    identical SQL (PostgreSQL refuses two different bind parameters there).
    """
    name = conn.dialect.name
    if name == "postgresql":
        return cast(func.timezone(literal_column("'Asia/Shanghai'"), column), Date)
    if name == "sqlite":  # stored as naive UTC text
        return func.date(column, literal_column("'+8 hours'"))
    raise NotImplementedError(f"day bucketing is not implemented for {name}")


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


# --------------------------------------------------------------------------- measures


def _grouped(conn: Connection, query: Executable) -> dict[int | None, int]:
    return {unit: int(n or 0) for unit, n in conn.execute(query)}


def _message_counts(conn: Connection, f: ReportFilter) -> dict[int | None, int]:
    lo, hi = f.period.utc_bounds()
    unit = Conversation.org_unit_id
    query = (
        select(unit, func.count(Message.id))
        .select_from(Message)
        .outerjoin(Conversation, Message.conversation_id == Conversation.id)
        .where(Message.msgtime >= lo, Message.msgtime < hi, _in_scope(unit, f.org_unit_ids))
        .group_by(unit)
    )
    return _grouped(conn, query)


def _conversation_counts(conn: Connection, f: ReportFilter) -> dict[int | None, int]:
    lo, hi = f.period.utc_bounds()
    unit = Conversation.org_unit_id
    query = (
        select(unit, func.count(Conversation.id))
        .where(
            Conversation.started_at >= lo,
            Conversation.started_at < hi,
            _in_scope(unit, f.org_unit_ids),
        )
        .group_by(unit)
    )
    return _grouped(conn, query)


def _finding_counts(conn: Connection, f: ReportFilter) -> dict[tuple[int | None, str], int]:
    """Findings by (store, category), dated by the message they were found in."""
    lo, hi = f.period.utc_bounds()
    unit = Conversation.org_unit_id
    query = (
        select(unit, Finding.category, func.count(Finding.id))
        .select_from(Finding)
        .join(Message, Finding.message_id == Message.id)
        .outerjoin(Conversation, Message.conversation_id == Conversation.id)
        .where(Message.msgtime >= lo, Message.msgtime < hi, _in_scope(unit, f.org_unit_ids))
        .group_by(unit, Finding.category)
    )
    return {(u, cat): int(n) for u, cat, n in conn.execute(query)}


def _alert_counts(conn: Connection, f: ReportFilter) -> dict[int | None, tuple[int, int]]:
    """(open, total) alerts by store.

    An alert is dated by what it is about (its finding's message, else its conversation's
    start), falling back to when it was raised: a rescan next week must not move last
    week's alerts into this week.
    """
    lo, hi = f.period.utc_bounds()
    conv_id = func.coalesce(Alert.conversation_id, Message.conversation_id)
    unit = func.coalesce(Alert.org_unit_id, Conversation.org_unit_id)
    when = func.coalesce(Message.msgtime, Conversation.started_at, Alert.created_at)
    query = (
        select(
            unit,
            func.sum(case((Alert.state == AlertState.OPEN, 1), else_=0)),
            func.count(Alert.id),
        )
        .select_from(Alert)
        .outerjoin(Finding, Alert.finding_id == Finding.id)
        .outerjoin(Message, Finding.message_id == Message.id)
        .outerjoin(Conversation, Conversation.id == conv_id)
        .where(when >= lo, when < hi, _in_scope(unit, f.org_unit_ids))
        .group_by(unit)
    )
    return {u: (int(o or 0), int(t)) for u, o, t in conn.execute(query)}


def _stores_in_scope(nodes: Iterable[OrgNode], conn: Connection, f: ReportFilter) -> set[int]:
    """Stores shown even when they had no activity: a silent store is news too."""
    ids = {n.id for n in nodes if n.kind == STORE_KIND}
    if f.org_unit_ids is None or not ids:
        return ids
    query = select(OrgUnit.id).where(
        OrgUnit.kind == STORE_KIND, _in_scope(OrgUnit.id, f.org_unit_ids)
    )
    return set(conn.execute(query).scalars())


# --------------------------------------------------------------------------- reports


def store_table(engine: Engine, f: ReportFilter) -> pd.DataFrame:
    """One row per store (see :data:`STORE_COLUMNS`), ordered by region, city, store.

    Category columns count findings of that category; ``other`` any category outside
    :data:`CATEGORIES`; ``findings_per_1k`` is ``NaN`` for a store without messages.
    """
    nodes = {n.id: n for n in org_tree(engine)}
    with engine.connect() as conn:
        messages = _message_counts(conn, f)
        conversations = _conversation_counts(conn, f)
        findings = _finding_counts(conn, f)
        alerts = _alert_counts(conn, f)
        units: set[int | None] = set(_stores_in_scope(nodes.values(), conn, f))
    units |= set(messages) | set(conversations) | set(alerts) | {u for u, _ in findings}

    rows = []
    for unit in units:
        node = nodes.get(unit) if unit is not None else None
        by_cat = {c: n for (u, c), n in findings.items() if u == unit}
        row: dict[str, object] = {
            "org_unit_id": unit,
            "code": node.code if node else "",
            "region": node.region if node else "",
            "city": node.city if node else "",
            "store": node.name if node else UNASSIGNED,
            "messages": messages.get(unit, 0),
            "conversations": conversations.get(unit, 0),
            **{c: by_cat.get(c, 0) for c in CATEGORIES},
            "other": sum(n for c, n in by_cat.items() if c not in CATEGORIES),
            "findings": sum(by_cat.values()),
            "alerts_open": alerts.get(unit, (0, 0))[0],
            "alerts_total": alerts.get(unit, (0, 0))[1],
        }
        rows.append(row)

    table = pd.DataFrame(rows, columns=[c for c in STORE_COLUMNS if c != "findings_per_1k"])
    table["org_unit_id"] = table["org_unit_id"].astype("Int64")
    for column in COUNT_COLUMNS:
        table[column] = table[column].astype("int64")
    per_1k = table["findings"] * 1000 / table["messages"].where(table["messages"] > 0)
    table.insert(STORE_COLUMNS.index("findings_per_1k"), "findings_per_1k", per_1k.astype(float))
    # unassigned last; stores without a region/city after those with one
    table["_unassigned"] = table["org_unit_id"].isna()
    table = table.sort_values(["_unassigned", "region", "city", "store", "code"], kind="stable")
    return table.drop(columns="_unassigned").reset_index(drop=True)


def summarize(stores: pd.DataFrame) -> OverviewTotals:
    """The totals of a :func:`store_table` (so the metric row always agrees with the table)."""
    is_store = stores["org_unit_id"].notna()
    return OverviewTotals(
        messages=int(stores["messages"].sum()),
        conversations=int(stores["conversations"].sum()),
        findings=int(stores["findings"].sum()),
        alerts_open=int(stores["alerts_open"].sum()),
        alerts_total=int(stores["alerts_total"].sum()),
        stores=int(is_store.sum()),
        active_stores=int((is_store & (stores["messages"] > 0)).sum()),
    )


def findings_by_category(stores: pd.DataFrame) -> pd.DataFrame:
    """``category``, ``findings`` for every category (zeros included) from a store table."""
    categories = [*CATEGORIES, "other"]
    counts = [int(stores[c].sum()) for c in categories]
    frame = pd.DataFrame({"category": categories, "findings": counts})
    # "other" only when something fell outside the known categories
    return frame[(frame["category"] != "other") | (frame["findings"] > 0)].reset_index(drop=True)


def messages_per_day(engine: Engine, f: ReportFilter) -> pd.DataFrame:
    """``day`` (China date), ``messages`` for every day of the period, zeros included."""
    lo, hi = f.period.utc_bounds()
    unit = Conversation.org_unit_id
    with engine.connect() as conn:
        day = _china_day(conn, Message.msgtime)
        query = (
            select(day, func.count(Message.id))
            .select_from(Message)
            .outerjoin(Conversation, Message.conversation_id == Conversation.id)
            .where(Message.msgtime >= lo, Message.msgtime < hi, _in_scope(unit, f.org_unit_ids))
            .group_by(day)
        )
        counts = {_as_date(d): int(n) for d, n in conn.execute(query)}
    days = f.period.days()
    return pd.DataFrame({"day": days, "messages": [counts.get(d, 0) for d in days]})
