"""Pre-aggregated tables for the dashboard, and when they may be trusted.

The dashboard's counts by store and day, and its per-conversation measures, would otherwise
scan every message of the period on each request. Three derived tables hold them:

``conversation_facts``
    one row per conversation: store, staff, customer, start (and its local day), the
    sessionizer's ``message_count``, its number of findings, and the newest scorecard's score
    with the metrics the reports read (SLA, responses, response median, negative customer);
``store_day``
    per (store, local day): messages by when they were sent; conversations, score sums and
    SLA sums by the day the conversation started;
``store_day_findings``
    per (store, local day, category): findings, dated and placed by their message.

Days are local days in the configured time zone (``quality.timezone``, see :mod:`audit.days`);
the zone the tables were built in is recorded (checkpoint ``stage:daily:zone=<zone>``), and a
refresh in another zone rebuilds them.

:func:`refresh_daily` (the last pipeline stage) brings them up to date, incrementally: it
keeps high-water marks of what it has seen (``checkpoints`` rows ``stage:daily`` for message
ids and ``stage:daily:*`` for the rest), finds the conversations and local days that anything
new touches, and recomputes exactly those rows from the live tables. What cannot be found
incrementally (findings removed by a full rescan, a new scorecard version, a reset database)
makes it rebuild everything, as does ``full=True`` or a change of time zone.

:func:`is_fresh` tells the reports whether the tables describe the data as it is now (every
mark equals its live value, and the days are in the zone asked for); when not, the reports
compute live, so a report never shows numbers that differ from the live computation, only
computes them more slowly.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Float,
    and_,
    case,
    cast,
    delete,
    exists,
    false,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from audit import days as local
from audit.store.db import session_scope, stage_mark
from audit.store.models import (
    Checkpoint,
    Conversation,
    ConversationFact,
    ConversationKind,
    Finding,
    Message,
    Score,
    SenderKind,
    StoreDay,
    StoreDayFinding,
)

STAGE = "stage:daily"
ZONE_MARK = f"{STAGE}:zone="  # + the zone the tables are in; its seq is unused
# the sessionizer's high-water mark (audit.quality.conversations.STAGE): messages up to it
# have their conversation, so a move of it re-homes messages the daily marks already passed
SESSIONIZE_STAGE = "stage:conversations"
# above this many touched conversations an incremental refresh costs more than a rebuild
FULL_ABOVE = 50_000
_CHUNK = 5_000
T = TypeVar("T")


@dataclass(frozen=True)
class Sources:
    """What the derived tables depend on, as cheap numbers: equal numbers, equal data."""

    messages: int  # largest message id
    sessionized: int  # the sessionizer's mark
    conversations: int  # largest conversation id
    findings: int  # largest finding id
    findings_count: int  # number of findings (a full rescan removes some)
    scores: int  # largest score id (rescoring deletes and re-adds)


MARKS = {f.name: STAGE if f.name == "messages" else f"{STAGE}:{f.name}" for f in fields(Sources)}


@dataclass
class DailyStats:
    mode: str = "none"  # none | incremental | full
    reason: str = ""
    conversations: int = 0  # conversation_facts rows recomputed
    days: int = 0  # local days of store_day recomputed
    seconds: float = 0.0


# --------------------------------------------------------------------------- SQL helpers


def local_day(conn: Connection, column: Any, tz: str, *where: Any) -> ColumnElement[Any]:
    """The local day in ``tz`` of a UTC timestamp column (:func:`audit.days.local_day`), for the
    rows matching ``where``: on SQLite their time range decides the offsets to apply."""
    lo = hi = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    if conn.dialect.name == "sqlite":
        first, last = conn.execute(select(func.min(column), func.max(column)).where(*where)).one()
        if first is not None and last is not None:
            lo, hi = _aware(first), _aware(last) + dt.timedelta(seconds=1)
    return local.local_day(conn.dialect.name, column, tz, lo, hi)


def _aware(value: object) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def latest_scorecard(conn: Connection) -> str | None:
    """Aggregates use one scorecard version (the newest) so that scores are comparable."""
    return conn.scalar(select(Score.scorecard_version).order_by(Score.id.desc()).limit(1))


def _on_days(
    conn: Connection, when: Any, days: set[dt.date] | None, tz: str
) -> list[ColumnElement[bool]]:
    """``when`` (a UTC timestamp column) falls on one of ``days`` (``None``: any day)."""
    if days is None:
        return []
    lo, hi = local.day_bounds(min(days), max(days), tz)
    out: list[ColumnElement[bool]] = [when >= lo, when < hi]  # the range uses the index
    if len(days) < (max(days) - min(days)).days + 1:  # gaps: name the days
        day = local.local_day(conn.dialect.name, when, tz, lo, hi)
        sqlite = conn.dialect.name == "sqlite"  # date() is text there
        out.append(day.in_([d.isoformat() if sqlite else d for d in sorted(days)]))
    return out


def _chunks(values: Sequence[T], size: int = _CHUNK) -> Iterator[list[T]]:
    for i in range(0, len(values), size):
        yield list(values[i : i + size])


# --------------------------------------------------------------------------- freshness


def sources(conn: Connection) -> Sources:
    """The live values the marks are compared with (one round trip, index lookups)."""
    row = conn.execute(
        select(
            select(func.coalesce(func.max(Message.id), 0)).scalar_subquery(),
            select(func.coalesce(func.max(Checkpoint.seq), 0))
            .where(Checkpoint.source == SESSIONIZE_STAGE)
            .scalar_subquery(),
            select(func.coalesce(func.max(Conversation.id), 0)).scalar_subquery(),
            select(func.coalesce(func.max(Finding.id), 0)).scalar_subquery(),
            select(func.count(Finding.id)).scalar_subquery(),
            select(func.coalesce(func.max(Score.id), 0)).scalar_subquery(),
        )
    ).one()
    return Sources(*(int(v or 0) for v in row))


def built_in(conn: Connection) -> str | None:
    """The time zone the derived tables' days are in (``None``: never refreshed)."""
    source = conn.scalar(
        select(Checkpoint.source).where(Checkpoint.source.startswith(ZONE_MARK, autoescape=True))
    )
    return None if source is None else source[len(ZONE_MARK) :]


