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
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased

from audit.store.access import within_units
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
        .where(within_units(Staff.org_unit_id, within))
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
