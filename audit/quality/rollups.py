"""Quality rolled up per staff member, store or any org level, per local day; dormant customers.

Rollups read the ``scores`` table: one row per conversation and scorecard version, holding the
score and the conversation's metrics as JSON (``ConversationMetrics.to_json()`` plus
``fatal``). Sums, averages and counts are one ``GROUP BY`` in SQL, on SQLite and PostgreSQL
alike; medians and percentiles are not portable SQL, so they are computed in Python from the
response times stored per conversation (pooled: the median of every reply of the group, not a
median of medians). Every average comes with the count it was taken over, so that a store
with three conversations does not look like one with three hundred.

A conversation counts on the local day (``quality.timezone``) it started, for the staff
member and the org unit (store) of the conversation; group chats have no single staff member
and appear only in org-unit rollups.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased

from audit.quality.metrics import median, percentile
from audit.store.models import (
    Conversation,
    ConversationKind,
    Customer,
    CustomerTag,
    Message,
    OrgUnit,
    Score,
    SenderKind,
    Staff,
    Tag,
)

STAFF = "staff"
STORE = "store"


# --------------------------------------------------------------------------- quality rollups


@dataclass(frozen=True)
class QualityRow:
    """One group (staff member or org unit) on one local day (``None``: the whole period)."""

    group: str  # "staff", "store" or the org level ("region", "city", ...)
    key: int | None  # staff id or org unit id; None: conversations without one
    name: str
    day: dt.date | None
    conversations: int  # scored conversations: the sample size of the score average
    score_avg: float | None
    score_min: float | None
    fatal: int  # conversations a fatal item zeroed
    effective: int  # conversations where both sides spoke
    first_responses: int  # conversations with a first response: the sample of its averages
    first_response_avg_seconds: float | None
    first_response_business_avg_seconds: float | None
    responses: int  # answered customer bursts
    within_sla: int
    sla_rate: float | None  # within_sla / responses
    response_median_seconds: float | None  # over every answered burst of the group
    response_p90_seconds: float | None
    response_business_median_seconds: float | None
    response_business_p90_seconds: float | None
    unanswered_at_end: int  # conversations
    greeting: int  # conversations with a staff greeting
    closing: int  # conversations with a staff closing
    negative_unanswered: int  # conversations


def latest_scorecard_version(session: Session) -> str | None:
    """The version of the most recently written score."""
    query = select(Score.scorecard_version).order_by(Score.created_at.desc(), Score.id.desc())
    return session.execute(query.limit(1)).scalar_one_or_none()


def quality_rollup(
    session: Session,
    start: dt.date,
    end: dt.date,
    by: str = STORE,
    tz: str = "Asia/Shanghai",
    per_day: bool = True,
    scorecard_version: str | None = None,
    within: Sequence[int] | None = None,
) -> list[QualityRow]:
    """Scores and metrics of the conversations started on local days ``start``..``end``.

    ``by``: ``"staff"`` (the conversation's staff member), ``"store"`` (the conversation's org
    unit) or an org unit kind such as ``"city"`` or ``"region"`` (the ancestor-or-self of
    that kind of the conversation's unit, found by its materialized path; conversations
    without one are left out). ``within``: only these org units and everything below them
    (``None``: the whole company). ``scorecard_version``: default the latest written.
    Rows are ordered by name, key and day.
    """
    if end < start:
        raise ValueError(f"period ends ({end}) before it starts ({start})")
    zone = ZoneInfo(tz)
    lo = dt.datetime.combine(start, dt.time(), tzinfo=zone).astimezone(dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=zone).astimezone(dt.UTC)
    version = scorecard_version or latest_scorecard_version(session)
    if version is None:
        return []

    key, name, joins = _grouping(by)
    day = (
        local_day(session.get_bind().dialect.name, Conversation.started_at, tz, lo, hi)
        if per_day
        else literal_column("NULL")
    ).label("rollup_day")
    where = [
        Score.scorecard_version == version,
        Conversation.started_at >= lo,
        Conversation.started_at < hi,
        _within(Conversation.org_unit_id, within),
    ]
    if by == STAFF:  # group chats have no staff member of their own
        where.append(Conversation.staff_id.is_not(None))
    metric = Score.metrics

    def flag(name: str) -> ColumnElement[Any]:
        return func.sum(case((metric[name].as_boolean(), 1), else_=0))

    totals = _joined(
        select(
            key.label("rollup_key"),
            name.label("rollup_name"),
            day,
            func.count(Score.id),
            func.avg(Score.score),
            func.min(Score.score),
            flag("fatal"),
            flag("effective"),
            func.count(metric["first_response_seconds"].as_float()),
            func.avg(metric["first_response_seconds"].as_float()),
            func.avg(metric["first_response_business_seconds"].as_float()),
            func.sum(metric["responses"].as_integer()),
            func.sum(metric["within_sla"].as_integer()),
            flag("unanswered_at_end"),
            flag("greeting"),
            flag("closing"),
            flag("negative_unanswered"),
        ),
        joins,
    ).where(*where)
    # by output names, which no input column shares (PostgreSQL would prefer the input column)
    totals = totals.group_by(*(literal_column(f"rollup_{c}") for c in ("key", "name", "day")))

    lists = _joined(
        select(
            key.label("rollup_key"),
            day,
            metric["response_seconds"],
            metric["response_business_seconds"],
        ),
        joins,
    ).where(*where)
    wall: dict[tuple[Any, Any], list[float]] = defaultdict(list)
    business: dict[tuple[Any, Any], list[float]] = defaultdict(list)
    for k, d, w, b in session.execute(lists):
        wall[(k, _as_date(d))].extend(float(v) for v in w or ())
        business[(k, _as_date(d))].extend(float(v) for v in b or ())

    rows: list[QualityRow] = []
    for r in session.execute(totals):
        (k, n, d, count, avg, low, fatal, effective, n_first, first, first_b) = r[:11]
        responses, within_sla, unanswered, greeting, closing, negative = (
            int(v or 0) for v in r[11:]
        )
        d = _as_date(d)
        rows.append(
            QualityRow(
                group=by,
                key=k,
                name=n or "",
                day=d,
                conversations=int(count),
                score_avg=_round(avg),
                score_min=_round(low),
                fatal=int(fatal or 0),
                effective=int(effective or 0),
                first_responses=int(n_first or 0),
                first_response_avg_seconds=_round(first),
                first_response_business_avg_seconds=_round(first_b),
                responses=responses,
                within_sla=within_sla,
                sla_rate=within_sla / responses if responses else None,
                response_median_seconds=median(wall[(k, d)]),
                response_p90_seconds=percentile(wall[(k, d)], 90),
                response_business_median_seconds=median(business[(k, d)]),
                response_business_p90_seconds=percentile(business[(k, d)], 90),
                unanswered_at_end=unanswered,
                greeting=greeting,
                closing=closing,
                negative_unanswered=negative,
            )
        )
    rows.sort(key=lambda row: (row.name, row.key or 0, row.day or dt.date.min))
    return rows


def _grouping(by: str) -> tuple[ColumnElement[Any], ColumnElement[Any], list[Any]]:
    """(key column, name column, joins) for a rollup level."""
    if by == STAFF:
        staff = aliased(Staff)
        return (
            Conversation.staff_id.expression,
            staff.name.expression,
            [(staff, staff.id == Conversation.staff_id, True)],
        )
    unit = aliased(OrgUnit)
    if by == STORE:
        return (
            Conversation.org_unit_id.expression,
            unit.name.expression,
            [(unit, unit.id == Conversation.org_unit_id, True)],
        )
    level = aliased(OrgUnit)
    below = or_(
        level.id == unit.id,
        and_(level.path != "", unit.path.like(level.path + literal_column("'%'"))),
    )
    return (
        level.id.expression,
        level.name.expression,
        [
            (unit, unit.id == Conversation.org_unit_id, False),
            (level, and_(below, level.kind == by), False),
        ],
    )


def _joined(query: Select[Any], joins: list[Any]) -> Select[Any]:
    query = query.select_from(Score).join(Conversation, Conversation.id == Score.conversation_id)
    for target, on, outer in joins:
        query = query.join(target, on, isouter=outer)
    return query


def _within(column: Any, org_unit_ids: Sequence[int] | None) -> ColumnElement[bool]:
    """``column`` is one of ``org_unit_ids`` or below one of them (by materialized path)."""
    from audit.store.access import within_units

    return within_units(column, org_unit_ids)


def local_day(
    dialect: str, column: Any, tz: str, lo: dt.datetime, hi: dt.datetime
) -> ColumnElement[Any]:
    """The local calendar day in ``tz`` of a UTC timestamp column, for instants in [lo, hi).

    PostgreSQL converts with its own zone database. SQLite has none, so the period is cut into
    spans of constant UTC offset (one span unless a DST change falls inside) and each span
    shifts by its offset. Constants are literals so that the expression is the same text
    wherever it appears.
    """
    zone = ZoneInfo(tz)  # refuses unknown names, and so anything unsafe to inline
    if dialect == "postgresql":
        return cast(func.timezone(literal_column(f"'{zone.key}'"), column), Date)
    if dialect != "sqlite":
        raise NotImplementedError(f"local days are not implemented for {dialect}")
    spans = _offset_spans(zone, lo, hi)
    if len(spans) == 1:
        return func.date(column, literal_column(f"'{spans[0][1]:+d} seconds'"))
    whens = [
        (
            column < literal_column(f"'{until.replace(tzinfo=None).isoformat(sep=' ')}'"),
            func.date(column, literal_column(f"'{offset:+d} seconds'")),
        )
        for until, offset in spans[:-1]
    ]
    last = func.date(column, literal_column(f"'{spans[-1][1]:+d} seconds'"))
    return case(*whens, else_=last)


def _offset_spans(
    zone: ZoneInfo, lo: dt.datetime, hi: dt.datetime
) -> list[tuple[dt.datetime, int]]:
    """[(span end in UTC, offset seconds)] covering [lo, hi); the last end is ``hi``."""

    def offset(at: dt.datetime) -> int:
        delta = at.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta else 0

    spans: list[tuple[dt.datetime, int]] = []
    current = offset(lo)
    step = dt.timedelta(hours=1)
    at = lo
    while at < hi:
        nxt = min(at + step, hi)
        if offset(nxt) != current and nxt < hi:
            # the change lies in (at, nxt]: bisect to the second
            a, b = at, nxt
            while (b - a) > dt.timedelta(seconds=1):
                mid = a + (b - a) / 2
                a, b = (mid, b) if offset(mid) == current else (a, mid)
            spans.append((b, current))
            current = offset(b)
        at = nxt
    spans.append((hi, current))
    return spans


def _as_date(value: object) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _round(value: object) -> float | None:
    return None if value is None else round(float(value), 3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- dormant customers


@dataclass(frozen=True)
class DormantCustomer:
    """A customer who stopped replying to a staff member (one row per staff-customer pair)."""

    staff_id: int
    staff_userid: str
    staff_name: str
    org_unit_id: int | None  # the staff member's store
    store: str
    customer_id: int
    external_userid: str
    customer_name: str
    last_customer_at: dt.datetime | None  # None: the customer never wrote
    last_staff_at: dt.datetime
    unanswered_staff_messages: int  # staff messages since the customer's last one
    silent_days: int  # whole days since the customer's last message (or staff's first)
    tags: tuple[str, ...]  # the customer's tags (any staff member's), by name


def dormant_customers(
    session: Session,
    now: dt.datetime,
    days: int,
    within: Sequence[int] | None = None,
) -> list[DormantCustomer]:
    """Customers who stopped replying to staff for ``days`` days: the win-back list (休眠用户).

    Per staff member and customer, over their one-to-one conversations (group chats say
    nothing about a relationship), counting sent messages only (no recalls, switches, robots
    or system records), a pair is dormant at ``now`` when

    - the customer's last message is older than ``days`` days, and the staff member wrote
      after it: the customer left the staff member's messages unanswered; or
    - the customer never wrote, and the staff member's first message is older than ``days``.

    A pair whose last word was the customer's is not dormant: the customer is waiting for the
    staff member, which is an unanswered conversation, not a customer to win back.
    ``within`` limits the staff members to these org units and below. Ordered by store,
    staff member, then longest silence first.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    cutoff = now - dt.timedelta(days=days)
    pair = (
        select(
            Conversation.staff_id.label("staff_id"),
            Conversation.customer_id.label("customer_id"),
            func.max(case((Message.sender_kind == SenderKind.CUSTOMER, Message.msgtime))).label(
                "last_customer_at"
            ),
            func.max(case((Message.sender_kind == SenderKind.STAFF, Message.msgtime))).label(
                "last_staff_at"
            ),
            func.min(case((Message.sender_kind == SenderKind.STAFF, Message.msgtime))).label(
                "first_staff_at"
            ),
        )
        .join(Conversation, Message.conversation_id == Conversation.id)
        .where(
            Conversation.kind == ConversationKind.SINGLE,
            Conversation.staff_id.is_not(None),
            Conversation.customer_id.is_not(None),
            Message.action == "send",
            Message.sender_kind.in_([SenderKind.STAFF, SenderKind.CUSTOMER]),
            Message.msgtime <= now,
        )
        .group_by(Conversation.staff_id, Conversation.customer_id)
        .subquery()
    )
    dormant = (
        select(pair)
        .where(
            or_(
                and_(
                    pair.c.last_customer_at.is_not(None),
                    pair.c.last_customer_at < cutoff,
                    pair.c.last_staff_at > pair.c.last_customer_at,
                ),
                and_(pair.c.last_customer_at.is_(None), pair.c.first_staff_at < cutoff),
            )
        )
        .subquery()
    )
    unanswered = dict(
        ((s, c), int(n))
        for s, c, n in session.execute(
            select(Conversation.staff_id, Conversation.customer_id, func.count(Message.id))
            .select_from(Message)
            .join(Conversation, Message.conversation_id == Conversation.id)
            .join(
                dormant,
                and_(
                    dormant.c.staff_id == Conversation.staff_id,
                    dormant.c.customer_id == Conversation.customer_id,
                ),
            )
            .where(
                Conversation.kind == ConversationKind.SINGLE,
                Message.action == "send",
                Message.sender_kind == SenderKind.STAFF,
                Message.msgtime <= now,
                or_(
                    dormant.c.last_customer_at.is_(None),
                    Message.msgtime > dormant.c.last_customer_at,
                ),
            )
            .group_by(Conversation.staff_id, Conversation.customer_id)
        )
    )
    tags: dict[int, set[str]] = defaultdict(set)
    for customer_id, tag in session.execute(
        select(CustomerTag.customer_id, Tag.name)
        .join(Tag, Tag.id == CustomerTag.tag_id)
        .where(Tag.deleted == false(), CustomerTag.customer_id.in_(select(dormant.c.customer_id)))
    ):
        tags[customer_id].add(tag)

    store = aliased(OrgUnit)
    rows = session.execute(
        select(
            dormant.c.staff_id,
            Staff.userid,
            Staff.name,
            Staff.org_unit_id,
            func.coalesce(store.name, literal("")),
            dormant.c.customer_id,
            Customer.external_userid,
            Customer.name,
            dormant.c.last_customer_at,
            dormant.c.last_staff_at,
            dormant.c.first_staff_at,
        )
        .join(Staff, Staff.id == dormant.c.staff_id)
        .join(Customer, Customer.id == dormant.c.customer_id)
        .outerjoin(store, store.id == Staff.org_unit_id)
        .where(_within(Staff.org_unit_id, within))
    ).all()
    out = []
    for r in rows:
        last_customer, last_staff, first_staff = (_aware(v) for v in r[8:11])
        assert last_staff is not None  # dormant pairs always have a staff message
        since = last_customer or first_staff or last_staff
        out.append(
            DormantCustomer(
                staff_id=r[0],
                staff_userid=r[1],
                staff_name=r[2],
                org_unit_id=r[3],
                store=r[4],
                customer_id=r[5],
                external_userid=r[6],
                customer_name=r[7],
                last_customer_at=last_customer,
                last_staff_at=last_staff,
                unanswered_staff_messages=unanswered.get((r[0], r[5]), 0),
                silent_days=(now - since).days,
                tags=tuple(sorted(tags.get(r[5], ()))),
            )
        )
    out.sort(key=lambda d: (d.store, d.staff_name, -d.silent_days, d.customer_id))
    return out


def _aware(value: object) -> dt.datetime | None:
    """Aggregates of the UTC column come back aware on PostgreSQL, as text on SQLite."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
