"""Dashboard accounts: create, list, disable, authenticate.

Passwords are hashed with Argon2id (``argon2-cffi``, its recommended parameters); a hash made
with older parameters is upgraded on the next successful sign-in. Scopes are given as org
unit codes (``S001``, ``R1``) because that is what an operator knows. Every change is written
to the audit log in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.store.models import AuditLog, OrgUnit, Role, User, UserScope

MIN_PASSWORD = 8
_hasher = PasswordHasher()
# verified against when the user does not exist, so that a wrong name costs as much time as
# a wrong password (no user enumeration by timing)
_DUMMY_HASH = _hasher.hash("not a real password")


class UserError(Exception):
    """A user cannot be created or changed as asked; the message says why and what to do."""


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    display_name: str
    email: str
    role: Role
    active: bool
    scopes: tuple[str, ...]  # org unit codes


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _log(session: Session, actor: str, action: str, username: str, **detail: object) -> None:
    session.add(
        AuditLog(actor=actor, action=action, target_type="user", target_id=username, detail=detail)
    )


def _units_by_code(session: Session, codes: Sequence[str]) -> list[OrgUnit]:
    wanted = list(dict.fromkeys(codes))
    found = {u.code: u for u in session.scalars(select(OrgUnit).where(OrgUnit.code.in_(wanted)))}
    missing = [c for c in wanted if c not in found]
    if missing:
        raise UserError(
            f"unknown org unit code(s): {', '.join(missing)} "
            "(run `audit sync-contacts` first, or check the codes in the org tree)"
        )
    return [found[c] for c in wanted]


def create_user(
    session: Session,
    username: str,
    password: str,
    role: Role | str,
    scopes: Sequence[str] = (),
    *,
    display_name: str = "",
    email: str = "",
    actor: str = "cli",
) -> User:
    """Add an active user; ``scopes`` are org unit codes (each with everything below it)."""
    username = username.strip()
    if not username:
        raise UserError("a username is required")
    try:
        role = Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise UserError(f"unknown role {role!r}: use one of {roles}") from None
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError(f"user {username!r} already exists")
    units = _units_by_code(session, scopes)
    if role is Role.SUPERVISOR and not units:
        raise UserError("a supervisor needs at least one org unit: pass --scope CODE")
    user = User(
        username=username,
        display_name=display_name,
        email=email,
        password_hash=hash_password(password),
        role=role,
        active=True,
    )
    session.add(user)
    session.flush()
    for unit in units:
        session.add(UserScope(user_id=user.id, org_unit_id=unit.id))
    _log(session, actor, "user.add", username, role=role.value, scopes=[u.code for u in units])
    session.flush()
    return user


def list_users(session: Session) -> list[UserInfo]:
    codes: dict[int, list[str]] = {}
    rows = session.execute(
        select(UserScope.user_id, OrgUnit.code)
        .join(OrgUnit, OrgUnit.id == UserScope.org_unit_id)
        .order_by(OrgUnit.code)
    )
    for user_id, code in rows:
        codes.setdefault(user_id, []).append(code)
    return [
        UserInfo(
            id=u.id,
            username=u.username,
            display_name=u.display_name,
            email=u.email,
            role=Role(u.role),
            active=u.active,
            scopes=tuple(codes.get(u.id, [])),
        )
        for u in session.scalars(select(User).order_by(User.username))
    ]


def disable_user(session: Session, username: str, *, actor: str = "cli") -> None:
    """Refuse further sign-ins; the user's reviews and trail stay."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserError(f"no user {username!r} (see `audit users list`)")
    if user.active:
        user.active = False
        _log(session, actor, "user.disable", username)


def set_password(session: Session, username: str, password: str, *, actor: str = "cli") -> None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserError(f"no user {username!r} (see `audit users list`)")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
    user.password_hash = hash_password(password)
    _log(session, actor, "user.password", username)


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, else ``None``; every attempt is logged."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    try:
        ok: bool = _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if user is None or not user.active or not ok or stored is _DUMMY_HASH:
        reason = "unknown" if user is None else ("disabled" if not user.active else "password")
        _log(session, username[:128], "signin.failed", username[:128], reason=reason)
        return None
    if _hasher.check_needs_rehash(stored):
        user.password_hash = hash_password(password)
    _log(session, username, "signin", username)
    return user
