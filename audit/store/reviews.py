"""The alert state machine and the review trail.

A review moves an alert from one state to another by a named action; the allowed moves are
the table :data:`ACTIONS`, not something a page decides. Each review adds a :class:`Review`
row (the judgement, with the finding's rule and matched text so it survives a rescan) and an
:class:`AuditLog` row (:func:`audit.store.access.record`), in the same transaction as the
state change. Bulk reviews apply the same action to many alerts: alerts outside the
reviewer's scope refuse the whole batch, alerts in a state the action does not apply to are
skipped and reported.

::

    open ──confirm──► confirmed ──resolve──► resolved
     │  ╲               ▲   │                  │
     │   escalate*      │ escalate*           reopen*
     │         ╲        │   ▼                  │
     │          ► escalated ──resolve──► resolved
     └─false_positive*─► false_positive ──reopen*──► open

    * a comment is required
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from audit import domain
from audit.export.masking import stored_masker
from audit.store.access import REVIEW_ROLES, AccessDenied, Principal, record, within_scope
from audit.store.models import (
    Alert,
    AlertState,
    Conversation,
    Finding,
    Review,
    User,
)
from audit.store.types import utcnow

MAX_COMMENT = 2000
MAX_BULK = 500


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    sources: frozenset[AlertState]
    target: AlertState
    comment_required: bool


_S = AlertState
ACTIONS: dict[str, Action] = {
    a.name: a
    for a in [
        Action(
            "confirm", "确认违规 Confirm", frozenset({_S.OPEN, _S.ESCALATED}), _S.CONFIRMED, False
        ),
        Action(
            "false_positive",
            "误报 False positive",
            frozenset({_S.OPEN, _S.ESCALATED, _S.CONFIRMED}),
            _S.FALSE_POSITIVE,
            True,
        ),
        Action("escalate", "上报 Escalate", frozenset({_S.OPEN, _S.CONFIRMED}), _S.ESCALATED, True),
        Action(
            "resolve", "已处理 Resolve", frozenset({_S.CONFIRMED, _S.ESCALATED}), _S.RESOLVED, False
        ),
        Action(
            "reopen", "重新打开 Reopen", frozenset({_S.FALSE_POSITIVE, _S.RESOLVED}), _S.OPEN, True
        ),
    ]
}


class ReviewError(Exception):
    """A review that cannot be made as asked; the message is for the reviewer."""


@dataclass
class BulkResult:
    reviewed: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)  # alert id -> why


def actions_from(state: AlertState) -> list[Action]:
    """The actions that apply to an alert in ``state``, in table order."""
    return [a for a in ACTIONS.values() if state in a.sources]


def missing_comment(act: Action) -> str:
    """What a reviewer is told when ``act`` is submitted without its required comment."""
    chinese, _, english = act.label.partition(" ")
    return f"「{chinese}」需要填写说明 / a comment is required for {english or act.label}"


def alert_unit() -> ColumnElement[Any]:
    # an alert belongs to its own store, else its conversation's (as in the reports)
    return func.coalesce(
        Alert.org_unit_id,
        select(Conversation.org_unit_id)
        .where(Conversation.id == Alert.conversation_id)
        .scalar_subquery(),
    )


def _visible_alerts(session: Session, principal: Principal, ids: Sequence[int]) -> list[Alert]:
    """The alerts (locked for update), refusing the lot if any is unknown or out of scope."""
    if not principal.reviews:
        raise AccessDenied(f"role {principal.role.value} may not review alerts")
    wanted = sorted(set(ids))
    if len(wanted) > MAX_BULK:
        raise ReviewError(f"at most {MAX_BULK} alerts at once")
    alerts = session.scalars(
        select(Alert)
        .where(Alert.id.in_(wanted), within_scope(principal, alert_unit()))
        .order_by(Alert.id)
        .with_for_update()
    ).all()
    if len(alerts) != len(wanted):
        missing = sorted(set(wanted) - {a.id for a in alerts})
        # unknown and out-of-scope alike: do not tell a user which ids exist elsewhere
        raise AccessDenied(f"alert(s) not found or not in your scope: {missing}")
    return list(alerts)


def review_alerts(
    session: Session,
    principal: Principal,
    alert_ids: Sequence[int],
    action: str,
    comment: str = "",
) -> BulkResult:
    """Apply ``action`` to each alert; see the module docstring for the rules."""
    act = ACTIONS.get(action)
    if act is None:
        raise ReviewError(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
    comment = comment.strip()
    if act.comment_required and not comment:
        raise ReviewError(missing_comment(act))
    if len(comment) > MAX_COMMENT:
        raise ReviewError(f"comment too long ({len(comment)} > {MAX_COMMENT} characters)")
    if not alert_ids:
        raise ReviewError("no alerts selected")
    result = BulkResult()
    now = utcnow()
    for alert in _visible_alerts(session, principal, alert_ids):
        before = AlertState(alert.state)
        if before not in act.sources:
            result.skipped[alert.id] = f"{before.value} → {act.target.value} not allowed"
            continue
        finding = session.get(Finding, alert.finding_id) if alert.finding_id else None
        alert.state = act.target
        alert.updated_at = now
        session.add(
            Review(
                alert_id=alert.id,
                user_id=principal.user_id,
                action=act.name,
                from_state=before,
                to_state=act.target,
                comment=comment,
                finding_rule=finding.rule if finding else None,
                # kept for tuning the word lists, so words stay; personal data does not
                finding_matched=stored_masker().text(finding.matched) if finding else None,
                created_at=now,
            )
        )
        record(
            session,
            principal,
            domain.Action.ALERT_REVIEW,
            alert.id,
            at=now,
            **{
                "action": act.name,
                "from": before.value,
                "to": act.target.value,
                "comment": comment,
                "bulk": len(alert_ids) > 1,
            },
        )
        result.reviewed.append(alert.id)
    session.flush()
    return result


def review_alert(
    session: Session, principal: Principal, alert_id: int, action: str, comment: str = ""
) -> Review:
    """One review; raises :class:`ReviewError` when the action does not apply."""
    result = review_alerts(session, principal, [alert_id], action, comment)
    if alert_id in result.skipped:
        raise ReviewError(f"alert {alert_id}: {result.skipped[alert_id]}")
    review = session.scalars(
        select(Review).where(Review.alert_id == alert_id).order_by(Review.id.desc()).limit(1)
    ).one()
    return review


def assignable_users(session: Session, principal: Principal) -> list[tuple[int, str]]:
    """``(id, label)`` of the active users alerts can be given to (those who review)."""
    if not principal.reviews:
        return []
    rows = session.execute(
        select(User.id, User.username, User.display_name)
        .where(User.active.is_(True), User.role.in_(sorted(REVIEW_ROLES)))
        .order_by(User.username)
    )
    return [(i, f"{d} ({u})" if d else u) for i, u, d in rows]


def assign_alerts(
    session: Session, principal: Principal, alert_ids: Sequence[int], assignee_id: int | None
) -> int:
    """Give alerts to a reviewer (``None``: unassign). Returns how many changed."""
    if assignee_id is not None and assignee_id not in {
        i for i, _ in assignable_users(session, principal)
    }:
        raise ReviewError("the assignee must be an active admin, compliance officer or supervisor")
    changed = 0
    now = utcnow()
    for alert in _visible_alerts(session, principal, alert_ids):
        if alert.assignee_id == assignee_id:
            continue
        record(
            session,
            principal,
            domain.Action.ALERT_ASSIGN,
            alert.id,
            at=now,
            **{"from": alert.assignee_id, "to": assignee_id},
        )
        alert.assignee_id = assignee_id
        alert.updated_at = now
        changed += 1
    session.flush()
    return changed


@dataclass(frozen=True)
class ReviewEntry:
    at: str
    reviewer: str
    action: str
    from_state: str
    to_state: str
    comment: str


def alert_history(session: Session, principal: Principal, alert_id: int) -> list[ReviewEntry]:
    """The reviews of one alert, oldest first (empty when out of scope)."""
    if not principal.reads_messages:
        return []
    visible = session.scalar(
        select(Alert.id).where(Alert.id == alert_id, within_scope(principal, alert_unit()))
    )
    if visible is None:
        return []
    rows = session.execute(
        select(Review, User.username)
        .outerjoin(User, User.id == Review.user_id)
        .where(Review.alert_id == alert_id)
        .order_by(Review.id)
    )
    return [
        ReviewEntry(
            at=r.created_at.isoformat(timespec="minutes"),
            reviewer=name or "system",
            action=r.action,
            from_state=AlertState(r.from_state).value,
            to_state=AlertState(r.to_state).value,
            comment=r.comment,
        )
        for r, name in rows
    ]
