"""Dormant customers: the win-back list (休眠用户).

Scores and service measures rolled up per store, staff member, region, tag or channel are the
dashboard's reports (:mod:`audit.reports.figures`, one definition of each figure).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from audit.days import epoch_micros, from_micros, micros
from audit.store.access import expand, in_scope
from audit.store.models import (
    Conversation,
    ConversationFact,
    ConversationKind,
    Customer,
    CustomerTag,
    Message,
    OrgUnit,
    SenderKind,
    Staff,
    Tag,
)

DAY_US = 86_400_000_000  # microseconds in a day


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


@dataclass(frozen=True)
class DormantPage:
    """A page of the dormant list and the number of dormant pairs in all."""

    rows: list[DormantCustomer]
    total: int


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
    staff member, then longest silence first (then customer, staff id). Every pair, from the
    messages: :func:`dormant_page` reads a page of it, from the facts when asked.
    """
    return dormant_page(session, now, days, within).rows


def dormant_page(
    session: Session,
    now: dt.datetime,
    days: int,
    within: Sequence[int] | None = None,
    offset: int = 0,
    limit: int | None = None,
    facts: bool = False,
) -> DormantPage:
    """The dormant pairs of :func:`dormant_customers` from ``offset``, at most ``limit``
    (``None``: all), and how many there are: found, ordered, counted and cut in SQL.

    Per one-to-one conversation, what the pairs are made of (its last customer message, first
    and last staff message, staff messages) is read from ``conversation_facts`` when ``facts``
    (the caller has found them fresh), except for a conversation with a message after
    ``now``, which is read from its messages as the live list reads every one: there grouped
    by conversation first (in the order of the conversation index, no sort of the messages).
    The conversations are then grouped by pair, and the dormant pairs ordered and cut. The
    staff messages left unanswered are counted for the pairs of the page only.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    now_us = micros(now)
    cutoff = micros(now - dt.timedelta(days=days))
    staff_ids: list[int] | None = None
    if within is not None:
        # the staff members of the stores in scope, as ids: a planner cannot guess how few
        # the org tree's recursive query leaves, and would read every message to be sure
        units = expand(session, within) or ()
        in_units = select(Staff.id).where(in_scope(Staff.org_unit_id, units))
        staff_ids = list(session.scalars(in_units))
    dialect = session.get_bind().dialect.name
    fact = ConversationFact
    heads = facts and not _later(session, now_us, staff_ids, None)
    pair_times: tuple[Any, Any, Any]
    if heads:  # one row per pair, its times kept over all its conversations
        pair_times = (fact.pair_last_customer_us, fact.pair_last_staff_us, fact.pair_first_staff_us)
        pairs = (
            select(
                fact.staff_id,
                fact.customer_id,
                fact.pair_last_customer_us.label("last_customer_us"),
                fact.pair_last_staff_us.label("last_staff_us"),
                fact.pair_first_staff_us.label("first_staff_us"),
            )
            .where(
                fact.pair_head.is_(true()),
                _is_dormant(*pair_times, cutoff),
                *([] if staff_ids is None else [fact.staff_id.in_(staff_ids)]),
            )
            .subquery()
        )
    else:
        c = _source(session, now, staff_ids, None, facts).subquery().c
        pair_times = (
            func.max(c.last_customer_us),
            func.max(c.last_staff_us),
            func.min(c.first_staff_us),
        )
        pairs = (
            select(
                c.staff_id,
                c.customer_id,
                pair_times[0].label("last_customer_us"),
                pair_times[1].label("last_staff_us"),
                pair_times[2].label("first_staff_us"),
            )
            .group_by(c.staff_id, c.customer_id)
            .having(_is_dormant(*pair_times, cutoff))
            .subquery()
        )
    p = pairs.c
    since = func.coalesce(p.last_customer_us, p.first_staff_us, p.last_staff_us)
    # whole days of silence, (now - since).days: since is at or before now, so the integer
    # division is a floor on both backends
    silent = ((literal(now_us, BigInteger) - since) // DAY_US).label("silent_days")
    # the order of the staff members (by store, then name, as Python orders str: by code
    # point) as a rank over the few staff rows: the pairs are sorted by numbers
    store = aliased(OrgUnit)
    rank = func.dense_rank().over(
        order_by=(
            _by_code_point(dialect, func.coalesce(store.name, literal(""))),
            _by_code_point(dialect, Staff.name),
        )
    )
    ranked = (
        select(Staff.id, rank.label("rank"))
        .outerjoin(store, store.id == Staff.org_unit_id)
        .subquery()
    )
    cut = (
        select(
            p.staff_id,
            p.customer_id,
            p.last_customer_us,
            p.last_staff_us,
            silent,
            ranked.c.rank,
            # counted with the page, unless a plain count of the heads costs less
            (literal(None) if heads else func.count().over()).label("total"),
        )
        .join(ranked, ranked.c.id == p.staff_id)
        .order_by(ranked.c.rank, silent.desc(), p.customer_id, p.staff_id)
    )
    if offset:
        cut = cut.offset(offset)
    if limit is not None:
        cut = cut.limit(limit)
    page = cut.subquery()
    g = page.c
    store_name = func.coalesce(store.name, literal(""))
    query = (
        select(
            g.staff_id,
            Staff.userid,
            Staff.name,
            Staff.org_unit_id,
            store_name,
            g.customer_id,
            Customer.external_userid,
            Customer.name,
            g.last_customer_us,
            g.last_staff_us,
            g.silent_days,
            g.total,
        )
        .join(Staff, Staff.id == g.staff_id)
        .join(Customer, Customer.id == g.customer_id)
        .outerjoin(store, store.id == Staff.org_unit_id)
        .order_by(g.rank, g.silent_days.desc(), g.customer_id, g.staff_id)
    )
    rows = session.execute(query).all()
    if rows and not heads:
        total = int(rows[0][-1])
    elif rows or offset or heads:  # a page past the end: the pairs counted without it
        total = int(session.scalar(select(func.count()).select_from(pairs)) or 0)
    else:
        total = 0
    found = {(r[0], r[5]): r[8] for r in rows}
    unanswered = _unanswered(session, now, found, facts)
    tags = _tags(session, {r[5] for r in rows})
    out = []
    for r in rows:
        assert r[9] is not None  # dormant pairs always have a staff message
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
                last_customer_at=None if r[8] is None else from_micros(r[8]),
                last_staff_at=from_micros(r[9]),
                unanswered_staff_messages=unanswered.get((r[0], r[5]), 0),
                silent_days=int(r[10]),
                tags=tuple(sorted(tags.get(r[5], ()))),
            )
        )
    return DormantPage(out, total)


def _is_dormant(last_customer: Any, last_staff: Any, first_staff: Any, cutoff: int) -> Any:
    """A pair's times (microseconds) say it is dormant at the cutoff: the customer's last
    message before it and a staff message after that, or no customer message and the first
    staff message before it."""
    return or_(
        and_(last_customer.is_not(None), last_customer < cutoff, last_staff > last_customer),
        and_(last_customer.is_(None), first_staff < cutoff),
    )


def _later(
    session: Session, now_us: int, staff_ids: Sequence[int] | None, customer_ids: Any
) -> list[int]:
    """The conversations (of these staff members and customers) whose facts have a message
    after ``now``: what a clock ahead of now has sent, or a "now" before the data's end."""
    fact = ConversationFact
    where = [or_(fact.last_customer_us > now_us, fact.last_staff_us > now_us)]
    if staff_ids is not None:
        where.append(fact.staff_id.in_(staff_ids))
    if customer_ids is not None:
        where.append(fact.customer_id.in_(customer_ids))
    return list(session.scalars(select(fact.conversation_id).where(*where)))


