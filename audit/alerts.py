"""Raising alerts from findings.

One alert per cause, keyed by ``dedupe_key`` so that re-running the stage (or rescanning)
never raises the same alert twice. Alerts carry the store and staff member of their
conversation, which is what scopes them for supervisors.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, false, func, or_, select

from audit.quality.alert_sync import sync_alerts
from audit.store.db import insert_ignore, session_scope, stage_mark
from audit.store.models import (
    Alert,
    AlertState,
    Conversation,
    Finding,
    Message,
    Score,
    Severity,
    Staff,
)
from audit.store.types import utcnow

STAGE = "stage:alerts"
QUALITY_STAGE = "stage:quality_alerts"

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
            new = [
                _alert_row(
                    f"finding:{r.msgid}:{r.rule}:{r.start}",
                    r.category,
                    r.severity,
                    f"{CATEGORY_LABELS.get(r.category, r.category)}：{r.matched}",
                    now,
                    conversation_id=r.conversation_id,
                    org_unit_id=r.org_unit_id,
                    staff_id=r.staff_id,
                    finding_id=r.id,
                )
                for r in rows
                if r.severity in levels
            ]
            raised = _insert_alerts(session, new)
            mark.seq = rows[-1].id
            stats.considered += len(rows)
            stats.raised += raised


def raise_quality_alerts(
    engine: Engine, low_score: float, streak: int = 3, batch_size: int = 5000
) -> AlertStats:
    """Alerts from scores: a fatal scorecard item (critical), a negative customer left
    unanswered (high), a score under ``low_score`` (medium), one per cause and conversation;
    and a staff member whose last ``streak`` conversations all missed the SLA (medium)."""
    stats = AlertStats()
    while True:
        with session_scope(engine) as session:
            mark = stage_mark(session, QUALITY_STAGE)
            rows = session.execute(
                select(
                    Score.id,
                    Score.score,
                    Score.scorecard_version,
                    Score.metrics,
                    Score.deductions,
                    Conversation.id.label("conversation_id"),
                    Conversation.org_unit_id,
                    Conversation.staff_id,
                )
                .join(Conversation, Conversation.id == Score.conversation_id)
                .where(Score.id > mark.seq)
                .order_by(Score.id)
                .limit(batch_size)
            ).all()
            if not rows:
                return stats
            now = utcnow()
            new: list[dict[str, Any]] = []
            for r in rows:
                for key, severity, title in _quality_causes(r, low_score):
                    new.append(
                        _alert_row(
                            f"quality:{key}:{r.conversation_id}",
                            "quality",
                            severity,
                            title,
                            now,
                            conversation_id=r.conversation_id,
                            org_unit_id=r.org_unit_id,
                            staff_id=r.staff_id,
                        )
                    )
            staff = {r.staff_id for r in rows if r.staff_id}
            new += _sla_streaks(session, staff, streak, rows[-1].scorecard_version, now)
            # a rescored conversation's alerts follow its new score (audit.quality.alert_sync)
            convs = [r.conversation_id for r in rows]
            scope = (Alert.kind == "quality") & (
                (Alert.conversation_id.in_(convs) & ~Alert.dedupe_key.like(_STREAK + "%"))
                | or_(false(), *[Alert.dedupe_key.like(f"{_STREAK}{s}:%") for s in sorted(staff)])
            )
            raised = sync_alerts(session, new, scope)
            mark.seq = rows[-1].id
            stats.considered += len(rows)
            stats.raised += raised


def _alert_row(
    dedupe_key: str,
    category: str,
    severity: Severity,
    title: str,
    now: dt.datetime,
    *,
    conversation_id: int | None,
    org_unit_id: int | None,
    staff_id: int | None,
    finding_id: int | None = None,
) -> dict[str, Any]:
    """A new open alert; ``kind`` is "quality" for the quality category, else "finding"."""
    return {
        "dedupe_key": dedupe_key,
        "kind": "quality" if category == "quality" else "finding",
        "category": category,
        "severity": severity,
        "state": AlertState.OPEN,
        "title": title,
        "finding_id": finding_id,
        "conversation_id": conversation_id,
        "org_unit_id": org_unit_id,
        "staff_id": staff_id,
        "created_at": now,
        "updated_at": now,
    }


def _insert_alerts(session: Any, rows: list[dict[str, Any]]) -> int:
    """Insert the alerts whose cause has none yet; returns how many were new."""
    unique = {r["dedupe_key"]: r for r in rows}
    if not unique:
        return 0
    existing = set(
        session.scalars(select(Alert.dedupe_key).where(Alert.dedupe_key.in_(list(unique))))
    )
    fresh = [r for key, r in unique.items() if key not in existing]
    insert_ignore(session, Alert, fresh)  # still safe against a concurrent run
    return len(fresh)


_STREAK = "quality:sla_streak:"


def _sla_streaks(
    session: Any, staff_ids: set[int], streak: int, version: str, now: dt.datetime
) -> list[dict[str, Any]]:
    """One alert per run of at least ``streak`` consecutive conversations of a staff member
    (scored with scorecard ``version``, in order of their start) that all missed the SLA,
    keyed by the run's first conversation: every such run, whenever its conversations came
    in, so that the alerts are the same whatever order the messages arrived in."""
    out: list[dict[str, Any]] = []
    if streak <= 0:
        return out
    for staff_id in sorted(staff_ids):
        convs = session.execute(
            select(Conversation.id, Conversation.org_unit_id, Score.metrics)
            .join(Score, Score.conversation_id == Conversation.id)
            .where(Conversation.staff_id == staff_id, Score.scorecard_version == version)
            .order_by(Conversation.started_at, Conversation.key)
        ).all()
        missed = [(m or {}).get("sla_breaches", 0) > 0 for _, _, m in convs]
        for run in _runs_of_true(missed):
            if len(run) < streak:
                continue
            first, last = convs[run[0]], convs[run[-1]]
            out.append(
                _alert_row(
                    f"{_STREAK}{staff_id}:{first.id}",
                    "quality",
                    Severity.MEDIUM,
                    f"服务质量：连续 {len(run)} 个会话回复超时",
                    now,
                    conversation_id=last.id,
                    org_unit_id=first.org_unit_id,
                    staff_id=staff_id,
                )
            )
    return out


def _runs_of_true(flags: list[bool]) -> list[list[int]]:
    """The index runs of consecutive true flags."""
    runs: list[list[int]] = []
    for i, flag in enumerate(flags):
        if not flag:
            continue
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _quality_causes(row: Any, low_score: float) -> list[tuple[str, Severity, str]]:
    causes: list[tuple[str, Severity, str]] = []
    metrics = row.metrics or {}
    if metrics.get("fatal"):
        labels = "、".join(
            d.get("label", d.get("item", "")) for d in row.deductions if d.get("fatal")
        )
        causes.append(("fatal", Severity.CRITICAL, f"服务质量：致命项（{labels}）"))
    if metrics.get("negative_unanswered"):
        causes.append(("negative", Severity.HIGH, "服务质量：客户负面情绪未回复"))
    if row.score < low_score and not metrics.get("fatal"):
        causes.append(("low_score", Severity.MEDIUM, f"服务质量：会话得分 {row.score:.0f}"))
    return causes