def is_fresh(conn: Connection, tz: str = local.DEFAULT_ZONE) -> bool:
    """The derived tables describe the data exactly as it is now (after a refresh, before
    anything else changed), in days of the zone ``tz``. ``False`` also when
    :func:`refresh_daily` never ran."""
    marks = dict(
        conn.execute(
            select(Checkpoint.source, Checkpoint.seq).where(Checkpoint.source.in_(MARKS.values()))
        ).all()
    )
    if STAGE not in marks or built_in(conn) != tz:
        return False
    now = sources(conn)
    return all(int(marks.get(MARKS[k], 0)) == getattr(now, k) for k in MARKS)


# --------------------------------------------------------------------------- refresh


def refresh_daily(engine: Engine, full: bool = False, tz: str = local.DEFAULT_ZONE) -> DailyStats:
    """Bring ``conversation_facts``, ``store_day`` and ``store_day_findings`` up to date, in
    local days of the zone ``tz`` (the configured ``quality.timezone``).

    Idempotent: a second call with nothing new does nothing. One transaction (a consistent
    snapshot on PostgreSQL), so readers see either the old or the new tables, never half.
    """
    local.zone(tz)  # an unknown zone fails before anything is written
    t0 = time.perf_counter()
    stats = DailyStats()
    snapshot = engine
    if engine.dialect.name == "postgresql":
        snapshot = engine.execution_options(isolation_level="REPEATABLE READ")
    with session_scope(snapshot) as session:
        conn = session.connection()
        marks = {name: stage_mark(session, source) for name, source in MARKS.items()}
        session.flush()
        old = Sources(**{name: int(mark.seq or 0) for name, mark in marks.items()})
        now = sources(conn)
        version = latest_scorecard(conn)
        zone = built_in(conn)
        nothing = now == Sources(0, 0, 0, 0, 0, 0)  # no data: days in any zone are none
        if old == now and not full and (zone == tz or nothing):
            if zone != tz:
                _record_zone(session, conn, tz)
            stats.seconds = time.perf_counter() - t0
            return stats
        reason = "asked" if full else _needs_rebuild(conn, old, now, version)
        if not reason and zone != tz:
            reason = f"time zone is now {tz}" if zone else "time zone not recorded"
        if not reason:
            convs, days = _touched(conn, old, now, tz)
            if len(convs) > FULL_ABOVE:
                reason = f"{len(convs)} conversations touched"
            else:
                days |= _fact_days(conn, convs)
                pairs = _pairs_of(conn, convs)  # a conversation may leave its pair
                _refresh_facts(conn, version, convs, tz)
                _refresh_pairs(conn, pairs | _pairs_of(conn, convs))
                days |= _fact_days(conn, convs)
                _refresh_days(conn, days, tz)
                stats.mode, stats.conversations, stats.days = "incremental", len(convs), len(days)
        if reason:
            stats.mode, stats.reason = "full", reason
            stats.conversations = _refresh_facts(conn, version, None, tz)
            stats.days = _refresh_days(conn, None, tz)
        for name, mark in marks.items():
            mark.seq = getattr(now, name)
        if zone != tz:
            _record_zone(session, conn, tz)
    stats.seconds = time.perf_counter() - t0
    return stats


