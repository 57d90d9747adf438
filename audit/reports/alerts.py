"""The alerts page: the review queue, its filters, sort orders and review deadlines. The same
query lists one conversation's alerts on the conversation page (``conversation_id``, oldest
first).

A query reads one page of the alerts a reviewer may see, with the true total. The total and the
overdue count are counted in SQL and only the page's rows are read
(``LIMIT``/``OFFSET``), so a queue of a hundred thousand open alerts costs one page. Sorting is
by a whitelisted key, always ending on the alert id so that pages never overlap.

Review deadlines: an alert still ``open`` longer than the hours configured for its severity
(``[alerts.review_hours]``, counted from when the alert was raised) is overdue. Where an alert
belongs and when it happened follow the reports (its own store, else its conversation's; the
time of its message, else of its conversation, else when it was raised). Times are shown in the
query's ``tz`` (the configured zone), the zone of its ``period`` when there is one.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Engine, and_, case, false, func, or_, select
from sqlalchemy.orm import aliased

from audit import days
from audit.config import ReviewHoursConfig
from audit.reports.common import Period, local_times, names_key
from audit.store.access import AccessDenied, Principal, person_name, within_scope, within_units
from audit.store.models import (
    Alert,
    AlertState,
    Conversation,
    Finding,
    Message,
    OrgUnit,
    Severity,
    Staff,
    User,
)
from audit.store.types import utcnow

SORTS = {
    "time": "时间 Time",
    "severity": "严重程度 Severity",
    "store": "门店 Store",
    "category": "类别 Category",
    "state": "状态 State",
}
PAGE_SIZES = (25, 50, 100, 200)
MAX_PAGE_SIZE = max(PAGE_SIZES)
# the states whose review is still due: an escalated or confirmed alert has been looked at
PENDING = (AlertState.OPEN,)
COLUMNS = [
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
    "raised_at",
    "deadline",
    "overdue",
]


def review_hours(config: ReviewHoursConfig | None = None) -> dict[Severity, float]:
    """Hours to review an alert of each severity (the configured deadlines)."""
    c = config or ReviewHoursConfig()
    return {s: float(getattr(c, s.value)) for s in Severity}


@dataclass(frozen=True)
class QueueQuery:
    """The queue's filters, sort and page; empty tuples mean "any"."""

    period: Period | None = None
    severities: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    states: tuple[str, ...] = ("open",)
    unit_ids: tuple[int, ...] = ()  # these units and below
    staff_ids: tuple[int, ...] = ()
    assignee_id: int | None = None  # with mine_only
    mine_only: bool = False
    overdue_only: bool = False
    conversation_id: int | None = None  # one conversation's alerts
    sort: str = "severity"
    descending: bool = True
    page: int = 1  # from 1
    page_size: int = 50
    tz: str = days.DEFAULT_ZONE  # the zone the times are shown in

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"sort {self.sort!r}: use one of {', '.join(SORTS)}")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size {self.page_size}: 1 .. {MAX_PAGE_SIZE}")
        if self.page < 1:
            raise ValueError(f"page {self.page}: pages count from 1")
        if self.period is not None and self.period.tz != self.tz:
            raise ValueError(f"the period is in {self.period.tz}, the query in {self.tz}")


@dataclass(frozen=True)
class QueuePage:
    total: int  # alerts matching the filters
    overdue: int  # of which overdue now
    page: int  # the page shown (the last one when the asked page is past the end)
    page_size: int
    rows: pd.DataFrame = field(repr=False)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))


def _rank() -> ColumnElement[int]:
    return case(*((Alert.severity == s, s.rank) for s in Severity), else_=0)


def overdue_clause(now: dt.datetime, hours: Mapping[Severity, float]) -> ColumnElement[bool]:
    """SQL: the alert is pending and raised longer ago than its severity allows."""
    late = [
        and_(Alert.severity == s, Alert.created_at < now - dt.timedelta(hours=h))
        for s, h in hours.items()
    ]
    return and_(Alert.state.in_(PENDING), or_(*late) if late else false())


