"""Sessionizing messages into conversations.

A conversation is a run of messages of one staff member and one customer (one-to-one), of one
room, or of two staff members, in which no two consecutive messages are more than the idle gap
apart. That is a function of the set of messages, not of the order they arrive in: the stage
places the messages it has not placed yet (high-water mark ``stage:conversations`` over message
ids), and a message that arrives late (e.g. decrypted after a key was added) extends the
conversation it falls into, moves its start (and key) when it comes first, or merges the
conversations it bridges. Adding messages can only join runs, never split them. The merged
conversations hand everything over to the one that started first
(:func:`audit.quality.merge.carry_over`), and lose their scores, so the scoring and alert
stages recompute them.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, String, column, select, true, update, values
from sqlalchemy.orm import Session, aliased

from audit.quality.merge import carry_over, follow_messages
from audit.store.db import session_scope, stage_mark, update_by_id
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
# set once the stored conversations follow the idle-gap rule exactly (see _canonicalize)
CANONICAL = "stage:conversations:canonical"
_CHUNK = 500  # threads per candidate query

_T = TypeVar("_T")


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


def conversation_key(thread: str, started_at: dt.datetime) -> str:
    """The thread plus the first message's time in ms: the same for the same messages."""
    return f"{thread}:{int(started_at.timestamp() * 1000)}"


def runs(spans: Sequence[tuple[dt.datetime, dt.datetime, _T]], gap: dt.timedelta) -> list[list[_T]]:
    """Group time spans (start, end, item) into runs whose consecutive spans are at most
    ``gap`` apart: the idle-gap rule, for messages (points) and conversations (spans) alike."""
    out: list[list[_T]] = []
    end: dt.datetime | None = None
    for start, stop, item in sorted(spans, key=lambda s: (s[0], s[1])):
        if end is None or start - end > gap:
            out.append([item])
            end = stop
        else:
            out[-1].append(item)
            end = max(end, stop)
    return out


@dataclass
class ConversationStats:
    messages: int = 0
    created: int = 0
    extended: int = 0
    merged: int = 0  # conversations merged into another by a message that bridged them


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

    def staff_id(self, sender: str, kind: SenderKind) -> int | None:
        staff = self.staff.get(sender) if kind == SenderKind.STAFF else None
        return staff[0] if staff else None


def partition_of(key: str, parts: int) -> int:
    """The partition (0 .. parts-1) of a thread key: a stable hash, the same on every host."""
    return zlib.crc32(key.encode("utf-8")) % parts


def partition_mark(part: int, parts: int) -> str:
    """The high-water mark of one partition's task (:mod:`audit.cluster`)."""
    return f"{STAGE}:{part}/{parts}"


def ensure_canonical(engine: Engine, idle_gap: dt.timedelta, stats: ConversationStats) -> None:
    with session_scope(engine) as session:
        if session.get(Checkpoint, CANONICAL) is None:
            _canonicalize(session, idle_gap, stats)


def build_conversations(
    engine: Engine,
    idle_gap: dt.timedelta,
    batch_size: int = 20_000,
    progress: Callable[[int], None] | None = None,
    partition: tuple[int, int] | None = None,
    upto: int | None = None,
) -> ConversationStats:
    """Place the messages not placed yet.

    With ``partition`` (part, parts) only the threads whose key hashes to ``part`` are placed,
    under that partition's own mark, up to message id ``upto``: the partitions of one range
    can run at the same time on different workers, each thread in one of them only.
    """
    stats = ConversationStats()
    directory: _Directory | None = None  # read once per run, on the first batch with work
    mark_name = STAGE if partition is None else partition_mark(*partition)
    if partition is None:
        ensure_canonical(engine, idle_gap, stats)
    while True:
        with session_scope(engine) as session:
            done, directory = _run_batch(
                session, idle_gap, batch_size, stats, directory, mark_name, partition, upto
            )
        if progress and done:
            progress(done)
        if done < batch_size:
            return stats


