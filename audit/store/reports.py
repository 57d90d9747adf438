"""Aggregate reports over the store, for the dashboard, digests and exports.

Every count is aggregated in SQL (one ``GROUP BY`` per measure) so that a report over a
million messages moves a few hundred rows, not the messages. The same queries run on SQLite
and PostgreSQL. Days are China days (UTC+8): supervisors read "Monday" as Beijing time, while
the store keeps UTC.

Counts by store and day and the per-conversation measures are read from the pre-aggregated
tables of :mod:`audit.store.daily` whenever they are fresh (refreshed since the data last
changed), and computed from the live tables otherwise: the two give identical results, which
``tests/store/test_daily.py`` checks.

Where a thing happened is decided by its conversation: a message belongs to the store of
``Conversation.org_unit_id``, a finding to the store of its message, an alert to its own
``org_unit_id`` or else to its conversation's. Messages not (yet) sessionized have no store
and show up in a row of their own when the report is not restricted to part of the tree.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Executable,
    Select,
    and_,
    case,
    func,
    select,
)
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from audit.domain import CATEGORIES, Action, label_of
from audit.store import daily as aggregates
from audit.store.access import (
    AccessDenied,
    Principal,
    expand,
    narrowed,
    person_name,
    pseudonym,
    pseudonym_key,
    record,
    within_scope,
    within_units,
)
from audit.store.db import session_scope
from audit.store.models import (
    Alert,
    AlertState,
    AuditLog,
    Conversation,
    ConversationFact,
    Customer,
    CustomerTag,
    Finding,
    Follow,
    Message,
    OrgUnit,
    Review,
    Score,
    Severity,
    Staff,
    StoreDay,
    StoreDayFinding,
    Tag,
    TagGroup,
    User,
)
from audit.store.types import utcnow

CHINA = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
STORE_KIND = "store"
UNASSIGNED = "(unassigned)"

_Column = ColumnElement[Any] | InstrumentedAttribute[Any]

# An engine option: reports on such an engine compute from the live tables (see ``live``).
LIVE_OPTION = "audit_reports_live"


def live(engine: Engine) -> Engine:
    """``engine`` (same pool) whose reports ignore the pre-aggregated tables: to compare the two
    or measure the live queries. Reports read the tables only when they are fresh anyway."""
    return engine.execution_options(**{LIVE_OPTION: True})


def _aggregated(conn: Connection) -> bool:
    """The pre-aggregated tables may answer: they describe the data exactly as it is now."""
    return not conn.get_execution_options().get(LIVE_OPTION) and aggregates.is_fresh(conn)


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
    """``column`` is one of ``org_unit_ids`` or below one of them, as SQL (see :mod:`access`)."""
    return within_units(column, org_unit_ids)


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
    """The China calendar day of a UTC timestamp column, per dialect (see :mod:`daily`)."""
    return aggregates.china_day(conn, column)


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


def _on_store_days(table: Any, f: ReportFilter) -> list[ColumnElement[bool]]:
    return [
        table.day >= f.period.start,
        table.day <= f.period.end,
        _in_scope(table.org_unit_id, f.org_unit_ids),
    ]


def _summed(conn: Connection, column: _Column, f: ReportFilter) -> dict[int | None, int]:
    """``store_day.<column>`` summed by store over ``f`` (stores with a non-zero sum only)."""
    query = (
        select(StoreDay.org_unit_id, func.sum(column))
        .where(*_on_store_days(StoreDay, f))
        .group_by(StoreDay.org_unit_id)
    )
    return {u: int(n) for u, n in conn.execute(query) if n}


def _daily_finding_counts(conn: Connection, f: ReportFilter) -> dict[tuple[int | None, str], int]:
    query = (
        select(StoreDayFinding.org_unit_id, StoreDayFinding.category, func.sum(StoreDayFinding.n))
        .where(*_on_store_days(StoreDayFinding, f))
        .group_by(StoreDayFinding.org_unit_id, StoreDayFinding.category)
    )
    return {(u, cat): int(n) for u, cat, n in conn.execute(query) if n}


def _alert_tally(conn: Connection, f: ReportFilter, by_day: bool) -> Any:
    """(store, [China day,] open, total) rows of the alerts in ``f``.

    An alert is dated by what it is about (its finding's message, else its conversation's
    start), falling back to when it was raised: a rescan next week must not move last
    week's alerts into this week.
    """
    lo, hi = f.period.utc_bounds()
    conv_id = func.coalesce(Alert.conversation_id, Message.conversation_id)
    unit = func.coalesce(Alert.org_unit_id, Conversation.org_unit_id)
    when = func.coalesce(Message.msgtime, Conversation.started_at, Alert.created_at)
    keys: list[Any] = [unit, _china_day(conn, when)] if by_day else [unit]
    return conn.execute(
        select(
            *keys,
            func.sum(case((Alert.state == AlertState.OPEN, 1), else_=0)),
            func.count(Alert.id),
        )
        .select_from(Alert)
        .outerjoin(Finding, Alert.finding_id == Finding.id)
        .outerjoin(Message, Finding.message_id == Message.id)
        .outerjoin(Conversation, Conversation.id == conv_id)
        .where(when >= lo, when < hi, _in_scope(unit, f.org_unit_ids))
        .group_by(*keys)
    )


def _alert_counts(conn: Connection, f: ReportFilter) -> dict[int | None, tuple[int, int]]:
    """(open, total) alerts by store."""
    return {u: (int(o or 0), int(t)) for u, o, t in _alert_tally(conn, f, by_day=False)}


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
        if _aggregated(conn):
            messages = _summed(conn, StoreDay.messages, f)
            conversations = _summed(conn, StoreDay.conversations, f)
            findings = _daily_finding_counts(conn, f)
        else:
            messages = _message_counts(conn, f)
            conversations = _conversation_counts(conn, f)
            findings = _finding_counts(conn, f)
        alerts = _alert_counts(conn, f)
        stores = _stores_in_scope(nodes.values(), conn, f)
    return _store_rows(nodes, stores, messages, conversations, findings, alerts)


def _store_rows(
    nodes: dict[int, OrgNode],
    stores: set[int],
    messages: dict[int | None, int],
    conversations: dict[int | None, int],
    findings: dict[tuple[int | None, str], int],
    alerts: dict[int | None, tuple[int, int]],
) -> pd.DataFrame:
    units: set[int | None] = set(stores)
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
        if _aggregated(conn):
            query = (
                select(StoreDay.day, func.sum(StoreDay.messages))
                .where(*_on_store_days(StoreDay, f))
                .group_by(StoreDay.day)
            )
        else:
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


# =========================================================================== scoped reports
#
# Everything below takes the signed-in :class:`Principal` and narrows itself through
# :mod:`audit.store.access`; the dashboard calls only these (and the scoped wrappers).


def scoped(engine: Engine, principal: Principal, f: ReportFilter) -> ReportFilter:
    """``f`` with its org units cut down to what ``principal`` may see."""
    tree = [(n.id, n.parent_id) for n in org_tree(engine)]
    return ReportFilter(f.period, narrowed(principal, f.org_unit_ids, tree))


def scoped_store_table(engine: Engine, principal: Principal, f: ReportFilter) -> pd.DataFrame:
    return store_table(engine, scoped(engine, principal, f))


def scoped_messages_per_day(engine: Engine, principal: Principal, f: ReportFilter) -> pd.DataFrame:
    return messages_per_day(engine, scoped(engine, principal, f))


def scoped_org_tree(engine: Engine, principal: Principal) -> list[OrgNode]:
    """The org units the principal may pick: those in scope and their ancestors."""
    nodes = org_tree(engine)
    if principal.unit_ids is None:
        return nodes
    by_id = {n.id: n for n in nodes}
    scope = set(principal.unit_ids)
    keep: set[int] = set()
    for n in nodes:
        chain: list[int] = []
        current: int | None = n.id
        while current is not None and current in by_id and current not in chain:
            chain.append(current)
            current = by_id[current].parent_id
        if scope & set(chain):  # in scope (self or below a scoped unit)
            keep.update(chain)  # with its ancestors, so the tree reads naturally
    return [n for n in nodes if n.id in keep]


# --------------------------------------------------------------------------- scores


NEGATIVE_THRESHOLD = 0.5  # customer_negative classifier probability that counts as negative
MEASURE_COLUMNS = (
    "conversations",
    "customers",
    "messages",
    "findings",
    "findings_per_1k",
    "score_avg",
    "scored",
    "sla_rate",
    "response_median_s",
    "negative_rate",
)


def _latest_scorecard(conn: Connection) -> str | None:
    """Aggregates use one scorecard version (the newest) so that scores are comparable."""
    return aggregates.latest_scorecard(conn)


# ``Conversation`` or ``ConversationFact``: both have org_unit_id, staff_id, customer_id and
# started_at, so one query builder serves the live tables and the pre-aggregated ones
Conversations = type[Conversation] | type[ConversationFact]
KeyedQuery = Callable[[Conversations], Select[Any]]


def _conversation_id(c: Conversations) -> ColumnElement[Any]:
    column = c.id if c is Conversation else c.conversation_id  # type: ignore[union-attr]
    return column.label("conversation_id")


def _measures(conn: Connection, keyed_by: KeyedQuery) -> pd.DataFrame:
    """Per ``key`` of ``keyed_by(c)`` (``key`` and :func:`_conversation_id` of ``c``, a
    select over the conversations ``c``): MEASURE_COLUMNS.

    Counts are by conversation (``message_count`` as sessionized, and the findings in it,
    whenever sent), so the numbers of a tag or a staff member add up over their
    conversations. Rows are ordered by key. From ``conversation_facts`` when fresh (one
    pass, plain columns), else live: one pass for conversations and scores, one for findings.
    """
    if _aggregated(conn):
        frame = _measures_from_facts(conn, keyed_by(ConversationFact))
    else:
        frame = _measures_live(conn, keyed_by(Conversation).subquery())
    frame = frame.sort_index()
    for column in ("conversations", "customers", "messages", "scored", "findings"):
        frame[column] = frame[column].fillna(0).astype("int64")
    frame["findings_per_1k"] = (
        frame["findings"] * 1000 / frame["messages"].where(frame["messages"] > 0)
    )
    frame["score_avg"] = frame["score_avg"].astype(float)
    frame["response_median_s"] = frame["response_median_s"].astype(float)
    frame["sla_rate"] = frame["within"].astype(float) / frame["responses"].astype(float).where(
        frame["responses"] > 0
    )
    frame["negative_rate"] = frame["negative"].astype(float) / frame["scored"].where(
        frame["scored"] > 0
    )
    return frame[list(MEASURE_COLUMNS)]


_MEASURE_NAMES = [
    "key",
    "conversations",
    "customers",
    "messages",
    "score_avg",
    "scored",
    "within",
    "responses",
    "negative",
]


def _sqlite_medians(conn: Connection, query: Executable) -> pd.Series:
    """Per key, the median of ``(key, value)`` rows (SQLite has no percentile_cont)."""
    values = pd.DataFrame(conn.execute(query).all(), columns=["key", "v"])
    return values.groupby("key")["v"].median() if not values.empty else pd.Series()


def _measures_from_facts(conn: Connection, keyed: Select[Any]) -> pd.DataFrame:
    """The aggregates over the keyed select's own ``conversation_facts`` rows: no join back."""
    k = keyed.selected_columns.key
    fact = ConversationFact
    postgres = conn.dialect.name == "postgresql"
    columns: list[Any] = [
        k,
        func.count(fact.conversation_id),
        func.count(func.distinct(fact.customer_id)),
        func.coalesce(func.sum(fact.message_count), 0),
        func.avg(fact.score),
        func.count(fact.score),
        func.sum(fact.within_sla),
        func.sum(fact.responses),
        func.sum(case((fact.negative >= NEGATIVE_THRESHOLD, 1), else_=0)),
        func.coalesce(func.sum(fact.findings), 0),
    ]
    if postgres:
        columns.append(func.percentile_cont(0.5).within_group(fact.response_median_s))
    joined = keyed.with_only_columns(*columns, maintain_column_froms=True).group_by(k)
    names = [*_MEASURE_NAMES, "findings", *(["response_median_s"] if postgres else [])]
    frame = pd.DataFrame(conn.execute(joined).all(), columns=names).set_index("key")
    if not postgres:
        medians = _sqlite_medians(
            conn,
            keyed.with_only_columns(k, fact.response_median_s, maintain_column_froms=True).where(
                fact.score.is_not(None), fact.response_median_s.is_not(None)
            ),
        )
        frame["response_median_s"] = [medians.get(i, float("nan")) for i in frame.index]
    return frame


