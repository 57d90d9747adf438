"""Dormant customers: the win-back list (休眠用户).

Scores and service measures rolled up per store, staff member, region, tag or channel are the
dashboard's reports (:mod:`audit.reports.figures`, one definition of each figure).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session, aliased

from audit.store.access import expand, in_scope
from audit.store.models import (
    Conversation,
    ConversationKind,
    Customer,
    CustomerTag,
    Message,
    OrgUnit,
    SenderKind,
    Staff,
    Tag,
)


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

    One query, one pass over the messages: grouped by conversation first (in the order of the
    conversation index, no sort of the messages), then the conversations by pair; the staff
    messages after the customer's last one are counted only in the conversations of dormant
    pairs that have some.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    cutoff = now - dt.timedelta(days=days)
    singles = [
        Conversation.kind == ConversationKind.SINGLE,
        Conversation.staff_id.is_not(None),
        Conversation.customer_id.is_not(None),
    ]
    if within is not None:
        # the staff members of the stores in scope, as ids: a planner cannot guess how few
        # the org tree's recursive query leaves, and would read every message to be sure
        units = expand(session, within) or ()
        staff = session.scalars(select(Staff.id).where(in_scope(Staff.org_unit_id, units)))
        singles.append(Conversation.staff_id.in_(list(staff)))
    sent = [Message.action == "send", Message.msgtime <= now]
    staff_sent = Message.sender_kind == SenderKind.STAFF
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
            Message.conversation_id.in_(select(Conversation.id).where(*singles)),
            Message.sender_kind.in_([SenderKind.STAFF, SenderKind.CUSTOMER]),
            *sent,
        )
        .group_by(Message.conversation_id)
        .subquery()
    )
    c = by_conversation.c
    pair_key = [Conversation.staff_id, Conversation.customer_id]
    # each conversation with its pair's last customer message, last and first staff message
    windowed = (
        select(
            c.id,
            Conversation.staff_id,
            Conversation.customer_id,
            c.last_staff_at,
            c.first_staff_at,
            c.staff_messages,
            func.max(c.last_customer_at).over(partition_by=pair_key).label("pair_customer_at"),
            func.max(c.last_staff_at).over(partition_by=pair_key).label("pair_staff_at"),
            func.min(c.first_staff_at).over(partition_by=pair_key).label("pair_first_staff_at"),
        )
        .join(Conversation, Conversation.id == c.id)
        .where(*singles)
        .subquery()
    )
    w = windowed.c
    pair_customer = w.pair_customer_at
    dormant = (
        windowed.select()
        .where(
            or_(
                and_(
                    pair_customer.is_not(None),
                    pair_customer < cutoff,
                    w.pair_staff_at > pair_customer,
                ),
                and_(pair_customer.is_(None), w.pair_first_staff_at < cutoff),
            )
        )
        .subquery()
    )
    d = dormant.c
    later = aliased(Message)
    staff_after = (
        select(func.count(later.id))
        .where(
            later.conversation_id == d.id,
            later.sender_kind == SenderKind.STAFF,
            later.action == "send",
            later.msgtime > d.pair_customer_at,
            later.msgtime <= now,
        )
        .scalar_subquery()
    )
    # staff messages of this conversation after the pair's last customer message
    unanswered = case(
        (d.pair_customer_at.is_(None), d.staff_messages),
        (or_(d.last_staff_at.is_(None), d.last_staff_at <= d.pair_customer_at), literal(0)),
        (d.first_staff_at > d.pair_customer_at, d.staff_messages),
        else_=staff_after,
    )
    pairs = (
        select(
            d.staff_id,
            d.customer_id,
            func.max(d.pair_customer_at).label("last_customer_at"),
            func.max(d.pair_staff_at).label("last_staff_at"),
            func.min(d.pair_first_staff_at).label("first_staff_at"),
            func.sum(unanswered).label("unanswered"),
        )
        .group_by(d.staff_id, d.customer_id)
        .subquery()
    )
    store = aliased(OrgUnit)
    rows = session.execute(
        select(
            pairs.c.staff_id,
            Staff.userid,
            Staff.name,
            Staff.org_unit_id,
            func.coalesce(store.name, literal("")),
            pairs.c.customer_id,
            Customer.external_userid,
            Customer.name,
            # as they come (text on SQLite): read once by _aware, not by the column type too
            type_coerce(pairs.c.last_customer_at, String),
            type_coerce(pairs.c.last_staff_at, String),
            type_coerce(pairs.c.first_staff_at, String),
            pairs.c.unanswered,
        )
        .join(Staff, Staff.id == pairs.c.staff_id)
        .join(Customer, Customer.id == pairs.c.customer_id)
        .outerjoin(store, store.id == Staff.org_unit_id)
    ).all()
    tags = _tags(session, singles)
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
                unanswered_staff_messages=int(r[11] or 0),
                silent_days=(now - since).days,
                tags=tuple(sorted(tags.get(r[5], ()))),
            )
        )
    out.sort(key=lambda d: (d.store, d.staff_name, -d.silent_days, d.customer_id))
    return out


def _tags(session: Session, singles: list[ColumnElement[bool]]) -> dict[int, set[str]]:
    """The tag names (any staff member's, not deleted) of the customers of these
    conversations: a superset of the dormant ones, found without grouping the messages
    again."""
    tags: dict[int, set[str]] = defaultdict(set)
    for customer_id, tag in session.execute(
        select(CustomerTag.customer_id, Tag.name)
        .join(Tag, Tag.id == CustomerTag.tag_id)
        .where(
            Tag.deleted == false(),
            CustomerTag.customer_id.in_(select(Conversation.customer_id).where(*singles)),
        )
    ):
        tags[customer_id].add(tag)
    return tags


def _aware(value: object) -> dt.datetime | None:
    """Aggregates of the UTC column come back aware on PostgreSQL, as text on SQLite."""
    if value is None:
        return None
    if isinstance(value, str):  # naive UTC, as stored: read aware at once (no replace)
        value = dt.datetime.fromisoformat(value if "+" in value[10:] else value + "+00:00")
    if not isinstance(value, dt.datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
