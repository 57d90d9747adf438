"""``audit status --json``: counts across the pipeline, in the documented shape."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit.images.status import image_status
from audit.store.models import (
    Alert,
    AlertPush,
    AlertState,
    Checkpoint,
    Conversation,
    Envelope,
    EnvelopeState,
    Finding,
    Message,
)
from audit.store.quarantine import CONFLICT_PREFIX, failure_counts

# Stages keep their own high-water marks in the checkpoints table under "stage:<name>".
STAGE_PREFIX = "stage:"


def _grouped(session: Session, column: Any) -> dict[str, int]:
    return {
        str(getattr(k, "value", k)): int(n)
        for k, n in session.execute(select(column, func.count()).group_by(column).order_by(column))
    }


def status(session: Session) -> dict[str, Any]:
    envelopes = {s.value: 0 for s in EnvelopeState}
    envelopes.update(_grouped(session, Envelope.state))
    alerts_by_state = {s.value: 0 for s in AlertState}
    alerts_by_state.update(_grouped(session, Alert.state))
    # switch records are stored with msgtype "switch"; a recall with msgtype "revoke"
    by_type = _grouped(session, Message.msgtype)
    by_category = _grouped(session, Finding.category)
    checkpoints = {
        source: int(seq)
        for source, seq in session.execute(select(Checkpoint.source, Checkpoint.seq))
        if not source.startswith(STAGE_PREFIX)
    }
    conflicts = session.scalar(
        select(func.count()).where(Envelope.msgid.startswith(CONFLICT_PREFIX, autoescape=True))
    )
    repaired = session.scalar(select(func.count()).where(Message.repairs.is_not(None)))
    return {
        "envelopes": {"total": sum(envelopes.values()), **envelopes},
        "messages": {"total": sum(by_type.values()), "by_type": by_type},
        # added keys: second versions of a msgid (counted in failed), texts made storable,
        # and the items each later stage set aside
        "conflicts": int(conflicts or 0),
        "repaired_messages": int(repaired or 0),
        "stage_failures": failure_counts(session),
        "conversations": int(session.scalar(select(func.count()).select_from(Conversation)) or 0),
        "findings": {"total": sum(by_category.values()), "by_category": by_category},
        "alerts": {"total": sum(alerts_by_state.values()), "by_state": alerts_by_state},
        "checkpoints": checkpoints,
        "images": image_status(session),
        # added key: real-time pushes of critical alerts by status (failed: retried)
        "pushes": _push_status(session),
    }


def _push_status(session: Session) -> dict[str, int]:
    """Real-time pushes of critical alerts by status (see :mod:`audit.digest.push`)."""
    counts = {"sent": 0, "summarised": 0, "failed": 0, "sending": 0}
    for state, n in session.execute(
        select(AlertPush.status, func.count()).group_by(AlertPush.status)
    ):
        counts[str(state)] = int(n)
    return counts
