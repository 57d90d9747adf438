"""Scope rules: which rows a principal's queries can reach."""

from __future__ import annotations

import pytest
from seed_chain import Seeded, seed_chain
from sqlalchemy import Engine, select

from audit.store.access import (
    Principal,
    narrowed,
    person_name,
    pseudonym,
    scope_for,
    within_scope,
)
from audit.store.db import session_scope
from audit.store.models import Conversation, Role


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


def test_analysts_get_stable_pseudonyms():
    analyst = _who(Role.ANALYST, None)
    assert person_name(analyst, "staff", 7, "张伟") == pseudonym("staff", 7)
    assert pseudonym("staff", 7) == pseudonym("staff", 7) != pseudonym("staff", 8)
    assert person_name(_who(Role.SUPERVISOR, (1,)), "staff", 7, "张伟") == "张伟"