def _measures_live(conn: Connection, keyed: Any) -> pd.DataFrame:
    k = keyed.c.key
    conv = keyed.c.conversation_id
    version = _latest_scorecard(conn) or ""
    within = Score.metrics["within_sla"].as_float()
    responses = Score.metrics["responses"].as_float()
    negative = Score.metrics[("scores_max", "customer_negative")].as_float()
    median = Score.metrics["response_median_seconds"].as_float()
    postgres = conn.dialect.name == "postgresql"
    columns: list[Any] = [
        k,
        func.count(Conversation.id),
        func.count(func.distinct(Conversation.customer_id)),
        func.coalesce(func.sum(Conversation.message_count), 0),
        func.avg(Score.score),
        func.count(Score.id),
        func.sum(within),
        func.sum(responses),
        func.sum(case((negative >= NEGATIVE_THRESHOLD, 1), else_=0)),
    ]
    if postgres:
        columns.append(func.percentile_cont(0.5).within_group(median))
    joined = (
        select(*columns)
        .select_from(keyed)
        .join(Conversation, Conversation.id == conv)
        .outerjoin(
            Score,
            and_(Score.conversation_id == Conversation.id, Score.scorecard_version == version),
        )
        .group_by(k)
    )
    names = [*_MEASURE_NAMES, *(["response_median_s"] if postgres else [])]
    frame = pd.DataFrame(conn.execute(joined).all(), columns=names).set_index("key")
    if not postgres:
        medians = _sqlite_medians(
            conn,
            select(k, median)
            .select_from(keyed)
            .join(Score, Score.conversation_id == conv)
            .where(Score.scorecard_version == version, median.is_not(None)),
        )
        frame["response_median_s"] = [medians.get(i, float("nan")) for i in frame.index]
    findings: dict[Any, int] = dict(
        conn.execute(
            select(k, func.count(Finding.id))
            .select_from(keyed)
            .join(Finding, Finding.conversation_id == conv)
            .group_by(k)
        ).all()
    )
    frame["findings"] = [int(findings.get(i, 0)) for i in frame.index]
    return frame


