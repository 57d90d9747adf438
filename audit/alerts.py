"""Raising alerts from findings.

One alert per cause, keyed by ``dedupe_key`` so that re-running the stage (or rescanning)
never raises the same alert twice. Alerts carry the store and staff member of their
conversation, which is what scopes them for supervisors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select

from audit.store.db import insert_ignore, session_scope, stage_mark
from audit.store.models import (
    Alert,
    AlertState,
    Conversation,
    Finding,
    Message,
    Severity,
    Staff,
)
from audit.store.types import utcnow

STAGE = "stage:alerts"

CATEGORY_LABELS = {
    "privacy": "隐私泄露",
    "diversion": "私下导流",
    "promise": "违规承诺",
    "abuse": "辱骂",
    "complaint": "投诉风险",
    "fraud": "违规办理",
    "illegal": "违法内容",
}


@dataclass
class AlertStats:
    considered: int = 0
    raised: int = 0


def raise_finding_alerts(
    engine: Engine, min_severity: Severity, batch_size: int = 5000
) -> AlertStats:
    levels = [s for s in Severity if s.rank >= min_severity.rank]
    stats = AlertStats()
    while True:
        with session_scope(engine) as session:
            mark = stage_mark(session, STAGE)
            rows = session.execute(
                select(
                    Finding.id,
                    Finding.category,
                    Finding.rule,
                    Finding.severity,
                    Finding.start,
                    Finding.matched,
                    Finding.conversation_id,
                    Message.msgid,
                    Message.staff_id,
                    func.coalesce(Conversation.org_unit_id, Staff.org_unit_id).label("org_unit_id"),
                )
                .join(Message, Message.id == Finding.message_id)
                .outerjoin(Conversation, Conversation.id == Finding.conversation_id)
                .outerjoin(Staff, Staff.id == Message.staff_id)
                .where(Finding.id > mark.seq)
                .order_by(Finding.id)
                .limit(batch_size)
            ).all()
            if not rows:
                return stats
            now = utcnow()
            new: list[dict[str, Any]] = [
                {
                    "dedupe_key": f"finding:{r.msgid}:{r.rule}:{r.start}",
                    "kind": "finding",
                    "category": r.category,
                    "severity": r.severity,
                    "state": AlertState.OPEN,
                    "title": f"{CATEGORY_LABELS.get(r.category, r.category)}：{r.matched}",
                    "finding_id": r.id,
                    "conversation_id": r.conversation_id,
                    "org_unit_id": r.org_unit_id,
                    "staff_id": r.staff_id,
                    "created_at": now,
                    "updated_at": now,
                }
                for r in rows
                if r.severity in levels
            ]
            insert_ignore(session, Alert, new)
            mark.seq = rows[-1].id
            stats.considered += len(rows)
            stats.raised += len(new)
