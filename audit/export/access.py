"""Who may export what: roles, scopes, and the one place that widens or narrows them.

A supervisor exports only their own org units and everything below them; compliance officers
and admins the whole company. Analysts and viewers see no message content, so they export
none. Unmasked exports need both an explicit request and a role that may see personal data.
The operator at the command line (no ``--as USER``) is trusted with scope, never with
unmasking: that needs a named, accountable user.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from audit.store.models import OrgUnit, Role, User, UserScope

EXPORT_ROLES = frozenset({Role.ADMIN, Role.COMPLIANCE, Role.SUPERVISOR})
UNMASK_ROLES = frozenset({Role.ADMIN, Role.COMPLIANCE})
COMPANY_ROLES = frozenset({Role.ADMIN, Role.COMPLIANCE})


class AccessDenied(PermissionError):
    """The actor may not do this; the message says why."""


@dataclass(frozen=True)
class Actor:
    """Who asks. ``org_unit_ids``: ``None`` is the whole company, else these units and below."""

    name: str
    role: Role | None  # None: the operator at the command line
    org_unit_ids: tuple[int, ...] | None = None

    @property
    def may_export(self) -> bool:
        return self.role is None or self.role in EXPORT_ROLES

    @property
    def may_unmask(self) -> bool:
        return self.role in UNMASK_ROLES


def operator(name: str) -> Actor:
    return Actor(name=name, role=None, org_unit_ids=None)


def actor_for_user(session: Session, username: str) -> Actor:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise AccessDenied(f"no active user {username!r}: see `audit users list`")
    if user.role in COMPANY_ROLES:
        scope: tuple[int, ...] | None = None
    else:
        rows = session.scalars(select(UserScope.org_unit_id).where(UserScope.user_id == user.id))
        scope = tuple(sorted(rows))
    return Actor(name=f"user:{user.username}", role=user.role, org_unit_ids=scope)


def expand(session: Session, roots: Iterable[int] | None) -> tuple[int, ...] | None:
    """``roots`` and every unit below them, as explicit ids (``None`` stays the company).

    Org trees have hundreds or thousands of units, so an ``IN`` list is cheap, and it keeps
    every later query free of path arithmetic.
    """
    if roots is None:
        return None
    roots = list(roots)
    if not roots:
        return ()
    units = session.execute(select(OrgUnit.id, OrgUnit.path, OrgUnit.parent_id)).all()
    paths = {u.id: u.path for u in units}
    children: dict[int | None, list[int]] = {}
    for u in units:
        children.setdefault(u.parent_id, []).append(u.id)
    out: set[int] = set()
    stack = [r for r in roots if r in paths]
    while stack:  # by parent links: right even where a materialized path was never filled in
        unit = stack.pop()
        if unit not in out:
            out.add(unit)
            stack.extend(children.get(unit, ()))
    return tuple(sorted(out))


def effective_scope(
    session: Session, actor: Actor, requested: Iterable[int] | None
) -> tuple[int, ...] | None:
    """What ``actor`` asked for, cut down to what they may see (expanded ids)."""
    allowed = expand(session, actor.org_unit_ids)
    wanted = expand(session, requested)
    if allowed is None:
        return wanted
    if wanted is None:
        return allowed
    return tuple(sorted(set(allowed) & set(wanted)))


def units_by_code(session: Session, codes: Iterable[str]) -> tuple[int, ...]:
    codes = list(codes)
    rows = session.execute(select(OrgUnit.code, OrgUnit.id).where(OrgUnit.code.in_(codes)))
    found = {code: unit for code, unit in rows}
    missing = [c for c in codes if c not in found]
    if missing:
        raise AccessDenied(f"unknown org unit code(s): {', '.join(missing)}")
    return tuple(found[c] for c in codes)


def in_scope(
    column: ColumnElement[Any] | InstrumentedAttribute[Any],
    ids: tuple[int, ...] | None,
) -> ColumnElement[bool]:
    """``column`` within expanded ``ids`` as SQL (rows without a unit only for the company)."""
    if ids is None:
        return true()
    if not ids:
        return false()
    return column.in_(ids)
