"""The staff page: one staff member's conversations, findings, alerts, scores and response times.

A staff member is found only when their store is in the principal's scope (an id outside it
reads exactly like an id that does not exist); their conversations are those in scope. Names
are as the principal may see them (pseudonyms for analysts); viewers see no people at all.
Response times are the quality clock's business time (see :mod:`audit.reports.quality`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from audit.domain import AlertState, Category, Severity, label_of
from audit.reports.common import (
    UNASSIGNED,
    ReportFilter,
    conversation_rows,
    local_times,
    org_tree,
    scoped,
)
from audit.reports.figures import conversations_in
from audit.reports.quality import response_summary, scored_metrics
from audit.store import daily as aggregates
from audit.store.access import AccessDenied, Principal, person_name, within_scope
from audit.store.models import Alert, Conversation, Customer, Finding, Score, Staff

CONVERSATION_COLUMNS = [
    "conversation_id",
    "started_at",
    "customer_id",
    "customer",
    "messages",
    "findings",
    "alerts",
    "score",
    "sla_rate",
    "unanswered",
]
ALERT_COLUMNS = ["alert_id", "created_at", "severity", "category", "state", "conversation_id"]


@dataclass(frozen=True)
class StaffProfile:
    id: int
    name: str  # as the principal may see it
    store: str  # "华东区 / 上海 / 南京路店"
    store_id: int | None
    conversations: pd.DataFrame  # CONVERSATION_COLUMNS, newest first
    alerts: pd.DataFrame  # ALERT_COLUMNS, newest first
    findings: int
    scored: int
    score_avg: float | None
    responses: dict[str, Any]  # quality.response_summary: n, within, rate, p50, p90 minutes


def staff_profile(
    engine: Engine, principal: Principal, staff_id: int, f: ReportFilter, sla_minutes: float
) -> StaffProfile | None:
    """The staff member ``staff_id`` over the conversations that started in ``f.period``, or
    ``None`` when unknown or outside the principal's scope."""
    if not principal.sees_people:
        raise AccessDenied("this role sees aggregates only")
    f = scoped(engine, principal, ReportFilter(f.period))
    with engine.connect() as conn:
        person = conn.execute(
            select(Staff.id, Staff.name, Staff.userid, Staff.org_unit_id).where(
                Staff.id == staff_id, within_scope(principal, Staff.org_unit_id)
            )
        ).one_or_none()
        if person is None:
            return None
        version = aggregates.latest_scorecard(conn) or ""
        convs = conn.execute(
            conversation_rows(
                version, Conversation.customer_id, Customer.name, Customer.external_userid
            )
            .add_columns(Score.metrics)
            .outerjoin(Customer, Customer.id == Conversation.customer_id)
            .where(Conversation.staff_id == staff_id, *conversations_in(f))
        ).all()
        scored = scored_metrics(conn, f, Conversation.staff_id == staff_id)
        # an alert's conversation: its own, else its finding's (as the figures date alerts)
        conv_id = func.coalesce(Alert.conversation_id, Finding.conversation_id)
        alert_rows = conn.execute(
            select(Alert.id, Alert.created_at, Alert.severity, Alert.category, Alert.state, conv_id)
            .outerjoin(Finding, Finding.id == Alert.finding_id)
            .join(Conversation, Conversation.id == conv_id)
            .where(Conversation.staff_id == staff_id, *conversations_in(f))
            .order_by(Alert.created_at.desc(), Alert.id.desc())
        ).all()
    nodes = {n.id: n for n in org_tree(engine)}
    unit = person.org_unit_id
    conversations = pd.DataFrame(
        [
            {
                "conversation_id": c[0],
                "started_at": c[1],
                "customer_id": c[2],
                "customer": person_name(principal, "customer", c[2], c[3] or c[4])
                if c[2] is not None
                else "",
                "messages": int(c[5] or 0),
                "findings": int(c[6]),
                "alerts": int(c[7]),
                "score": c[8],
                "sla_rate": (c[9] or {}).get("sla_rate"),
                "unanswered": bool((c[9] or {}).get("unanswered_at_end")),
            }
            for c in convs
        ],
        columns=CONVERSATION_COLUMNS,
    )
    conversations["started_at"] = local_times(conversations["started_at"], f.period.tz)
    conversations["customer_id"] = conversations["customer_id"].astype("Int64")
    for column in ("score", "sla_rate"):
        conversations[column] = conversations[column].astype(float)
    alert_frame = pd.DataFrame(
        [
            {
                "alert_id": a[0],
                "created_at": a[1],
                "severity": label_of(str(a[2]), Severity),
                "category": label_of(str(a[3]), Category),
                "state": label_of(str(a[4]), AlertState),
                "conversation_id": a[5],
            }
            for a in alert_rows
        ],
        columns=ALERT_COLUMNS,
    )
    alert_frame["created_at"] = local_times(alert_frame["created_at"], f.period.tz)
    seconds = [
        float(s) for *_, m in scored for s in (m or {}).get("response_business_seconds") or ()
    ]
    scores = [float(s) for s in conversations["score"].dropna()]
    return StaffProfile(
        id=person.id,
        name=person_name(principal, "staff", person.id, f"{person.name} ({person.userid})"),
        store=nodes[unit].label if unit in nodes else UNASSIGNED,
        store_id=unit,
        conversations=conversations,
        alerts=alert_frame,
        findings=int(conversations["findings"].sum()),
        scored=len(scores),
        score_avg=sum(scores) / len(scores) if scores else None,
        responses=response_summary(seconds, sla_minutes * 60),
    )
