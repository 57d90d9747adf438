"""The customer page: one customer's conversations, tags and acquisition channels.

A customer is found when they talked with, or were added by, someone in the principal's
scope (principals who see every store find every customer); otherwise the page reads exactly
as for an id that does not exist. Names are shown as the conversation page shows them: in the
clear to roles that read conversations, as the same pseudonyms as everywhere else to analysts
(never the WeCom id); the remark a staff member wrote goes through the same masker as the
transcript. Viewers see no people at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine, exists, func, or_, select

from audit import days
from audit.export.masking import masker_for
from audit.reports.common import UNASSIGNED, conversation_rows, local_times
from audit.store import daily as aggregates
from audit.store.access import AccessDenied, Principal, person_name, pseudonym, within_scope
from audit.store.models import (
    Conversation,
    Customer,
    CustomerTag,
    Follow,
    OrgUnit,
    Staff,
    Tag,
    TagGroup,
)

CONVERSATION_LIMIT = 500  # newest first; a customer with more is rare and the page says so
CONVERSATION_COLUMNS = [
    "conversation_id",
    "started_at",
    "staff_id",
    "staff",
    "store",
    "messages",
    "findings",
    "alerts",
    "score",
]
FOLLOW_COLUMNS = ["staff_id", "staff", "store", "channel", "remark", "added_at"]


@dataclass(frozen=True)
class CustomerProfile:
    id: int
    name: str  # as the principal may see it
    wecom_id: str  # external_userid, or its pseudonym
    tags: tuple[tuple[str, str], ...]  # (group, tag)
    follows: pd.DataFrame  # FOLLOW_COLUMNS
    conversations: pd.DataFrame  # CONVERSATION_COLUMNS, newest first, in scope
    total_conversations: int  # in scope (the frame stops at CONVERSATION_LIMIT)


def customer_profile(
    engine: Engine, principal: Principal, customer_id: int, tz: str = days.DEFAULT_ZONE
) -> CustomerProfile | None:
    """The customer ``customer_id``, or ``None`` when unknown or outside the scope."""
    if not principal.sees_people:
        raise AccessDenied("this role sees aggregates only")
    talked = exists().where(
        Conversation.customer_id == Customer.id,
        within_scope(principal, Conversation.org_unit_id),
    )
    followed = exists().where(
        Follow.customer_id == Customer.id,
        Follow.staff_id == Staff.id,
        within_scope(principal, Staff.org_unit_id),
    )
    with engine.connect() as conn:
        visible = [] if principal.unit_ids is None else [or_(talked, followed)]
        row = conn.execute(
            select(Customer.id, Customer.name, Customer.external_userid).where(
                Customer.id == customer_id, *visible
            )
        ).one_or_none()
        if row is None:
            return None
        tags = tuple(
            (g, t)
            for g, t in conn.execute(
                select(TagGroup.name, Tag.name)
                .join(Tag, Tag.group_id == TagGroup.id)
                .join(CustomerTag, CustomerTag.tag_id == Tag.id)
                .where(CustomerTag.customer_id == customer_id, Tag.deleted.is_(False))
                .distinct()
                .order_by(TagGroup.name, Tag.name)
            )
        )
        follows = conn.execute(
            select(
                Staff.id,
                Staff.name,
                Staff.userid,
                OrgUnit.name,
                Follow.state,
                Follow.remark,
                Follow.added_at,
            )
            .join(Staff, Staff.id == Follow.staff_id)
            .outerjoin(OrgUnit, OrgUnit.id == Staff.org_unit_id)
            .where(Follow.customer_id == customer_id, within_scope(principal, Staff.org_unit_id))
            .order_by(Follow.added_at, Staff.id)
        ).all()
        version = aggregates.latest_scorecard(conn) or ""
        mine = [
            Conversation.customer_id == customer_id,
            within_scope(principal, Conversation.org_unit_id),
        ]
        total = conn.scalar(select(func.count(Conversation.id)).where(*mine)) or 0
        convs = conn.execute(
            conversation_rows(version, Staff.id, Staff.name, Staff.userid, OrgUnit.name)
            .outerjoin(Staff, Staff.id == Conversation.staff_id)
            .outerjoin(OrgUnit, OrgUnit.id == Conversation.org_unit_id)
            .where(*mine)
            .limit(CONVERSATION_LIMIT)
        ).all()
    masker = masker_for(principal)

    def staff_name(i: int | None, name: str | None, userid: str | None) -> str:
        return "" if i is None else person_name(principal, "staff", i, f"{name} ({userid})")

    follow_frame = pd.DataFrame(
        [
            {
                "staff_id": i,
                "staff": staff_name(i, n, u),
                "store": store or UNASSIGNED,
                "channel": state,
                "remark": masker.mask(remark or "").text if principal.sees_names else "",
                "added_at": added,
            }
            for i, n, u, store, state, remark, added in follows
        ],
        columns=FOLLOW_COLUMNS,
    )
    follow_frame["added_at"] = local_times(follow_frame["added_at"], tz)
    conv_frame = pd.DataFrame(
        [
            {
                "conversation_id": c[0],
                "started_at": c[1],
                "staff_id": c[2],
                "staff": staff_name(c[2], c[3], c[4]),
                "store": c[5] or UNASSIGNED,
                "messages": int(c[6] or 0),
                "findings": int(c[7]),
                "alerts": int(c[8]),
                "score": c[9],
            }
            for c in convs
        ],
        columns=CONVERSATION_COLUMNS,
    )
    conv_frame["started_at"] = local_times(conv_frame["started_at"], tz)
    conv_frame["staff_id"] = conv_frame["staff_id"].astype("Int64")
    conv_frame["score"] = conv_frame["score"].astype(float)
    return CustomerProfile(
        id=row.id,
        name=person_name(principal, "customer", row.id, row.name or row.external_userid),
        wecom_id=row.external_userid if principal.sees_names else pseudonym("customer", row.id),
        tags=tags,
        follows=follow_frame,
        conversations=conv_frame,
        total_conversations=int(total),
    )
