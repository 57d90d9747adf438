"""Who acts and what they may see: principals, scopes, pseudonyms and the audit trail.

The one place where these rules live; the dashboard, the CLI, exports and digests all ask it.

A :class:`Principal` is whoever acts: a signed-in user (a role and the org units they may
see, each with everything below it), the operator at the command line
(:meth:`Principal.operator`) or a stage of the service (:meth:`Principal.service`). Every
query the dashboard runs takes a principal and narrows itself with :func:`within_scope`;
there is no "unscoped" variant for a page to reach for. Roles:

==========  ===================  ==============  ===============  =====================
role        stores               message text    names            review alerts, export
==========  ===================  ==============  ===============  =====================
admin       all                  yes             yes              yes (may unmask)
compliance  all                  yes             yes              yes (may unmask)
supervisor  own units and below  yes             yes              yes
analyst     own units, else all  no              pseudonymised    no
viewer      own units, else all  no              no (aggregates)  no
==========  ===================  ==============  ===============  =====================

The word lists (hits per rule, the officers' edits) are read by admins, compliance officers
and analysts; only admins and compliance officers change them (:attr:`Principal.edits_wordlists`).

A supervisor without a scope sees nothing (not everything); analysts and viewers without a
scope see the whole company's aggregates, which is what those roles are for. The operator and
the service stages have an admin's scope but are never trusted with unmasking: that needs a
named, accountable user.

Pseudonyms (:func:`pseudonym`) are keyed (HMAC-SHA256 with the configured ``privacy`` key):
whoever lacks the key cannot go from a name or an id to its pseudonym. Every row of the
append-only ``audit_log`` is written by :func:`record`, its action one of
:class:`audit.domain.Action`.

The principal is built from the ``users`` table (:func:`principal_for_user`); an OIDC
sign-in (``st.login``) only has to map the identity to a user row and call the same function.
"""

from __future__ import annotations

import base64
import datetime as dt
import getpass
import hashlib
import hmac
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Select, false, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from audit.config import ConfigError, Settings, load_settings
from audit.domain import Action
from audit.store.models import AuditLog, OrgUnit, Role, User, UserScope

_Column = ColumnElement[Any] | InstrumentedAttribute[Any]

ALL_STORES_ROLES = frozenset({Role.ADMIN, Role.COMPLIANCE})
CONTENT_ROLES = frozenset({Role.ADMIN, Role.COMPLIANCE, Role.SUPERVISOR})
REVIEW_ROLES = CONTENT_ROLES
EXPORT_ROLES = CONTENT_ROLES
UNMASK_ROLES = ALL_STORES_ROLES
TRAIL_ROLES = ALL_STORES_ROLES
WORDLIST_ROLES = frozenset({Role.ADMIN, Role.COMPLIANCE, Role.ANALYST})
WORDLIST_EDIT_ROLES = ALL_STORES_ROLES


class AccessDenied(PermissionError):
    """The principal may not see or do this. Worded so it can be shown to the user."""


@dataclass(frozen=True)
class Principal:
    """Whoever acts, as queries and the trail see them. Hashable: a safe cache key."""

    user_id: int | None  # None: the operator or a stage of the service, not a user row
    username: str  # as the trail records it
    role: Role
    # ``None``: every org unit; otherwise these units and everything below them
    unit_ids: tuple[int, ...] | None
    display_name: str = ""
    # the user's session epoch when this principal was issued: a password change or a
    # disable raises it, and the dashboard then ends the session (see dashboards/auth.py)
    session_epoch: int = 0

    @classmethod
    def operator(cls, name: str | None = None) -> Principal:
        """The operator at the command line (``cli:<login>``): an admin's scope, no unmasking."""
        return cls(user_id=None, username=name or _login(), role=Role.ADMIN, unit_ids=None)

    @classmethod
    def service(cls, name: str) -> Principal:
        """A stage of the service acting on its own (``sessionizer``, ``digest``)."""
        return cls(user_id=None, username=name, role=Role.ADMIN, unit_ids=None)

    @property
    def label(self) -> str:
        return self.display_name or self.username

    @property
    def is_user(self) -> bool:
        """A named user of the ``users`` table (not the operator or a service stage)."""
        return self.user_id is not None

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
    def sees_pipeline(self) -> bool:
        """The pipeline's own health (how far the analysis is behind): the whole service."""
        return self.role in ALL_STORES_ROLES

    @property
    def sees_wordlists(self) -> bool:
        return self.role in WORDLIST_ROLES

    @property
    def edits_wordlists(self) -> bool:
        """May add, disable and annotate terms (the others who see the lists read them)."""
        return self.role in WORDLIST_EDIT_ROLES

    @property
    def may_export(self) -> bool:
        return self.role in EXPORT_ROLES

    @property
    def may_unmask(self) -> bool:
        """May have personal data in the clear (unmasked exports): named users only."""
        return self.is_user and self.role in UNMASK_ROLES


