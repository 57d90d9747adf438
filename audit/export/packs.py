"""Conversation packs: a conversation with everything a trainer needs, masked, streamed.

A pack holds the transcript, each message's findings with their spans (moved onto the masked
text), the latest score with its deductions, and the conversation's alerts with their reviews.
:func:`iter_packs` streams the selected ids through a server-side cursor and loads the details
one batch of conversations at a time, so memory depends on the batch, never on the export.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select
from sqlalchemy.orm import aliased

from audit.export.masking import Masker, masked_image_finding
from audit.export.selection import PackQuery, conversation_ids, latest_scores
from audit.images import is_image_rule
from audit.store.models import (
    Alert,
    Conversation,
    Customer,
    Finding,
    Message,
    OrgUnit,
    Review,
    Score,
    Staff,
    User,
)

BATCH = 200  # conversations per detail load


@dataclass(frozen=True)
class PackFinding:
    category: str
    rule: str
    severity: str
    # offsets into the exported (masked) text; for a picture's finding (rule ``qr.``/``ocr.``)
    # into the text read in the picture or the QR payload, as recorded
    start: int
    end: int
    matched: str
    explanation: str


@dataclass(frozen=True)
class PackMessage:
    id: int
    time: dt.datetime
    sender_kind: str
    sender: str
    msgtype: str
    text: str
    recalled: bool
    findings: tuple[PackFinding, ...] = ()


@dataclass(frozen=True)
class PackReview:
    at: dt.datetime
    reviewer: str
    action: str
    from_state: str
    to_state: str
    comment: str


@dataclass(frozen=True)
class PackAlert:
    id: int
    category: str
    severity: str
    state: str
    title: str
    reviews: tuple[PackReview, ...] = ()


@dataclass(frozen=True)
class PackScore:
    score: float
    scorecard_version: str
    deductions: list[Any]
    metrics: dict[str, Any]


@dataclass(frozen=True)
class Pack:
    conversation_id: int
    kind: str
    store_code: str
    store: str
    staff: str
    customer: str
    started_at: dt.datetime
    ended_at: dt.datetime
    messages: tuple[PackMessage, ...]
    score: PackScore | None = None
    alerts: tuple[PackAlert, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape (one JSON line per pack)."""
        return {
            "conversation_id": self.conversation_id,
            "kind": self.kind,
            "store_code": self.store_code,
            "store": self.store,
            "staff": self.staff,
            "customer": self.customer,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "score": None
            if self.score is None
            else {
                "score": self.score.score,
                "scorecard_version": self.score.scorecard_version,
                "deductions": self.score.deductions,
                "metrics": self.score.metrics,
            },
            "messages": [
                {
                    "id": m.id,
                    "time": m.time.isoformat(),
                    "sender_kind": m.sender_kind,
                    "sender": m.sender,
                    "msgtype": m.msgtype,
                    "text": m.text,
                    "recalled": m.recalled,
                    "findings": [f.__dict__ for f in m.findings],
                }
                for m in self.messages
            ],
            "alerts": [
                {
                    "id": a.id,
                    "category": a.category,
                    "severity": a.severity,
                    "state": a.state,
                    "title": a.title,
                    "reviews": [{**r.__dict__, "at": r.at.isoformat()} for r in a.reviews],
                }
                for a in self.alerts
            ],
        }


def iter_packs(
    conn: Connection, query: PackQuery, masker: Masker, batch: int = BATCH
) -> Iterator[Pack]:
    """The selected conversations as packs, in selection order."""
    ids = conn.execution_options(stream_results=True, yield_per=batch).execute(
        conversation_ids(query)
    )
    for part in ids.partitions(batch):
        yield from _load(conn, [int(row[0]) for row in part], masker, ZoneInfo(query.timezone))