def _candidates(
    session: Session, threads: Sequence[str], lo: dt.datetime, hi: dt.datetime
) -> dict[str, list[Conversation]]:
    """The conversations of ``threads`` that a message between ``lo`` and ``hi`` can touch
    (those that end at or after ``lo`` and start at or before ``hi``).

    A thread's conversations are disjoint (the idle-gap rule, :func:`ensure_canonical`), so of
    those that start before ``lo`` only the latest can reach into the window: it is looked up
    by itself, and the others are never read. Asking the index for everything that starts
    before ``hi`` would read each thread's whole history, once per batch."""
    out: dict[str, list[Conversation]] = {}
    for i in range(0, len(threads), _CHUNK):
        chunk = threads[i : i + _CHUNK]
        names = values(column("thread", String), name="t").data([(t,) for t in chunk]).cte("t")
        earlier = aliased(Conversation)
        latest = (
            select(earlier.id)
            .where(earlier.thread == names.c.thread, earlier.started_at < lo)
            .order_by(earlier.started_at.desc())
            .limit(1)
            .correlate(names)
            .scalar_subquery()
        )
        # looked up first, then read by id: in one statement, SQLite would build a Bloom
        # filter or PostgreSQL a hash of every conversation to join them
        ids = [i for i in session.scalars(select(latest).select_from(names)) if i is not None]
        found: list[Conversation] = []
        if ids:
            found += session.scalars(
                select(Conversation).where(Conversation.id.in_(ids), Conversation.ended_at >= lo)
            ).all()
        found += session.scalars(
            select(Conversation).where(
                Conversation.thread.in_(chunk),
                Conversation.started_at >= lo,
                Conversation.started_at <= hi,
            )
        ).all()
        for conv in found:  # in order of their start within each thread
            out.setdefault(conv.thread, []).append(conv)
    return out


def _run_batch(
    session: Session,
    gap: dt.timedelta,
    batch_size: int,
    stats: ConversationStats,
    directory: _Directory | None,
    mark_name: str = STAGE,
    partition: tuple[int, int] | None = None,
    upto: int | None = None,
) -> tuple[int, _Directory | None]:
    mark = stage_mark(session, mark_name)
    if mark_name != STAGE:
        # never behind the stage's own mark: a partition's task delivered again after its
        # run finished (and its mark was dropped) finds its messages placed
        done = session.get(Checkpoint, STAGE)
        if done is not None and done.seq > mark.seq:
            mark.seq = done.seq
    rows = session.execute(
        select(
            Message.id,
            Message.msgid,
            Message.msgtime,
            Message.sender,
            Message.sender_kind,
            Message.tolist,
            Message.roomid,
            Message.scanned_run_id,
        )
        # a placed message is never placed again: the mark moved back over placed messages
        # (a released set-aside item, audit.isolation.release) finds only the unplaced
        .where(
            Message.id > mark.seq,
            Message.conversation_id.is_(None),
            Message.id <= upto if upto is not None else true(),
        )
        .order_by(Message.id)
        .limit(batch_size)
    ).all()
    if not rows:
        return 0, directory
    directory = directory or _Directory(session)
    updates: list[dict[str, Any]] = []
    threads: dict[str, tuple[Thread, list[Any]]] = {}
    for row in rows:
        thread = thread_of(row.sender, list(row.tolist or []), row.roomid)
        if partition is not None:
            key = thread.key if thread is not None else f"sender:{row.sender}"
            if partition_of(key, partition[1]) != partition[0]:
                continue  # another partition's
        if thread is None or row.sender_kind == SenderKind.SYSTEM:
            staff_id = directory.staff_id(row.sender, SenderKind.STAFF)
            if staff_id:  # no conversation, but still attributable to its sender
                updates.append({"id": row.id, "staff_id": staff_id})
            continue
        threads.setdefault(thread.key, (thread, []))[1].append(row)
    placed: list[tuple[Any, Conversation]] = []
    changed: list[Conversation] = []
    if threads:
        times = [r.msgtime for _, msgs in threads.values() for r in msgs]
        existing = _candidates(session, sorted(threads), min(times) - gap, max(times) + gap)
        for key, (thread, msgs) in threads.items():
            spans: list[tuple[dt.datetime, dt.datetime, Conversation | Any]] = [
                (c.started_at, c.ended_at, c) for c in existing.get(key, [])
            ]
            spans += [(r.msgtime, r.msgtime, r) for r in msgs]
            for group in runs(spans, gap):
                convs = [x for x in group if isinstance(x, Conversation)]
                points = [x for x in group if not isinstance(x, Conversation)]
                if not points and len(convs) <= 1:
                    continue  # nothing new reached it
                conv = _settle(session, thread, convs, points, directory, stats)
                placed += [(r, conv) for r in points]
                changed.append(conv)
    session.flush()  # one round of INSERTs gives every new conversation its id
    for row, conv in placed:
        updates.append(
            {
                "id": row.id,
                "conversation_id": conv.id,
                "staff_id": directory.staff_id(row.sender, row.sender_kind) or conv.staff_id,
                "customer_id": directory.customers.get(row.sender) or conv.customer_id,
            }
        )
    # the two shapes of update, each as few statements as the driver takes
    update_by_id(
        session,
        "messages",
        ("staff_id",),
        [(u["id"], u["staff_id"]) for u in updates if "conversation_id" not in u],
    )
    update_by_id(
        session,
        "messages",
        ("conversation_id", "staff_id", "customer_id"),
        [
            (u["id"], u["conversation_id"], u["staff_id"], u["customer_id"])
            for u in updates
            if "conversation_id" in u
        ],
    )
    # messages scanned before they were placed (a stage run out of order): findings follow
    follow_messages(session, [(r.id, c.id) for r, c in placed if r.scanned_run_id is not None])
    internal = [c for c in changed if c.kind == ConversationKind.INTERNAL]
    _settle_internal_starters(session, internal, directory)
    mark.seq = max(r.id for r in rows)
    return len(rows), directory