def _login() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


def scope_for(role: Role, unit_ids: Iterable[int]) -> tuple[int, ...] | None:
    """The org units a role with these ``user_scopes`` rows may see (see the module table)."""
    if role in ALL_STORES_ROLES:
        return None
    ids = tuple(sorted(unit_ids))
    if role is Role.SUPERVISOR:
        return ids
    return ids or None


def principal_for_user(session: Session, user: User) -> Principal:
    """The principal of an (active) user, with the scope from ``user_scopes``."""
    if not user.active:
        raise AccessDenied(f"user {user.username} is disabled")
    ids = session.scalars(select(UserScope.org_unit_id).where(UserScope.user_id == user.id)).all()
    return Principal(
        user_id=user.id,
        username=user.username,
        role=Role(user.role),
        unit_ids=scope_for(Role(user.role), ids),
        display_name=user.display_name,
        session_epoch=user.session_epoch,
    )


def principal_by_id(session: Session, user_id: int) -> Principal | None:
    """The current principal of a user id, ``None`` when the user is gone or disabled."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        return None
    return principal_for_user(session, user)


def principal_by_name(session: Session, username: str) -> Principal:
    """The principal of an active user by name (``audit export --as USER``)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise AccessDenied(f"no active user {username!r}: see `audit users list`")
    return principal_for_user(session, user)


# --------------------------------------------------------------------------- scope


def units_below(roots: Sequence[int]) -> Select[tuple[int]]:
    """SQL: the ids of ``roots`` and of every unit below them, by parent links.

    The one expansion of a scope: parent links are right even where a materialized path was
    never filled in, and the recursion stops on a (mistaken) cycle because UNION drops rows
    already found.
    """
    child = aliased(OrgUnit)
    tree = select(OrgUnit.id).where(OrgUnit.id.in_(list(roots))).cte(recursive=True)
    tree = tree.union(select(child.id).where(child.parent_id == tree.c.id))
    return select(tree.c.id)


def within_units(column: _Column, unit_ids: Sequence[int] | None) -> ColumnElement[bool]:
    """``column`` is one of ``unit_ids`` or below one of them (``None``: anything).

    A row without an org unit (``NULL``) is inside only ``None``.
    """
    if unit_ids is None:
        return true()
    if not unit_ids:
        return false()
    return column.in_(units_below(unit_ids))


def within_scope(principal: Principal, column: _Column) -> ColumnElement[bool]:
    """SQL: the org unit in ``column`` is inside the principal's scope."""
    return within_units(column, principal.unit_ids)


def expand(session: Session, roots: Iterable[int] | None) -> tuple[int, ...] | None:
    """``roots`` and every unit below them, as explicit ids (``None`` stays the company).

    For exports and digests, whose long queries then filter with a plain ``IN`` list
    (:func:`in_scope`).
    """
    if roots is None:
        return None
    roots = list(roots)
    if not roots:
        return ()
    return tuple(sorted(session.scalars(units_below(roots))))


def in_scope(column: _Column, ids: tuple[int, ...] | None) -> ColumnElement[bool]:
    """``column`` within already expanded ``ids`` (see :func:`expand`), as SQL."""
    if ids is None:
        return true()
    if not ids:
        return false()
    return column.in_(ids)