def _conversations_in(
    f: ReportFilter, c: Conversations = Conversation
) -> list[ColumnElement[bool]]:
    lo, hi = f.period.utc_bounds()
    return [c.started_at >= lo, c.started_at < hi, _in_scope(c.org_unit_id, f.org_unit_ids)]


def _empty_measures(index_name: str) -> pd.DataFrame:
    frame = pd.DataFrame(columns=list(MEASURE_COLUMNS))
    frame.index.name = index_name
    return frame


# --------------------------------------------------------------------------- stores, staff

LEVELS = ("region", "city", "store")


def store_ranking(
    engine: Engine, principal: Principal, f: ReportFilter, level: str = "store"
) -> pd.DataFrame:
    """Org units of ``level`` ranked by findings per 1,000 messages, worst first.

    Messages and findings by when they were sent (as on the overview); scores, SLA, response
    medians and negative rates over the conversations that started in the period.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    f = scoped(engine, principal, f)
    stores = store_table(engine, f)
    stores = stores[stores["org_unit_id"].notna()]
    with engine.connect() as conn:
        measures = _measures(
            conn,
            lambda c: select(c.org_unit_id.label("key"), _conversation_id(c)).where(
                *_conversations_in(f, c)
            ),
        )
    nodes = {n.id: n for n in org_tree(engine)}
    stores = stores.assign(
        key=stores["org_unit_id"].astype("int64"),
    )
    stores = stores.merge(
        measures, left_on="key", right_index=True, how="left", suffixes=("", "_conv")
    )
    if level == "store":
        out = stores.rename(columns={"store": "unit"})
        out["unit_id"] = out["key"]
    else:
        ancestor = {n.id: _ancestor_of_kind(nodes, n.id, level) for n in nodes.values()}
        out = stores.assign(unit_id=[ancestor.get(int(k)) for k in stores["key"]])
        out = out[out["unit_id"].notna()]
        weighted = out.assign(
            score_sum=out["score_avg"].fillna(0) * out["scored"],
            neg_sum=out["negative_rate"].fillna(0) * out["scored"],
        )
        out = (
            weighted.groupby("unit_id")
            .agg(
                messages=("messages", "sum"),
                conversations=("conversations", "sum"),
                findings=("findings", "sum"),
                alerts_open=("alerts_open", "sum"),
                scored=("scored", "sum"),
                score_sum=("score_sum", "sum"),
                neg_sum=("neg_sum", "sum"),
                response_median_s=("response_median_s", "median"),
                sla_rate=("sla_rate", "mean"),
                stores=("key", "count"),
            )
            .reset_index()
        )
        out["score_avg"] = out["score_sum"] / out["scored"].where(out["scored"] > 0)
        out["negative_rate"] = out["neg_sum"] / out["scored"].where(out["scored"] > 0)
        out["unit"] = [nodes[int(i)].name for i in out["unit_id"]]
        out["findings_per_1k"] = out["findings"] * 1000 / out["messages"].where(out["messages"] > 0)
    columns = [
        "unit_id",
        "unit",
        "messages",
        "conversations",
        "findings",
        "findings_per_1k",
        "alerts_open",
        "score_avg",
        "scored",
        "sla_rate",
        "response_median_s",
        "negative_rate",
    ]
    out = out.reindex(columns=columns)
    out["unit_id"] = out["unit_id"].astype("int64")
    out["label"] = [nodes[int(i)].label for i in out["unit_id"]]
    return out.sort_values(
        ["findings_per_1k", "findings", "label"], ascending=[False, False, True], na_position="last"
    ).reset_index(drop=True)


def _ancestor_of_kind(nodes: dict[int, OrgNode], unit: int, kind: str) -> int | None:
    current: int | None = unit
    seen: set[int] = set()
    while current is not None and current in nodes and current not in seen:
        if nodes[current].kind == kind:
            return current
        seen.add(current)
        current = nodes[current].parent_id
    return None


def staff_table(
    engine: Engine, principal: Principal, f: ReportFilter, unit_id: int | None = None
) -> pd.DataFrame:
    """Staff of the units in scope (or below ``unit_id``), worst finding rate first.

    Names are pseudonymised for analysts; viewers get no per-person rows at all.
    """
    if not principal.sees_people:
        raise AccessDenied("this role sees aggregates only")
    f = scoped(engine, principal, ReportFilter(f.period, None if unit_id is None else (unit_id,)))
    with engine.connect() as conn:
        measures = _measures(
            conn,
            lambda c: select(c.staff_id.label("key"), _conversation_id(c)).where(
                *_conversations_in(f, c), c.staff_id.is_not(None)
            ),
        )
        if measures.empty:
            return measures.reset_index().assign(staff="", store="")
        people = conn.execute(
            select(Staff.id, Staff.name, Staff.userid, OrgUnit.name)
            .outerjoin(OrgUnit, OrgUnit.id == Staff.org_unit_id)
            .where(Staff.id.in_([int(i) for i in measures.index]))
        ).all()
    key = _names_key(principal)
    names = {
        i: (person_name(principal, "staff", i, f"{n} ({u})", key), store or "")
        for i, n, u, store in people
    }
    out = measures.reset_index().rename(columns={"key": "staff_id"})
    out.insert(1, "staff", [names.get(int(i), ("?", ""))[0] for i in out["staff_id"]])
    out.insert(2, "store", [names.get(int(i), ("?", ""))[1] for i in out["staff_id"]])
    if not principal.sees_names:
        out = out.drop(columns="staff_id")
    return out.sort_values(
        ["findings_per_1k", "findings"], ascending=False, na_position="last"
    ).reset_index(drop=True)


# --------------------------------------------------------------------------- alerts

ALERT_SORTS = {
    "severity": "严重程度 Severity",
    "newest": "最新 Newest",
    "oldest": "最早 Oldest",
    "store": "门店 Store",
}
ALERT_LIMIT = 1000


@dataclass(frozen=True)
class AlertQuery:
    """The alert queue's filters; empty tuples mean "any"."""

    period: Period | None = None
    severities: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    states: tuple[str, ...] = ("open",)
    unit_ids: tuple[int, ...] = ()  # these units and below
    staff_ids: tuple[int, ...] = ()
    assignee_id: int | None = None  # with mine_only
    mine_only: bool = False
    conversation_id: int | None = None
    sort: str = "severity"
    limit: int = ALERT_LIMIT


