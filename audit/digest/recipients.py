"""Who gets a digest, where, and for which part of the company.

Three sources, merged (a key seen twice keeps its first entry):

1. **Users** (``users`` table): every active supervisor, compliance officer and admin with an
   e-mail address gets the e-mail digest of their scope (compliance and admin: the company).
2. **Routes** (config ``[[digest.routes]]``): any channel and address with org unit codes, e.g.
   one WeCom group robot per region.
3. **Plain config**: ``digest.recipients`` (company-wide e-mails) and ``digest.webhook_url``
   (one company-wide group robot).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from audit.store.access import scope_for, units_by_code
from audit.store.models import Role, User

ChannelName = Literal["email", "webhook", "wecom_app"]
DIGEST_ROLES = (Role.ADMIN, Role.COMPLIANCE, Role.SUPERVISOR)


class DigestRoute(BaseModel):
    """One configured destination (proposed config: ``digest.routes``, a list of these)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str  # stable: it identifies the route in digests_sent
    channel: ChannelName
    to: SecretStr  # e-mail address, robot webhook URL (holds its key), or WeCom userid
    org_units: list[str] = []  # codes; empty: the whole company
    show_staff_names: bool = False  # full staff names (else 张*): for supervisors' own inboxes


@dataclass(frozen=True)
class Recipient:
    channel: ChannelName
    key: str  # recorded in digests_sent.recipient: never a secret (no webhook URL)
    address: str = field(repr=False)  # where to deliver
    name: str = ""
    org_unit_ids: tuple[int, ...] | None = None  # scope roots; None: the whole company
    show_staff_names: bool = False


def from_users(session: Session) -> list[Recipient]:
    users = session.scalars(
        select(User)
        .where(User.active.is_(True), User.email != "", User.role.in_(DIGEST_ROLES))
        .options(selectinload(User.scopes))
        .order_by(User.id)
    )
    out = []
    for user in users:
        scope = scope_for(Role(user.role), (s.org_unit_id for s in user.scopes))
        if scope == ():
            continue  # a supervisor without stores has nothing to read
        out.append(
            Recipient(
                channel="email",
                key=user.email,
                address=user.email,
                name=user.display_name or user.username,
                org_unit_ids=scope,
                show_staff_names=True,
            )
        )
    return out


def from_routes(session: Session, routes: Iterable[DigestRoute]) -> list[Recipient]:
    out = []
    for route in routes:
        address = route.to.get_secret_value()
        out.append(
            Recipient(
                channel=route.channel,
                key=address if route.channel == "email" else f"{route.channel}:{route.name}",
                address=address,
                name=route.name,
                org_unit_ids=units_by_code(session, route.org_units) if route.org_units else None,
                show_staff_names=route.show_staff_names,
            )
        )
    return out


def from_config(emails: Sequence[str], webhook_url: str) -> list[Recipient]:
    out = [Recipient("email", e, e, name=e) for e in emails]
    if webhook_url:
        out.append(Recipient("webhook", "webhook:default", webhook_url, name="default"))
    return out


def digest_recipients(
    session: Session,
    emails: Sequence[str] = (),
    webhook_url: str = "",
    routes: Iterable[DigestRoute] = (),
    *,
    users: bool = True,
) -> list[Recipient]:
    """Every recipient, deduplicated by (channel, key)."""
    found = [
        *(from_users(session) if users else []),
        *from_routes(session, routes),
        *from_config(emails, webhook_url),
    ]
    return unique(found)


def unique(found: Iterable[Recipient]) -> list[Recipient]:
    """``found`` without repeats of a (channel, address), first one kept, order kept."""
    seen: set[tuple[str, str]] = set()
    out = []
    for r in found:
        if (r.channel, r.key) not in seen:
            seen.add((r.channel, r.key))
            out.append(r)
    return out
