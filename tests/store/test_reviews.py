"""The alert state machine and its trail, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from seed_chain import Seeded, seed_chain
from sqlalchemy import Engine, select, text

from audit.store.access import AccessDenied, Principal
from audit.store.db import session_scope
from audit.store.models import Alert, AlertState, AuditLog, Review, Role
from audit.store.reviews import (
    ACTIONS,
    ReviewError,
    actions_from,
    alert_history,
    assign_alerts,
    review_alert,
    review_alerts,
)
from audit.store.users import create_user


@pytest.fixture
def seeded(engine: Engine) -> Seeded:
    return seed_chain(engine)


def _alerts(engine: Engine) -> dict[str, Alert]:
    with session_scope(engine) as s:
        return {a.dedupe_key: a for a in s.scalars(select(Alert))}


def _principal(engine: Engine, role: Role, units: tuple[int, ...] | None) -> Principal:
    with session_scope(engine) as s:
        user = create_user(s, f"u-{role.value}", "password-1", Role.ADMIN)
        return Principal(user.id, user.username, role, units)


def test_the_state_machine_table():
    assert [a.name for a in actions_from(AlertState.OPEN)] == [
        "confirm",
        "false_positive",
        "escalate",
    ]
    assert [a.name for a in actions_from(AlertState.RESOLVED)] == ["reopen"]
    assert {n for n, a in ACTIONS.items() if a.comment_required} == {
        "false_positive",
        "escalate",
        "reopen",
    }


def test_a_review_moves_the_alert_and_writes_review_and_trail(engine: Engine, seeded: Seeded):
    sup = _principal(engine, Role.SUPERVISOR, (seeded.nanjing,))
    a1 = _alerts(engine)["a1"]
    with session_scope(engine) as s:
        review = review_alert(s, sup, a1.id, "false_positive", "  客户自己的号码  ")
        assert (review.from_state, review.to_state) == (AlertState.OPEN, AlertState.FALSE_POSITIVE)
        assert (review.finding_rule, review.finding_matched) == ("privacy.test", "38")
        assert review.comment == "客户自己的号码"
    assert _alerts(engine)["a1"].state is AlertState.FALSE_POSITIVE
    with session_scope(engine) as s:
        [log] = s.scalars(select(AuditLog).where(AuditLog.action == "alert.review")).all()
        assert (log.actor, log.target_id) == (sup.username, str(a1.id))
        assert log.detail["to"] == "false_positive"
        [entry] = alert_history(s, sup, a1.id)
        assert (entry.action, entry.reviewer) == ("false_positive", sup.username)


def test_a_comment_is_required_for_false_positive_and_escalate(engine: Engine, seeded: Seeded):
    sup = _principal(engine, Role.SUPERVISOR, (seeded.nanjing,))
    a1 = _alerts(engine)["a1"]
    for action in ("false_positive", "escalate"):
        with session_scope(engine) as s, pytest.raises(ReviewError, match="comment"):
            review_alert(s, sup, a1.id, action, "   ")
    assert _alerts(engine)["a1"].state is AlertState.OPEN


def test_a_transition_that_is_not_in_the_table_is_refused(engine: Engine, seeded: Seeded):
    sup = _principal(engine, Role.SUPERVISOR, (seeded.nanjing,))
    a2 = _alerts(engine)["a2"]  # confirmed
    with session_scope(engine) as s, pytest.raises(ReviewError, match="not allowed"):
        review_alert(s, sup, a2.id, "confirm")
    with session_scope(engine) as s:
        review_alert(s, sup, a2.id, "resolve")
    assert _alerts(engine)["a2"].state is AlertState.RESOLVED


def test_an_alert_of_another_store_cannot_be_reviewed(engine: Engine, seeded: Seeded):
    sup = _principal(engine, Role.SUPERVISOR, (seeded.nanjing,))
    alerts = _alerts(engine)
    with session_scope(engine) as s, pytest.raises(AccessDenied, match="not in your scope"):
        # one foreign alert refuses the whole batch
        review_alerts(s, sup, [alerts["a1"].id, alerts["a3"].id], "confirm")
    assert _alerts(engine)["a1"].state is AlertState.OPEN
    with session_scope(engine) as s:
        assert s.scalar(select(Review.id)) is None


def test_analysts_cannot_review(engine: Engine, seeded: Seeded):
    analyst = _principal(engine, Role.ANALYST, None)
    with session_scope(engine) as s, pytest.raises(AccessDenied):
        review_alerts(s, analyst, [_alerts(engine)["a1"].id], "confirm")


def test_bulk_review_skips_alerts_in_the_wrong_state(engine: Engine, seeded: Seeded):
    officer = _principal(engine, Role.COMPLIANCE, None)
    alerts = _alerts(engine)
    ids = [alerts[k].id for k in ("a1", "a2", "a3")]
    with session_scope(engine) as s:
        result = review_alerts(s, officer, ids, "confirm")
    assert result.reviewed == [alerts["a1"].id, alerts["a3"].id]
    assert list(result.skipped) == [alerts["a2"].id]
    with session_scope(engine) as s:
        assert s.scalar(select(text("count(*)")).select_from(Review)) == 2


def test_assignment_is_logged(engine: Engine, seeded: Seeded):
    officer = _principal(engine, Role.COMPLIANCE, None)
    with session_scope(engine) as s:
        other = create_user(s, "wang", "password-1", Role.SUPERVISOR, ["S1"])
    a1 = _alerts(engine)["a1"]
    with session_scope(engine) as s:
        assert assign_alerts(s, officer, [a1.id], other.id) == 1
        assert assign_alerts(s, officer, [a1.id], other.id) == 0
    assert _alerts(engine)["a1"].assignee_id == other.id
    with session_scope(engine) as s:
        logs = s.scalars(select(AuditLog).where(AuditLog.action == "alert.assign")).all()
        assert [log.detail["to"] for log in logs] == [other.id]
