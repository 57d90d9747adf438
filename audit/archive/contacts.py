"""Contacts, tags, rooms and consent from the WeCom APIs into the directory tables.

:func:`sync_contacts` asks the APIs first and opens the transaction only once everything is
fetched (no database transaction waits on the network), builds a
:class:`~audit.directory.World` and loads it with
:func:`~audit.store.directory.load_directory`, then sets what the World does not carry
(customers' ``corp_name``, staff in the permit list, deleted tags, room notices) and drops the
customer tags that were removed in WeCom for the follow relations it saw.

The org tree does not come from these APIs: staff keep the store they already have (from
``audit import-org``), or take the one given in ``stores_by_userid``; the others, and those
whose given store does not exist, are put in the ``未分配`` (unassigned) unit and listed in
:attr:`SyncStats.unassigned`. Follow relations deleted in WeCom are kept (history).

**Consent.** :func:`record_consent` asks ``check_single_agree`` / ``check_room_agree`` and sets
``Customer.consent`` to ``agree`` or ``disagree`` with ``consent_changed_at``. A customer who
disagrees with any member (or in any room) is ``disagree``: the conservative reading. A result
older than what is stored (for example a later ``disagree`` message seen in the archive) does
not overwrite it. What the pipeline does with a ``disagree`` customer is decided in
:mod:`audit.archive.consent` (``archive.consent_mode``): messages are kept, so the audit
trail is whole, flagged ``consent_withheld`` while consent was withheld, and excluded from
exports; messages from before ``consent_changed_at`` are treated as agreed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from audit.archive.imports import DirectorySnapshot
from audit.archive.wecom_api import (
    NO_FALLBACK,
    AgreeInfo,
    ContactFollow,
    CorpTagGroup,
    GroupChat,
    WeComApiError,
    WeComClient,
)
from audit.directory import (
    CustomerSpec,
    CustomerTagSpec,
    FollowSpec,
    OrgUnitSpec,
    RoomSpec,
    StaffSpec,
    TagGroupSpec,
    TagSpec,
    World,
)
from audit.store.db import session_scope
from audit.store.directory import DirectoryStats, load_directory
from audit.store.models import Customer, CustomerTag, Follow, Room, Staff, Tag, TagGroup

UNASSIGNED_CODE = "unassigned"
UNASSIGNED_NAME = "未分配"
UNASSIGNED_UNIT = OrgUnitSpec(UNASSIGNED_CODE, UNASSIGNED_NAME, "store", None)


@dataclass(frozen=True)
class ConsentStats:
    checked: int = 0  # answers received
    agree: int = 0  # customers now "agree"
    disagree: int = 0  # customers now "disagree"
    changed: int = 0  # customers whose consent value changed
    unknown_customers: tuple[str, ...] = ()  # answered for, but not in the directory


@dataclass(frozen=True)
class SyncStats:
    staff: int
    customers: int
    follows: int
    tag_groups: int
    tags: int
    customer_tags: int
    rooms: int
    new: DirectoryStats  # rows created by this run (the rest were updated in place)
    customer_tags_removed: int = 0
    unassigned: tuple[str, ...] = ()  # staff put in 未分配
    unknown_stores: tuple[str, ...] = ()  # store codes given in stores_by_userid, not found
    unknown_tag_ids: tuple[str, ...] = ()  # on follows but not in the corp tag list: skipped
    failed_rooms: tuple[str, ...] = ()  # "roomid: error" for rooms neither endpoint returned
    consent: ConsentStats | None = None
    warnings: tuple[str, ...] = field(default=())


def _session(target: Session | Engine) -> AbstractContextManager[Session]:
    if isinstance(target, Session):
        return nullcontext(target)  # the caller's transaction
    return session_scope(target)


def _ts(seconds: int) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds else None


def fetch_room(client: WeComClient, archive_client: WeComClient, roomid: str) -> GroupChat:
    """An internal group from msgaudit, else a customer group from externalcontact."""
    try:
        return archive_client.groupchat_get(roomid, kind="internal")
    except WeComApiError as exc:
        if exc.errcode in NO_FALLBACK:
            raise
        return client.groupchat_get(roomid, kind="customer")


def _tag_groups(groups: Sequence[CorpTagGroup]) -> tuple[TagGroupSpec, ...]:
    return tuple(
        TagGroupSpec(
            g.group_id, g.name, g.order, tuple(TagSpec(t.id, t.name, t.order) for t in g.tags)
        )
        for g in groups
    )


def build_world(
    corpid: str,
    userids: Sequence[str],
    rows: Sequence[ContactFollow],
    tag_groups: Sequence[CorpTagGroup],
    rooms: Sequence[GroupChat],
    known: DirectorySnapshot,
    stores_by_userid: Mapping[str, str] | None = None,
) -> tuple[World, dict[str, tuple[str, ...]]]:
    """The World for what the APIs returned; the dict holds the lists for :class:`SyncStats`."""
    stores_by_userid = stores_by_userid or {}
    staff: dict[str, StaffSpec] = {}
    unassigned: list[str] = []
    unknown_stores: set[str] = set()
    for userid in dict.fromkeys([*userids, *(r.follow.userid for r in rows)]):
        have = known.staff.get(userid)
        store = stores_by_userid.get(userid) or (have.store_code if have else "")
        if store and store not in known.store_codes and store != UNASSIGNED_CODE:
            unknown_stores.add(store)
            store = ""
        if not store:
            store = UNASSIGNED_CODE
            unassigned.append(userid)
        staff[userid] = StaffSpec(
            userid, have.name if have else userid, store, have.position if have else ""
        )

    customers: dict[str, CustomerSpec] = {}
    follows: dict[tuple[str, str], FollowSpec] = {}
    links: dict[tuple[str, str, str], None] = {}
    known_tags = {t.id for g in tag_groups for t in g.tags} | {
        t.id for g in known.tag_groups for t in g.tags
    }
    unknown_tags: set[str] = set()
    for row in rows:
        c, f = row.contact, row.follow
        old = known.customers.get(c.external_userid)
        customers[c.external_userid] = CustomerSpec(
            c.external_userid, c.name, c.type, c.gender, old.traditional if old else False
        )
        follows[(f.userid, c.external_userid)] = FollowSpec(
            f.userid, c.external_userid, f.remark, f.createtime, f.add_way, f.state
        )
        for tag in f.tags:
            if tag.tag_id in known_tags:
                links[(c.external_userid, tag.tag_id, f.userid)] = None
            else:
                unknown_tags.add(tag.tag_id)

    def store_of(userid: str) -> str:
        have = staff.get(userid) or known.staff.get(userid)
        return have.store_code if have else ""

    room_specs = tuple(
        RoomSpec(
            roomid=r.roomid,
            name=r.name,
            creator=r.creator,
            create_time=r.create_time,
            store_code=store_of(r.creator),
            members=tuple(m.userid for m in r.members),
        )
        for r in rooms
    )
    world = World(
        corpid=corpid,
        org_units=(UNASSIGNED_UNIT,) if unassigned else (),
        staff=tuple(staff.values()),
        customers=tuple(customers.values()),
        follows=tuple(follows.values()),
        tag_groups=_tag_groups(tag_groups),
        customer_tags=tuple(CustomerTagSpec(e, t, u) for e, t, u in links),
        rooms=room_specs,
    )
    extra = {
        "unassigned": tuple(unassigned),
        "unknown_stores": tuple(sorted(unknown_stores)),
        "unknown_tag_ids": tuple(sorted(unknown_tags)),
    }
    return world, extra


def sync_contacts(
    client: WeComClient,
    target: Session | Engine,
    userids: Iterable[str] | None = None,
    stores_by_userid: Mapping[str, str] | None = None,
    *,
    roomids: Iterable[str] = (),
    archive_client: WeComClient | None = None,
    consent: bool = False,
) -> SyncStats:
    """Staff, customers, follows, tags and rooms from WeCom into the directory tables.

    ``client`` holds the customer-contact (客户联系) secret; ``archive_client`` the archive
    (会话内容存档) secret for the msgaudit APIs (default: ``client``). ``userids`` None means
    every member in the archive permit list. ``roomids``: groups to describe (e.g. the distinct
    ``roomid`` of stored messages). ``consent``: also ask check_single_agree for every follow
    relation seen and check_room_agree for every room (see :func:`record_consent`).
    ``target``: an Engine (one transaction, committed) or a Session (the caller commits).
    """
    archive_client = archive_client or client
    permit: set[str] | None = None
    if userids is None:
        ids = archive_client.get_permit_user_list()
        permit = set(ids)
    else:
        ids = list(dict.fromkeys(userids))
    groups = client.get_corp_tag_list()
    rows = client.batch_get_by_user(ids, groups) if ids else []
    rooms: list[GroupChat] = []
    failed: list[str] = []
    for roomid in dict.fromkeys(roomids):
        try:
            rooms.append(fetch_room(client, archive_client, roomid))
        except WeComApiError as exc:
            if exc.errcode in NO_FALLBACK:
                raise
            failed.append(f"{roomid}: {exc}")
    agree: list[AgreeInfo] = []
    if consent:
        agree = archive_client.check_single_agree(
            (r.follow.userid, r.contact.external_userid) for r in rows
        )
        for room in rooms:
            agree.extend(archive_client.check_room_agree(room.roomid))

    with _session(target) as session:
        known = DirectorySnapshot.from_session(session)
        world, extra = build_world(client.corpid, ids, rows, groups, rooms, known, stores_by_userid)
        new = load_directory(session, world)
        removed = _after_load(session, world, rows, groups, rooms, permit)
        consent_stats = apply_consent(session, agree) if consent else None

    warnings = []
    if extra["unknown_stores"]:
        warnings.append(
            f"unknown store codes {', '.join(extra['unknown_stores'])}: "
            f"their staff were put in {UNASSIGNED_NAME}; import the org file first"
        )
    if extra["unknown_tag_ids"]:
        warnings.append(f"{len(extra['unknown_tag_ids'])} tag ids not in the corp tag list skipped")
    return SyncStats(
        staff=len(world.staff),
        customers=len(world.customers),
        follows=len(world.follows),
        tag_groups=len(world.tag_groups),
        tags=sum(len(g.tags) for g in world.tag_groups),
        customer_tags=len(world.customer_tags),
        rooms=len(world.rooms),
        new=new,
        customer_tags_removed=removed,
        unassigned=extra["unassigned"],
        unknown_stores=extra["unknown_stores"],
        unknown_tag_ids=extra["unknown_tag_ids"],
        failed_rooms=tuple(failed),
        consent=consent_stats,
        warnings=tuple(warnings),
    )


def _after_load(
    session: Session,
    world: World,
    rows: Sequence[ContactFollow],
    groups: Sequence[CorpTagGroup],
    rooms: Sequence[GroupChat],
    permit: set[str] | None,
) -> int:
    """What the World cannot carry; returns the number of customer tags removed."""
    customers = {c.external_userid: c for c in session.scalars(select(Customer))}
    staff = {s.userid: s for s in session.scalars(select(Staff))}
    for row in rows:
        customers[row.contact.external_userid].corp_name = row.contact.corp_name
    if permit is not None:
        for spec in world.staff:
            staff[spec.userid].archived = spec.userid in permit
    group_rows = {g.id: g for g in session.scalars(select(TagGroup))}
    tag_rows = {t.id: t for t in session.scalars(select(Tag))}
    for g in groups:
        group_rows[g.group_id].deleted = g.deleted
        for t in g.tags:
            tag_rows[t.id].deleted = t.deleted
    room_rows = {r.roomid: r for r in session.scalars(select(Room))}
    for room in rooms:
        room_rows[room.roomid].notice = room.notice

    # tags removed in WeCom: for each follow seen, drop the customer tags it no longer has
    keep = {(ct.external_userid, ct.tag_id, ct.userid) for ct in world.customer_tags}
    removed = 0
    for f in world.follows:
        customer, member = customers[f.external_userid], staff[f.userid]
        stale = [
            ct.id
            for ct in session.scalars(
                select(CustomerTag).where(
                    CustomerTag.customer_id == customer.id, CustomerTag.staff_id == member.id
                )
            )
            if (f.external_userid, ct.tag_id, f.userid) not in keep
        ]
        if stale:
            session.execute(delete(CustomerTag).where(CustomerTag.id.in_(stale)))
            removed += len(stale)
    session.flush()
    return removed


# --------------------------------------------------------------------------- consent


def apply_consent(session: Session, infos: Iterable[AgreeInfo]) -> ConsentStats:
    """Set ``Customer.consent`` from check_*_agree answers (rules in the module docstring)."""
    by_customer: dict[str, list[AgreeInfo]] = {}
    checked = 0
    for info in infos:
        checked += 1
        if info.status != "unknown" and info.external_userid:
            by_customer.setdefault(info.external_userid, []).append(info)
    rows = (
        {
            c.external_userid: c
            for c in session.scalars(
                select(Customer).where(Customer.external_userid.in_(list(by_customer)))
            )
        }
        if by_customer
        else {}
    )
    unknown: list[str] = []
    changed = agree = disagree = 0
    for ext, answers in by_customer.items():
        row = rows.get(ext)
        if row is None:
            unknown.append(ext)
            continue
        status = "disagree" if any(a.status == "disagree" for a in answers) else "agree"
        when = _ts(max(a.changed_at for a in answers if a.status == status))
        stored = row.consent_changed_at
        # an answer older than what is stored (e.g. a later disagree message) does not win
        if stored is None or (when is not None and when >= stored):
            if row.consent != status:
                changed += 1
            row.consent, row.consent_changed_at = status, when
        if row.consent == "disagree":
            disagree += 1
        else:
            agree += 1
    session.flush()
    return ConsentStats(checked, agree, disagree, changed, tuple(sorted(unknown)))


def record_consent(
    session: Session,
    client: WeComClient,
    pairs: Iterable[tuple[str, str]] = (),
    roomids: Iterable[str] = (),
) -> ConsentStats:
    """Ask WeCom about ``pairs`` of (member userid, external_userid) and ``roomids``, record it.

    ``client`` must hold the archive (会话内容存档) secret. Use :func:`follow_pairs` for every
    follow relation in the directory.
    """
    infos = client.check_single_agree(pairs)
    for roomid in roomids:
        infos.extend(client.check_room_agree(roomid))
    return apply_consent(session, infos)


def follow_pairs(session: Session) -> list[tuple[str, str]]:
    """Every (member userid, external_userid) follow relation in the directory."""
    stmt = (
        select(Staff.userid, Customer.external_userid)
        .join(Follow, Follow.staff_id == Staff.id)
        .join(Customer, Follow.customer_id == Customer.id)
        .order_by(Staff.userid, Customer.external_userid)
    )
    return [(u, e) for u, e in session.execute(stmt)]