def _severity_rank() -> ColumnElement[int]:
    return case(
        *((Alert.severity == s, s.rank) for s in Severity),
        else_=0,
    )


def alert_queue(engine: Engine, principal: Principal, q: AlertQuery) -> pd.DataFrame:
    """The alerts the principal may review, filtered and sorted, at most ``q.limit`` rows."""
    if not principal.reads_messages:
        raise AccessDenied("this role does not see alerts (they quote message text)")
    conv_id = func.coalesce(Alert.conversation_id, Message.conversation_id)
    unit = func.coalesce(Alert.org_unit_id, Conversation.org_unit_id)
    when = func.coalesce(Message.msgtime, Conversation.started_at, Alert.created_at)
    store = aliased(OrgUnit)
    assignee = aliased(User)
    query = (
        select(
            Alert.id.label("alert_id"),
            when.label("at"),
            Alert.severity,
            Alert.category,
            Alert.state,
            Alert.title,
            store.name.label("store"),
            Staff.name.label("staff"),
            assignee.username.label("assignee"),
            Finding.rule,
            conv_id.label("conversation_id"),
        )
        .select_from(Alert)
        .outerjoin(Finding, Alert.finding_id == Finding.id)
        .outerjoin(Message, Finding.message_id == Message.id)
        .outerjoin(Conversation, Conversation.id == conv_id)
        .outerjoin(store, store.id == unit)
        .outerjoin(Staff, Staff.id == Alert.staff_id)
        .outerjoin(assignee, assignee.id == Alert.assignee_id)
        .where(within_scope(principal, unit))
    )
    if q.period is not None:
        lo, hi = q.period.utc_bounds()
        query = query.where(when >= lo, when < hi)
    if q.severities:
        query = query.where(Alert.severity.in_([Severity(s) for s in q.severities]))
    if q.categories:
        query = query.where(Alert.category.in_(q.categories))
    if q.states:
        query = query.where(Alert.state.in_([AlertState(s) for s in q.states]))
    if q.unit_ids:
        query = query.where(within_units(unit, q.unit_ids))
    if q.staff_ids:
        query = query.where(Alert.staff_id.in_(q.staff_ids))
    if q.mine_only:
        query = query.where(Alert.assignee_id == q.assignee_id)
    if q.conversation_id is not None:
        query = query.where(conv_id == q.conversation_id)
    orders: dict[str, list[Any]] = {
        "severity": [_severity_rank().desc(), when.desc()],
        "newest": [when.desc()],
        "oldest": [when.asc()],
        "store": [store.name.asc(), _severity_rank().desc(), when.desc()],
    }
    order = orders[q.sort if q.sort in ALERT_SORTS else "severity"]
    query = query.order_by(*order, Alert.id.desc()).limit(q.limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame(
        rows,
        columns=[
            "alert_id",
            "at",
            "severity",
            "category",
            "state",
            "title",
            "store",
            "staff",
            "assignee",
            "rule",
            "conversation_id",
        ],
    )
    frame["severity"] = frame["severity"].map(lambda s: Severity(s).value)
    frame["state"] = frame["state"].map(lambda s: AlertState(s).value)
    frame["at"] = pd.to_datetime(frame["at"], utc=True).dt.tz_convert(CHINA).dt.tz_localize(None)
    frame["conversation_id"] = frame["conversation_id"].astype("Int64")
    return frame


def staff_choices(engine: Engine, principal: Principal) -> list[tuple[int, str]]:
    """``(id, name)`` of the staff members in scope, for filters."""
    if not principal.sees_people:
        return []
    with engine.connect() as conn:
        rows = conn.execute(
            select(Staff.id, Staff.name, Staff.userid)
            .where(within_scope(principal, Staff.org_unit_id))
            .order_by(Staff.name)
        ).all()
    key = _names_key(principal)
    return [(i, person_name(principal, "staff", i, f"{n} ({u})", key)) for i, n, u in rows]


# --------------------------------------------------------------------------- conversation


@dataclass(frozen=True)
class FindingView:
    id: int
    category: str
    rule: str
    severity: str
    start: int
    end: int
    matched: str
    explanation: str
    alert_id: int | None
    alert_state: str | None


@dataclass(frozen=True)
class MessageView:
    id: int
    at: dt.datetime
    sender: str
    sender_kind: str  # staff | customer | robot | system | unknown
    msgtype: str
    text: str
    recalled: bool
    consent_withheld: bool
    findings: tuple[FindingView, ...]


@dataclass(frozen=True)
class ConversationView:
    id: int
    kind: str
    thread: str
    store: str
    staff: str
    customer: str
    customer_id: int | None
    started_at: dt.datetime
    ended_at: dt.datetime
    messages: tuple[MessageView, ...]
    score: float | None
    scorecard_version: str | None
    deductions: tuple[dict[str, Any], ...]
    metrics: dict[str, Any]
    tags: tuple[tuple[str, str], ...]  # (group, tag)
    channels: tuple[str, ...]  # acquisition ``state`` of the pair's follow
    pair: tuple[tuple[int, dt.datetime, int, int], ...]  # (id, started, messages, findings)
    focus_alert_id: int | None


def open_conversation(
    engine: Engine,
    principal: Principal,
    conversation_id: int | None = None,
    alert_id: int | None = None,
) -> ConversationView | None:
    """One conversation for reading, or ``None`` when it is unknown or out of scope.

    Every call is written to the audit log (``conversation.view`` or, for an unknown or
    forbidden id, ``conversation.denied``) in the same transaction as the read: the log is
    part of reading, not something a page may forget.
    """
    if not principal.reads_messages:
        raise AccessDenied("this role does not read message content")
    with session_scope(engine) as s:
        if alert_id is not None:
            conv_of_alert = s.scalar(
                select(
                    func.coalesce(
                        Alert.conversation_id,
                        select(Message.conversation_id)
                        .join(Finding, Finding.message_id == Message.id)
                        .where(Finding.id == Alert.finding_id)
                        .scalar_subquery(),
                    )
                ).where(Alert.id == alert_id)
            )
            if conv_of_alert is None or (
                conversation_id is not None and conversation_id != conv_of_alert
            ):
                record(s, principal, Action.CONVERSATION_DENIED, conversation_id, alert=alert_id)
                return None
            conversation_id = int(conv_of_alert)
        if conversation_id is None:
            return None
        conv = s.scalar(
            select(Conversation).where(
                Conversation.id == conversation_id,
                within_scope(principal, Conversation.org_unit_id),
            )
        )
        if conv is None:
            record(s, principal, Action.CONVERSATION_DENIED, conversation_id, alert=alert_id)
            return None
        record(s, principal, Action.CONVERSATION_VIEW, conv.id, alert=alert_id)
        return _conversation_view(s, principal, conv, alert_id)


def _conversation_view(
    s: Session, principal: Principal, conv: Conversation, alert_id: int | None
) -> ConversationView:
    store = s.get(OrgUnit, conv.org_unit_id) if conv.org_unit_id else None
    staff = s.get(Staff, conv.staff_id) if conv.staff_id else None
    customer = s.get(Customer, conv.customer_id) if conv.customer_id else None
    staff_by_userid = {
        u: n
        for u, n in s.execute(
            select(Staff.userid, Staff.name).where(
                Staff.id.in_(
                    select(Message.staff_id).where(Message.conversation_id == conv.id).distinct()
                )
            )
        )
    }
    customer_names = {
        e: n
        for e, n in s.execute(
            select(Customer.external_userid, Customer.name).where(
                Customer.external_userid.in_(
                    select(Message.sender).where(Message.conversation_id == conv.id).distinct()
                )
            )
        )
    }
    found: dict[int, list[FindingView]] = {}
    rows = s.execute(
        select(Finding, Alert.id, Alert.state)
        .outerjoin(Alert, Alert.finding_id == Finding.id)
        .where(Finding.conversation_id == conv.id)
        .order_by(Finding.start)
    )
    for finding, a_id, a_state in rows:
        found.setdefault(finding.message_id, []).append(
            FindingView(
                id=finding.id,
                category=finding.category,
                rule=finding.rule,
                severity=Severity(finding.severity).value,
                start=finding.start,
                end=finding.end,
                matched=finding.matched,
                explanation=finding.explanation,
                alert_id=a_id,
                alert_state=AlertState(a_state).value if a_state else None,
            )
        )
    messages = tuple(
        MessageView(
            id=m.id,
            at=m.msgtime,
            sender=staff_by_userid.get(m.sender) or customer_names.get(m.sender) or m.sender,
            sender_kind=str(
                m.sender_kind.value if hasattr(m.sender_kind, "value") else m.sender_kind
            ),
            msgtype=m.msgtype,
            text=m.text,
            recalled=m.recalled,
            consent_withheld=m.consent_withheld,
            findings=tuple(found.get(m.id, ())),
        )
        for m in s.scalars(
            select(Message)
            .where(Message.conversation_id == conv.id, Message.action == "send")
            .order_by(Message.msgtime, Message.seq)
        )
    )
    score = s.scalar(
        select(Score).where(Score.conversation_id == conv.id).order_by(Score.id.desc()).limit(1)
    )
    tags: tuple[tuple[str, str], ...] = ()
    channels: tuple[str, ...] = ()
    if conv.customer_id is not None:
        tags = tuple(
            (g, t)
            for g, t in s.execute(
                select(TagGroup.name, Tag.name)
                .join(Tag, Tag.group_id == TagGroup.id)
                .join(CustomerTag, CustomerTag.tag_id == Tag.id)
                .where(CustomerTag.customer_id == conv.customer_id, Tag.deleted.is_(False))
                .distinct()
                .order_by(TagGroup.name, Tag.name)
            )
        )
        follow_states = select(Follow.state).where(Follow.customer_id == conv.customer_id)
        if conv.staff_id is not None:
            follow_states = follow_states.where(Follow.staff_id == conv.staff_id)
        channels = tuple(c for c in s.scalars(follow_states) if c)
    around = s.execute(
        select(Conversation.id, Conversation.started_at)
        .where(
            Conversation.thread == conv.thread,
            within_scope(principal, Conversation.org_unit_id),
        )
        .order_by(Conversation.started_at)
        .limit(50)
    ).all()
    ids = [i for i, _ in around]
    n_messages = dict(
        s.execute(
            select(Message.conversation_id, func.count(Message.id))
            .where(Message.conversation_id.in_(ids))
            .group_by(Message.conversation_id)
        ).all()
    )
    n_findings = dict(
        s.execute(
            select(Finding.conversation_id, func.count(Finding.id))
            .where(Finding.conversation_id.in_(ids))
            .group_by(Finding.conversation_id)
        ).all()
    )
    pair = tuple((i, at, int(n_messages.get(i, 0)), int(n_findings.get(i, 0))) for i, at in around)
    return ConversationView(
        id=conv.id,
        kind=str(conv.kind.value if hasattr(conv.kind, "value") else conv.kind),
        thread=conv.thread,
        store=store.name if store else UNASSIGNED,
        staff=staff.name if staff else "",
        customer=customer.name or customer.external_userid if customer else "",
        customer_id=conv.customer_id,
        started_at=conv.started_at,
        ended_at=conv.ended_at,
        messages=messages,
        score=score.score if score else None,
        scorecard_version=score.scorecard_version if score else None,
        deductions=tuple(
            d if isinstance(d, dict) else {"item": d} for d in (score.deductions if score else [])
        ),
        metrics=dict(score.metrics) if score else {},
        tags=tags,
        channels=channels,
        pair=pair,
        focus_alert_id=alert_id,
    )


def conversation_alerts(engine: Engine, principal: Principal, conversation_id: int) -> pd.DataFrame:
    """The alerts of one conversation in scope (for review beside the transcript)."""
    return alert_queue(
        engine, principal, AlertQuery(states=(), conversation_id=conversation_id, sort="oldest")
    )


# --------------------------------------------------------------------------- customers, tags


def tag_table(engine: Engine, principal: Principal, f: ReportFilter) -> pd.DataFrame:
    """Per tag (with its group): the tagged customers' conversations in scope and period."""
    f = scoped(engine, principal, f)
    with engine.connect() as conn:
        tagged = select(CustomerTag.customer_id, CustomerTag.tag_id).distinct().subquery()
        measures = _measures(
            conn,
            lambda c: (
                select(tagged.c.tag_id.label("key"), _conversation_id(c))
                .join(c, c.customer_id == tagged.c.customer_id)
                .where(*_conversations_in(f, c))
            ),
        )
        names = conn.execute(
            select(Tag.id, TagGroup.name, Tag.name).join(TagGroup, TagGroup.id == Tag.group_id)
        ).all()
    out = measures.reset_index().rename(columns={"key": "tag_id"})
    groups = {i: (g, t) for i, g, t in names}
    out.insert(1, "group", [groups.get(i, ("", i))[0] for i in out["tag_id"]])
    out.insert(2, "tag", [groups.get(i, ("", i))[1] for i in out["tag_id"]])
    return out.sort_values(["group", "tag"]).reset_index(drop=True)


def tag_group_table(tags: pd.DataFrame) -> pd.DataFrame:
    """Group totals of a :func:`tag_table` (a customer with two tags of a group counts twice)."""
    if tags.empty:
        return pd.DataFrame(columns=["group", "conversations", "messages", "findings"])
    out = tags.groupby("group", as_index=False)[["conversations", "messages", "findings"]].sum()
    out["findings_per_1k"] = out["findings"] * 1000 / out["messages"].where(out["messages"] > 0)
    return out


def channel_table(engine: Engine, principal: Principal, f: ReportFilter) -> pd.DataFrame:
    """Per acquisition channel (``follows.state``, "" as "(none)"): conversations and quality."""
    f = scoped(engine, principal, f)
    with engine.connect() as conn:
        measures = _measures(
            conn,
            lambda c: (
                select(Follow.state.label("key"), _conversation_id(c))
                .join(c, and_(c.staff_id == Follow.staff_id, c.customer_id == Follow.customer_id))
                .where(*_conversations_in(f, c))
            ),
        )
        acquired = dict(
            conn.execute(
                select(Follow.state, func.count(Follow.id))
                .join(Staff, Staff.id == Follow.staff_id)
                .where(
                    Follow.added_at >= f.period.utc_bounds()[0],
                    Follow.added_at < f.period.utc_bounds()[1],
                    _in_scope(Staff.org_unit_id, f.org_unit_ids),
                )
                .group_by(Follow.state)
            ).all()
        )
    out = measures.reset_index().rename(columns={"key": "channel"})
    out.insert(1, "acquired", [int(acquired.get(c, 0)) for c in out["channel"]])
    out["channel"] = out["channel"].replace("", "(none)")
    return out.sort_values("conversations", ascending=False).reset_index(drop=True)


# --------------------------------------------------------------------------- word lists


def rule_table(engine: Engine, principal: Principal, f: ReportFilter) -> pd.DataFrame:
    """Per rule: hits in the period, and the reviewers' verdicts on its alerts (all time).

    A verdict is the latest review of each alert; ``false_positive_rate`` is false positives
    over reviewed alerts (confirmed, escalated or resolved count as true). Reviews are keyed
    by the rule recorded at review time, so they survive rescans.
    """
    if not principal.sees_wordlists:
        raise AccessDenied("this role does not see the word lists")
    f = scoped(engine, principal, f)
    lo, hi = f.period.utc_bounds()
    unit = Conversation.org_unit_id
    with engine.connect() as conn:
        hits = pd.DataFrame(
            conn.execute(
                select(
                    Finding.rule,
                    Finding.category,
                    func.count(Finding.id),
                    func.count(func.distinct(Finding.matched)),
                )
                .join(Message, Message.id == Finding.message_id)
                .outerjoin(Conversation, Conversation.id == Message.conversation_id)
                .where(Message.msgtime >= lo, Message.msgtime < hi, _in_scope(unit, f.org_unit_ids))
                .group_by(Finding.rule, Finding.category)
            ).all(),
            columns=["rule", "category", "hits", "variants"],
        )
        latest = select(func.max(Review.id).label("id")).group_by(Review.alert_id).subquery()
        alert_unit = func.coalesce(Alert.org_unit_id, Conversation.org_unit_id)
        verdicts = pd.DataFrame(
            conn.execute(
                select(Review.finding_rule, Review.to_state, func.count(Review.id))
                .join(latest, latest.c.id == Review.id)
                .join(Alert, Alert.id == Review.alert_id)
                .outerjoin(Conversation, Conversation.id == Alert.conversation_id)
                .where(Review.finding_rule.is_not(None), _in_scope(alert_unit, f.org_unit_ids))
                .group_by(Review.finding_rule, Review.to_state)
            ).all(),
            columns=["rule", "state", "n"],
        )
    if not verdicts.empty:
        verdicts["state"] = verdicts["state"].map(lambda v: AlertState(v).value)
        pivot = verdicts.pivot_table(index="rule", columns="state", values="n", aggfunc="sum")
    else:
        pivot = pd.DataFrame()
    fp = pivot.get("false_positive", pd.Series(dtype=float))
    true = sum(
        (
            pivot.get(c, pd.Series(dtype=float)).fillna(0)
            for c in ("confirmed", "escalated", "resolved")
        ),
        pd.Series(dtype=float),
    )
    judged = pd.DataFrame({"false_positives": fp, "confirmed": true}).fillna(0)
    out = hits.set_index("rule").join(judged, how="outer")
    out["category"] = out["category"].fillna(out.index.to_series().str.split(".").str[0])
    for column in ("hits", "variants", "false_positives", "confirmed"):
        out[column] = out[column].fillna(0).astype("int64")
    reviewed = out["false_positives"] + out["confirmed"]
    out["false_positive_rate"] = out["false_positives"] / reviewed.where(reviewed > 0)
    out = out.reset_index().rename(columns={"index": "rule"})
    return out.sort_values(["false_positives", "hits"], ascending=False).reset_index(drop=True)[
        [
            "rule",
            "category",
            "hits",
            "variants",
            "confirmed",
            "false_positives",
            "false_positive_rate",
        ]
    ]


def rule_examples(
    engine: Engine, principal: Principal, f: ReportFilter, rule: str, limit: int = 20
) -> pd.DataFrame:
    """The matched texts of one rule, most frequent first (quotes message text)."""
    if not (principal.sees_wordlists and principal.reads_messages):
        raise AccessDenied("this role does not read matched text")
    f = scoped(engine, principal, f)
    lo, hi = f.period.utc_bounds()
    with engine.connect() as conn:
        rows = conn.execute(
            select(Finding.matched, func.count(Finding.id).label("hits"))
            .join(Message, Message.id == Finding.message_id)
            .outerjoin(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Finding.rule == rule,
                Message.msgtime >= lo,
                Message.msgtime < hi,
                _in_scope(Conversation.org_unit_id, f.org_unit_ids),
            )
            .group_by(Finding.matched)
            .order_by(func.count(Finding.id).desc())
            .limit(limit)
        ).all()
    return pd.DataFrame(rows, columns=["matched", "hits"])


# --------------------------------------------------------------------------- trail


def audit_trail(
    engine: Engine,
    principal: Principal,
    actions: Sequence[Action] = (),
    limit: int = 500,
) -> pd.DataFrame:
    """The newest audit log entries of ``actions`` (all when empty); compliance and admins
    only. ``action`` comes back as its Chinese label, ``action_value`` as stored."""
    if not principal.sees_trail:
        raise AccessDenied("only compliance officers and admins see the audit trail")
    query = select(
        AuditLog.id,
        AuditLog.at,
        AuditLog.actor,
        AuditLog.action,
        AuditLog.target_type,
        AuditLog.target_id,
        AuditLog.detail,
    )
    if actions:
        query = query.where(AuditLog.action.in_([Action(a).value for a in actions]))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(AuditLog.id.desc()).limit(limit)).all()
    frame = pd.DataFrame(
        rows, columns=["id", "at", "actor", "action", "target_type", "target_id", "detail"]
    )
    frame.insert(4, "action_value", frame["action"])
    frame["action"] = frame["action"].map(lambda a: label_of(a, Action))
    frame["detail"] = frame["detail"].map(lambda d: json.dumps(d, ensure_ascii=False))
    return frame