def _record_zone(session: Session, conn: Connection, tz: str) -> None:
    """Note that the tables' days are now in ``tz`` (in the refresh's transaction)."""
    conn.execute(delete(Checkpoint).where(Checkpoint.source.startswith(ZONE_MARK, autoescape=True)))
    stage_mark(session, ZONE_MARK + tz)


def _needs_rebuild(conn: Connection, old: Sources, now: Sources, version: str | None) -> str:
    """Why an incremental refresh cannot be trusted ("" when it can)."""
    if old.messages == 0 and old.conversations == 0 and old.findings == 0 and old.scores == 0:
        return "first refresh"
    for name in MARKS:
        if name != "findings_count" and getattr(now, name) < getattr(old, name):
            return f"{name} went back ({getattr(old, name)} -> {getattr(now, name)})"
    added = conn.scalar(select(func.count(Finding.id)).where(Finding.id > old.findings)) or 0
    if now.findings_count - added != old.findings_count:
        return "findings were removed"
    scored_otherwise: ColumnElement[bool] = ConversationFact.scorecard_version.is_not(None)
    if version is not None:
        scored_otherwise = and_(scored_otherwise, ConversationFact.scorecard_version != version)
    if conn.scalar(select(exists().where(scored_otherwise))):
        return f"scorecard version is now {version}"
    return ""


def _touched(
    conn: Connection, old: Sources, now: Sources, tz: str
) -> tuple[list[int], set[dt.date]]:
    """The conversations whose facts and the days whose counts anything new can change."""
    new_messages: ColumnElement[bool] = Message.id > old.messages
    if now.sessionized > old.sessionized:  # messages given their conversation since
        new_messages = or_(
            new_messages, and_(Message.id > old.sessionized, Message.id <= now.sessionized)
        )
    convs: set[int] = set()
    for query in (
        select(Message.conversation_id).where(new_messages),
        select(Conversation.id).where(Conversation.id > old.conversations),
        select(Finding.conversation_id).where(Finding.id > old.findings),
        select(Score.conversation_id).where(Score.id > old.scores),
        # conversations merged into another since (audit.quality.merge): their facts go
        select(ConversationFact.conversation_id).where(
            ~exists().where(Conversation.id == ConversationFact.conversation_id)
        ),
    ):
        convs.update(i for i in conn.scalars(query.distinct()) if i is not None)
    days: set[dt.date] = set()
    found = Message.id.in_(select(Finding.message_id).where(Finding.id > old.findings))
    for query in (
        select(local_day(conn, Message.msgtime, tz, new_messages)).where(new_messages),
        select(local_day(conn, Message.msgtime, tz, found)).where(found),
    ):
        days.update(local.as_date(d) for d in conn.scalars(query.distinct()) if d is not None)
    return sorted(convs), days


