"""Dashboard accounts: create, list, disable, authenticate.

Passwords are hashed with Argon2id (``argon2-cffi``, its recommended parameters); a hash made
with older parameters is upgraded on the next successful sign-in. Scopes are given as org
unit codes (``S001``, ``R1``) because that is what an operator knows. Every change is written
to the audit log in the same transaction.

Usernames are ``[a-z0-9_.-]{2,64}``; a password must pass :func:`password_problem`. Sign-in,
with a password or through WeCom (:func:`sign_in_wecom`, the member's userid linked to a user
in ``[signin]``), is throttled (:mod:`audit.store.throttle`) and written to the trail. A
password change or a disable raises the user's ``session_epoch``, which ends every dashboard
session signed in before it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from audit.domain import Action
from audit.store.access import Principal, record
from audit.store.models import OrgUnit, Role, SigninFailure, User, UserScope
from audit.store.throttle import DEFAULT_POLICY, ThrottlePolicy, locked_until, record_failure
from audit.store.types import utcnow

MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # hashing cost grows with length: no megabyte passwords
PASSPHRASE = 16  # from this length one character class is enough (a passphrase)
USERNAME = re.compile(r"[a-z0-9_.-]{2,64}")
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


@dataclass(frozen=True)
class SignIn:
    """What a sign-in attempt gave: the user, or why not (``locked_until`` when throttled)."""

    user: User | None
    locked_until: dt.datetime | None = None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def username_problem(username: str) -> str | None:
    """Why ``username`` cannot be used, or ``None``."""
    if not USERNAME.fullmatch(username):
        return (
            f"username {username[:80]!r} is not valid: 2 to 64 of lowercase letters a-z, "
            "digits and . _ - (no spaces or line breaks)"
        )
    return None


def _classes(password: str) -> int:
    return sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )


def _repeats_short_unit(password: str) -> bool:
    """``aaaaaaaaaa``, ``abababab``, ``abcabcabc``: a unit of up to 4 characters, repeated."""
    n = len(password)
    return any(
        n % k == 0 and password == password[:k] * (n // k) for k in range(1, min(4, n // 2) + 1)
    )


def _is_run(password: str) -> bool:
    """``0123456789``, ``abcdefghij``, ``9876543210``: one straight run of code points."""
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(password)}
    return steps in ({1}, {-1})


def password_problem(password: str, username: str = "") -> str | None:
    """Why ``password`` is too weak for ``username``, or ``None`` when it will do."""
    if len(password) < MIN_PASSWORD:
        return f"the password must have at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"the password must have at most {MAX_PASSWORD} characters"
    if _repeats_short_unit(password) or _is_run(password) or len(set(password)) < 4:
        return "the password is a repeated or sequential pattern: choose one that is not"
    if len(password) < PASSPHRASE and _classes(password) < 2:
        return (
            "the password must mix at least two of lowercase, uppercase, digits and symbols "
            f"(or be a passphrase of {PASSPHRASE} characters or more)"
        )
    name = username.strip().lower()
    if name and (password.lower() == name or (len(name) >= 4 and name in password.lower())):
        return "the password must not contain the username"
    return None


def _by(actor: Principal | None) -> Principal:
    return actor if actor is not None else Principal.operator()


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
    actor: Principal | None = None,
) -> User:
    """Add an active user; ``scopes`` are org unit codes (each with everything below it)."""
    username = username.strip()
    if not username:
        raise UserError("a username is required")
    problem = username_problem(username)
    if problem:
        raise UserError(problem)
    try:
        role = Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise UserError(f"unknown role {role!r}: use one of {roles}") from None
    problem = password_problem(password, username)
    if problem:
        raise UserError(problem)
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
    record(
        session,
        _by(actor),
        Action.USER_ADD,
        username,
        role=role.value,
        scopes=[u.code for u in units],
    )
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


def disable_user(session: Session, username: str, *, actor: Principal | None = None) -> None:
    """Refuse further sign-ins; the user's reviews and trail stay."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserError(f"no user {username!r} (see `audit users list`)")
    if user.active:
        user.active = False
        user.session_epoch += 1  # signed-in sessions end now, not when their cache expires
        record(session, _by(actor), Action.USER_DISABLE, username)


def set_password(
    session: Session, username: str, password: str, *, actor: Principal | None = None
) -> None:
    """Set the password and end every dashboard session the user has open."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserError(f"no user {username!r} (see `audit users list`)")
    problem = password_problem(password, username)
    if problem:
        raise UserError(problem)
    user.password_hash = hash_password(password)
    user.session_epoch += 1
    record(session, _by(actor), Action.USER_PASSWORD, username, sessions_revoked=True)


def session_epoch(session: Session, user_id: int) -> int | None:
    """The user's current session epoch; ``None`` when the user is gone or disabled."""
    row = session.execute(
        select(User.session_epoch, User.active).where(User.id == user_id)
    ).one_or_none()
    return None if row is None or not row.active else int(row.session_epoch)


