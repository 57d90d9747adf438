"""Dashboard sessions held on the server.

Signing in gives the browser a random token (256 bits) in an HTTP-only cookie; the database
keeps only its SHA-256, the user, and the user's ``session_epoch`` at sign-in. Every page
load resolves the token again, so a session ends everywhere at once when the user signs out
(``ended_at``), when it has been idle for ``idle``, when it is older than ``lifetime``, or
when the user's password is changed or the user disabled (the epoch moves on). The token is
never put in a URL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from audit.store.models import AuditLog, User, WebSession
from audit.store.types import utcnow

COOKIE = "audit_session"
TOUCH_EVERY = dt.timedelta(minutes=1)  # last_seen_at is written at most this often


@dataclass(frozen=True)
class SessionPolicy:
    idle: dt.timedelta = dt.timedelta(hours=8)
    lifetime: dt.timedelta = dt.timedelta(hours=24)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def open_session(
    session: Session,
    user: User,
    *,
    ip: str = "",
    user_agent: str = "",
    now: dt.datetime | None = None,
) -> str:
    """A new session for ``user`` (already authenticated); returns the browser's token."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=_digest(token),
            user_id=user.id,
            session_epoch=user.session_epoch,
            created_at=now,
            last_seen_at=now,
            ip=ip[:64],
            user_agent=user_agent[:255],
        )
    )
    session.flush()
    return token


def resolve(
    session: Session,
    token: str | None,
    policy: SessionPolicy = SessionPolicy(),
    now: dt.datetime | None = None,
) -> User | None:
    """The active user whose live session ``token`` is, else ``None``; counts as activity."""
    if not isinstance(token, str) or not token or len(token) > 128:
        return None
    now = now or utcnow()
    row = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == _digest(token))
    ).one_or_none()
    if row is None:
        return None
    web, user = row
    if (
        web.ended_at is not None
        or not user.active
        or web.session_epoch != user.session_epoch
        or now - web.last_seen_at > policy.idle
        or now - web.created_at > policy.lifetime
    ):
        return None
    if now - web.last_seen_at >= TOUCH_EVERY:
        web.last_seen_at = now
    return user


def end_session(session: Session, token: str | None, now: dt.datetime | None = None) -> bool:
    """Sign out: the session ends on the server (the cookie alone is worth nothing after)."""
    if not token or len(token) > 128:
        return False
    now = now or utcnow()
    row = session.execute(
        select(WebSession.id, User.username)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == _digest(token), WebSession.ended_at.is_(None))
    ).one_or_none()
    if row is None:
        return False
    session.execute(update(WebSession).where(WebSession.id == row.id).values(ended_at=now))
    session.add(
        AuditLog(
            actor=row.username,
            action="signout",
            target_type="user",
            target_id=row.username,
            detail={},
        )
    )
    return True