def _unanswered(
    session: Session,
    now: dt.datetime,
    pairs: dict[tuple[int, int], int | None],
    facts: bool,
) -> dict[tuple[int, int], int]:
    """Per pair (staff id, customer id) -> its last customer message (microseconds): the staff
    messages of its conversations sent after that (all of them when the customer never
    wrote), until ``now``. A conversation's own counts answer when they can (all its staff
    messages before, all after, or after its own last customer message when that is the
    pair's, as the facts keep it); the others are counted from their messages."""
    out: dict[tuple[int, int], int] = {}
    staff_ids = sorted({s for s, _ in pairs})
    customers = sorted({c for _, c in pairs})
    for chunk in range(0, len(staff_ids), 500):
        these = staff_ids[chunk : chunk + 500]
        conversations = _source(session, now, these, customers, facts)
        for row in session.execute(conversations):
            key = (row.staff_id, row.customer_id)
            if key not in pairs:
                continue
            last = pairs[key]
            if last is None:
                n = row.staff_messages
            elif row.last_staff_us is None or row.last_staff_us <= last:
                n = 0
            elif row.first_staff_us > last:
                n = row.staff_messages
            elif row.staff_after is not None and row.last_customer_us == last:
                n = row.staff_after
            else:
                n = session.scalar(
                    select(func.count(Message.id)).where(
                        Message.conversation_id == row.id,
                        Message.sender_kind == SenderKind.STAFF,
                        Message.action == "send",
                        Message.msgtime > from_micros(last),
                        Message.msgtime <= now,
                    )
                )
            out[key] = out.get(key, 0) + int(n or 0)
    return out