def _canonicalize(session: Session, gap: dt.timedelta, stats: ConversationStats) -> None:
    """Once per store: bring conversations written by earlier versions, which joined a late
    message to one conversation without merging the ones it bridged and kept the key of the
    first message to arrive, to the idle-gap rule (merges, keys, internal starters)."""
    directory = _Directory(session)
    threads = sorted(session.scalars(select(Conversation.thread).distinct()))
    for i in range(0, len(threads), _CHUNK):
        convs: dict[str, list[Conversation]] = {}
        for conv in session.scalars(
            select(Conversation).where(Conversation.thread.in_(threads[i : i + _CHUNK]))
        ):
            convs.setdefault(conv.thread, []).append(conv)
        changed: list[Conversation] = []
        for key, group_convs in convs.items():
            first = group_convs[0]
            thread = Thread(key, first.kind, None, None, first.roomid)
            spans = [(c.started_at, c.ended_at, c) for c in group_convs]
            for group in runs(spans, gap):
                if len(group) > 1 or group[0].key != conversation_key(key, group[0].started_at):
                    changed.append(_settle(session, thread, group, [], directory, stats))
        session.flush()
        internal = [c for c in changed if c.kind == ConversationKind.INTERNAL]
        _settle_internal_starters(session, internal, directory)
    session.add(Checkpoint(source=CANONICAL, seq=1))


def _settle(
    session: Session,
    thread: Thread,
    convs: list[Conversation],
    points: list[Any],
    directory: _Directory,
    stats: ConversationStats,
) -> Conversation:
    """One run of the thread: the conversations it covers become one (the earliest started
    survives), with the new messages ``points`` counted in."""
    convs.sort(key=lambda c: (c.started_at, c.id))
    starts = [c.started_at for c in convs] + [r.msgtime for r in points]
    ends = [c.ended_at for c in convs] + [r.msgtime for r in points]
    counts = [
        sum(c.message_count for c in convs) + len(points),
        sum(c.staff_messages for c in convs)
        + sum(r.sender_kind == SenderKind.STAFF for r in points),
        sum(c.customer_messages for c in convs)
        + sum(r.sender_kind == SenderKind.CUSTOMER for r in points),
    ]
    if convs:
        conv, victims = convs[0], convs[1:]
        if victims:
            # before the survivor changes: its new key must not meet theirs in a flush
            carry_over(session, conv.id, {v.id: v.key for v in victims})
            for victim in victims:
                session.expunge(victim)
            stats.merged += len(victims)
        stats.extended += len(points)
    else:
        conv = _new_conversation(thread, min(starts), directory)
        session.add(conv)
        stats.created += 1
    conv.started_at, conv.ended_at = min(starts), max(ends)
    conv.key = conversation_key(thread.key, conv.started_at)
    conv.message_count, conv.staff_messages, conv.customer_messages = counts
    stats.messages += len(points)
    return conv


def _settle_internal_starters(
    session: Session, convs: list[Conversation], directory: _Directory
) -> None:
    """A conversation between two staff members belongs to the one who wrote first (by time,
    then msgid), which a late message can change; messages without a staff sender of their
    own take it from the conversation."""
    for conv in convs:
        first = session.scalar(
            select(Message.sender)
            .where(Message.conversation_id == conv.id)
            .order_by(Message.msgtime, Message.msgid)
            .limit(1)
        )
        staff = directory.staff.get(first or "")
        staff_id, org_unit = (staff[0], staff[1]) if staff else (None, None)
        if (conv.staff_id, conv.org_unit_id) == (staff_id, org_unit):
            continue
        conv.staff_id, conv.org_unit_id = staff_id, org_unit
        fixes = [
            {"id": i, "staff_id": staff_id}
            for i, sender, kind, current in session.execute(
                select(Message.id, Message.sender, Message.sender_kind, Message.staff_id).where(
                    Message.conversation_id == conv.id
                )
            )
            if directory.staff_id(sender, kind) is None and current != staff_id
        ]
        if fixes:
            session.execute(update(Message), fixes)


def _new_conversation(thread: Thread, at: dt.datetime, directory: _Directory) -> Conversation:
    staff = directory.staff.get(thread.staff or "")
    org_unit = staff[1] if staff else None
    if thread.roomid:
        org_unit = directory.rooms.get(thread.roomid)
    conv = Conversation(
        key=conversation_key(thread.key, at),
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
