"""Loading the company directory (org tree, staff, customers, tags, rooms) into the store.

The input is a :class:`~audit.directory.World`, the neutral shape that the
simulator writes and that the WeCom contact sync and CSV imports produce. Loading is an
upsert keyed on the WeCom ids, so running it again changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.directory import World
from audit.store.models import (
    Customer,
    CustomerTag,
    Follow,
    OrgUnit,
    Room,
    Staff,
    Tag,
    TagGroup,
)

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


@dataclass
class DirectoryStats:
    org_units: int = 0
    staff: int = 0
    customers: int = 0
    follows: int = 0
    tags: int = 0
    customer_tags: int = 0
    rooms: int = 0


def _ts(seconds: int) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds else None


def _row(session: Session, rows: dict[K, R], key: K, make: Callable[[], R]) -> tuple[R, bool]:
    """The row under ``key``, made and added when there is none yet (then ``True``): the
    upsert of every directory table; the caller sets the columns either way."""
    row = rows.get(key)
    if row is not None:
        return row, False
    row = rows[key] = make()
    session.add(row)
    return row, True


class DirectoryError(ValueError):
    """The directory refers to something it does not define."""


def load_directory(session: Session, world: World) -> DirectoryStats:
    stats = DirectoryStats()
    units = {u.code: u for u in session.scalars(select(OrgUnit))}
    pending = list(world.org_units)
    while pending:  # parents before children, whatever the input order
        progressed = False
        for spec in list(pending):
            if spec.parent_code and spec.parent_code not in units:
                continue
            unit, new = _row(session, units, spec.code, partial(OrgUnit, code=spec.code))
            stats.org_units += new
            unit.name, unit.kind = spec.name, spec.kind
            parent = units[spec.parent_code] if spec.parent_code else None
            unit.parent = parent
            session.flush()
            unit.path = (parent.path if parent else "/") + f"{unit.id}/"
            pending.remove(spec)
            progressed = True
        if not progressed:
            missing = sorted({s.parent_code or "" for s in pending})
            raise DirectoryError(f"org units refer to unknown parents: {', '.join(missing)}")

    staff = {s.userid: s for s in session.scalars(select(Staff))}
    for sspec in world.staff:
        if sspec.store_code not in units:
            raise DirectoryError(f"staff {sspec.userid}: unknown store {sspec.store_code}")
        row, new = _row(session, staff, sspec.userid, partial(Staff, userid=sspec.userid))
        stats.staff += new
        row.name, row.position = sspec.name, sspec.position
        row.org_unit_id = units[sspec.store_code].id

    customers = {c.external_userid: c for c in session.scalars(select(Customer))}
    for cspec in world.customers:
        make = partial(Customer, external_userid=cspec.external_userid)
        crow, new = _row(session, customers, cspec.external_userid, make)
        stats.customers += new
        crow.name, crow.type, crow.gender = cspec.name, cspec.type, cspec.gender
    session.flush()

    follows = {(f.staff_id, f.customer_id): f for f in session.scalars(select(Follow))}
    for fspec in world.follows:
        key = (staff[fspec.userid].id, customers[fspec.external_userid].id)
        frow, new = _row(
            session, follows, key, partial(Follow, staff_id=key[0], customer_id=key[1])
        )
        stats.follows += new
        frow.remark, frow.add_way, frow.state = fspec.remark, fspec.add_way, fspec.state
        frow.added_at = _ts(fspec.createtime)

    groups = {g.id: g for g in session.scalars(select(TagGroup))}
    tags = {t.id: t for t in session.scalars(select(Tag))}
    for gspec in world.tag_groups:
        grow, _ = _row(session, groups, gspec.group_id, partial(TagGroup, id=gspec.group_id))
        grow.name, grow.order = gspec.name, gspec.order
        for tspec in gspec.tags:
            trow, new = _row(session, tags, tspec.id, partial(Tag, id=tspec.id))
            stats.tags += new
            trow.name, trow.order, trow.group_id = tspec.name, tspec.order, gspec.group_id
    session.flush()

    have = {(ct.customer_id, ct.tag_id, ct.staff_id) for ct in session.scalars(select(CustomerTag))}
    for ctspec in world.customer_tags:
        if ctspec.tag_id not in tags:
            raise DirectoryError(f"customer {ctspec.external_userid}: unknown tag {ctspec.tag_id}")
        staff_row = staff.get(ctspec.userid)
        key3 = (
            customers[ctspec.external_userid].id,
            ctspec.tag_id,
            staff_row.id if staff_row else None,
        )
        if key3 not in have:
            session.add(CustomerTag(customer_id=key3[0], tag_id=key3[1], staff_id=key3[2]))
            have.add(key3)
            stats.customer_tags += 1

    rooms = {r.roomid: r for r in session.scalars(select(Room))}
    for rspec in world.rooms:
        rrow, new = _row(session, rooms, rspec.roomid, partial(Room, roomid=rspec.roomid))
        stats.rooms += new
        rrow.name, rrow.creator = rspec.name, rspec.creator
        rrow.created_at = _ts(rspec.create_time)
        rrow.org_unit_id = units[rspec.store_code].id if rspec.store_code in units else None
        rrow.members = list(rspec.members)
    session.flush()
    return stats
