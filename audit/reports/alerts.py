"""The alerts page: the review queue, its filters and sort orders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Engine, case, func, select
from sqlalchemy.orm import aliased

from audit import days
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

ALERT_SORTS = {
    "severity": "严重程度 Severity",
    "newest": "最新 Newest",
    "oldest": "最早 Oldest",
    "store": "门店 Store",
}
ALERT_LIMIT = 1000


@dataclass(frozen=True)
class AlertQuery:
    """The alert queue's filters; empty tuples mean "any". Times are shown in ``tz``, the
    zone of ``period`` when there is one."""

    period: Period | None = None
    severities: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    states: tuple[str, ...] = ("open",)
    unit_ids: tuple[int, ...] = ()  # these units and below
    staff_ids: tuple[int, ...] = ()
    assignee_id: int | None = None  # with mine_only
    mine_only: bool = False
    conversation_id: int | None = None
    sort: str = "severity"
    limit: int = ALERT_LIMIT
    tz: str = days.DEFAULT_ZONE

    def __post_init__(self) -> None:
        if self.period is not None and self.period.tz != self.tz:
            raise ValueError(f"the period is in {self.period.tz}, the query in {self.tz}")


def _severity_rank() -> ColumnElement[int]:
    return case(
        *((Alert.severity == s, s.rank) for s in Severity),
        else_=0,
    )


def alert_queue(engine: Engine, principal: Principal, q: AlertQuery) -> pd.DataFrame:
    """The alerts the principal may review, filtered and sorted, at most ``q.limit`` rows."""
    if not principal.reads_messages:
        raise AccessDenied("this role does not see alerts (they quote message text)")
    conv_id = func.coalesce(Alert.conversation_id, Message.conversation_id)
    unit = func.coalesce(Alert.org_unit_id, Conversation.org_unit_id)
    when = func.coalesce(Message.msgtime, Conversation.started_at, Alert.created_at)
    store = aliased(OrgUnit)
    assignee = aliased(User)
    query = (
        select(
            Alert.id.label("alert_id"),
            when.label("at"),
            Alert.severity,
            Alert.category,
            Alert.state,
            Alert.title,
            store.name.label("store"),
            Staff.name.label("staff"),
            assignee.username.label("assignee"),
            Finding.rule,
            conv_id.label("conversation_id"),
        )
        .select_from(Alert)
        .outerjoin(Finding, Alert.finding_id == Finding.id)
        .outerjoin(Message, Finding.message_id == Message.id)
        .outerjoin(Conversation, Conversation.id == conv_id)
        .outerjoin(store, store.id == unit)
        .outerjoin(Staff, Staff.id == Alert.staff_id)
        .outerjoin(assignee, assignee.id == Alert.assignee_id)
        .where(within_scope(principal, unit))
    )
    if q.period is not None:
        lo, hi = q.period.utc_bounds()
        query = query.where(when >= lo, when < hi)
    if q.severities:
        query = query.where(Alert.severity.in_([Severity(s) for s in q.severities]))
    if q.categories:
        query = query.where(Alert.category.in_(q.categories))
    if q.states:
        query = query.where(Alert.state.in_([AlertState(s) for s in q.states]))
    if q.unit_ids:
        query = query.where(within_units(unit, q.unit_ids))
    if q.staff_ids:
        query = query.where(Alert.staff_id.in_(q.staff_ids))
    if q.mine_only:
        query = query.where(Alert.assignee_id == q.assignee_id)
    if q.conversation_id is not None:
        query = query.where(conv_id == q.conversation_id)
    orders: dict[str, list[Any]] = {
        "severity": [_severity_rank().desc(), when.desc()],
        "newest": [when.desc()],
        "oldest": [when.asc()],
        "store": [store.name.asc(), _severity_rank().desc(), when.desc()],
    }
    order = orders[q.sort if q.sort in ALERT_SORTS else "severity"]
    query = query.order_by(*order, Alert.id.desc()).limit(q.limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame(
        rows,
        columns=[
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
        ],
    )
    frame["severity"] = frame["severity"].map(lambda s: Severity(s).value)
    frame["state"] = frame["state"].map(lambda s: AlertState(s).value)
    frame["at"] = local_times(frame["at"], q.tz)
    frame["conversation_id"] = frame["conversation_id"].astype("Int64")
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
