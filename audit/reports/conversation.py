"""The conversation page: one transcript with its findings, alerts, score and context.

Reading a conversation is logged in the same transaction as the read. Given the media
directory, the pictures with findings come drawn for the reader (:mod:`audit.reports.pictures`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from audit import days
from audit.domain import Action
from audit.reports.alerts import MAX_PAGE_SIZE, QueuePage, QueueQuery, alert_queue_page
from audit.reports.common import UNASSIGNED
from audit.reports.pictures import PictureView, conversation_pictures
from audit.store.access import AccessDenied, Principal, record, within_scope
from audit.store.db import session_scope
from audit.store.models import (
    Alert,
    AlertState,
    Conversation,
    Customer,
    CustomerTag,
    Finding,
    Follow,
    Message,
    OrgUnit,
    Score,
    Severity,
    Staff,
    Tag,
    TagGroup,
)


@dataclass(frozen=True)
class FindingView:
    id: int
    category: str
    rule: str
    severity: str
    start: int
    end: int
    matched: str
    explanation: str
    alert_id: int | None
    alert_state: str | None


@dataclass(frozen=True)
class MessageView:
    id: int
    at: dt.datetime
    sender: str
    sender_kind: str  # staff | customer | robot | system | unknown
    msgtype: str
    text: str
    recalled: bool
    consent_withheld: bool
    findings: tuple[FindingView, ...]
    pictures: tuple[PictureView, ...] = ()  # with findings, drawn and masked for the reader


@dataclass(frozen=True)
class ConversationView:
    id: int
    kind: str
    thread: str
    store: str
    staff: str
    customer: str
    customer_id: int | None
    started_at: dt.datetime
    ended_at: dt.datetime
    messages: tuple[MessageView, ...]
    score: float | None
    scorecard_version: str | None
    deductions: tuple[dict[str, Any], ...]
    metrics: dict[str, Any]
    tags: tuple[tuple[str, str], ...]  # (group, tag)
    channels: tuple[str, ...]  # acquisition ``state`` of the pair's follow
    pair: tuple[tuple[int, dt.datetime, int, int], ...]  # (id, started, messages, findings)
    focus_alert_id: int | None


def open_conversation(
    engine: Engine,
    principal: Principal,
    conversation_id: int | None = None,
    alert_id: int | None = None,
    media_dir: Path | None = None,
) -> ConversationView | None:
    """One conversation for reading, or ``None`` when it is unknown or out of scope.

    With ``media_dir`` (where the image stage stores pictures), each message's pictures with
    findings are drawn for ``principal``: masked unless they may see personal data.

    Every call is written to the audit log (``conversation.view`` or, for an unknown or
    forbidden id, ``conversation.denied``) in the same transaction as the read: the log is
    part of reading, not something a page may forget.
    """
    if not principal.reads_messages:
        raise AccessDenied("this role does not read message content")
    with session_scope(engine) as s:
        if alert_id is not None:
            conv_of_alert = s.scalar(
                select(
                    func.coalesce(
                        Alert.conversation_id,
                        select(Message.conversation_id)
                        .join(Finding, Finding.message_id == Message.id)
                        .where(Finding.id == Alert.finding_id)
                        .scalar_subquery(),
                    )
                ).where(Alert.id == alert_id)
            )
            if conv_of_alert is None or (
                conversation_id is not None and conversation_id != conv_of_alert
            ):
                record(s, principal, Action.CONVERSATION_DENIED, conversation_id, alert=alert_id)
                return None
            conversation_id = int(conv_of_alert)
        if conversation_id is None:
            return None
        conv = s.scalar(
            select(Conversation).where(
                Conversation.id == conversation_id,
                within_scope(principal, Conversation.org_unit_id),
            )
        )
        if conv is None:
            record(s, principal, Action.CONVERSATION_DENIED, conversation_id, alert=alert_id)
            return None
        record(s, principal, Action.CONVERSATION_VIEW, conv.id, alert=alert_id)
        return _conversation_view(s, principal, conv, alert_id, media_dir)


def _conversation_view(
    s: Session,
    principal: Principal,
    conv: Conversation,
    alert_id: int | None,
    media_dir: Path | None,
) -> ConversationView:
    store = s.get(OrgUnit, conv.org_unit_id) if conv.org_unit_id else None
    staff = s.get(Staff, conv.staff_id) if conv.staff_id else None
    customer = s.get(Customer, conv.customer_id) if conv.customer_id else None
    staff_by_userid = {
        u: n
        for u, n in s.execute(
            select(Staff.userid, Staff.name).where(
                Staff.id.in_(
                    select(Message.staff_id).where(Message.conversation_id == conv.id).distinct()
                )
            )
        )
    }
    customer_names = {
        e: n
        for e, n in s.execute(
            select(Customer.external_userid, Customer.name).where(
                Customer.external_userid.in_(
                    select(Message.sender).where(Message.conversation_id == conv.id).distinct()
                )
            )
        )
    }
    found: dict[int, list[FindingView]] = {}
    rows = s.execute(
        select(Finding, Alert.id, Alert.state)
        .outerjoin(Alert, Alert.finding_id == Finding.id)
        .where(Finding.conversation_id == conv.id)
        .order_by(Finding.start)
    )
    for finding, a_id, a_state in rows:
        found.setdefault(finding.message_id, []).append(
            FindingView(
                id=finding.id,
                category=finding.category,
                rule=finding.rule,
                severity=Severity(finding.severity).value,
                start=finding.start,
                end=finding.end,
                matched=finding.matched,
                explanation=finding.explanation,
                alert_id=a_id,
                alert_state=AlertState(a_state).value if a_state else None,
            )
        )
    pictures = conversation_pictures(s, principal, conv.id, media_dir) if media_dir else {}
    messages = tuple(
        MessageView(
            id=m.id,
            at=m.msgtime,
            sender=staff_by_userid.get(m.sender) or customer_names.get(m.sender) or m.sender,
            sender_kind=str(
                m.sender_kind.value if hasattr(m.sender_kind, "value") else m.sender_kind
            ),
            msgtype=m.msgtype,
            text=m.text,
            recalled=m.recalled,
            consent_withheld=m.consent_withheld,
            findings=tuple(found.get(m.id, ())),
            pictures=pictures.get(m.id, ()),
        )
        for m in s.scalars(
            select(Message)
            .where(Message.conversation_id == conv.id, Message.action == "send")
            .order_by(Message.msgtime, Message.seq)
        )
    )
    score = s.scalar(
        select(Score).where(Score.conversation_id == conv.id).order_by(Score.id.desc()).limit(1)
    )
    tags: tuple[tuple[str, str], ...] = ()
    channels: tuple[str, ...] = ()
    if conv.customer_id is not None:
        tags = tuple(
            (g, t)
            for g, t in s.execute(
                select(TagGroup.name, Tag.name)
                .join(Tag, Tag.group_id == TagGroup.id)
                .join(CustomerTag, CustomerTag.tag_id == Tag.id)
                .where(CustomerTag.customer_id == conv.customer_id, Tag.deleted.is_(False))
                .distinct()
                .order_by(TagGroup.name, Tag.name)
            )
        )
        follow_states = select(Follow.state).where(Follow.customer_id == conv.customer_id)
        if conv.staff_id is not None:
            follow_states = follow_states.where(Follow.staff_id == conv.staff_id)
        channels = tuple(c for c in s.scalars(follow_states) if c)
    around = s.execute(
        select(Conversation.id, Conversation.started_at)
        .where(
            Conversation.thread == conv.thread,
            within_scope(principal, Conversation.org_unit_id),
        )
        .order_by(Conversation.started_at)
        .limit(50)
    ).all()
    ids = [i for i, _ in around]
    n_messages = dict(
        s.execute(
            select(Message.conversation_id, func.count(Message.id))
            .where(Message.conversation_id.in_(ids))
            .group_by(Message.conversation_id)
        ).all()
    )
    n_findings = dict(
        s.execute(
            select(Finding.conversation_id, func.count(Finding.id))
            .where(Finding.conversation_id.in_(ids))
            .group_by(Finding.conversation_id)
        ).all()
    )
    pair = tuple((i, at, int(n_messages.get(i, 0)), int(n_findings.get(i, 0))) for i, at in around)
    return ConversationView(
        id=conv.id,
        kind=str(conv.kind.value if hasattr(conv.kind, "value") else conv.kind),
        thread=conv.thread,
        store=store.name if store else UNASSIGNED,
        staff=staff.name if staff else "",
        customer=customer.name or customer.external_userid if customer else "",
        customer_id=conv.customer_id,
        started_at=conv.started_at,
        ended_at=conv.ended_at,
        messages=messages,
        score=score.score if score else None,
        scorecard_version=score.scorecard_version if score else None,
        deductions=tuple(
            d if isinstance(d, dict) else {"item": d} for d in (score.deductions if score else [])
        ),
        metrics=dict(score.metrics) if score else {},
        tags=tags,
        channels=channels,
        pair=pair,
        focus_alert_id=alert_id,
    )


def conversation_alerts(
    engine: Engine,
    principal: Principal,
    conversation_id: int,
    tz: str = days.DEFAULT_ZONE,
    hours: Mapping[Severity, float] | None = None,
    now: dt.datetime | None = None,
) -> QueuePage:
    """The alerts of one conversation in scope, every state, oldest first (for review beside
    the transcript): the alert queue's query, one page of the largest size."""
    query = QueueQuery(
        states=(),
        conversation_id=conversation_id,
        sort="time",
        descending=False,
        page_size=MAX_PAGE_SIZE,
        tz=tz,
    )
    return alert_queue_page(engine, principal, query, hours, now)
