"""The service-quality page: who keeps customers waiting, how fast each staff member answers,
and the daily trend of a store's figures.

Response and waiting times are business time, measured by the quality clock
(:mod:`audit.quality.metrics`): each scored conversation carries its answered bursts'
business seconds (``response_business_seconds``) and, when the customer's last words got no
reply, ``unanswered_since``; the waiting time until now is :meth:`BusinessClock.business_seconds`
of the same clock. Percentiles are the clock's :func:`~audit.quality.metrics.percentile`, pooled
over every answered burst of the group (not a median of medians).

The daily trend reuses the figures' definitions: messages, findings and alerts per store and
local day from :func:`audit.reports.overview.daily_counts` (the pre-aggregated tables when
fresh), scores, SLA rate and negative share from :func:`audit.reports.figures.measures`
keyed by the local day a conversation started.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    and_,
    any_,
    bindparam,
    func,
    select,
    true,
)

from audit.days import as_date
from audit.quality.metrics import BusinessClock, median, percentile
from audit.reports.common import (
    Period,
    ReportFilter,
    aggregated,
    local_day,
    local_times,
    org_tree,
    scoped,
)
from audit.reports.figures import conversation_id, conversations_in, measures, per_1k
from audit.reports.overview import daily_counts
from audit.store import daily as aggregates
from audit.store.access import AccessDenied, Principal, expand, person_name
from audit.store.db import session_scope
from audit.store.models import Conversation, ConversationFact, Customer, OrgUnit, Score, Staff

WAITING_COLUMNS = [
    "conversation_id",
    "staff_id",
    "staff",
    "store",
    "customer_id",
    "customer",
    "since",
    "waiting_min",
    "overdue",
]
STAFF_COLUMNS = [
    "staff_id",
    "staff",
    "store",
    "conversations",
    "responses",
    "within_sla",
    "sla_rate",
    "response_p50_min",
    "response_p90_min",
    "unanswered",
    "overdue",
    "waiting_p50_min",
    "waiting_p90_min",
]
TREND_COLUMNS = [
    "day",
    "messages",
    "findings",
    "findings_per_1k",
    "alerts",
    "alerts_open",
    "conversations",
    "scored",
    "score_avg",
    "sla_rate",
    "negative_rate",
]


def _minutes(seconds: float | None) -> float:
    return float("nan") if seconds is None else seconds / 60


def response_summary(business_seconds: Sequence[float], sla_seconds: float) -> dict[str, Any]:
    """Pooled business response times: n, within the SLA, its rate, p50 and p90 (minutes)."""
    ordered = sorted(business_seconds)  # sorted once: the percentiles' sorts find it so
    n = len(ordered)
    within = bisect.bisect_right(ordered, sla_seconds)
    return {
        "responses": n,
        "within_sla": within,
        "sla_rate": within / n if n else float("nan"),
        "response_p50_min": _minutes(median(ordered)),
        "response_p90_min": _minutes(percentile(ordered, 90)),
    }


def scored_metrics(
    conn: Connection, f: ReportFilter, *where: Any, metrics: Any = Score.metrics
) -> list[Any]:
    """(conversation id, staff id, store id, customer id, metrics) of the conversations of
    ``f`` scored with the newest scorecard (``metrics``: the whole JSON, or one element)."""
    version = aggregates.latest_scorecard(conn)
    if version is None:
        return []
    query = (
        select(
            Conversation.id,
            Conversation.staff_id,
            Conversation.org_unit_id,
            Conversation.customer_id,
            metrics,
        )
        .join(
            Score,
            and_(Score.conversation_id == Conversation.id, Score.scorecard_version == version),
        )
        .where(*conversations_in(f), *where)
        .order_by(Conversation.id)
    )
    return list(conn.execute(query).all())


def _pooled_responses(conn: Connection, f: ReportFilter) -> list[tuple[int, int, list[float]]]:
    """Per staff member, the conversations of ``f`` scored with the newest scorecard and each
    one's ``response_business_seconds``: the arrays joined in SQL as JSON text and read with
    one parse per staff member (not one per conversation). From ``conversation_facts`` (the
    arrays' text as scored) when fresh."""
    if aggregated(conn, f.period.tz):
        fact = ConversationFact
        query = (
            select(
                fact.staff_id,
                func.count(fact.conversation_id),
                func.aggregate_strings(fact.response_business_s, ","),
            )
            .where(
                *conversations_in(f, fact),
                fact.staff_id.is_not(None),
                fact.scorecard_version.is_not(None),
            )
            .group_by(fact.staff_id)
        )
        return _parsed(conn.execute(query))
    version = aggregates.latest_scorecard(conn)
    if version is None:
        return []
    business = Score.metrics["response_business_seconds"].as_string()
    query = (
        select(
            Conversation.staff_id,
            func.count(Conversation.id),
            func.aggregate_strings(business, ","),
        )
        .join(
            Score,
            and_(Score.conversation_id == Conversation.id, Score.scorecard_version == version),
        )
        .where(*conversations_in(f), Conversation.staff_id.is_not(None))
        .group_by(Conversation.staff_id)
    )
    return _parsed(conn.execute(query))


_BRACKETS = str.maketrans("", "", "[]")


def _parsed(rows: Iterable[Any]) -> list[tuple[int, int, list[float]]]:
    """(staff id, conversations, business seconds) from the arrays' JSON text joined by
    commas: flat arrays of numbers, so the numbers between the commas, without a JSON parse
    (an empty array leaves an empty item)."""
    return [
        (
            int(staff_id),
            int(n),
            list(map(float, filter(str.strip, joined.translate(_BRACKETS).split(","))))
            if joined
            else [],
        )
        for staff_id, n, joined in rows
        if staff_id is not None
    ]


def _since(metrics: Mapping[str, Any]) -> dt.datetime | None:
    if not metrics.get("unanswered_at_end"):
        return None
    return _instant(metrics.get("unanswered_since"))


def _instant(value: Any) -> dt.datetime | None:
    """``unanswered_since`` as scored (ISO 8601 text; naive is UTC)."""
    if not value:
        return None
    when = dt.datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _unanswered(conn: Connection, f: ReportFilter) -> list[tuple[int, Any, Any, dt.datetime]]:
    """(conversation id, staff id, customer id, since) of the conversations of ``f`` whose
    newest score says the customer was left unanswered, by conversation id. From
    ``conversation_facts`` (``unanswered_since`` as scored) when fresh."""
    found: list[tuple[int, Any, Any, dt.datetime | None]]
    if aggregated(conn, f.period.tz):
        fact = ConversationFact
        query = (
            select(fact.conversation_id, fact.staff_id, fact.customer_id, fact.unanswered_since)
            .where(*conversations_in(f, fact), fact.unanswered_since.is_not(None))
            .order_by(fact.conversation_id)
        )
        found = [(conv, s, c, _instant(since)) for conv, s, c, since in conn.execute(query)]
    else:
        unanswered = Score.metrics["unanswered_at_end"].as_boolean()
        # one test, one JSON read per row: "= true" is not true for a missing element either
        found = [
            (conv, s, c, _since(metrics or {}))
            for conv, s, _unit, c, metrics in scored_metrics(conn, f, unanswered == true())
        ]
    return [(conv, s, c, since) for conv, s, c, since in found if since is not None]


def _names(
    conn: Connection, principal: Principal, staff_ids: Iterable[int], customer_ids: Iterable[int]
) -> tuple[dict[int, tuple[str, str]], dict[int, str]]:
    """Staff (name, store) and customer names, as the principal may see them."""
    staff: dict[int, tuple[str, str]] = {}
    wanted = sorted({int(i) for i in staff_ids})
    if wanted:
        for i, n, u, store in conn.execute(
            select(Staff.id, Staff.name, Staff.userid, OrgUnit.name)
            .outerjoin(OrgUnit, OrgUnit.id == Staff.org_unit_id)
            .where(_among(conn, Staff.id, wanted))
        ):
            staff[i] = (person_name(principal, "staff", i, f"{n} ({u})"), store or "")
    customers: dict[int, str] = {}
    wanted = sorted({int(i) for i in customer_ids})
    if wanted:
        for i, n, e in conn.execute(
            select(Customer.id, Customer.name, Customer.external_userid).where(
                _among(conn, Customer.id, wanted)
            )
        ):
            customers[i] = person_name(principal, "customer", i, n or e)
    return staff, customers


def _among(conn: Connection, column: Any, ids: list[int]) -> ColumnElement[bool]:
    """``column IN ids``; on PostgreSQL one array parameter (``= ANY``), not thousands."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam("ids", ids, type_=ARRAY(Integer)))
    return column.in_(ids)


def waiting_now(
    engine: Engine,
    principal: Principal,
    f: ReportFilter,
    clock: BusinessClock,
    sla_minutes: float,
    now: dt.datetime,
    unit_id: int | None = None,
) -> pd.DataFrame:
    """The conversations of ``f`` (in scope, below ``unit_id``) whose customer is waiting for a
    reply now, longest wait first: ``waiting_min`` is business minutes from the first unanswered
    message until ``now``; ``overdue`` when that exceeds the SLA."""
    if not principal.sees_people:
        raise AccessDenied("this role sees aggregates only")
    f = scoped(engine, principal, ReportFilter(f.period, None if unit_id is None else (unit_id,)))
    with engine.connect() as conn:
        found = _unanswered(conn, f)
        waits = clock.business_seconds_until([r[3] for r in found], now)
        rows = [(*r, seconds / 60) for r, seconds in zip(found, waits, strict=True)]
        staff, customers = _names(
            conn,
            principal,
            (r[1] for r in rows if r[1] is not None),
            (r[2] for r in rows if r[2] is not None),
        )
    frame = pd.DataFrame(
        [
            {
                "conversation_id": conv,
                "staff_id": staff_id,
                "staff": staff.get(staff_id, ("", ""))[0] if staff_id is not None else "",
                "store": staff.get(staff_id, ("", ""))[1] if staff_id is not None else "",
                "customer_id": customer_id,
                "customer": customers.get(customer_id, "") if customer_id is not None else "",
                "since": since,
                "waiting_min": waiting,
                "overdue": waiting > sla_minutes,
            }
            for conv, staff_id, customer_id, since, waiting in rows
        ],
        columns=WAITING_COLUMNS,
    )
    frame["since"] = local_times(frame["since"], f.period.tz)
    frame["staff_id"] = frame["staff_id"].astype("Int64")
    frame["customer_id"] = frame["customer_id"].astype("Int64")
    frame["waiting_min"] = frame["waiting_min"].astype(float)
    frame["overdue"] = frame["overdue"].astype(bool)
    return frame.sort_values(
        ["waiting_min", "conversation_id"], ascending=[False, True]
    ).reset_index(drop=True)


def staff_quality(
    engine: Engine,
    principal: Principal,
    f: ReportFilter,
    clock: BusinessClock,
    sla_minutes: float,
    now: dt.datetime,
    unit_id: int | None = None,
    waiting: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per staff member with scored conversations in ``f``: pooled business response times
    (p50, p90, SLA rate over ``responses``) and the customers waiting now (``unanswered``,
    ``overdue``, waiting p50 and p90), most overdue first. ``waiting``: the
    :func:`waiting_now` of the same arguments, when the caller has it already."""
    if not principal.sees_people:
        raise AccessDenied("this role sees aggregates only")
    if waiting is None:
        waiting = waiting_now(engine, principal, f, clock, sla_minutes, now, unit_id)
    f = scoped(engine, principal, ReportFilter(f.period, None if unit_id is None else (unit_id,)))
    per_staff: dict[int, list[float]] = {}
    conversations: dict[int, int] = {}
    with engine.connect() as conn:
        for staff_id, n, business in _pooled_responses(conn, f):
            per_staff[staff_id] = business
            conversations[staff_id] = n
        staff, _ = _names(conn, principal, per_staff, ())
    waits: dict[int, list[float]] = {}
    for who, minutes in zip(waiting["staff_id"], waiting["waiting_min"], strict=True):
        if not pd.isna(who):
            waits.setdefault(int(who), []).append(float(minutes))
    rows = []
    for staff_id in sorted(per_staff):
        mine = waits.get(staff_id, [])
        rows.append(
            {
                "staff_id": staff_id,
                "staff": staff.get(staff_id, ("", ""))[0],
                "store": staff.get(staff_id, ("", ""))[1],
                "conversations": conversations[staff_id],
                **response_summary(per_staff[staff_id], sla_minutes * 60),
                "unanswered": len(mine),
                "overdue": sum(1 for m in mine if m > sla_minutes),
                "waiting_p50_min": _nan(median(mine)),
                "waiting_p90_min": _nan(percentile(mine, 90)),
            }
        )
    frame = pd.DataFrame(rows, columns=STAFF_COLUMNS)
    for column in ("staff_id", "conversations", "responses", "within_sla", "unanswered", "overdue"):
        frame[column] = frame[column].astype("int64")
    for column in ("sla_rate", "response_p50_min", "response_p90_min"):
        frame[column] = frame[column].astype(float)
    for column in ("waiting_p50_min", "waiting_p90_min"):
        frame[column] = frame[column].astype(float)
    return frame.sort_values(
        ["overdue", "unanswered", "staff"], ascending=[False, False, True]
    ).reset_index(drop=True)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


def daily_trend(
    engine: Engine, principal: Principal, f: ReportFilter, unit_id: int | None = None
) -> pd.DataFrame:
    """Per local day of ``f`` (zeros included) over the stores in scope below ``unit_id``:
    messages, findings and their rate per 1,000 messages, alerts (all and still open), and the
    measures of the conversations that started that day (:data:`TREND_COLUMNS`)."""
    f = scoped(engine, principal, ReportFilter(f.period, None if unit_id is None else (unit_id,)))
    counts = daily_counts(engine, f)
    units = None if f.org_unit_ids is None else _below(engine, f)

    def inside(unit: int | None) -> bool:
        return units is None or (unit is not None and unit in units)

    messages: dict[dt.date, int] = {}
    findings: dict[dt.date, int] = {}
    alerts: dict[dt.date, tuple[int, int]] = {}
    for (u, d), n in counts.messages.items():
        if inside(u):
            messages[d] = messages.get(d, 0) + n
    for (u, d, _c), n in counts.findings.items():
        if inside(u):
            findings[d] = findings.get(d, 0) + n
    for (u, d), (o, t) in counts.alerts.items():
        if inside(u):
            before = alerts.get(d, (0, 0))
            alerts[d] = (before[0] + o, before[1] + t)
    with engine.connect() as conn:
        measured = measures(
            conn,
            f,
            lambda c: select(
                # the facts keep the local day (in the zone asked: they are read only then)
                (c.day if c is ConversationFact else local_day(conn, c.started_at, f.period)).label(
                    "key"
                ),
                conversation_id(c),
            ),
            medians=False,  # the trend shows no response median
        )
    by_day = {as_date(k): row for k, row in measured.iterrows()}
    rows = []
    for day in f.period.days():
        row = by_day.get(day)
        rows.append(
            {
                "day": day,
                "messages": messages.get(day, 0),
                "findings": findings.get(day, 0),
                "alerts": alerts.get(day, (0, 0))[1],
                "alerts_open": alerts.get(day, (0, 0))[0],
                "conversations": int(row["conversations"]) if row is not None else 0,
                "scored": int(row["scored"]) if row is not None else 0,
                "score_avg": row["score_avg"] if row is not None else float("nan"),
                "sla_rate": row["sla_rate"] if row is not None else float("nan"),
                "negative_rate": row["negative_rate"] if row is not None else float("nan"),
            }
        )
    frame = pd.DataFrame(rows)
    frame["findings_per_1k"] = per_1k(frame).astype(float)
    for column in ("score_avg", "sla_rate", "negative_rate"):
        frame[column] = frame[column].astype(float)
    return frame[TREND_COLUMNS]


def store_choices(engine: Engine, principal: Principal) -> list[tuple[int, str]]:
    """``(id, label)`` of the stores in scope, for a picker."""
    # the period only carries the scope through ``scoped``: no dated rows are read
    f = scoped(engine, principal, ReportFilter(Period(dt.date(2000, 1, 1), dt.date(2000, 1, 1))))
    nodes = org_tree(engine)
    wanted = {n.id for n in nodes} if f.org_unit_ids is None else None
    if wanted is None:
        wanted = _below(engine, f)
    return [(n.id, n.label) for n in nodes if n.kind == "store" and n.id in wanted]


def _below(engine: Engine, f: ReportFilter) -> set[int]:
    """The units of ``f`` and everything below them (the one scope expansion)."""
    with session_scope(engine) as s:
        return set(expand(s, f.org_unit_ids or ()) or ())
