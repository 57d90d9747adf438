"""The figures every page shows, each defined once.

Counts by store (:func:`store_table`), their totals (:func:`summarize`) and the measures of a
group of conversations (:func:`measures`: score average, SLA rate, response median, negative
rate), whatever the grouping (store, region, staff member, tag, channel). A page never
recomputes one of these from another figure: a region's SLA rate is the SLA rate of the
region's conversations, not a mean of its stores' rates.

Every count is aggregated in SQL (one ``GROUP BY`` per measure) so that a report over a
million messages moves a few hundred rows, not the messages. The same queries run on SQLite
and PostgreSQL.

Counts by store and day and the per-conversation measures are read from the pre-aggregated
tables of :mod:`audit.store.daily` whenever they are fresh (refreshed since the data last
changed, in the period's time zone), and computed from the live tables otherwise: the two give
identical results, which ``tests/store/test_daily.py`` checks.

Where a thing happened is decided by its conversation: a message belongs to the store of
``Conversation.org_unit_id``, a finding to the store of its message, an alert to its own
``org_unit_id`` or else to its conversation's. Messages not (yet) sessionized have no store
and show up in a row of their own when the report is not restricted to part of the tree.

Definitions:

``findings_per_1k``
    findings per 1,000 messages (``NaN`` without messages);
``score_avg``
    the mean score of the scored conversations (newest scorecard version), over ``scored``;
``sla_rate``
    answered customer bursts answered within the SLA over all answered bursts, pooled over
    the conversations;
``response_median_s``
    the median, over the scored conversations, of each conversation's median response time;
``negative_rate``
    scored conversations whose customer-negative probability reaches
    :data:`NEGATIVE_THRESHOLD`, over the scored conversations.
"""

from __future__ import annotations

from collections.abc import Callable
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

from audit.days import as_date
from audit.domain import CATEGORIES
from audit.reports.common import (
    UNASSIGNED,
    Column,
    OrgNode,
    ReportFilter,
    aggregated,
    in_scope,
    local_day,
    org_tree,
    scoped,
    stores_in_scope,
)
from audit.store import daily as aggregates
from audit.store.access import Principal
from audit.store.models import (
    Alert,
    AlertState,
    Conversation,
    ConversationFact,
    Finding,
    Message,
    Score,
    StoreDay,
    StoreDayFinding,
)

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
class OverviewTotals:
    messages: int
    conversations: int
    findings: int
    alerts_open: int
    alerts_total: int
    stores: int  # store rows in the report (every store in scope, active or not)
    active_stores: int  # stores with at least one message in the period


def per_1k(frame: pd.DataFrame) -> pd.Series:
    """``findings_per_1k`` of a frame with ``findings`` and ``messages`` (``NaN`` without
    messages)."""
    return frame["findings"] * 1000 / frame["messages"].where(frame["messages"] > 0)


# --------------------------------------------------------------------------- measures


def grouped(conn: Connection, query: Executable) -> dict[int | None, int]:
    return {unit: int(n or 0) for unit, n in conn.execute(query)}


def _message_counts(conn: Connection, f: ReportFilter) -> dict[int | None, int]:
    lo, hi = f.period.utc_bounds()
    unit = Conversation.org_unit_id
    query = (
        select(unit, func.count(Message.id))
        .select_from(Message)
        .outerjoin(Conversation, Message.conversation_id == Conversation.id)
        .where(Message.msgtime >= lo, Message.msgtime < hi, in_scope(unit, f.org_unit_ids))
        .group_by(unit)
    )
    return grouped(conn, query)


def _conversation_counts(conn: Connection, f: ReportFilter) -> dict[int | None, int]:
    lo, hi = f.period.utc_bounds()
    unit = Conversation.org_unit_id
    query = (
        select(unit, func.count(Conversation.id))
        .where(
            Conversation.started_at >= lo,
            Conversation.started_at < hi,
            in_scope(unit, f.org_unit_ids),
        )
        .group_by(unit)
    )
    return grouped(conn, query)


def _finding_counts(conn: Connection, f: ReportFilter) -> dict[tuple[int | None, str], int]:
    """Findings by (store, category), dated by the message they were found in."""
    lo, hi = f.period.utc_bounds()
    unit = Conversation.org_unit_id
    query = (
        select(unit, Finding.category, func.count(Finding.id))
        .select_from(Finding)
        .join(Message, Finding.message_id == Message.id)
        .outerjoin(Conversation, Message.conversation_id == Conversation.id)
        .where(Message.msgtime >= lo, Message.msgtime < hi, in_scope(unit, f.org_unit_ids))
        .group_by(unit, Finding.category)
    )
    return {(u, cat): int(n) for u, cat, n in conn.execute(query)}


def on_store_days(table: Any, f: ReportFilter) -> list[ColumnElement[bool]]:
    return [
        table.day >= f.period.start,
        table.day <= f.period.end,
        in_scope(table.org_unit_id, f.org_unit_ids),
    ]


