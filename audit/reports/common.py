"""What every report shares: periods of local days, the filter, the org tree, scoping, and
whether the pre-aggregated tables may answer.

Days are local days in the configured time zone (``quality.timezone``, carried by
:class:`Period`); the store keeps UTC. :func:`local_day` is the reports' one way to bucket a
timestamp column by day, and it is the same expression :mod:`audit.store.daily` fills its
tables with (both come from :func:`audit.days.local_day`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Connection, Engine, Select, and_, func, select
from sqlalchemy.orm import InstrumentedAttribute

from audit import days
from audit.store import daily as aggregates
from audit.store.access import Principal, narrowed, pseudonym_key, within_units
from audit.store.models import Alert, Conversation, Finding, Message, OrgUnit, Score

STORE_KIND = "store"
UNASSIGNED = "(unassigned)"

Column = ColumnElement[Any] | InstrumentedAttribute[Any]

# An engine option: reports on such an engine compute from the live tables (see ``live``).
LIVE_OPTION = "audit_reports_live"


def live(engine: Engine) -> Engine:
    """``engine`` (same pool) whose reports ignore the pre-aggregated tables: to compare the two
    or measure the live queries. Reports read the tables only when they are fresh anyway."""
    return engine.execution_options(**{LIVE_OPTION: True})


def aggregated(conn: Connection, tz: str) -> bool:
    """The pre-aggregated tables may answer: they describe the data exactly as it is now, in
    days of the zone ``tz``."""
    return not conn.get_execution_options().get(LIVE_OPTION) and aggregates.is_fresh(conn, tz)


def facts_fresh(conn: Connection) -> bool:
    """:func:`aggregated` for what does not depend on days: ``conversation_facts``' own
    columns, fresh in whatever zone the tables were built."""
    if conn.get_execution_options().get(LIVE_OPTION):
        return False
    zone = aggregates.built_in(conn)
    return zone is not None and aggregates.is_fresh(conn, zone)


@dataclass(frozen=True)
class Period:
    """Local calendar days in the time zone ``tz``, both ends included."""

    start: dt.date
    end: dt.date
    tz: str = days.DEFAULT_ZONE

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")
        days.zone(self.tz)  # an unknown zone fails here, not in the middle of a query

    def utc_bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """``[start 00:00, end + 1 day 00:00)`` local time, as aware UTC datetimes."""
        return days.day_bounds(self.start, self.end, self.tz)

    def days(self) -> list[dt.date]:
        n = (self.end - self.start).days + 1
        return [self.start + dt.timedelta(days=i) for i in range(n)]

    def shifted(self, start: dt.date, end: dt.date) -> Period:
        """Another period in the same zone."""
        return Period(start, end, self.tz)


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


# --------------------------------------------------------------------------- days


def local_day(conn: Connection, column: Column, period: Period) -> ColumnElement[Any]:
    """The local day (in ``period.tz``) of a UTC timestamp column within ``period``."""
    lo, hi = period.utc_bounds()
    return days.local_day(conn.dialect.name, column, period.tz, lo, hi)


def local_times(column: pd.Series, tz: str) -> pd.Series:
    """UTC timestamps as the local wall-clock times of the zone ``tz``, for display."""
    return pd.to_datetime(column, utc=True).dt.tz_convert(days.zone(tz)).dt.tz_localize(None)


def data_period(engine: Engine, tz: str = days.DEFAULT_ZONE) -> Period | None:
    """The local days from the first to the last message, or ``None`` without messages."""
    with engine.connect() as conn:
        # two scalar subqueries: SQLite reads one end of the msgtime index for each (a single
        # SELECT of both scans the whole index)
        query = select(
            select(func.min(Message.msgtime)).scalar_subquery(),
            select(func.max(Message.msgtime)).scalar_subquery(),
        )
        first, last = conn.execute(query).one()
    if first is None or last is None:
        return None
    return Period(days.local_date(first, tz), days.local_date(last, tz), tz)


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


def ancestors(nodes: dict[int, OrgNode], unit: int) -> list[int]:
    """``unit`` and its ancestors, nearest first (stops on a broken cycle)."""
    out: list[int] = []
    current: int | None = unit
    while current is not None and current in nodes and current not in out:
        out.append(current)
        current = nodes[current].parent_id
    return out


def ancestor_of_kind(nodes: dict[int, OrgNode], unit: int, kind: str) -> int | None:
    """The nearest ancestor-or-self of ``unit`` of ``kind``."""
    return next((i for i in ancestors(nodes, unit) if nodes[i].kind == kind), None)


def in_scope(column: Column, org_unit_ids: Sequence[int] | None) -> ColumnElement[bool]:
    """``column`` is one of ``org_unit_ids`` or below one of them, as SQL (see :mod:`access`)."""
    return within_units(column, org_unit_ids)


def stores_in_scope(nodes: Iterable[OrgNode], conn: Connection, f: ReportFilter) -> set[int]:
    """Stores shown even when they had no activity: a silent store is news too."""
    ids = {n.id for n in nodes if n.kind == STORE_KIND}
    if f.org_unit_ids is None or not ids:
        return ids
    query = select(OrgUnit.id).where(
        OrgUnit.kind == STORE_KIND, in_scope(OrgUnit.id, f.org_unit_ids)
    )
    return set(conn.execute(query).scalars())


# --------------------------------------------------------------------------- conversation lists


def conversation_rows(version: str, *columns: Column) -> Select[*tuple[Any, ...]]:
    """Conversations, newest first: id, start, ``columns``, then the message, finding and
    alert counts and the score under scorecard ``version`` (the caller joins what ``columns``
    need, and filters).

    An alert counts for its own conversation, else its finding's (as the figures date alerts).
    """
    findings = (
        select(Finding.conversation_id, func.count(Finding.id).label("n"))
        .group_by(Finding.conversation_id)
        .subquery()
    )
    alert_conv = func.coalesce(Alert.conversation_id, Finding.conversation_id)
    alerts = (
        select(alert_conv.label("conversation_id"), func.count(Alert.id).label("n"))
        .outerjoin(Finding, Finding.id == Alert.finding_id)
        .group_by(alert_conv)
        .subquery()
    )
    return (
        select(
            Conversation.id,
            Conversation.started_at,
            *columns,
            Conversation.message_count,
            func.coalesce(findings.c.n, 0),
            func.coalesce(alerts.c.n, 0),
            Score.score,
        )
        .outerjoin(findings, findings.c.conversation_id == Conversation.id)
        .outerjoin(alerts, alerts.c.conversation_id == Conversation.id)
        .outerjoin(
            Score,
            and_(Score.conversation_id == Conversation.id, Score.scorecard_version == version),
        )
        .order_by(Conversation.started_at.desc(), Conversation.id.desc())
    )


# --------------------------------------------------------------------------- scope


def scoped(engine: Engine, principal: Principal, f: ReportFilter) -> ReportFilter:
    """``f`` with its org units cut down to what ``principal`` may see."""
    tree = [(n.id, n.parent_id) for n in org_tree(engine)]
    return ReportFilter(f.period, narrowed(principal, f.org_unit_ids, tree))


def scoped_org_tree(engine: Engine, principal: Principal) -> list[OrgNode]:
    """The org units the principal may pick: those in scope and their ancestors."""
    nodes = org_tree(engine)
    if principal.unit_ids is None:
        return nodes
    by_id = {n.id: n for n in nodes}
    scope = set(principal.unit_ids)
    keep: set[int] = set()
    for n in nodes:
        chain = ancestors(by_id, n.id)
        if scope & set(chain):  # in scope (self or below a scoped unit)
            keep.update(chain)  # with its ancestors, so the tree reads naturally
    return [n for n in nodes if n.id in keep]


def names_key(principal: Principal) -> bytes | None:
    """The pseudonym key, read once per report, when this principal sees pseudonyms."""
    return None if principal.sees_names else pseudonym_key()
