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

from audit.store.db import session_scope, stage_mark
from audit.store.models import (
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


def _candidates(session: Session, since: dt.datetime) -> dict[str, list[Conversation]]:
    """Every conversation a batch starting at ``since`` (minus the gap) could join, by thread.

    A message at time t can only join a conversation that ended at or after t - gap, and no
    message of the batch is older than its oldest, so one query covers the whole batch.
    """
    out: dict[str, list[Conversation]] = {}
    for conv in session.scalars(
        select(Conversation).where(Conversation.ended_at >= since).order_by(Conversation.started_at)
    ):
        out.setdefault(conv.thread, []).append(conv)
    return out


def _joinable(convs: list[Conversation], at: dt.datetime, gap: dt.timedelta) -> Conversation | None:
    for conv in convs:
        if conv.started_at - gap <= at <= conv.ended_at + gap:
            return conv
    return None


def build_conversations(
    engine: Engine,
    idle_gap: dt.timedelta,
    batch_size: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> ConversationStats:
    stats = ConversationStats()
    directory: _Directory | None = None  # read once per run, on the first batch with work
    while True:
        with session_scope(engine) as session:
            done, directory = _run_batch(session, idle_gap, batch_size, stats, directory)
        if progress and done:
            progress(done)
        if done < batch_size:
            return stats


def _run_batch(
    session: Session,
    gap: dt.timedelta,
    batch_size: int,
    stats: ConversationStats,
    directory: _Directory | None,
) -> tuple[int, _Directory | None]:
    mark = stage_mark(session, STAGE)
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
        return 0, directory
    directory = directory or _Directory(session)
    rows = sorted(rows, key=lambda r: (r.msgtime, r.id))
    by_thread = _candidates(session, rows[0].msgtime - gap)
    placed: list[tuple[int, Conversation, int | None, int | None]] = []
    updates: list[dict[str, Any]] = []
    for row in rows:
        thread = thread_of(row.sender, list(row.tolist or []), row.roomid)
        if thread is None or row.sender_kind == SenderKind.SYSTEM:
            staff = directory.staff.get(row.sender)
            if staff:  # no conversation, but still attributable to its sender
                updates.append({"id": row.id, "staff_id": staff[0]})
            continue
        convs = by_thread.setdefault(thread.key, [])
        conv = _joinable(convs, row.msgtime, gap)
        if conv is None:
            conv = _new_conversation(thread, row.msgtime, directory)
            session.add(conv)
            convs.append(conv)
            stats.created += 1
        else:
            stats.extended += 1
        conv.started_at = min(conv.started_at, row.msgtime)
        conv.ended_at = max(conv.ended_at, row.msgtime)
        conv.message_count += 1
        if row.sender_kind == SenderKind.STAFF:
            conv.staff_messages += 1
        elif row.sender_kind == SenderKind.CUSTOMER:
            conv.customer_messages += 1
        staff = directory.staff.get(row.sender) if row.sender_kind == SenderKind.STAFF else None
        placed.append(
            (row.id, conv, staff[0] if staff else None, directory.customers.get(row.sender))
        )
        stats.messages += 1
    session.flush()  # one round of INSERTs gives every new conversation its id
    for msg_id, conv, staff_id, customer_id in placed:
        updates.append(
            {
                "id": msg_id,
                "conversation_id": conv.id,
                "staff_id": staff_id or conv.staff_id,
                "customer_id": customer_id or conv.customer_id,
            }
        )
    if updates:
        session.execute(update(Message), updates)
    mark.seq = max(r.id for r in rows)
    return len(rows), directory


def _new_conversation(thread: Thread, at: dt.datetime, directory: _Directory) -> Conversation:
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
    return conv