def _summed(conn: Connection, column: Column, f: ReportFilter) -> dict[int | None, int]:
    """``store_day.<column>`` summed by store over ``f`` (stores with a non-zero sum only)."""
    query = (
        select(StoreDay.org_unit_id, func.sum(column))
        .where(*on_store_days(StoreDay, f))
        .group_by(StoreDay.org_unit_id)
    )
    return {u: int(n) for u, n in conn.execute(query) if n}


def _daily_finding_counts(conn: Connection, f: ReportFilter) -> dict[tuple[int | None, str], int]:
    query = (
        select(StoreDayFinding.org_unit_id, StoreDayFinding.category, func.sum(StoreDayFinding.n))
        .where(*on_store_days(StoreDayFinding, f))
        .group_by(StoreDayFinding.org_unit_id, StoreDayFinding.category)
    )
    return {(u, cat): int(n) for u, cat, n in conn.execute(query) if n}


def alert_tally(conn: Connection, f: ReportFilter, by_day: bool) -> Any:
    """(store, [local day,] open, total) rows of the alerts in ``f``.

    An alert is dated by what it is about (its finding's message, else its conversation's
    start), falling back to when it was raised: a rescan next week must not move last
    week's alerts into this week.
    """
    lo, hi = f.period.utc_bounds()
    conv_id = func.coalesce(Alert.conversation_id, Message.conversation_id)
    unit = func.coalesce(Alert.org_unit_id, Conversation.org_unit_id)
    when = func.coalesce(Message.msgtime, Conversation.started_at, Alert.created_at)
    keys: list[Any] = [unit, local_day(conn, when, f.period)] if by_day else [unit]
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
        .where(when >= lo, when < hi, in_scope(unit, f.org_unit_ids))
        .group_by(*keys)
    )


def _alert_counts(conn: Connection, f: ReportFilter) -> dict[int | None, tuple[int, int]]:
    """(open, total) alerts by store."""
    return {u: (int(o or 0), int(t)) for u, o, t in alert_tally(conn, f, by_day=False)}


# --------------------------------------------------------------------------- reports


def store_table(engine: Engine, f: ReportFilter) -> pd.DataFrame:
    """One row per store (see :data:`STORE_COLUMNS`), ordered by region, city, store.

    Category columns count findings of that category; ``other`` any category outside
    :data:`CATEGORIES`; ``findings_per_1k`` is ``NaN`` for a store without messages.
    """
    nodes = {n.id: n for n in org_tree(engine)}
    with engine.connect() as conn:
        if aggregated(conn, f.period.tz):
            messages = _summed(conn, StoreDay.messages, f)
            conversations = _summed(conn, StoreDay.conversations, f)
            findings = _daily_finding_counts(conn, f)
        else:
            messages = _message_counts(conn, f)
            conversations = _conversation_counts(conn, f)
            findings = _finding_counts(conn, f)
        alerts = _alert_counts(conn, f)
        stores = stores_in_scope(nodes.values(), conn, f)
    return store_rows(nodes, stores, messages, conversations, findings, alerts)


