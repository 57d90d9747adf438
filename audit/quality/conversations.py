"""Sessionizing messages into conversations.

A conversation is the run of messages of one staff member and one customer (one-to-one) or of
one room, until nobody speaks for the idle gap. The stage is incremental: it keeps a
high-water mark of the message ids it has placed (checkpoint ``stage:conversations``), and a
message that arrives late (e.g. decrypted after a key was added) joins the conversation whose
time span it falls into, or starts one of its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from audit.store.db import session_scope
from audit.store.models import (
    Checkpoint,
    Conversation,
    ConversationKind,
    Customer,
    Message,
    Room,
    SenderKind,
    Staff,
)

STAGE = "stage:conversations"


@dataclass(frozen=True)
class Thread:
    key: str
    kind: ConversationKind
    staff: str | None
    customer: str | None
    roomid: str | None


def _is_external(userid: str) -> bool:
    return userid.startswith(("wo", "wm"))


def thread_of(sender: str, tolist: list[str], roomid: str) -> Thread | None:
    """Which thread a message belongs to; None for records without a counterpart."""
    if roomid:
        return Thread(f"room:{roomid}", ConversationKind.ROOM, None, None, roomid)
    parties = [sender, *tolist]
    internal = [p for p in parties if p and not _is_external(p) and not p.startswith("wb")]
    customer = next((p for p in parties if _is_external(p)), None)
    if internal and customer:
        staff = internal[0]
        return Thread(f"single:{staff}:{customer}", ConversationKind.SINGLE, staff, customer, None)
    pair = sorted(set(internal))
    if len(pair) == 2:
        key = f"internal:{pair[0]}:{pair[1]}"
        return Thread(key, ConversationKind.INTERNAL, sender, None, None)
    return None


@dataclass
class ConversationStats:
    messages: int = 0
    created: int = 0
    extended: int = 0


class _Directory:
    """Id lookups for staff, customers and rooms, loaded once per run."""

    def __init__(self, session: Session) -> None:
        self.staff = {
            u: (i, o)
            for i, u, o in session.execute(select(Staff.id, Staff.userid, Staff.org_unit_id))
        }
        self.customers = dict(
            (u, i) for i, u in session.execute(select(Customer.id, Customer.external_userid))
        )
        self.rooms = {r: o for r, o in session.execute(select(Room.roomid, Room.org_unit_id))}


def _latest(session: Session, thread: str) -> Conversation | None:
    return session.scalars(
        select(Conversation)
        .where(Conversation.thread == thread)
        .order_by(Conversation.ended_at.desc())
        .limit(1)
    ).first()


def _covering(
    session: Session, thread: str, at: dt.datetime, gap: dt.timedelta
) -> Conversation | None:
    return session.scalars(
        select(Conversation)
        .where(
            Conversation.thread == thread,
            Conversation.started_at <= at + gap,
            Conversation.ended_at >= at - gap,
        )
        .order_by(Conversation.started_at)
        .limit(1)
    ).first()


def build_conversations(
    engine: Engine,
    idle_gap: dt.timedelta,
    batch_size: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> ConversationStats:
    stats = ConversationStats()
    while True:
        with session_scope(engine) as session:
            done = _run_batch(session, idle_gap, batch_size, stats)
        if progress and done:
            progress(done)
        if done < batch_size:
            return stats


def _run_batch(
    session: Session, gap: dt.timedelta, batch_size: int, stats: ConversationStats
) -> int:
    mark = session.get(Checkpoint, STAGE, with_for_update=True)
    if mark is None:
        mark = Checkpoint(source=STAGE, seq=0)
        session.add(mark)
    rows = session.execute(
        select(
            Message.id,
            Message.msgtime,
            Message.sender,
            Message.sender_kind,
            Message.tolist,
            Message.roomid,
        )
        .where(Message.id > mark.seq)
        .order_by(Message.id)
        .limit(batch_size)
    ).all()
    if not rows:
        return 0
    directory = _Directory(session)
    open_by_thread: dict[str, Conversation] = {}
    updates: list[dict[str, Any]] = []
    for row in sorted(rows, key=lambda r: (r.msgtime, r.id)):
        thread = thread_of(row.sender, list(row.tolist or []), row.roomid)
        if thread is None or row.sender_kind == SenderKind.SYSTEM:
            staff = directory.staff.get(row.sender)
            if staff:  # no conversation, but still attributable to its sender
                updates.append({"id": row.id, "staff_id": staff[0]})
            continue
        conv = open_by_thread.get(thread.key)
        if conv is None:
            conv = _latest(session, thread.key)
        if conv is not None and conv.ended_at + gap < row.msgtime:
            conv = None  # idle too long: a new conversation
        elif conv is not None and row.msgtime < conv.started_at - gap:
            conv = _covering(session, thread.key, row.msgtime, gap)  # a late message
        if conv is None:
            conv = _new_conversation(session, thread, row.msgtime, directory)
            stats.created += 1
        else:
            stats.extended += 1
        open_by_thread[thread.key] = conv
        conv.started_at = min(conv.started_at, row.msgtime)
        conv.ended_at = max(conv.ended_at, row.msgtime)
        conv.message_count += 1
        if row.sender_kind == SenderKind.STAFF:
            conv.staff_messages += 1
        elif row.sender_kind == SenderKind.CUSTOMER:
            conv.customer_messages += 1
        staff = directory.staff.get(row.sender) if row.sender_kind == SenderKind.STAFF else None
        customer = directory.customers.get(row.sender)
        updates.append(
            {
                "id": row.id,
                "conversation_id": conv.id,
                "staff_id": staff[0] if staff else conv.staff_id,
                "customer_id": customer or conv.customer_id,
            }
        )
        stats.messages += 1
    session.flush()
    if updates:
        session.execute(update(Message), updates)
    mark.seq = rows[-1].id
    return len(rows)


def _new_conversation(
    session: Session, thread: Thread, at: dt.datetime, directory: _Directory
) -> Conversation:
    staff = directory.staff.get(thread.staff or "")
    org_unit = staff[1] if staff else None
    if thread.roomid:
        org_unit = directory.rooms.get(thread.roomid)
    conv = Conversation(
        key=f"{thread.key}:{int(at.timestamp() * 1000)}",
        thread=thread.key,
        kind=thread.kind,
        staff_id=staff[0] if staff else None,
        customer_id=directory.customers.get(thread.customer or ""),
        roomid=thread.roomid,
        org_unit_id=org_unit,
        started_at=at,
        ended_at=at,
        message_count=0,
        staff_messages=0,
        customer_messages=0,
    )
    session.add(conv)
    session.flush()
    return conv
