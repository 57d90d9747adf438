"""The audit trail page: the newest audit log entries."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd
from sqlalchemy import Engine, select

from audit.days import DEFAULT_ZONE
from audit.domain import Action, label_of
from audit.reports.common import local_times
from audit.store.access import AccessDenied, Principal
from audit.store.models import AuditLog


def audit_trail(
    engine: Engine,
    principal: Principal,
    actions: Sequence[Action] = (),
    limit: int = 500,
    tz: str = DEFAULT_ZONE,
) -> pd.DataFrame:
    """The newest audit log entries of ``actions`` (all when empty; compliance and admins
    only), times in the zone ``tz``. ``action`` comes back as its Chinese label,
    ``action_value`` as stored."""
    if not principal.sees_trail:
        raise AccessDenied("only compliance officers and admins see the audit trail")
    query = select(
        AuditLog.id,
        AuditLog.at,
        AuditLog.actor,
        AuditLog.action,
        AuditLog.target_type,
        AuditLog.target_id,
        AuditLog.detail,
    )
    if actions:
        query = query.where(AuditLog.action.in_([Action(a).value for a in actions]))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(AuditLog.id.desc()).limit(limit)).all()
    frame = pd.DataFrame(
        rows, columns=["id", "at", "actor", "action", "target_type", "target_id", "detail"]
    )
    frame["at"] = local_times(frame["at"], tz)
    frame.insert(4, "action_value", frame["action"])
    frame["action"] = frame["action"].map(lambda a: label_of(a, Action))
    frame["detail"] = frame["detail"].map(lambda d: json.dumps(d, ensure_ascii=False))
    return frame