def units_by_code(session: Session, codes: Iterable[str]) -> tuple[int, ...]:
    codes = list(codes)
    rows = session.execute(select(OrgUnit.code, OrgUnit.id).where(OrgUnit.code.in_(codes)))
    found = {code: unit for code, unit in rows}
    missing = [c for c in codes if c not in found]
    if missing:
        raise AccessDenied(f"unknown org unit code(s): {', '.join(missing)}")
    return tuple(found[c] for c in codes)


def parent_links(session: Session) -> list[tuple[int, int | None]]:
    """``(id, parent_id)`` of every org unit: the tree :func:`narrowed` walks."""
    return [(u, p) for u, p in session.execute(select(OrgUnit.id, OrgUnit.parent_id))]


def narrowed(
    principal: Principal, chosen: Sequence[int] | None, tree: Sequence[tuple[int, int | None]]
) -> tuple[int, ...] | None:
    """What ``principal`` picked, cut down to what they may see: the one such rule.

    ``tree`` is ``(id, parent_id)`` for every org unit (:func:`parent_links`). The result
    are roots: with everything below them (:func:`expand`, :func:`within_units`) they cover
    exactly the units inside both the pick and the scope.
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

PERSON_LABELS = {"staff": "员工", "customer": "客户", "user": "审核员", "sender": "用户"}
MIN_KEY_BYTES = 16
# without a configured key: one per process (pseudonyms hold within one run, never across)
_PROCESS_KEY = os.urandom(32)


def keyed_token(key: bytes, label: str, value: object) -> str:
    """``label-XXXXXXXX``: 40 bits of HMAC-SHA256 of ``value`` under ``key``, in base32.

    The one pseudonym function: the dashboard's (configured key) and each export's (a key
    of its own) differ only in the key.
    """
    digest = hmac.new(key, f"{label}\x00{value}".encode(), hashlib.sha256).digest()[:5]
    return f"{label}-{base64.b32encode(digest).decode()}"


def pseudonym_key(settings: Settings | None = None) -> bytes:
    """The configured pseudonym key (``privacy.pseudonym_key`` or ``pseudonym_key_file``)."""
    privacy = (settings or load_settings()).privacy
    file = str(privacy.pseudonym_key_file) if privacy.pseudonym_key_file else None
    return _key(privacy.pseudonym_key.get_secret_value(), file)


@cache
def _key(secret: str, file: str | None) -> bytes:
    if secret and file:
        raise ConfigError("privacy: set pseudonym_key or pseudonym_key_file, not both")
    if file:
        try:
            key = Path(file).read_bytes().strip()
        except OSError as exc:
            raise ConfigError(
                f"privacy.pseudonym_key_file: cannot read {file}: {exc.strerror}"
            ) from None
        where = f"privacy.pseudonym_key_file ({file})"
    else:
        key = secret.encode()
        where = "privacy.pseudonym_key"
    if not key:
        return _PROCESS_KEY
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{where}: the key must have at least {MIN_KEY_BYTES} bytes")
    return key


def pseudonym(kind: str, value: object, key: bytes | None = None) -> str:
    """A stable stand-in for a person (``员工-K7Q2M4XA``), the same on every page.

    ``key``: default the configured one (:func:`pseudonym_key`).
    """
    label = PERSON_LABELS.get(kind, kind)
    return keyed_token(pseudonym_key() if key is None else key, label, value)


def person_name(
    principal: Principal, kind: str, value: object, name: str, key: bytes | None = None
) -> str:
    """The name as this principal may see it."""
    if principal.sees_names:
        return name
    return pseudonym(kind, value, key)


# --------------------------------------------------------------------------- trail


def record(
    session: Session,
    actor: Principal | str,
    action: Action,
    target: object,
    /,
    *,
    at: dt.datetime | None = None,
    **detail: Any,
) -> AuditLog:
    """Append one row to the audit trail, in ``session``'s transaction.

    ``actor`` is a principal, or the bare name a sign-in attempt claims (not a principal
    until it succeeds). ``target`` names the object of ``action.target_type``.
    """
    row = AuditLog(
        actor=(actor.username if isinstance(actor, Principal) else actor)[:128],
        action=Action(action).value,
        target_type=action.target_type,
        target_id=str(target)[:128],
        detail=detail,
    )
    if at is not None:
        row.at = at
    session.add(row)
    return row