# --------------------------------------------------------------------------- overview


@dataclass(frozen=True)
class Window:
    label: str
    period: Period
    totals: OverviewTotals
    findings_by_category: dict[str, int]
    score_avg: float | None
    scored: int
    sla_rate: float | None


# --------------------------------------------------------------------------- dormant


def dormant_customers(engine: Engine, principal: Principal, days: int) -> pd.DataFrame | None:
    """The quality stage's dormant customer list, in scope; ``None`` when not available.

    ``audit.quality.rollups.dormant_customers(session, now, days)`` is optional (imported
    lazily); its rows are kept only when they name a staff member or org unit in scope, so
    an unscopable list is not shown to scoped users. Names are masked for analysts and the
    list is withheld from viewers (aggregates only).
    """
    try:
        from audit.quality import rollups  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    finder = getattr(rollups, "dormant_customers", None)
    if finder is None or not principal.sees_people:
        return None
    with session_scope(engine) as s:
        rows = list(finder(s, utcnow(), days))
        frame = pd.DataFrame([_as_record(r) for r in rows])
        if frame.empty or principal.unit_ids is None:
            return _mask_customers(principal, frame)
        visible_staff = set(
            s.scalars(select(Staff.id).where(within_scope(principal, Staff.org_unit_id)))
        )
        visible_units = set(
            s.scalars(select(OrgUnit.id).where(within_scope(principal, OrgUnit.id)))
        )
    if "staff_id" in frame:
        frame = frame[frame["staff_id"].isin(visible_staff)]
    elif "org_unit_id" in frame:
        frame = frame[frame["org_unit_id"].isin(visible_units)]
    else:
        return None
    return _mask_customers(principal, frame.reset_index(drop=True))