def sign_in(
    session: Session,
    username: str,
    password: str,
    *,
    ip: str = "",
    now: dt.datetime | None = None,
    policy: ThrottlePolicy = DEFAULT_POLICY,
) -> SignIn:
    """Check a sign-in: throttle first, then the password; every attempt is logged.

    While the name or the address is locked out the password is not even checked, so a
    guess that happens to be right is refused like the others.
    """
    now = now or utcnow()
    name = username.strip()[:128]
    ip = ip[:64]
    until = locked_until(session, name, ip, now, policy)
    if until is not None:
        record(session, name, Action.SIGNIN_LOCKED, name, ip=ip, until=until.isoformat())
        return SignIn(None, until)
    user = session.scalar(select(User).where(User.username == name))
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    try:
        ok: bool = _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if user is None or not user.active or not ok or stored is _DUMMY_HASH:
        reason = "unknown" if user is None else ("disabled" if not user.active else "password")
        record(session, name, Action.SIGNIN_FAILED, name, reason=reason, ip=ip)
        record_failure(session, name, ip, now, policy)
        return SignIn(None, locked_until(session, name, ip, now, policy))
    if _hasher.check_needs_rehash(stored):
        user.password_hash = hash_password(password)
    # a success starts the name's count afresh (the address keeps its own)
    session.execute(delete(SigninFailure).where(SigninFailure.username == name))
    record(session, name, Action.SIGNIN, name, ip=ip)
    return SignIn(user)


WECOM = "wecom"
# the trail's and the throttle's name for a WeCom sign-in before WeCom has said who it is
# (no username has a colon: it is never someone's name)
WECOM_ANONYMOUS = "wecom:?"


def _wecom_name(username: str | None, userid: str) -> str:
    return username if username else f"{WECOM}:{userid}"[:128]


def sign_in_wecom(
    session: Session,
    userid: str,
    username: str | None,
    *,
    ip: str = "",
    now: dt.datetime | None = None,
    policy: ThrottlePolicy = DEFAULT_POLICY,
) -> SignIn:
    """Sign in WeCom member ``userid`` as ``username``, the dashboard user linked to them
    (``None``: nobody is), with the same throttle and trail as :func:`sign_in`.

    A member linked to nobody is refused and counted under ``wecom:<userid>``; a linked
    user whose name is locked out is refused like a right password would be.
    """
    now = now or utcnow()
    name, ip = _wecom_name(username, userid), ip[:64]
    until = locked_until(session, name, ip, now, policy)
    if until is not None:
        record(
            session,
            name,
            Action.SIGNIN_LOCKED,
            name,
            ip=ip,
            until=until.isoformat(),
            method=WECOM,
            wecom_userid=userid,
        )
        return SignIn(None, until)
    user = session.scalar(select(User).where(User.username == username)) if username else None
    if user is None or not user.active:
        reason = "unlinked" if not username else ("unknown" if user is None else "disabled")
        record(
            session,
            name,
            Action.SIGNIN_FAILED,
            name,
            reason=reason,
            ip=ip,
            method=WECOM,
            wecom_userid=userid,
        )
        record_failure(session, name, ip, now, policy)
        return SignIn(None, locked_until(session, name, ip, now, policy))
    session.execute(delete(SigninFailure).where(SigninFailure.username == name))
    record(session, name, Action.SIGNIN, name, ip=ip, method=WECOM, wecom_userid=userid)
    return SignIn(user)


def wecom_locked_until(
    session: Session,
    *,
    ip: str = "",
    now: dt.datetime | None = None,
    policy: ThrottlePolicy = DEFAULT_POLICY,
) -> dt.datetime | None:
    """Whether a WeCom sign-in from ``ip`` is refused before asking WeCom (logged if so)."""
    now = now or utcnow()
    until = locked_until(session, None, ip[:64], now, policy)
    if until is not None:
        record(
            session,
            WECOM_ANONYMOUS,
            Action.SIGNIN_LOCKED,
            WECOM_ANONYMOUS,
            ip=ip[:64],
            until=until.isoformat(),
            method=WECOM,
        )
    return until


def refuse_wecom(
    session: Session,
    reason: str,
    *,
    ip: str = "",
    now: dt.datetime | None = None,
    policy: ThrottlePolicy = DEFAULT_POLICY,
    errcode: int | None = None,
) -> dt.datetime | None:
    """A WeCom sign-in that failed before WeCom named a member (a bad or replayed state, a
    used or expired code, WeCom refusing): logged and counted against the address.

    Returns when the address's lock ends if this failure locked it.
    """
    now = now or utcnow()
    ip = ip[:64]
    detail: dict[str, Any] = {"reason": reason, "ip": ip, "method": WECOM}
    if errcode is not None:
        detail["errcode"] = errcode
    record(session, WECOM_ANONYMOUS, Action.SIGNIN_FAILED, WECOM_ANONYMOUS, **detail)
    record_failure(session, WECOM_ANONYMOUS, ip, now, policy)
    return locked_until(session, None, ip, now, policy)


def authenticate(
    session: Session,
    username: str,
    password: str,
    *,
    ip: str = "",
    now: dt.datetime | None = None,
    policy: ThrottlePolicy = DEFAULT_POLICY,
) -> User | None:
    """The active user with this name and password, else ``None`` (see :func:`sign_in`)."""
    return sign_in(session, username, password, ip=ip, now=now, policy=policy).user