def _fact_days(conn: Connection, convs: list[int]) -> set[dt.date]:
    out: set[dt.date] = set()
    for chunk in _chunks(convs):
        out.update(
            local.as_date(d)
            for d in conn.scalars(
                select(ConversationFact.day)
                .where(ConversationFact.conversation_id.in_(chunk))
                .distinct()
            )
        )
    return out


FACT_COLUMNS = [
    "conversation_id",
    "org_unit_id",
    "staff_id",
    "customer_id",
    "started_at",
    "day",
    "message_count",
    "findings",
    "scorecard_version",
    "score",
    "within_sla",
    "responses",
    "response_median_s",
    "negative",
    "unanswered_since",
    "response_business_s",
    "last_customer_us",
    "first_staff_us",
    "last_staff_us",
    "staff_messages",
    "staff_after_customer",
]


def _facts_query(conn: Connection, version: str | None, chunk: list[int] | None, tz: str) -> Any:
    found = select(Finding.conversation_id.label("cid"), func.count(Finding.id).label("n"))
    conv_filter: list[ColumnElement[bool]] = []
    if chunk is not None:
        found = found.where(Finding.conversation_id.in_(chunk))
        conv_filter.append(Conversation.id.in_(chunk))
    else:
        found = found.where(Finding.conversation_id.is_not(None))
    counted = found.group_by(Finding.conversation_id).subquery()
    sent = _sent_by_conversation(chunk)
    after = (
        select(Message.conversation_id.label("cid"), func.count(Message.id).label("n"))
        .join(sent, sent.c.cid == Message.conversation_id)
        .where(
            Message.action == "send",
            Message.sender_kind == SenderKind.STAFF,
            Message.msgtime > sent.c.last_customer_at,
            *([] if chunk is None else [Message.conversation_id.in_(chunk)]),
        )
        .group_by(Message.conversation_id)
        .subquery()
    )
    unanswered = Score.metrics["unanswered_at_end"].as_boolean() == true()
    return (
        select(
            Conversation.id,
            Conversation.org_unit_id,
            Conversation.staff_id,
            Conversation.customer_id,
            Conversation.started_at,
            local_day(conn, Conversation.started_at, tz, *conv_filter),
            Conversation.message_count,
            func.coalesce(counted.c.n, 0),
            Score.scorecard_version,
            Score.score,
            Score.metrics["within_sla"].as_float(),
            Score.metrics["responses"].as_float(),
            Score.metrics["response_median_seconds"].as_float(),
            Score.metrics[("scores_max", "customer_negative")].as_float(),
            case((unanswered, Score.metrics["unanswered_since"].as_string())),
            Score.metrics["response_business_seconds"].as_string(),
            local.epoch_micros(conn.dialect.name, sent.c.last_customer_at),
            local.epoch_micros(conn.dialect.name, sent.c.first_staff_at),
            local.epoch_micros(conn.dialect.name, sent.c.last_staff_at),
            sent.c.staff_messages,
            case((sent.c.last_customer_at.is_not(None), func.coalesce(after.c.n, 0))),
        )
        .select_from(Conversation)
        .outerjoin(
            Score,
            and_(Score.conversation_id == Conversation.id, Score.scorecard_version == version),
        )
        .outerjoin(counted, counted.c.cid == Conversation.id)
        # the dormant list's pairs: one-to-one conversations of a staff member and a customer
        .outerjoin(
            sent,
            and_(
                sent.c.cid == Conversation.id,
                Conversation.kind == ConversationKind.SINGLE,
                Conversation.staff_id.is_not(None),
                Conversation.customer_id.is_not(None),
            ),
        )
        .outerjoin(after, after.c.cid == Conversation.id)
        .where(*conv_filter)
    )


