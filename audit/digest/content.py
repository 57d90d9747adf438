"""What a digest says, for one day and one scope, computed in SQL.

Counts compare the day with the day before and with the average of the seven days before it.
A message, conversation or finding belongs to the store of its conversation; an alert to its
own store or else its conversation's (as in :mod:`audit.reports`). New alerts are those
raised that day. Scores are the latest per conversation, averaged per store and staff member
with their sample sizes; the SLA rate is the mean of ``metrics["sla_rate"]`` where the
scorecard recorded one. Excerpts of the top alerts are always masked: digests travel through
mail servers and group chats.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, case, func, select
from sqlalchemy.orm import InstrumentedAttribute

from audit.alerts import CATEGORY_LABELS
from audit.days import DEFAULT_ZONE, day_bounds
from audit.export.masking import Masker, mask_name, masked_excerpt
from audit.export.selection import latest_scores
from audit.store.access import in_scope
from audit.store.models import (
    Alert,
    AlertState,
    Conversation,
    Customer,
    Finding,
    Message,
    OrgUnit,
    Score,
    Severity,
    Staff,
)

WEEK = 7
SEVERITY_LABELS = {s.value: s.label for s in Severity}


@dataclass(frozen=True)
class Trend:
    day: int
    day_before: int
    week_average: float  # the seven days before ``day``

    @property
    def change(self) -> int:
        return self.day - self.day_before


@dataclass(frozen=True)
class Ranked:
    name: str
    score: float
    samples: int


@dataclass(frozen=True)
class TopAlert:
    id: int
    severity: str
    severity_label: str
    category: str
    category_label: str
    state: str
    store: str
    staff: str
    excerpt: str
    link: str


@dataclass(frozen=True)
class DigestContent:
    day: dt.date
    scope: str  # "全公司" or the scope's unit names
    messages: Trend
    conversations: Trend
    findings: Trend
    alerts: Trend  # new alerts
    alerts_by_severity: tuple[tuple[str, str, int], ...]  # (severity, label, count)
    alerts_by_category: tuple[tuple[str, str, int], ...]  # (category, label, count)
    open_alerts: int  # the queue now, whatever the day
    worst_stores: tuple[Ranked, ...]
    worst_staff: tuple[Ranked, ...]
    scored: int  # conversations of the day with a score
    sla_rate: float | None
    sla_samples: int
    unanswered: int  # conversations of the day where the customer spoke and no one answered
    top_alerts: tuple[TopAlert, ...]

    @property
    def quiet(self) -> bool:
        return self.messages.day == 0 and self.alerts.day == 0


def _per_day(
    conn: Connection,
    column: ColumnElement[Any] | InstrumentedAttribute[Any],
    stmt: Any,
    bounds: Sequence[tuple[dt.datetime, dt.datetime]],
) -> list[int]:
    """Counts of rows of ``stmt`` per ``bounds`` interval of ``column``, in one query."""
    sums = [func.sum(case((and_(column >= lo, column < hi), 1), else_=0)) for lo, hi in bounds]
    lo, hi = bounds[0][0], bounds[-1][1]
    row = conn.execute(stmt.with_only_columns(*sums).where(column >= lo, column < hi)).one()
    return [int(v or 0) for v in row]


def _trend(counts: list[int]) -> Trend:
    # counts: day-7 .. day; the week average is over day-7 .. day-1
    week = counts[:WEEK]
    return Trend(day=counts[-1], day_before=counts[-2], week_average=sum(week) / WEEK)


def build_digest(
    conn: Connection,
    day: dt.date,
    org_unit_ids: tuple[int, ...] | None,
    *,
    scope_label: str = "全公司",
    timezone: str = DEFAULT_ZONE,
    dashboard_url: str = "",
    top: int = 10,
    worst: int = 5,
    show_staff_names: bool = False,
) -> DigestContent:
    """``org_unit_ids``: expanded scope (see :func:`audit.store.access.expand`)."""
    days = [day - dt.timedelta(days=n) for n in range(WEEK, -1, -1)]  # day-7 .. day
    bounds = [day_bounds(d, d, timezone) for d in days]
    lo, hi = bounds[-1]

    conv_scope = in_scope(Conversation.org_unit_id, org_unit_ids)
    alert_unit = func.coalesce(Alert.org_unit_id, Conversation.org_unit_id)
    alert_scope = in_scope(alert_unit, org_unit_ids)

    messages = _per_day(
        conn,
        Message.msgtime,
        select(Message.id)
        .outerjoin(Conversation, Conversation.id == Message.conversation_id)
        .where(conv_scope),
        bounds,
    )
    conversations = _per_day(
        conn, Conversation.started_at, select(Conversation.id).where(conv_scope), bounds
    )
    findings = _per_day(
        conn,
        Message.msgtime,
        select(Finding.id)
        .join(Message, Message.id == Finding.message_id)
        .outerjoin(Conversation, Conversation.id == Message.conversation_id)
        .where(conv_scope),
        bounds,
    )
    alerts_base = (
        select(Alert.id)
        .outerjoin(Conversation, Conversation.id == Alert.conversation_id)
        .where(alert_scope)
    )
    alerts = _per_day(conn, Alert.created_at, alerts_base, bounds)

    new = [Alert.created_at >= lo, Alert.created_at < hi]
    by_severity = dict(
        conn.execute(
            alerts_base.with_only_columns(Alert.severity, func.count(Alert.id))
            .where(*new)
            .group_by(Alert.severity)
        ).all()
    )
    by_category = dict(
        conn.execute(
            alerts_base.with_only_columns(Alert.category, func.count(Alert.id))
            .where(*new)
            .group_by(Alert.category)
        ).all()
    )
    open_alerts = conn.execute(
        alerts_base.with_only_columns(func.count(Alert.id)).where(Alert.state == AlertState.OPEN)
    ).scalar_one()

    latest = latest_scores().subquery()
    scored_today = (
        select(Score.score)
        .join(latest, latest.c.score_id == Score.id)
        .join(Conversation, Conversation.id == Score.conversation_id)
        .where(conv_scope, Conversation.started_at >= lo, Conversation.started_at < hi)
    )
    worst_stores = _worst(
        conn, scored_today, OrgUnit.name, OrgUnit.id, Conversation.org_unit_id, worst
    )
    staff_rows = _worst(conn, scored_today, Staff.name, Staff.id, Conversation.staff_id, worst)
    worst_staff = tuple(
        r if show_staff_names else Ranked(mask_name(r.name), r.score, r.samples) for r in staff_rows
    )
    scored = conn.execute(scored_today.with_only_columns(func.count(Score.id))).scalar_one()
    sla = [
        float(m["sla_rate"])
        for (m,) in conn.execute(scored_today.with_only_columns(Score.metrics))
        if isinstance(m, dict) and isinstance(m.get("sla_rate"), int | float)
    ]
    unanswered = conn.execute(
        select(func.count(Conversation.id)).where(
            conv_scope,
            Conversation.started_at >= lo,
            Conversation.started_at < hi,
            Conversation.customer_messages > 0,
            Conversation.staff_messages == 0,
        )
    ).scalar_one()

    return DigestContent(
        day=day,
        scope=scope_label,
        messages=_trend(messages),
        conversations=_trend(conversations),
        findings=_trend(findings),
        alerts=_trend(alerts),
        alerts_by_severity=tuple(
            (s.value, SEVERITY_LABELS[s.value], int(by_severity[s]))
            for s in sorted(Severity, key=lambda s: -s.rank)
            if by_severity.get(s)
        ),
        alerts_by_category=tuple(
            (c, CATEGORY_LABELS.get(c, c), int(n))
            for c, n in sorted(by_category.items(), key=lambda kv: (-kv[1], kv[0]))
        ),
        open_alerts=int(open_alerts),
        worst_stores=worst_stores,
        worst_staff=worst_staff,
        scored=int(scored),
        sla_rate=sum(sla) / len(sla) if sla else None,
        sla_samples=len(sla),
        unanswered=int(unanswered),
        top_alerts=_top_alerts(conn, alerts_base.where(*new), top, dashboard_url, show_staff_names),
    )


def _worst(
    conn: Connection,
    scored: Any,
    name: InstrumentedAttribute[str],
    key: InstrumentedAttribute[int],
    group: InstrumentedAttribute[int | None],
    limit: int,
) -> tuple[Ranked, ...]:
    average = func.avg(Score.score)
    rows = conn.execute(
        scored.with_only_columns(name, average, func.count(Score.id))
        .join(key.class_, key == group)
        .group_by(key, name)
        .order_by(average, name)
        .limit(limit)
    ).all()
    return tuple(Ranked(n, round(float(avg), 1), int(c)) for n, avg, c in rows)


def _top_alerts(
    conn: Connection, new_alerts: Any, limit: int, dashboard_url: str, show_staff_names: bool
) -> tuple[TopAlert, ...]:
    rank = case(*((Alert.severity == s, s.rank) for s in Severity), else_=0)
    rows = conn.execute(
        with_alert_context(
            new_alerts.with_only_columns(
                Alert.id, Alert.severity, Alert.category, Alert.state, *ALERT_CONTEXT
            )
        )
        .order_by(rank.desc(), Alert.created_at.desc(), Alert.id.desc())
        .limit(limit)
    ).all()
    masker = Masker()  # one digest: the same person is the same token throughout
    base = dashboard_url.rstrip("/")
    out = []
    for r in rows:
        excerpt = alert_excerpt(masker, r)
        staff = r.staff or ""
        out.append(
            TopAlert(
                id=r.id,
                severity=str(r.severity),
                severity_label=SEVERITY_LABELS.get(str(r.severity), str(r.severity)),
                category=r.category,
                category_label=CATEGORY_LABELS.get(r.category, r.category),
                state=str(r.state),
                store=r.store or "",
                staff=staff if show_staff_names else mask_name(staff),
                excerpt=excerpt,
                link=f"{base}/?alert={r.id}" if base else "",
            )
        )
    return tuple(out)


# what a message about an alert shows, by these names: its store, its people, and its
# finding's span in its message (see :func:`with_alert_context`, :func:`alert_excerpt`)
ALERT_CONTEXT = (
    OrgUnit.name.label("store"),
    Staff.name.label("staff"),
    Customer.name.label("customer"),
    Message.text,
    Message.consent_withheld,
    Finding.start,
    Finding.end,
)


def with_alert_context(alerts: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    """``alerts`` (a query over alerts, outer-joined to their conversations) joined to what
    :data:`ALERT_CONTEXT` reads; the message is the alert's own, else its finding's."""
    return (
        alerts.outerjoin(
            OrgUnit, OrgUnit.id == func.coalesce(Alert.org_unit_id, Conversation.org_unit_id)
        )
        .outerjoin(Staff, Staff.id == Alert.staff_id)
        .outerjoin(Customer, Customer.id == Conversation.customer_id)
        .outerjoin(Finding, Finding.id == Alert.finding_id)
        .outerjoin(Message, Message.id == func.coalesce(Alert.message_id, Finding.message_id))
    )


def masked_names(masker: Masker, row: Any) -> dict[str, str]:
    """The tokens standing for an alert's staff member and customer (``row.staff``,
    ``row.customer``) in masked text."""
    return {
        n: masker.person(kind, n, n)
        for kind, n in (("staff", row.staff), ("customer", row.customer))
        if n
    }


def alert_excerpt(masker: Masker, row: Any, names: dict[str, str] | None = None) -> str:
    """The masked excerpt around an alert's finding (``row``: ``text, start, end, staff,
    customer, consent_withheld``), the people's names masked too; empty when there is no
    text or the customer withheld consent."""
    if not row.text or row.consent_withheld:
        return ""
    names = masked_names(masker, row) if names is None else names
    return masked_excerpt(masker, row.text, row.start, row.end, names)
