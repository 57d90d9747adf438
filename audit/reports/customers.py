"""The customers page: measures by customer tag and by acquisition channel; dormant customers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from operator import attrgetter

import pandas as pd
from sqlalchemy import Engine, and_, func, select

from audit.quality.dormant import DormantCustomer
from audit.quality.dormant import dormant_page as find_page
from audit.reports.common import ReportFilter, facts_fresh, in_scope, scoped
from audit.reports.figures import conversation_id, measures
from audit.store.access import Principal, pseudonym, pseudonym_key
from audit.store.db import session_scope
from audit.store.models import CustomerTag, Follow, Staff, Tag, TagGroup
from audit.store.types import utcnow


def tag_table(engine: Engine, principal: Principal, f: ReportFilter) -> pd.DataFrame:
    """Per tag (with its group): the tagged customers' conversations in scope and period."""
    f = scoped(engine, principal, f)
    with engine.connect() as conn:
        tagged = select(CustomerTag.customer_id, CustomerTag.tag_id).distinct().subquery()
        measured = measures(
            conn,
            f,
            lambda c: select(tagged.c.tag_id.label("key"), conversation_id(c)).join(
                c, c.customer_id == tagged.c.customer_id
            ),
        )
        names = conn.execute(
            select(Tag.id, TagGroup.name, Tag.name).join(TagGroup, TagGroup.id == Tag.group_id)
        ).all()
    out = measured.reset_index().rename(columns={"key": "tag_id"})
    groups = {i: (g, t) for i, g, t in names}
    out.insert(1, "group", [groups.get(i, ("", i))[0] for i in out["tag_id"]])
    out.insert(2, "tag", [groups.get(i, ("", i))[1] for i in out["tag_id"]])
    return out.sort_values(["group", "tag"]).reset_index(drop=True)


def channel_table(engine: Engine, principal: Principal, f: ReportFilter) -> pd.DataFrame:
    """Per acquisition channel (``follows.state``, "" for none): conversations and quality."""
    f = scoped(engine, principal, f)
    lo, hi = f.period.utc_bounds()
    with engine.connect() as conn:
        measured = measures(
            conn,
            f,
            lambda c: select(Follow.state.label("key"), conversation_id(c)).join(
                c, and_(c.staff_id == Follow.staff_id, c.customer_id == Follow.customer_id)
            ),
        )
        acquired = dict(
            conn.execute(
                select(Follow.state, func.count(Follow.id))
                .join(Staff, Staff.id == Follow.staff_id)
                .where(
                    Follow.added_at >= lo,
                    Follow.added_at < hi,
                    in_scope(Staff.org_unit_id, f.org_unit_ids),
                )
                .group_by(Follow.state)
            ).all()
        )
    out = measured.reset_index().rename(columns={"key": "channel"})
    out.insert(1, "acquired", [int(acquired.get(c, 0)) for c in out["channel"]])
    return out.sort_values("conversations", ascending=False).reset_index(drop=True)


DORMANT_PAGE = 200  # dormant pairs a page of the list shows


@dataclass(frozen=True)
class DormantList:
    """A page of the dormant list (one row per pair, :class:`DormantCustomer`'s fields as
    columns) and the number of dormant pairs in scope."""

    rows: pd.DataFrame
    total: int
    page: int  # 1-based
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def dormant_customers(
    engine: Engine, principal: Principal, days: int, now: dt.datetime | None = None
) -> pd.DataFrame | None:
    """Every dormant customer of the staff in scope (:func:`dormant_page` without pages)."""
    found = dormant_page(engine, principal, days, now=now, page_size=None)
    return None if found is None else found.rows


def dormant_page(
    engine: Engine,
    principal: Principal,
    days: int,
    page: int = 1,
    page_size: int | None = DORMANT_PAGE,
    now: dt.datetime | None = None,
) -> DormantList | None:
    """Page ``page`` (1-based) of the dormant customers
    (:func:`audit.quality.dormant.dormant_page`) of the staff in scope at ``now`` (default:
    the current time), and their number; ``None`` for viewers (aggregates only). From
    ``conversation_facts`` when they are fresh. Analysts see staff members and customers under
    the same pseudonyms as on the other pages (keyed by id)."""
    if not principal.sees_people:
        return None
    page = max(1, page)
    offset = 0 if page_size is None else (page - 1) * page_size
    at = now or utcnow()
    with session_scope(engine) as s:
        facts = facts_fresh(s.connection())
        found = find_page(
            s, at, days, within=principal.unit_ids, offset=offset, limit=page_size, facts=facts
        )
        if not found.rows and found.total and page_size is not None:  # past the end: the last
            page = -(-found.total // page_size)
            offset = (page - 1) * page_size
            found = find_page(
                s, at, days, within=principal.unit_ids, offset=offset, limit=page_size, facts=facts
            )
    columns = [f.name for f in fields(DormantCustomer)]
    # the fields as they are: dataclasses.astuple deep-copies each one
    row = attrgetter(*columns)
    frame = pd.DataFrame([row(r) for r in found.rows], columns=columns)
    size = found.total if page_size is None else page_size
    if not principal.sees_names and not frame.empty:
        secret = pseudonym_key()
        for column, kind, key in (
            ("staff_name", "staff", "staff_id"),
            ("staff_userid", "staff", "staff_id"),
            ("customer_name", "customer", "customer_id"),
            ("external_userid", "customer", "customer_id"),
        ):
            frame[column] = [pseudonym(kind, k, secret) for k in frame[key]]
    return DormantList(frame, found.total, page, max(1, size))