def _source(
    session: Session,
    now: dt.datetime,
    staff_ids: Sequence[int] | None,
    customer_ids: Sequence[int] | None,
    facts: bool,
) -> Any:
    """Per one-to-one conversation (of these staff members and customers; ``None``: any),
    its ``id``, ``staff_id``, ``customer_id``, ``last_customer_us``, ``last_staff_us``,
    ``first_staff_us`` (microseconds since the epoch), ``staff_messages`` and ``staff_after``
    (staff messages after its own last customer message, or ``NULL`` when not kept), from
    its messages sent until ``now`` or, when ``facts``, from ``conversation_facts`` for those
    with nothing after ``now``."""
    dialect = session.get_bind().dialect.name
    if not facts:
        return _from_messages(dialect, now, staff_ids, customer_ids)
    fact = ConversationFact
    # a conversation has message times in the facts when it is a one-to-one conversation of a
    # staff member and a customer (see audit.store.daily)
    kept = [or_(fact.last_customer_us.is_not(None), fact.last_staff_us.is_not(None))]
    if staff_ids is not None:
        kept.append(fact.staff_id.in_(staff_ids))
    if customer_ids is not None:
        kept.append(fact.customer_id.in_(customer_ids))
    # what the facts hold after now is read from the messages until now
    later = _later(session, micros(now), staff_ids, customer_ids)
    if later:
        kept.append(fact.conversation_id.not_in(later))
    from_facts = select(
        fact.conversation_id.label("id"),
        fact.staff_id,
        fact.customer_id,
        fact.last_customer_us,
        fact.last_staff_us,
        fact.first_staff_us,
        fact.staff_messages,
        fact.staff_after_customer.label("staff_after"),
    ).where(*kept)
    if not later:
        return from_facts
    return union_all(from_facts, _from_messages(dialect, now, staff_ids, customer_ids, later))


def _from_messages(
    dialect: str,
    now: dt.datetime,
    staff_ids: Sequence[int] | None,
    customer_ids: Sequence[int] | None,
    only: Sequence[int] | None = None,
) -> Select[Any]:
    """:func:`_source` from the messages (of the conversations ``only``, if given)."""
    singles = [
        Conversation.kind == ConversationKind.SINGLE,
        Conversation.staff_id.is_not(None),
        Conversation.customer_id.is_not(None),
    ]
    if staff_ids is not None:
        singles.append(Conversation.staff_id.in_(staff_ids))
    if customer_ids is not None:
        singles.append(Conversation.customer_id.in_(customer_ids))
    staff_sent = Message.sender_kind == SenderKind.STAFF
    conversations = select(Conversation.id).where(*singles)
    if only is not None:
        conversations = conversations.where(Conversation.id.in_(only))
    by_conversation = (
        select(
            Message.conversation_id.label("id"),
            func.max(case((Message.sender_kind == SenderKind.CUSTOMER, Message.msgtime))).label(
                "last_customer_at"
            ),
            func.max(case((staff_sent, Message.msgtime))).label("last_staff_at"),
            func.min(case((staff_sent, Message.msgtime))).label("first_staff_at"),
            func.count(case((staff_sent, Message.id))).label("staff_messages"),
        )
        .where(
            Message.conversation_id.in_(conversations),
            Message.sender_kind.in_([SenderKind.STAFF, SenderKind.CUSTOMER]),
            Message.action == "send",
            Message.msgtime <= now,
        )
        .group_by(Message.conversation_id)
        .subquery()
    )
    c = by_conversation.c
    return (
        select(
            c.id,
            Conversation.staff_id,
            Conversation.customer_id,
            epoch_micros(dialect, c.last_customer_at).label("last_customer_us"),
            epoch_micros(dialect, c.last_staff_at).label("last_staff_us"),
            epoch_micros(dialect, c.first_staff_at).label("first_staff_us"),
            c.staff_messages,
            cast(null(), Integer).label("staff_after"),
        )
        .join(Conversation, Conversation.id == c.id)
        .where(*singles)
    )


def _by_code_point(dialect: str, column: Any) -> Any:
    return column.collate("C") if dialect == "postgresql" else column


def _tags(session: Session, customer_ids: set[int]) -> dict[int, set[str]]:
    """The tag names (any staff member's, not deleted) of these customers."""
    tags: dict[int, set[str]] = defaultdict(set)
    if not customer_ids:
        return tags
    for customer_id, tag in session.execute(
        select(CustomerTag.customer_id, Tag.name)
        .join(Tag, Tag.id == CustomerTag.tag_id)
        .where(Tag.deleted == false(), CustomerTag.customer_id.in_(sorted(customer_ids)))
    ):
        tags[customer_id].add(tag)
    return tags
