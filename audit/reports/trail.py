"""The audit trail page: the newest audit log entries."""

from __future__ import annotations

import json

import pandas as pd
from sqlalchemy import Engine, select

from audit.days import DEFAULT_ZONE
from audit.reports.common import local_times
from audit.store.access import AccessDenied, Principal
from audit.store.models import AuditLog


def audit_trail(
    engine: Engine,
    principal: Principal,
    action_prefix: str = "",
    limit: int = 500,
    tz: str = DEFAULT_ZONE,
) -> pd.DataFrame:
    """The newest audit log entries (compliance and admins only), times in the zone ``tz``."""
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
    if action_prefix:
        query = query.where(AuditLog.action.like(action_prefix + "%"))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(AuditLog.id.desc()).limit(limit)).all()
    frame = pd.DataFrame(
        rows, columns=["id", "at", "actor", "action", "target_type", "target_id", "detail"]
    )
    frame["at"] = local_times(frame["at"], tz)
    frame["detail"] = frame["detail"].map(lambda d: json.dumps(d, ensure_ascii=False))
    return frame
