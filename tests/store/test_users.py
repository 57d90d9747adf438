"""Dashboard accounts on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from seed_chain import Seeded, seed_chain
from sqlalchemy import Engine, select

from audit.store.access import AccessDenied, principal_for_user
from audit.store.db import session_scope
from audit.store.models import AuditLog, Role, User
from audit.store.users import (
    UserError,
    authenticate,
    create_user,
    disable_user,
    list_users,
    set_password,
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
        (("x", "short", "viewer", []), "at least 8"),
        (("x", "long-enough", "boss", []), "unknown role"),
        (("x", "long-enough", "supervisor", []), "needs at least one org unit"),
        (("x", "long-enough", "analyst", ["NOPE"]), "unknown org unit code"),
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
