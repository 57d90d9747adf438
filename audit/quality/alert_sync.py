"""Quality alerts kept in line with the scores they come from.

A conversation is scored again when a late message joins it or two conversations merge, and
its quality alerts then follow the new score, so that they are the same whatever order the
messages came in: a cause that still holds keeps its alert (title, severity and placement
refreshed), a new cause raises one, and a cause that no longer holds withdraws its alert while
nobody has acted on it (still open, unassigned, no review). An alert somebody handled stays,
whatever the score says now: the trail must not lose a judgement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, select, update
from sqlalchemy.orm import Session

from audit.store.db import insert_ignore
from audit.store.models import Alert, AlertState, Review

# what a recomputation may refresh on an alert that still holds
_REFRESHED = ("severity", "title", "conversation_id", "org_unit_id", "staff_id")


def untouched(state: AlertState, assignee_id: int | None, reviewed: bool) -> bool:
    """Nobody acted on the alert: still open, not assigned, not reviewed. Only such an
    alert may be withdrawn or folded into another."""
    return state == AlertState.OPEN and assignee_id is None and not reviewed


def sync_alerts(
    session: Session, desired: Sequence[dict[str, Any]], scope: ColumnElement[bool]
) -> int:
    """Make the alerts matching ``scope`` be ``desired`` (rows keyed by ``dedupe_key``), as
    far as they are unjudged; returns how many alerts were new."""
    wanted = {r["dedupe_key"]: r for r in desired}
    reviewed = exists().where(Review.alert_id == Alert.id)
    current = {
        row.dedupe_key: row
        for row in session.execute(
            select(Alert.id, Alert.dedupe_key, Alert.state, Alert.assignee_id,
                   reviewed.label("reviewed"), *(getattr(Alert, c) for c in _REFRESHED))
            .where(scope | Alert.dedupe_key.in_(list(wanted)))
        )
    }  # fmt: skip
    stale = [
        row.id
        for key, row in current.items()
        if key not in wanted and untouched(row.state, row.assignee_id, row.reviewed)
    ]
    if stale:
        session.execute(delete(Alert).where(Alert.id.in_(stale)))
    for key, row in current.items():
        if key not in wanted:
            continue
        values = {c: wanted[key][c] for c in _REFRESHED if getattr(row, c) != wanted[key][c]}
        if values:
            session.execute(update(Alert).where(Alert.id == row.id).values(**values))
    fresh = [r for key, r in wanted.items() if key not in current]
    insert_ignore(session, Alert, fresh)  # still safe against a concurrent run
    return len(fresh)
