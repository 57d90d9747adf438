"""Who may see what: the one place where scope and role rules live.

A :class:`Principal` is the signed-in user as the queries see it: a role and the org units
the user may see (each with everything below it). Every query the dashboard runs takes a
principal and narrows itself with :func:`within_scope`; there is no "unscoped" variant for a
page to reach for. Roles:

==========  ===================  ==============  ===============  =====================
role        stores               message text    names            review alerts
==========  ===================  ==============  ===============  =====================
admin       all                  yes             yes              yes
compliance  all                  yes             yes              yes
supervisor  own units and below  yes             yes              yes
analyst     own units, else all  no              pseudonymised    no
viewer      own units, else all  no              no (aggregates)  no
==========  ===================  ==============  ===============  =====================

A supervisor without a scope sees nothing (not everything); analysts and viewers without a
scope see the whole company's aggregates, which is what those roles are for.

The principal is built from the ``users`` table today (:func:`principal_for_user`); an OIDC
sign-in (``st.login``) only has to map the identity to a user row and call the same function.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, false, literal_column, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from audit.store.models import OrgUnit, Role, User, UserScope

_Column = ColumnElement[Any] | InstrumentedAttribute[Any]

ALL_STORES_ROLES = frozenset({Role.ADMIN, Role.COMPLIANCE})
CONTENT_ROLES = frozenset({Role.ADMIN, Role.COMPLIANCE, Role.SUPERVISOR})
REVIEW_ROLES = CONTENT_ROLES
TRAIL_ROLES = ALL_STORES_ROLES
WORDLIST_ROLES = frozenset({Role.ADMIN, Role.COMPLIANCE, Role.ANALYST})


class AccessDenied(Exception):
    """The principal may not see or do this. Worded so it can be shown to the user."""


@dataclass(frozen=True)
class Principal:
    """The signed-in user, as queries see them. Hashable: a safe cache key."""

    user_id: int | None
    username: str
    role: Role
    # ``None``: every org unit; otherwise these units and everything below them
    unit_ids: tuple[int, ...] | None
    display_name: str = ""
    # the user's session epoch when this principal was issued: a password change or a
    # disable raises it, and the dashboard then ends the session (see dashboards/auth.py)
    session_epoch: int = 0

    @property
    def label(self) -> str:
        return self.display_name or self.username

    @property
    def reads_messages(self) -> bool:
        """May read message text (transcripts, alert titles, matched words)."""
        return self.role in CONTENT_ROLES

    @property
    def reviews(self) -> bool:
        return self.role in REVIEW_ROLES

    @property
    def sees_names(self) -> bool:
        """Staff and customer names in the clear (analysts get pseudonyms)."""
        return self.role in CONTENT_ROLES

    @property
    def sees_people(self) -> bool:
        """Per-person rows at all (staff drill-down); viewers get store aggregates only."""
        return self.role is not Role.VIEWER

    @property
    def sees_trail(self) -> bool:
        return self.role in TRAIL_ROLES

    @property
    def sees_wordlists(self) -> bool:
        return self.role in WORDLIST_ROLES


def scope_for(role: Role, unit_ids: Sequence[int]) -> tuple[int, ...] | None:
    """The org units a role with these ``user_scopes`` rows may see (see the module table)."""
    if role in ALL_STORES_ROLES:
        return None
    if role is Role.SUPERVISOR:
        return tuple(sorted(unit_ids))
    return tuple(sorted(unit_ids)) if unit_ids else None


def principal_for_user(session: Session, user: User) -> Principal:
    """The principal of an (active) user, with the scope from ``user_scopes``."""
    if not user.active:
        raise AccessDenied(f"user {user.username} is disabled")
    ids = session.scalars(select(UserScope.org_unit_id).where(UserScope.user_id == user.id)).all()
    return Principal(
        user_id=user.id,
        username=user.username,
        role=Role(user.role),
        unit_ids=scope_for(Role(user.role), list(ids)),
        display_name=user.display_name,
        session_epoch=user.session_epoch,
    )


def principal_by_id(session: Session, user_id: int) -> Principal | None:
    """The current principal of a user id, ``None`` when the user is gone or disabled."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        return None
    return principal_for_user(session, user)


def system_principal(username: str = "system") -> Principal:
    """A principal for scripts and the CLI, which run with the operator's full rights."""
    return Principal(user_id=None, username=username, role=Role.ADMIN, unit_ids=None)


# --------------------------------------------------------------------------- SQL


def within_units(column: _Column, unit_ids: Sequence[int] | None) -> ColumnElement[bool]:
    """``column`` is one of ``unit_ids`` or below one of them (``None``: anything)."""
    if unit_ids is None:
        return true()
    if not unit_ids:
        return false()
    top = aliased(OrgUnit)
    below = (
        select(OrgUnit.id)
        .join(
            top,
            or_(
                OrgUnit.id == top.id,
                # the materialized path makes "everything below" one LIKE; an unfilled
                # path ("") must not match the whole tree
                and_(top.path != "", OrgUnit.path.like(top.path + literal_column("'%'"))),
            ),
        )
        .where(top.id.in_(list(unit_ids)))
    )
    return column.in_(below)


def within_scope(principal: Principal, column: _Column) -> ColumnElement[bool]:
    """SQL: the org unit in ``column`` is inside the principal's scope.

    A row without an org unit (``NULL``: not yet sessionized) is visible only to principals
    who see every store.
    """
    return within_units(column, principal.unit_ids)


def narrowed(
    principal: Principal, chosen: Sequence[int] | None, tree: Sequence[tuple[int, int | None]]
) -> tuple[int, ...] | None:
    """The units to report on: what the user picked, cut down to what they may see.

    ``tree`` is ``(id, parent_id)`` for every org unit. The result covers exactly the units
    inside both the pick and the scope (each with everything below it).
    """
    scope = principal.unit_ids
    if chosen is None:
        return scope
    if scope is None:
        return tuple(chosen)
    parent = dict(tree)

    def ancestors_or_self(unit: int) -> set[int]:
        out: set[int] = set()
        current: int | None = unit
        while current is not None and current not in out:
            out.add(current)
            current = parent.get(current)
        return out

    # a picked unit inside the scope stays; a picked unit above scoped units yields those
    keep = {c for c in chosen if ancestors_or_self(c) & set(scope)}
    keep |= {s for s in scope if ancestors_or_self(s) & set(chosen)}
    return tuple(sorted(keep))


# --------------------------------------------------------------------------- names


def pseudonym(kind: str, key: object) -> str:
    """A stable stand-in for a person's name (``员工-3f9a1c``), the same on every page."""
    digest = hashlib.sha256(f"{kind}:{key}".encode()).hexdigest()[:6]
    prefix = {"staff": "员工", "customer": "客户"}.get(kind, kind)
    return f"{prefix}-{digest}"


def person_name(principal: Principal, kind: str, key: object, name: str) -> str:
    """The name as this principal may see it."""
    if principal.sees_names:
        return name
    return pseudonym(kind, key)