def _as_record(row: object) -> dict[str, Any]:
    if isinstance(row, dict):
        return dict(row)
    if hasattr(row, "_asdict"):
        return dict(row._asdict())
    if hasattr(row, "__dataclass_fields__"):
        return {k: getattr(row, k) for k in row.__dataclass_fields__}
    return {"value": row}


def _names_key(principal: Principal) -> bytes | None:
    """The pseudonym key, read once per report, when this principal sees pseudonyms."""
    return None if principal.sees_names else pseudonym_key()


def _mask_customers(principal: Principal, frame: pd.DataFrame) -> pd.DataFrame:
    if principal.sees_names or frame.empty:
        return frame
    secret = pseudonym_key()
    out = frame.copy()
    key = "customer_id" if "customer_id" in out else None
    for column in ("name", "customer", "customer_name", "external_userid", "remark"):
        if column in out:
            out[column] = [
                pseudonym("customer", out.at[i, key] if key else out.at[i, column], secret)
                for i in out.index
            ]
    for column in ("staff", "staff_name"):
        if column in out:
            out[column] = [pseudonym("staff", v, secret) for v in out[column]]
    return out


# --------------------------------------------------------------------------- overview, in one pass

Day = tuple[int | None, dt.date]


@dataclass(frozen=True)
class DailyCounts:
    """The store table's measures per (store, China day): one pass serves every window.

    The overview shows several periods (the latest day, 7 and 30 days, the picked range, two
    weeks for the movers); counting each in SQL would scan the messages six times.
    """

    nodes: dict[int, OrgNode]
    stores: set[int]
    messages: dict[Day, int]
    conversations: dict[Day, int]
    findings: dict[tuple[int | None, dt.date, str], int]
    alerts: dict[Day, tuple[int, int]]
    scores: dict[dt.date, tuple[float, int, float, float]]  # sum, n, within SLA, responses

    def store_table(self, period: Period, units: set[int] | None = None) -> pd.DataFrame:
        """:func:`store_table` for ``period``, restricted to ``units`` (ids, already expanded)."""

        def keep(unit: int | None, day: dt.date) -> bool:
            inside = units is None or (unit is not None and unit in units)
            return inside and period.start <= day <= period.end

        messages: dict[int | None, int] = {}
        for (u, d), n in self.messages.items():
            if keep(u, d):
                messages[u] = messages.get(u, 0) + n
        conversations: dict[int | None, int] = {}
        for (u, d), n in self.conversations.items():
            if keep(u, d):
                conversations[u] = conversations.get(u, 0) + n
        findings: dict[tuple[int | None, str], int] = {}
        for (u, d, c), n in self.findings.items():
            if keep(u, d):
                findings[(u, c)] = findings.get((u, c), 0) + n
        alerts: dict[int | None, tuple[int, int]] = {}
        for (u, d), (o, t) in self.alerts.items():
            if keep(u, d):
                before = alerts.get(u, (0, 0))
                alerts[u] = (before[0] + o, before[1] + t)
        stores = self.stores if units is None else self.stores & units
        return _store_rows(self.nodes, stores, messages, conversations, findings, alerts)

    def per_day(self, period: Period, units: set[int] | None = None) -> pd.DataFrame:
        counts: dict[dt.date, int] = {}
        for (u, d), n in self.messages.items():
            if (
                units is None or (u is not None and u in units)
            ) and period.start <= d <= period.end:
                counts[d] = counts.get(d, 0) + n
        days = period.days()
        return pd.DataFrame({"day": days, "messages": [counts.get(d, 0) for d in days]})

    def score(self, period: Period) -> tuple[float | None, int, float | None]:
        total = n = within = responses = 0.0
        for d, (s_, n_, w_, r_) in self.scores.items():
            if period.start <= d <= period.end:
                total, n, within, responses = total + s_, n + n_, within + w_, responses + r_
        return (total / n if n else None, int(n), within / responses if responses else None)


