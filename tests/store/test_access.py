"""Scope rules: which rows a principal's queries can reach."""

from __future__ import annotations

import pytest
from seed_chain import Seeded, seed_chain
from sqlalchemy import Engine, select

from audit.config import ConfigError, load_settings
from audit.domain import Action
from audit.store.access import (
    AccessDenied,
    Principal,
    expand,
    keyed_token,
    narrowed,
    person_name,
    principal_by_name,
    pseudonym,
    pseudonym_key,
    record,
    scope_for,
    within_scope,
    within_units,
)
from audit.store.db import session_scope
from audit.store.models import AuditLog, Conversation, OrgUnit, Role
from audit.store.users import create_user

KEY_A = b"a" * 32
KEY_B = b"b" * 32


@pytest.fixture
def seeded(engine: Engine) -> Seeded:
    return seed_chain(engine)


def _who(role: Role, units: tuple[int, ...] | None) -> Principal:
    return Principal(user_id=1, username="u", role=role, unit_ids=units)


def _visible_stores(engine: Engine, principal: Principal) -> set[int | None]:
    with session_scope(engine) as s:
        return set(
            s.scalars(
                select(Conversation.org_unit_id).where(
                    within_scope(principal, Conversation.org_unit_id)
                )
            )
        )


def test_roles_map_to_scopes():
    assert scope_for(Role.ADMIN, [3]) is None
    assert scope_for(Role.COMPLIANCE, []) is None
    assert scope_for(Role.SUPERVISOR, []) == ()
    assert scope_for(Role.SUPERVISOR, [5, 3]) == (3, 5)
    assert scope_for(Role.ANALYST, []) is None
    assert scope_for(Role.VIEWER, [4]) == (4,)


def test_a_supervisor_of_a_store_sees_only_that_store(engine: Engine, seeded: Seeded):
    assert _visible_stores(engine, _who(Role.SUPERVISOR, (seeded.nanjing,))) == {seeded.nanjing}


def test_a_supervisor_of_a_city_sees_every_store_below(engine: Engine, seeded: Seeded):
    visible = _visible_stores(engine, _who(Role.SUPERVISOR, (seeded.city,)))
    assert visible == {seeded.nanjing, seeded.xujiahui}


def test_a_supervisor_without_scope_sees_nothing(engine: Engine, seeded: Seeded):
    assert _visible_stores(engine, _who(Role.SUPERVISOR, ())) == set()


def test_compliance_sees_everything(engine: Engine, seeded: Seeded):
    assert _visible_stores(engine, _who(Role.COMPLIANCE, None)) == {
        seeded.nanjing,
        seeded.xujiahui,
    }


def test_narrowed_cuts_a_pick_down_to_the_scope(seeded: Seeded):
    tree = [
        (seeded.region, None),
        (seeded.city, seeded.region),
        (seeded.nanjing, seeded.city),
        (seeded.xujiahui, seeded.city),
    ]
    sup = _who(Role.SUPERVISOR, (seeded.nanjing,))
    assert narrowed(sup, None, tree) == (seeded.nanjing,)
    assert narrowed(sup, [seeded.region], tree) == (seeded.nanjing,)  # above: the scope
    assert narrowed(sup, [seeded.xujiahui], tree) == ()  # beside: nothing
    assert narrowed(_who(Role.ADMIN, None), [seeded.city], tree) == (seeded.city,)
    city_sup = _who(Role.SUPERVISOR, (seeded.city,))
    assert narrowed(city_sup, [seeded.nanjing], tree) == (seeded.nanjing,)  # below: the pick


def test_a_unit_without_a_materialized_path_is_still_below_its_parent(
    engine: Engine, seeded: Seeded
):
    with session_scope(engine) as s:
        orphan = OrgUnit(code="S9", name="新店", kind="store", parent_id=seeded.city, path="")
        s.add(orphan)
        s.flush()
        new_store = orphan.id
        below_city = {seeded.city, seeded.nanjing, seeded.xujiahui, seeded.lujiazui, new_store}
        # the SQL filter and the explicit ids are one expansion
        assert expand(s, [seeded.city]) == tuple(sorted(below_city))
        found = s.scalars(select(OrgUnit.id).where(within_units(OrgUnit.id, [seeded.city])))
        assert set(found) == below_city
        assert expand(s, [new_store]) == (new_store,)
        assert expand(s, []) == () and expand(s, None) is None


def test_pseudonyms_are_an_hmac_of_the_value_under_the_key():
    import base64
    import hashlib
    import hmac

    digest = hmac.new(KEY_A, "员工\x007".encode(), hashlib.sha256).digest()[:5]
    assert pseudonym("staff", 7, KEY_A) == "员工-" + base64.b32encode(digest).decode()
    assert pseudonym("customer", 7, KEY_A) == keyed_token(KEY_A, "客户", 7)
    assert pseudonym("staff", 7, KEY_A) == pseudonym("staff", 7, KEY_A)
    assert pseudonym("staff", 7, KEY_A) != pseudonym("staff", 8, KEY_A)


