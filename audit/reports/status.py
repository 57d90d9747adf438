"""``audit status --json``: counts across the pipeline, in the documented shape; and how far
the analysis is behind the pull (:func:`pipeline_lag`, also on the dashboard's overview)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from audit.images.status import image_status
from audit.scan.stage import SCAN_STAGE
from audit.store.access import Principal
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
from audit.store.quarantine import CONFLICT_PREFIX, failure_counts, is_set_aside

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
        # added key: how far the analysis is behind the pull
        "pipeline": pipeline_lag(session).as_json(),
    }


@dataclass(frozen=True)
class PipelineLag:
    """The newest message pulled (and decrypted: an envelope's time is inside its
    ciphertext) against the newest one analysed (scanned; with no text waiting for the scan,
    everything pulled counts as analysed); envelopes still to decrypt apart."""

    pulled_upto: dt.datetime | None
    analysed_upto: dt.datetime | None
    pending: int  # envelopes pulled, not decrypted yet

    @property
    def seconds(self) -> float | None:
        """How far the analysis is behind (None before anything was pulled)."""
        if self.pulled_upto is None or self.analysed_upto is None:
            return None
        return max(0.0, (self.pulled_upto - self.analysed_upto).total_seconds())

    def as_json(self) -> dict[str, Any]:
        def iso(t: dt.datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return {
            "pulled_upto": iso(self.pulled_upto),
            "analysed_upto": iso(self.analysed_upto),
            "lag_seconds": self.seconds,
            "pending_envelopes": self.pending,
        }


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    return t if t is None or t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def pipeline_lag(session: Session) -> PipelineLag:
    pulled = session.scalar(select(func.max(Message.msgtime)))
    # what the scan has still to read (not what it never reads: no text, set aside, withheld)
    waiting = session.scalar(
        select(
            exists().where(
                Message.text != "",
                Message.scanned_run_id.is_(None),
                Message.consent_withheld.is_(False),
                ~is_set_aside(SCAN_STAGE, Message.msgid),
            )
        )
    )
    analysed = (
        session.scalar(select(func.max(Message.msgtime)).where(Message.scanned_run_id.is_not(None)))
        if waiting
        else pulled
    )
    pending = session.scalar(select(func.count()).where(Envelope.state == EnvelopeState.PENDING))
    return PipelineLag(_utc(pulled), _utc(analysed), int(pending or 0))


def pipeline_lag_for(session: Session, principal: Principal) -> PipelineLag | None:
    """The lag, for those who look after the whole service (None for everyone else)."""
    return pipeline_lag(session) if principal.sees_pipeline else None


def _push_status(session: Session) -> dict[str, int]:
    """Real-time pushes of critical alerts by status (see :mod:`audit.digest.push`)."""
    counts = {"sent": 0, "summarised": 0, "failed": 0, "sending": 0}
    for state, n in session.execute(
        select(AlertPush.status, func.count()).group_by(AlertPush.status)
    ):
        counts[str(state)] = int(n)
    return counts