_DailyParts = tuple[
    dict[Day, int],
    dict[Day, int],
    dict[tuple[int | None, dt.date, str], int],
    dict[dt.date, tuple[float, int, float, float]],
]


def daily_counts(engine: Engine, f: ReportFilter) -> DailyCounts:
    """Per (store, day) counts over ``f`` (already scoped: see :func:`scoped`)."""
    nodes = {n.id: n for n in org_tree(engine)}
    with engine.connect() as conn:
        if _aggregated(conn):
            messages, conversations, findings, scores = _daily_from_tables(conn, f)
        else:
            messages, conversations, findings, scores = _daily_live(conn, f)
        alerts = _daily_alerts(conn, f)
        stores = _stores_in_scope(nodes.values(), conn, f)
    return DailyCounts(nodes, stores, messages, conversations, findings, alerts, scores)


def _daily_from_tables(conn: Connection, f: ReportFilter) -> _DailyParts:
    """:func:`_daily_live` from ``store_day`` and ``store_day_findings``."""
    messages: dict[Day, int] = {}
    conversations: dict[Day, int] = {}
    for u, d, m, c in conn.execute(
        select(StoreDay.org_unit_id, StoreDay.day, StoreDay.messages, StoreDay.conversations).where(
            *_on_store_days(StoreDay, f)
        )
    ):
        if m:
            messages[(u, _as_date(d))] = int(m)
        if c:
            conversations[(u, _as_date(d))] = int(c)
    findings = {
        (u, _as_date(d), c): int(n)
        for u, d, c, n in conn.execute(
            select(
                StoreDayFinding.org_unit_id,
                StoreDayFinding.day,
                StoreDayFinding.category,
                StoreDayFinding.n,
            ).where(*_on_store_days(StoreDayFinding, f), StoreDayFinding.n > 0)
        )
    }
    scores: dict[dt.date, tuple[float, int, float, float]] = {}
    for d, total, n, w, r in conn.execute(
        select(
            StoreDay.day,
            func.sum(StoreDay.score_sum),
            func.sum(StoreDay.scored),
            func.sum(StoreDay.within_sla),
            func.sum(StoreDay.responses),
        )
        .where(*_on_store_days(StoreDay, f))
        .group_by(StoreDay.day)
    ):
        if n:
            scores[_as_date(d)] = (float(total or 0), int(n), float(w or 0), float(r or 0))
    return messages, conversations, findings, scores