def _sent_by_conversation(chunk: list[int] | None) -> Any:
    """Per conversation (of ``chunk``; ``None``: all), over its sent staff and customer
    messages: the last customer message, the first and last staff message, the staff
    messages (what :mod:`audit.quality.dormant` groups by pair)."""
    staff = Message.sender_kind == SenderKind.STAFF
    where: list[ColumnElement[bool]] = [
        Message.action == "send",
        Message.sender_kind.in_([SenderKind.STAFF, SenderKind.CUSTOMER]),
        Message.conversation_id.in_(chunk)
        if chunk is not None
        else Message.conversation_id.is_not(None),
    ]
    return (
        select(
            Message.conversation_id.label("cid"),
            func.max(case((Message.sender_kind == SenderKind.CUSTOMER, Message.msgtime))).label(
                "last_customer_at"
            ),
            func.min(case((staff, Message.msgtime))).label("first_staff_at"),
            func.max(case((staff, Message.msgtime))).label("last_staff_at"),
            func.count(case((staff, Message.id))).label("staff_messages"),
        )
        .where(*where)
        .group_by(Message.conversation_id)
        .cte()
    )


def _refresh_facts(conn: Connection, version: str | None, convs: list[int] | None, tz: str) -> int:
    """Recompute the facts of ``convs`` (``None``: every conversation); rows written."""
    if convs is None:  # every row at once: the pairs' columns by window, not by update
        conn.execute(delete(ConversationFact))
        rows = _facts_query(conn, version, None, tz).subquery()
        c = dict(zip(FACT_COLUMNS, rows.c, strict=True))
        timed = or_(c["last_customer_us"].is_not(None), c["last_staff_us"].is_not(None))
        pair = [c["staff_id"], c["customer_id"]]
        head = func.max(case((timed, c["conversation_id"]))).over(partition_by=pair)
        conn.execute(
            insert(ConversationFact).from_select(
                [*FACT_COLUMNS, *PAIR_COLUMNS],
                select(
                    *rows.c,
                    case((timed, func.max(c["last_customer_us"]).over(partition_by=pair))),
                    case((timed, func.min(c["first_staff_us"]).over(partition_by=pair))),
                    case((timed, func.max(c["last_staff_us"]).over(partition_by=pair))),
                    case((timed, c["conversation_id"] == head), else_=false()),
                ),
            )
        )
        return int(conn.scalar(select(func.count()).select_from(ConversationFact)) or 0)
    for chunk in _chunks(convs):
        conn.execute(delete(ConversationFact).where(ConversationFact.conversation_id.in_(chunk)))
        conn.execute(
            insert(ConversationFact).from_select(
                FACT_COLUMNS, _facts_query(conn, version, chunk, tz)
            )
        )
    return len(convs)


PAIR_COLUMNS = ["pair_last_customer_us", "pair_first_staff_us", "pair_last_staff_us", "pair_head"]


def _pairs_of(conn: Connection, convs: list[int]) -> set[tuple[int, int]]:
    """The (staff id, customer id) pairs of these conversations' facts."""
    fact = ConversationFact
    out: set[tuple[int, int]] = set()
    for chunk in _chunks(convs):
        out.update(
            (s, c)
            for s, c in conn.execute(
                select(fact.staff_id, fact.customer_id)
                .where(
                    fact.conversation_id.in_(chunk),
                    fact.staff_id.is_not(None),
                    fact.customer_id.is_not(None),
                )
                .distinct()
            )
            if s is not None and c is not None
        )
    return out