def alert_queue_page(
    engine: Engine,
    principal: Principal,
    q: QueueQuery,
    hours: Mapping[Severity, float] | None = None,
    now: dt.datetime | None = None,
) -> QueuePage:
    """One page of the queue as ``principal`` may see it (see the module docstring)."""
    if not principal.reads_messages:
        raise AccessDenied("this role does not see alerts (they quote message text)")
    hours = dict(hours or review_hours())
    now = now or utcnow()
    conv_id = func.coalesce(Alert.conversation_id, Message.conversation_id)

    def of_conversation(column: Any) -> Any:
        # a lookup by primary key per alert: a join on the coalesced id would make
        # PostgreSQL hash every conversation to place a page of alerts
        return select(column).where(Conversation.id == conv_id).scalar_subquery()

    unit = func.coalesce(Alert.org_unit_id, of_conversation(Conversation.org_unit_id))
    when = func.coalesce(
        Message.msgtime, of_conversation(Conversation.started_at), Alert.created_at
    )
    store = aliased(OrgUnit)
    assignee = aliased(User)
    late = overdue_clause(now, hours)

    def joined(query: Any) -> Any:  # a Select of any columns
        return (
            query.select_from(Alert)
            .outerjoin(Finding, Alert.finding_id == Finding.id)
            .outerjoin(Message, Finding.message_id == Message.id)
        )

    conditions: list[ColumnElement[bool]] = [within_scope(principal, unit)]
    if q.period is not None:
        lo, hi = q.period.utc_bounds()
        conditions += [when >= lo, when < hi]
    if q.severities:
        conditions.append(Alert.severity.in_([Severity(s) for s in q.severities]))
    if q.categories:
        conditions.append(Alert.category.in_(q.categories))
    if q.states:
        conditions.append(Alert.state.in_([AlertState(s) for s in q.states]))
    if q.unit_ids:
        conditions.append(within_units(unit, q.unit_ids))
    if q.staff_ids:
        conditions.append(Alert.staff_id.in_(q.staff_ids))
    if q.mine_only:
        conditions.append(Alert.assignee_id == q.assignee_id)
    if q.overdue_only:
        conditions.append(late)
    if q.conversation_id is not None:
        # the second condition follows from the first; it lets the alerts' index on
        # conversation_id find the few candidates instead of joining every alert first
        conditions += [
            conv_id == q.conversation_id,
            or_(Alert.conversation_id == q.conversation_id, Alert.conversation_id.is_(None)),
        ]

    counted = joined(
        select(func.count(), func.coalesce(func.sum(case((late, 1), else_=0)), 0))
    ).where(*conditions)
    keys: dict[str, list[Any]] = {
        "time": [when],
        "severity": [_rank(), when],
        "store": [store.name, _rank(), when],
        "category": [Alert.category, _rank(), when],
        "state": [Alert.state, _rank(), when],
    }
    order = [k.desc() if q.descending else k.asc() for k in keys[q.sort]]
    order.append(Alert.id.desc() if q.descending else Alert.id.asc())
    rows_query = (
        joined(
            select(
                Alert.id,
                when,
                Alert.severity,
                Alert.category,
                Alert.state,
                Alert.title,
                store.name,
                Staff.name,
                assignee.username,
                Finding.rule,
                conv_id,
                Alert.created_at,
            )
        )
        .outerjoin(store, store.id == unit)
        .outerjoin(Staff, Staff.id == Alert.staff_id)
        .outerjoin(assignee, assignee.id == Alert.assignee_id)
        .where(*conditions)
        .order_by(*order)
    )
    with engine.connect() as conn:
        total, overdue = conn.execute(counted).one()
        pages = max(1, math.ceil(total / q.page_size))
        page = min(q.page, pages)
        rows = conn.execute(rows_query.limit(q.page_size).offset((page - 1) * q.page_size)).all()
    return QueuePage(
        total=int(total),
        overdue=int(overdue),
        page=page,
        page_size=q.page_size,
        rows=_frame(rows, hours, now, q.tz),
    )


def _frame(
    rows: Sequence[Any], hours: Mapping[Severity, float], now: dt.datetime, tz: str
) -> pd.DataFrame:
    records = []
    for alert_id, at, sev, cat, state, title, store, staff, who, rule, conv, raised in rows:
        severity, state = Severity(sev), AlertState(state)
        deadline = raised + dt.timedelta(hours=hours[severity])
        records.append(
            [
                alert_id,
                at,
                severity.value,
                cat,
                state.value,
                title,
                store,
                staff,
                who,
                rule,
                conv,
                raised,
                deadline,
                state in PENDING and deadline < now,
            ]
        )
    frame = pd.DataFrame(records, columns=COLUMNS)
    for column in ("at", "raised_at", "deadline"):
        frame[column] = local_times(frame[column], tz)
    frame["conversation_id"] = frame["conversation_id"].astype("Int64")
    frame["overdue"] = frame["overdue"].astype(bool)
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
    key = names_key(principal)
    return [(i, person_name(principal, "staff", i, f"{n} ({u})", key)) for i, n, u in rows]