def store_rows(
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
    rate = per_1k(table).astype(float)
    table.insert(STORE_COLUMNS.index("findings_per_1k"), "findings_per_1k", rate)
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
    """``day`` (local date), ``messages`` for every day of the period, zeros included."""
    lo, hi = f.period.utc_bounds()
    unit = Conversation.org_unit_id
    with engine.connect() as conn:
        if aggregated(conn, f.period.tz):
            query = (
                select(StoreDay.day, func.sum(StoreDay.messages))
                .where(*on_store_days(StoreDay, f))
                .group_by(StoreDay.day)
            )
        else:
            day = local_day(conn, Message.msgtime, f.period)
            query = (
                select(day, func.count(Message.id))
                .select_from(Message)
                .outerjoin(Conversation, Message.conversation_id == Conversation.id)
                .where(Message.msgtime >= lo, Message.msgtime < hi, in_scope(unit, f.org_unit_ids))
                .group_by(day)
            )
        counts = {as_date(d): int(n) for d, n in conn.execute(query)}
    days = f.period.days()
    return pd.DataFrame({"day": days, "messages": [counts.get(d, 0) for d in days]})


def scoped_store_table(engine: Engine, principal: Principal, f: ReportFilter) -> pd.DataFrame:
    """:func:`store_table` of what ``principal`` may see of ``f``."""
    return store_table(engine, scoped(engine, principal, f))


def scoped_messages_per_day(engine: Engine, principal: Principal, f: ReportFilter) -> pd.DataFrame:
    """:func:`messages_per_day` of what ``principal`` may see of ``f``."""
    return messages_per_day(engine, scoped(engine, principal, f))


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


# ``Conversation`` or ``ConversationFact``: both have org_unit_id, staff_id, customer_id and
# started_at, so one query builder serves the live tables and the pre-aggregated ones
Conversations = type[Conversation] | type[ConversationFact]
KeyedQuery = Callable[[Conversations], Select[Any]]


def conversation_id(c: Conversations) -> ColumnElement[Any]:
    column = c.id if c is Conversation else c.conversation_id  # type: ignore[union-attr]
    return column.label("conversation_id")


def measures(
    conn: Connection, f: ReportFilter, keyed_by: KeyedQuery, medians: bool = True
) -> pd.DataFrame:
    """Per ``key`` of ``keyed_by(c)`` (``key`` and :func:`conversation_id` of ``c``, a
    select over the conversations ``c``), over the conversations that started in ``f``
    (its period and org units): MEASURE_COLUMNS.

    Counts are by conversation (``message_count`` as sessionized, and the findings in it,
    whenever sent), so the numbers of a tag or a staff member add up over their
    conversations. Rows are ordered by key. From ``conversation_facts`` when fresh (one
    pass, plain columns), else live: one pass for conversations and scores, one for findings.
    ``medians=False``: ``response_median_s`` left NaN, for a caller that does not show it (on
    SQLite the medians are the one part computed in Python, from every conversation's value).
    """

    def keyed(c: Conversations) -> Select[Any]:
        return keyed_by(c).where(*conversations_in(f, c))

    if aggregated(conn, f.period.tz):
        frame = _measures_from_facts(conn, keyed(ConversationFact), medians)
    else:
        frame = _measures_live(conn, keyed(Conversation).subquery(), medians)
    frame = frame.sort_index()
    for column in ("conversations", "customers", "messages", "scored", "findings"):
        frame[column] = frame[column].fillna(0).astype("int64")
    frame["findings_per_1k"] = per_1k(frame)
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


def _joined_values(value: Any) -> Any:
    """SQLite: the group's values (not ``NULL``) as one string, ``%!.17g`` (every double
    exactly): reading them row by row costs more than the query that finds them."""
    # printf makes a NULL "0": only values are printed
    return func.group_concat(case((value.is_not(None), func.printf("%!.17g", value))), ",")


def _median_of(joined: object) -> float:
    """The median of :func:`_joined_values` as pandas takes it (the middle value, or the mean
    of the two middle ones); ``NaN`` for none (``NULL``, which a frame may hold as NaN)."""
    if not isinstance(joined, str) or not joined:
        return float("nan")
    values = sorted(map(float, joined.split(",")))
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def _sqlite_medians(conn: Connection, query: Select[Any]) -> dict[Any, float]:
    """Per key (not ``NULL``), the median of ``(key, value)`` rows (SQLite has no
    percentile_cont)."""
    rows = query.subquery()
    key, value = rows.c[0], rows.c[1]
    grouped = select(key, _joined_values(value)).where(key.is_not(None)).group_by(key)
    return {k: _median_of(joined) for k, joined in conn.execute(grouped)}


def _measures_from_facts(conn: Connection, keyed: Select[Any], medians: bool) -> pd.DataFrame:
    """The aggregates over the keyed select's own ``conversation_facts`` rows: no join back."""
    k = keyed.selected_columns.key
    fact = ConversationFact
    in_sql = medians and conn.dialect.name == "postgresql"  # percentile_cont
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
    if in_sql:
        columns.append(func.percentile_cont(0.5).within_group(fact.response_median_s))
    elif medians:  # SQLite: no percentile_cont; the values in the same pass, the median here
        columns.append(_joined_values(case((fact.score.is_not(None), fact.response_median_s))))
    joined = keyed.with_only_columns(*columns, maintain_column_froms=True).group_by(k)
    names = [*_MEASURE_NAMES, "findings", *(["response_median_s"] if medians else [])]
    frame = pd.DataFrame(conn.execute(joined).all(), columns=names).set_index("key")
    if not medians:
        frame["response_median_s"] = float("nan")
    elif not in_sql:  # no median for a NULL key, as pandas groups
        frame["response_median_s"] = [
            float("nan") if pd.isna(i) else _median_of(v)
            for i, v in zip(frame.index, frame["response_median_s"], strict=True)
        ]
    return frame


def _measures_live(conn: Connection, keyed: Any, medians: bool) -> pd.DataFrame:
    k = keyed.c.key
    conv = keyed.c.conversation_id
    version = aggregates.latest_scorecard(conn) or ""
    within = Score.metrics["within_sla"].as_float()
    responses = Score.metrics["responses"].as_float()
    negative = Score.metrics[("scores_max", "customer_negative")].as_float()
    median = Score.metrics["response_median_seconds"].as_float()
    in_sql = medians and conn.dialect.name == "postgresql"  # percentile_cont
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
    if in_sql:
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
    names = [*_MEASURE_NAMES, *(["response_median_s"] if in_sql else [])]
    frame = pd.DataFrame(conn.execute(joined).all(), columns=names).set_index("key")
    if not medians:
        frame["response_median_s"] = float("nan")
    elif not in_sql:  # SQLite: no percentile_cont
        found = _sqlite_medians(
            conn,
            select(k, median)
            .select_from(keyed)
            .join(Score, Score.conversation_id == conv)
            .where(Score.scorecard_version == version, median.is_not(None)),
        )
        frame["response_median_s"] = [found.get(i, float("nan")) for i in frame.index]
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


def conversations_in(f: ReportFilter, c: Conversations = Conversation) -> list[ColumnElement[bool]]:
    lo, hi = f.period.utc_bounds()
    return [c.started_at >= lo, c.started_at < hi, in_scope(c.org_unit_id, f.org_unit_ids)]
