"""Dashboard accounts on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from seed_chain import Seeded, seed_chain
from sqlalchemy import Engine, func, select

from audit.store.access import AccessDenied, principal_for_user
from audit.store.db import make_engine, session_scope
from audit.store.models import AuditLog, Role, SigninFailure, User
from audit.store.throttle import DEFAULT_POLICY, ThrottlePolicy
from audit.store.users import (
    UserError,
    authenticate,
    create_user,
    disable_user,
    list_users,
    password_problem,
    session_epoch,
    set_password,
    sign_in,
)


@pytest.fixture
def seeded(engine: Engine) -> Seeded:
    return seed_chain(engine)


def test_when_a_supervisor_is_added_then_the_password_is_hashed_and_scoped(
    engine: Engine, seeded: Seeded
):
    with session_scope(engine) as s:
        user = create_user(s, "wang", "s3cret-pass", "supervisor", ["S1"], display_name="王主管")
        assert user.password_hash.startswith("$argon2id$")
        assert "s3cret-pass" not in user.password_hash
    with session_scope(engine) as s:
        [info] = list_users(s)
        assert (info.username, info.role, info.scopes, info.active) == (
            "wang",
            Role.SUPERVISOR,
            ("S1",),
            True,
        )
        user = authenticate(s, "wang", "s3cret-pass")
        assert user is not None
        principal = principal_for_user(s, user)
        assert principal.unit_ids == (seeded.nanjing,)
        assert principal.reads_messages and principal.reviews


def test_wrong_password_unknown_user_and_disabled_user_are_refused_and_logged(
    engine: Engine, seeded: Seeded
):
    with session_scope(engine) as s:
        create_user(s, "amy", "password-1", Role.COMPLIANCE)
    with session_scope(engine) as s:
        assert authenticate(s, "amy", "wrong-password") is None
        assert authenticate(s, "nobody", "password-1") is None
        disable_user(s, "amy")
    with session_scope(engine) as s:
        assert authenticate(s, "amy", "password-1") is None
        user = s.scalar(select(User).where(User.username == "amy"))
        assert user is not None
        with pytest.raises(AccessDenied):
            principal_for_user(s, user)
        actions = [a.action for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions == [
        "user.add",
        "signin.failed",
        "signin.failed",
        "user.disable",
        "signin.failed",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("xu", "short", "viewer", []), "at least 10"),
        (("xu", "long-enough", "boss", []), "unknown role"),
        (("xu", "long-enough", "supervisor", []), "needs at least one org unit"),
        (("xu", "long-enough", "analyst", ["NOPE"]), "unknown org unit code"),
    ],
)
def test_when_a_user_is_invalid_then_the_error_says_why(
    engine: Engine, seeded: Seeded, args: tuple[str, str, str, list[str]], message: str
):
    with session_scope(engine) as s, pytest.raises(UserError, match=message):
        create_user(s, *args)


def test_duplicate_user_and_password_change(engine: Engine, seeded: Seeded):
    with session_scope(engine) as s:
        create_user(s, "amy", "password-1", "admin")
    with session_scope(engine) as s, pytest.raises(UserError, match="already exists"):
        create_user(s, "amy", "password-2", "admin")
    with session_scope(engine) as s:
        set_password(s, "amy", "password-2")
    with session_scope(engine) as s:
        assert authenticate(s, "amy", "password-1") is None
        assert authenticate(s, "amy", "password-2") is not None


# --------------------------------------------------------------------------- policy


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("amy", "aaaaaaaaaaaa", "repeated or sequential"),
        ("amy", "abababababab", "repeated or sequential"),
        ("amy", "0123456789", "repeated or sequential"),
        ("amy", "abcdefghijk", "repeated or sequential"),
        ("amy", "passwordword", "at least two of"),
        ("amy", "Pass-1", "at least 10"),
        ("wang.li", "wang.li-2026!", "must not contain the username"),
        ("wang.li", "x" * 1025 + "1", "at most 1024"),
        ("amy\nadmin", "Long-enough-1", "username"),
        ("Amy", "Long-enough-1", "username"),
        ("a", "Long-enough-1", "username"),
        ("a" * 65, "Long-enough-1", "username"),
        ("王主管", "Long-enough-1", "username"),
    ],
)
def test_when_a_password_or_username_is_weak_or_malformed_then_refused(
    engine: Engine, username: str, password: str, message: str
):
    with session_scope(engine) as s, pytest.raises(UserError, match=message):
        create_user(s, username, password, "admin")
    with session_scope(engine) as s:
        assert s.scalar(select(User.id)) is None


@pytest.mark.parametrize(
    "password", ["audit-demo", "Long-enough-1", "correct horse battery staple", "s3cret-pass"]
)
def test_reasonable_passwords_pass_the_policy(password: str):
    assert password_problem(password, "amy") is None


def test_set_password_applies_the_policy(engine: Engine):
    with session_scope(engine) as s:
        create_user(s, "amy", "password-1", "admin")
    with session_scope(engine) as s, pytest.raises(UserError, match="repeated or sequential"):
        set_password(s, "amy", "aaaaaaaaaa")


# --------------------------------------------------------------------------- throttling

T0 = dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)


def _actions(engine: Engine) -> list[str]:
    with session_scope(engine) as s:
        return list(s.scalars(select(AuditLog.action).order_by(AuditLog.id)))


def test_the_sixth_attempt_within_a_minute_is_refused_even_if_right(engine: Engine):
    with session_scope(engine) as s:
        create_user(s, "amy", "password-1", "admin")
    for i in range(5):
        with session_scope(engine) as s:
            result = sign_in(s, "amy", f"guess-{i}", ip="10.0.0.9", now=T0 + i * 10 * SECOND)
        assert result.user is None
        assert (result.locked_until is None) == (i < 4)
    until = T0 + 40 * SECOND + DEFAULT_POLICY.lockout
    with session_scope(engine) as s:
        right = sign_in(s, "amy", "password-1", ip="10.0.0.9", now=T0 + 50 * SECOND)
    assert (right.user, right.locked_until) == (None, until)
    # from another address too: the name is locked, not only the pair
    with session_scope(engine) as s:
        assert sign_in(s, "amy", "password-1", ip="10.0.0.7", now=until - SECOND).user is None
    with session_scope(engine) as s:
        assert sign_in(s, "amy", "password-1", ip="10.0.0.9", now=until).user is not None
    assert _actions(engine) == [
        "user.add",
        *["signin.failed"] * 5,
        "signin.locked",
        "signin.locked",
        "signin",
    ]
    with session_scope(engine) as s:
        [locked, _] = s.scalars(
            select(AuditLog).where(AuditLog.action == "signin.locked").order_by(AuditLog.id)
        ).all()
        assert locked.detail == {"ip": "10.0.0.9", "until": until.isoformat()}
        # a success starts the name's count afresh
        assert s.scalar(select(func.count()).select_from(SigninFailure)) == 0


def test_failures_spread_over_more_than_the_window_do_not_lock(engine: Engine):
    with session_scope(engine) as s:
        create_user(s, "amy", "password-1", "admin")
    for i in range(8):  # one every 16 s: never five within a minute
        with session_scope(engine) as s:
            assert sign_in(s, "amy", "nope", now=T0 + i * 16 * SECOND).locked_until is None
    with session_scope(engine) as s:
        assert sign_in(s, "amy", "password-1", now=T0 + 129 * SECOND).user is not None


def test_one_address_guessing_many_names_is_locked(engine: Engine):
    with session_scope(engine) as s:
        create_user(s, "amy", "password-1", "admin")
    policy = ThrottlePolicy(max_failures=5, max_failures_ip=3)
    for name in ("bob", "carol", "dave"):
        with session_scope(engine) as s:
            sign_in(s, name, "password-1", ip="10.0.0.66", now=T0, policy=policy)
    with session_scope(engine) as s:
        assert sign_in(s, "amy", "password-1", ip="10.0.0.66", now=T0, policy=policy).user is None
    with session_scope(engine) as s:  # the same user from elsewhere is not affected
        assert sign_in(s, "amy", "password-1", ip="10.0.0.1", now=T0, policy=policy).user


def test_the_count_is_shared_between_processes(db_url: str):
    """Two engines stand for two dashboard processes: failures seen by one lock the other."""
    first, second = make_engine(db_url), make_engine(db_url)
    try:
        with session_scope(first) as s:
            create_user(s, "amy", "password-1", "admin")
        for i in range(5):
            with session_scope(first if i % 2 else second) as s:
                sign_in(s, "amy", "wrong", now=T0 + i * SECOND)
        with session_scope(second) as s:
            assert sign_in(s, "amy", "password-1", now=T0 + 6 * SECOND).locked_until
    finally:
        first.dispose()
        second.dispose()


# --------------------------------------------------------------------------- sessions


def test_a_password_change_or_a_disable_moves_the_session_epoch(engine: Engine):
    with session_scope(engine) as s:
        user = create_user(s, "amy", "password-1", "admin")
        signed_in = principal_for_user(s, user)
        assert session_epoch(s, user.id) == signed_in.session_epoch == 0
    with session_scope(engine) as s:
        set_password(s, "amy", "password-2")
    with session_scope(engine) as s:
        assert session_epoch(s, user.id) == 1
        again = authenticate(s, "amy", "password-2")
        assert again is not None and principal_for_user(s, again).session_epoch == 1
        disable_user(s, "amy")
    with session_scope(engine) as s:
        assert session_epoch(s, user.id) is None
        [log] = s.scalars(select(AuditLog).where(AuditLog.action == "user.password")).all()
        assert log.detail == {"sessions_revoked": True}


def test_the_per_address_limit_can_be_turned_off(engine: Engine):
    with session_scope(engine) as s:
        create_user(s, "amy", "password-1", "admin")
    policy = ThrottlePolicy(max_failures=5, max_failures_ip=0)
    for name in ("bob", "carol", "dave", "erin", "fay", "gus"):
        with session_scope(engine) as s:
            sign_in(s, name, "password-1", ip="10.0.0.66", now=T0, policy=policy)
    with session_scope(engine) as s:
        assert sign_in(s, "amy", "password-1", ip="10.0.0.66", now=T0, policy=policy).user