def _refresh_pairs(conn: Connection, pairs: set[tuple[int, int]]) -> None:
    """Recompute the pair columns of the facts of ``pairs`` (as a full refresh computes them
    for every pair): the message times over the pair's conversations, and its head (the
    newest conversation with any), from the facts' own columns."""
    fact = ConversationFact
    timed = or_(fact.last_customer_us.is_not(None), fact.last_staff_us.is_not(None))
    for chunk in _chunks(sorted(pairs), 1_000):
        where = [
            timed,
            fact.staff_id.is_not(None),
            fact.customer_id.is_not(None),
            tuple_(fact.staff_id, fact.customer_id).in_(chunk),
        ]
        per_pair = (
            select(
                fact.staff_id.label("s"),
                fact.customer_id.label("c"),
                func.max(fact.last_customer_us).label("last_customer"),
                func.min(fact.first_staff_us).label("first_staff"),
                func.max(fact.last_staff_us).label("last_staff"),
                func.max(fact.conversation_id).label("head"),
            )
            .where(*where)
            .group_by(fact.staff_id, fact.customer_id)
            .subquery()
        )
        conn.execute(
            update(fact)
            .where(fact.staff_id == per_pair.c.s, fact.customer_id == per_pair.c.c, timed)
            .values(
                pair_last_customer_us=per_pair.c.last_customer,
                pair_first_staff_us=per_pair.c.first_staff,
                pair_last_staff_us=per_pair.c.last_staff,
                pair_head=fact.conversation_id == per_pair.c.head,
            )
        )


def _refresh_days(conn: Connection, days: set[dt.date] | None, tz: str) -> int:
    """Recompute ``store_day`` and ``store_day_findings`` for ``days`` (``None``: all)."""
    if days is not None and not days:
        return 0
    for table in (StoreDay, StoreDayFinding):
        query = delete(table)
        if days is not None:
            query = query.where(table.day.in_(sorted(days)))
        conn.execute(query)

    unit = Conversation.org_unit_id
    on_days = _on_days(conn, Message.msgtime, days, tz)
    sent = local_day(conn, Message.msgtime, tz, *on_days)
    zero: ColumnElement[int] = literal_column("0")
    nothing: ColumnElement[float] = cast(null(), Float)
    by_message = (
        select(
            unit.label("u"),
            sent.label("d"),
            func.count(Message.id).label("messages"),
            zero.label("conversations"),
            nothing.label("score_sum"),
            zero.label("scored"),
            nothing.label("within_sla"),
            nothing.label("responses"),
        )
        .select_from(Message)
        .outerjoin(Conversation, Message.conversation_id == Conversation.id)
        .where(*on_days)
        .group_by(unit, sent)
    )
    fact = ConversationFact
    by_start = select(
        fact.org_unit_id,
        fact.day,
        zero,
        func.count(fact.conversation_id),
        func.sum(fact.score),
        func.count(fact.score),
        func.sum(fact.within_sla),
        func.sum(fact.responses),
    ).group_by(fact.org_unit_id, fact.day)
    if days is not None:
        by_start = by_start.where(fact.day.in_(sorted(days)))
    both = union_all(by_message, by_start).subquery()
    conn.execute(
        insert(StoreDay).from_select(
            [
                "org_unit_id",
                "day",
                "messages",
                "conversations",
                "score_sum",
                "scored",
                "within_sla",
                "responses",
            ],
            select(
                both.c.u,
                both.c.d,
                func.sum(both.c.messages),
                func.sum(both.c.conversations),
                func.sum(both.c.score_sum),
                func.sum(both.c.scored),
                func.sum(both.c.within_sla),
                func.sum(both.c.responses),
            ).group_by(both.c.u, both.c.d),
        )
    )
    conn.execute(
        insert(StoreDayFinding).from_select(
            ["org_unit_id", "day", "category", "n"],
            select(unit, sent, Finding.category, func.count(Finding.id))
            .select_from(Finding)
            .join(Message, Finding.message_id == Message.id)
            .outerjoin(Conversation, Message.conversation_id == Conversation.id)
            .where(*on_days)
            .group_by(unit, sent, Finding.category),
        )
    )
    if days is None:
        return int(conn.scalar(select(func.count(func.distinct(StoreDay.day)))) or 0)
    return len(days)