def _load(conn: Connection, ids: list[int], masker: Masker, tz: ZoneInfo) -> Iterator[Pack]:
    """Packs of ``ids``, every time in ``tz`` (the configured zone): one zone in every format."""
    conv_staff = aliased(Staff)
    conversations = conn.execute(
        select(
            Conversation.id,
            Conversation.kind,
            Conversation.started_at,
            Conversation.ended_at,
            Conversation.staff_id,
            Conversation.customer_id,
            Conversation.roomid,
            OrgUnit.code,
            OrgUnit.name,
            conv_staff.name.label("staff_name"),
            Customer.name.label("customer_name"),
        )
        .outerjoin(OrgUnit, OrgUnit.id == Conversation.org_unit_id)
        .outerjoin(conv_staff, conv_staff.id == Conversation.staff_id)
        .outerjoin(Customer, Customer.id == Conversation.customer_id)
        .where(Conversation.id.in_(ids))
    ).all()
    by_id = {c.id: c for c in conversations}

    msg_staff, msg_customer = aliased(Staff), aliased(Customer)
    messages: dict[int, list[Any]] = defaultdict(list)
    for m in conn.execute(
        select(
            Message.id,
            Message.conversation_id,
            Message.msgtime,
            Message.sender_kind,
            Message.sender,
            Message.msgtype,
            Message.text,
            Message.recalled,
            Message.staff_id,
            Message.customer_id,
            msg_staff.userid.label("staff_userid"),
            msg_staff.name.label("staff_name"),
            msg_customer.external_userid.label("customer_userid"),
            msg_customer.name.label("customer_name"),
        )
        .outerjoin(msg_staff, msg_staff.id == Message.staff_id)
        .outerjoin(msg_customer, msg_customer.id == Message.customer_id)
        .where(Message.conversation_id.in_(ids), Message.consent_withheld.is_(False))
        .order_by(Message.conversation_id, Message.msgtime, Message.id)
    ):
        messages[m.conversation_id].append(m)

    findings: dict[int, list[Any]] = defaultdict(list)
    for f in conn.execute(
        select(
            Finding.message_id,
            Finding.category,
            Finding.rule,
            Finding.severity,
            Finding.start,
            Finding.end,
            Finding.matched,
            Finding.explanation,
        )
        .join(Message, Message.id == Finding.message_id)
        .where(Message.conversation_id.in_(ids))
        .order_by(Finding.message_id, Finding.start, Finding.id)
    ):
        findings[f.message_id].append(f)

    latest = latest_scores().where(Score.conversation_id.in_(ids)).subquery()
    scores = {
        s.conversation_id: s
        for s in conn.execute(
            select(
                Score.conversation_id,
                Score.score,
                Score.scorecard_version,
                Score.deductions,
                Score.metrics,
            ).join(latest, latest.c.score_id == Score.id)
        )
    }

    alerts: dict[int, list[Any]] = defaultdict(list)
    reviews: dict[int, list[Any]] = defaultdict(list)
    for a in conn.execute(
        select(Alert.id, Alert.conversation_id, Alert.category, Alert.severity)
        .add_columns(Alert.state, Alert.title)
        .where(Alert.conversation_id.in_(ids))
        .order_by(Alert.id)
    ):
        alerts[a.conversation_id].append(a)
    for r in conn.execute(
        select(
            Review.alert_id,
            Review.created_at,
            Review.user_id,
            User.username,
            Review.action,
            Review.from_state,
            Review.to_state,
            Review.comment,
        )
        .join(Alert, Alert.id == Review.alert_id)
        .outerjoin(User, User.id == Review.user_id)
        .where(Alert.conversation_id.in_(ids))
        .order_by(Review.alert_id, Review.id)
    ):
        reviews[r.alert_id].append(r)

    for cid in ids:
        c = by_id.get(cid)
        if c is None:
            continue
        names: dict[str, str] = {}
        staff = _person(masker, names, "staff", c.staff_id, c.staff_name)
        customer = _person(masker, names, "customer", c.customer_id, c.customer_name)
        rows = messages.get(cid, [])
        senders = []
        for m in rows:  # every person's name first: a name may appear before they speak
            senders.append(_sender(masker, names, m, customer if not c.roomid else None))
        pack_messages = []
        for m, sender in zip(rows, senders, strict=True):
            masked = masker.mask(m.text or "", names)
            pack_findings = []
            for f in findings.get(m.id, ()):
                if is_image_rule(f.rule):  # read in a picture: masked on its own
                    matched, explanation = masked_image_finding(
                        masker, f.rule, f.matched or "", f.explanation or ""
                    )
                    pack_findings.append(
                        PackFinding(
                            category=f.category,
                            rule=f.rule,
                            severity=str(f.severity),
                            start=f.start,
                            end=f.end,
                            matched=matched,
                            explanation=explanation,
                        )
                    )
                    continue
                start, end = masked.span(f.start, f.end)
                pack_findings.append(
                    PackFinding(
                        category=f.category,
                        rule=f.rule,
                        severity=str(f.severity),
                        start=start,
                        end=end,
                        matched=masked.text[start:end],
                        explanation=masker.text(f.explanation or "", names),
                    )
                )
            pack_messages.append(
                PackMessage(
                    id=m.id,
                    time=m.msgtime.astimezone(tz),
                    sender_kind=str(m.sender_kind),
                    sender=sender,
                    msgtype=m.msgtype,
                    text=masked.text,
                    recalled=bool(m.recalled),
                    findings=tuple(pack_findings),
                )
            )
        s = scores.get(cid)
        score = (
            None
            if s is None
            else PackScore(
                score=float(s.score),
                scorecard_version=s.scorecard_version,
                deductions=masker.value(list(s.deductions or []), names),
                metrics=masker.value(dict(s.metrics or {}), names),
            )
        )
        pack_alerts = tuple(
            PackAlert(
                id=a.id,
                category=a.category,
                severity=str(a.severity),
                state=str(a.state),
                title=masker.text(a.title, names),
                reviews=tuple(
                    PackReview(
                        at=r.created_at.astimezone(tz),
                        reviewer=masker.person("user", r.user_id, r.username or "")
                        if r.user_id is not None
                        else "",
                        action=r.action,
                        from_state=str(r.from_state),
                        to_state=str(r.to_state),
                        comment=masker.text(r.comment or "", names),
                    )
                    for r in reviews.get(a.id, ())
                ),
            )
            for a in alerts.get(cid, ())
        )
        yield Pack(
            conversation_id=cid,
            kind=str(c.kind),
            store_code=c.code or "",
            store=c.name or "",
            staff=staff,
            customer=customer,
            started_at=c.started_at.astimezone(tz),
            ended_at=c.ended_at.astimezone(tz),
            messages=tuple(pack_messages),
            score=score,
            alerts=pack_alerts,
        )


def _sender(masker: Masker, names: dict[str, str], m: Any, one_to_one_customer: str | None) -> str:
    """Who sent ``m``, by its sender kind and id: a message's staff_id and customer_id name the
    conversation's pair, whoever spoke, so they only tell who the sender is when ids agree."""
    kind = str(m.sender_kind)
    if kind == "staff" and m.staff_id is not None and m.staff_userid == m.sender:
        return _person(masker, names, "staff", m.staff_id, m.staff_name)
    if kind == "customer" and m.customer_id is not None and m.customer_userid == m.sender:
        return _person(masker, names, "customer", m.customer_id, m.customer_name)
    if kind == "customer" and one_to_one_customer:
        return one_to_one_customer
    return masker.person("sender", m.sender, m.sender)


def _person(
    masker: Masker, names: dict[str, str], kind: str, key: int | None, name: str | None
) -> str:
    if key is None:
        return ""
    shown = masker.person(kind, key, name or "")
    if name:
        names.setdefault(name, shown)
    return shown