def _daily_live(conn: Connection, f: ReportFilter) -> _DailyParts:
    lo, hi = f.period.utc_bounds()
    unit = Conversation.org_unit_id
    day = _china_day(conn, Message.msgtime)
    messages = {
        (u, _as_date(d)): int(n)
        for u, d, n in conn.execute(
            select(unit, day, func.count(Message.id))
            .select_from(Message)
            .outerjoin(Conversation, Message.conversation_id == Conversation.id)
            .where(Message.msgtime >= lo, Message.msgtime < hi, _in_scope(unit, f.org_unit_ids))
            .group_by(unit, day)
        )
    }
    findings = {
        (u, _as_date(d), c): int(n)
        for u, d, c, n in conn.execute(
            select(unit, day, Finding.category, func.count(Finding.id))
            .select_from(Finding)
            .join(Message, Finding.message_id == Message.id)
            .outerjoin(Conversation, Message.conversation_id == Conversation.id)
            .where(Message.msgtime >= lo, Message.msgtime < hi, _in_scope(unit, f.org_unit_ids))
            .group_by(unit, day, Finding.category)
        )
    }
    started = _china_day(conn, Conversation.started_at)
    conversations = {
        (u, _as_date(d)): int(n)
        for u, d, n in conn.execute(
            select(unit, started, func.count(Conversation.id))
            .where(*_conversations_in(f))
            .group_by(unit, started)
        )
    }
    scores: dict[dt.date, tuple[float, int, float, float]] = {}
    version = _latest_scorecard(conn)
    if version is not None:
        within = Score.metrics["within_sla"].as_float()
        responses = Score.metrics["responses"].as_float()
        for d, total, n, w, r in conn.execute(
            select(
                started,
                func.sum(Score.score),
                func.count(Score.id),
                func.sum(within),
                func.sum(responses),
            )
            .select_from(Conversation)
            .join(Score, Score.conversation_id == Conversation.id)
            .where(*_conversations_in(f), Score.scorecard_version == version)
            .group_by(started)
        ):
            scores[_as_date(d)] = (float(total or 0), int(n), float(w or 0), float(r or 0))
    return messages, conversations, findings, scores


def _daily_alerts(conn: Connection, f: ReportFilter) -> dict[Day, tuple[int, int]]:
    """Always live: reviews change alert states between pipeline runs."""
    return {
        (u, _as_date(d)): (int(o or 0), int(t)) for u, d, o, t in _alert_tally(conn, f, by_day=True)
    }


@dataclass(frozen=True)
class Overview:
    windows: list[Window]
    table: pd.DataFrame
    per_day: pd.DataFrame
    movers: pd.DataFrame


def overview(
    engine: Engine,
    principal: Principal,
    period: Period,
    units: tuple[int, ...] | None,
    last_day: dt.date,
) -> Overview:
    """Everything the overview page shows, from one :func:`daily_counts` pass."""
    span = Period(min(period.start, last_day - dt.timedelta(days=29)), max(period.end, last_day))
    daily = daily_counts(engine, scoped(engine, principal, ReportFilter(span)))
    picked: set[int] | None = None
    if units is not None:
        roots = scoped(engine, principal, ReportFilter(period, units)).org_unit_ids
        with session_scope(engine) as s:
            picked = set(expand(s, roots or ()) or ())
    wins = []
    for label, days in (("yesterday", 1), ("7d", 7), ("30d", 30)):
        p = Period(last_day - dt.timedelta(days=days - 1), last_day)
        table = daily.store_table(p)
        by_cat = findings_by_category(table)
        avg, n, sla = daily.score(p)
        wins.append(
            Window(
                label=label,
                period=p,
                totals=summarize(table),
                findings_by_category=dict(zip(by_cat["category"], by_cat["findings"], strict=True)),
                score_avg=avg,
                scored=n,
                sla_rate=sla,
            )
        )
    now = Period(last_day - dt.timedelta(days=6), last_day)
    before = Period(now.start - dt.timedelta(days=7), now.start - dt.timedelta(days=1))
    return Overview(
        windows=wins,
        table=daily.store_table(period, picked),
        per_day=daily.per_day(period, picked),
        movers=_movers(daily.store_table(now), daily.store_table(before)),
    )


def _movers(cur: pd.DataFrame, prev: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    cols = ["org_unit_id", "store", "city", "messages", "findings", "findings_per_1k"]
    merged = cur[cols].merge(
        prev[["org_unit_id", "messages", "findings_per_1k"]],
        on="org_unit_id",
        suffixes=("", "_before"),
    )
    merged = merged[merged["org_unit_id"].notna()]
    merged = merged[(merged["messages"] >= 50) & (merged["messages_before"] >= 50)]
    merged["change"] = merged["findings_per_1k"] - merged["findings_per_1k_before"]
    return merged.sort_values("change", ascending=False).head(top).reset_index(drop=True)