def test_when_the_key_changes_then_every_pseudonym_changes():
    for value in range(50):
        assert pseudonym("staff", value, KEY_A) != pseudonym("staff", value, KEY_B)


def test_the_key_comes_from_the_configuration_or_its_file(tmp_path):
    key_file = tmp_path / "pseudonym.key"
    key_file.write_bytes(KEY_B + b"\n")
    by_value = load_settings(environ={"AUDIT_PRIVACY__PSEUDONYM_KEY": KEY_A.decode()})
    by_file = load_settings(environ={"AUDIT_PRIVACY__PSEUDONYM_KEY_FILE": str(key_file)})
    assert pseudonym_key(by_value) == KEY_A
    assert pseudonym_key(by_file) == KEY_B
    # without either, one random key per process: stable between calls
    unset = load_settings(environ={})
    assert pseudonym_key(unset) == pseudonym_key(unset) not in (KEY_A, KEY_B)
    assert len(pseudonym_key(unset)) == 32


def test_a_short_or_missing_key_is_a_configuration_error(tmp_path):
    short = load_settings(environ={"AUDIT_PRIVACY__PSEUDONYM_KEY": "short"})
    with pytest.raises(ConfigError, match=r"privacy.pseudonym_key: .*at least 16 bytes"):
        pseudonym_key(short)
    missing = tmp_path / "nope.key"
    gone = load_settings(environ={"AUDIT_PRIVACY__PSEUDONYM_KEY_FILE": str(missing)})
    with pytest.raises(ConfigError, match=r"privacy.pseudonym_key_file: cannot read .*nope.key"):
        pseudonym_key(gone)


def test_analysts_see_the_keyed_pseudonym_others_the_name():
    analyst = _who(Role.ANALYST, None)
    assert person_name(analyst, "staff", 7, "张伟", KEY_A) == pseudonym("staff", 7, KEY_A)
    assert person_name(analyst, "staff", 7, "张伟") == pseudonym("staff", 7, pseudonym_key())
    assert person_name(_who(Role.SUPERVISOR, (1,)), "staff", 7, "张伟", KEY_A) == "张伟"


def test_the_operator_has_the_company_but_may_not_unmask():
    import getpass

    op = Principal.operator()
    assert op.username == f"cli:{getpass.getuser()}"
    assert (op.user_id, op.unit_ids, op.is_user) == (None, None, False)
    assert op.may_export and not op.may_unmask
    assert _who(Role.COMPLIANCE, None).may_unmask
    assert not _who(Role.SUPERVISOR, (1,)).may_unmask
    assert [r for r in Role if _who(r, None).may_export] == [
        Role.ADMIN,
        Role.COMPLIANCE,
        Role.SUPERVISOR,
    ]


def test_a_principal_by_name_has_the_users_scope(engine: Engine, seeded: Seeded):
    with session_scope(engine) as s:
        create_user(s, "wang", "s3cret-pass", Role.SUPERVISOR, ["C1"], actor=_who(Role.ADMIN, None))
    with session_scope(engine) as s:
        wang = principal_by_name(s, "wang")
        assert (wang.username, wang.role, wang.unit_ids) == (
            "wang",
            Role.SUPERVISOR,
            (seeded.city,),
        )
        with pytest.raises(AccessDenied, match="no active user 'nobody'"):
            principal_by_name(s, "nobody")


def test_record_writes_the_action_value_target_and_detail(engine: Engine):
    with session_scope(engine) as s:
        record(s, _who(Role.COMPLIANCE, None), Action.ALERT_REVIEW, 42, action="confirm", to="x")
        record(s, Principal.operator("cli:root"), Action.USER_ADD, "wang", role="supervisor")
        record(s, "nobody", Action.SIGNIN_FAILED, "nobody", reason="unknown")
    with session_scope(engine) as s:
        rows = [
            (r.actor, r.action, r.target_type, r.target_id, r.detail)
            for r in s.scalars(select(AuditLog).order_by(AuditLog.id))
        ]
    assert rows == [
        ("u", "alert.review", "alert", "42", {"action": "confirm", "to": "x"}),
        ("cli:root", "user.add", "user", "wang", {"role": "supervisor"}),
        ("nobody", "signin.failed", "user", "nobody", {"reason": "unknown"}),
    ]


def test_every_action_has_a_chinese_label_and_a_target_type():
    for action in Action:
        assert action.label and all("\u4e00" <= c <= "\u9fff" for c in action.label), action
    assert {a.target_type for a in Action} == {
        "user",
        "conversation",
        "alert",
        "export",
        "digest",
        "wordlist",
        "ciphertext",
    }
    assert Action.SIGNIN_LOCKED.target_type == "user"
    assert Action.WORDLIST_DISABLE.target_type == "wordlist"
    assert Action.EXPORT_DENIED.target_type == "export"
