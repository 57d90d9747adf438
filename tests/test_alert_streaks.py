"""SLA-streak alerts computed around the newly scored conversations are the alerts of the
whole history: conversations arriving in a seeded random order, in many small batches, growing
earlier, merging, flipping between kept and missed SLA and moving between two staff members,
on both databases. The statements that read conversations are counted: far from the new
conversations, the stage reads nothing."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, event, select
from sqlalchemy.orm import Session

from audit.alerts import QUALITY_STAGE, raise_quality_alerts
from audit.quality.conversations import conversation_key
from audit.quality.merge import carry_over
from audit.store.db import session_scope, stage_mark
from audit.store.models import (
    Alert,
    Conversation,
    ConversationKind,
    OrgUnit,
    Score,
    Staff,
)

T0 = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)
VERSION = "v-test"
STREAK = 3
PREFIX = "quality:sla_streak:"


@dataclass
class _Conv:
    thread: str
    kind: ConversationKind
    staff: int  # index into the staff list
    start: dt.datetime
    minutes: int
    missed: bool


def _world(rng: random.Random) -> list[_Conv]:
    """Three busy staff members (long runs of missed SLAs), one who chats twice a week,
    and conversations between staff members 0 and 1 (never missing the SLA)."""
    convs: list[_Conv] = []
    for staff, count in ((0, 90), (1, 90), (2, 60), (3, 5)):
        for i in range(count):
            start = T0 + dt.timedelta(minutes=rng.randrange(0, 14 * 24 * 60))
            convs.append(
                _Conv(
                    f"single:u{staff}:wm{staff}c{i}",
                    ConversationKind.SINGLE,
                    staff,
                    start,
                    rng.randrange(1, 90),
                    rng.random() < 0.65,
                )
            )
    for i in range(10):
        start = T0 + dt.timedelta(minutes=rng.randrange(0, 14 * 24 * 60))
        convs.append(_Conv(f"internal:u0:u1:{i}", ConversationKind.INTERNAL, 0, start, 20, False))
    return convs


def _setup(engine: Engine) -> list[int]:
    with session_scope(engine) as session:
        units = [OrgUnit(code=f"s{i}", name=f"store {i}", kind="store") for i in range(2)]
        session.add_all(units)
        session.flush()
        staff = [
            Staff(userid=f"u{i}", name=f"staff {i}", org_unit_id=units[i % 2].id) for i in range(4)
        ]
        session.add_all(staff)
        session.flush()
        return [s.id for s in staff]


def _add(session: Session, c: _Conv, staff_ids: list[int]) -> int:
    conv = Conversation(
        key=conversation_key(c.thread, c.start),
        thread=c.thread,
        kind=c.kind,
        staff_id=staff_ids[c.staff],
        org_unit_id=session.get(Staff, staff_ids[c.staff]).org_unit_id,  # type: ignore[union-attr]
        started_at=c.start,
        ended_at=c.start + dt.timedelta(minutes=c.minutes),
        message_count=2,
        staff_messages=1,
        customer_messages=1,
    )
    session.add(conv)
    session.flush()
    return conv.id


def _score(session: Session, conv_ids: list[int], missed: dict[int, bool]) -> None:
    """(Re)score: the old scores go, new ones come with new ids, and the quality-alert mark
    goes back to them if an id was handed out again (as audit.quality.stage does)."""
    session.execute(delete(Score).where(Score.conversation_id.in_(conv_ids)))
    rows = [
        Score(
            conversation_id=i,
            scorecard_version=VERSION,
            score=90.0,
            deductions=[],
            metrics={"sla_breaches": 2 if missed[i] else 0},
        )
        for i in conv_ids
    ]
    session.add_all(rows)
    session.flush()
    mark = stage_mark(session, QUALITY_STAGE)
    first = min(r.id for r in rows)
    if mark.seq >= first:
        mark.seq = first - 1


def _expected(engine: Engine) -> set[tuple[Any, ...]]:
    """The streak alerts of the whole history, from scratch."""
    out: set[tuple[Any, ...]] = set()
    with session_scope(engine) as session:
        rows = session.execute(
            select(
                Conversation.id,
                Conversation.staff_id,
                Conversation.org_unit_id,
                Score.metrics,
            )
            .join(Score, Score.conversation_id == Conversation.id)
            .where(Score.scorecard_version == VERSION)
            .order_by(Conversation.started_at, Conversation.key)
        ).all()
    by_staff: dict[int, list[Any]] = {}
    for r in rows:
        by_staff.setdefault(r.staff_id, []).append(r)
    for staff_id, convs in by_staff.items():
        run: list[Any] = []
        for r in [*convs, None]:
            if r is not None and r.metrics["sla_breaches"] > 0:
                run.append(r)
                continue
            if len(run) >= STREAK:
                out.add(
                    (
                        f"{PREFIX}{staff_id}:{run[0].id}",
                        f"服务质量：连续 {len(run)} 个会话回复超时",
                        run[-1].id,
                        run[0].org_unit_id,
                    )
                )
            run = []
    return out


def _got(engine: Engine) -> set[tuple[Any, ...]]:
    with session_scope(engine) as session:
        return {
            (a.dedupe_key, a.title, a.conversation_id, a.org_unit_id)
            for a in session.scalars(select(Alert).where(Alert.dedupe_key.startswith(PREFIX)))
        }


@contextmanager
def _reads_of_conversations(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM conversations" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_streaks_around_new_conversations_are_those_of_the_whole_history(
    engine: Engine,
) -> None:
    rng = random.Random(14)
    staff_ids = _setup(engine)
    world = _world(rng)
    order = list(range(len(world)))
    rng.shuffle(order)
    ids: dict[int, int] = {}  # world index -> conversation id
    missed: dict[int, bool] = {}
    rounds = [order[i : i + 60] for i in range(0, len(order), 60)]
    merged = grown = moved = flipped = 0
    for n, part in enumerate(rounds):
        with session_scope(engine) as session:
            new = []
            for w in part:
                ids[w] = _add(session, world[w], staff_ids)
                missed[ids[w]] = world[w].missed
                new.append(ids[w])
            if n:  # late messages: conversations grow earlier, merge, flip, move
                rescored = set(new)
                live = [w for w in ids if w not in part and ids[w] in missed]
                for w in rng.sample(live, 6):
                    conv = session.get(Conversation, ids[w])
                    assert conv is not None
                    conv.started_at -= dt.timedelta(minutes=rng.randrange(30, 600))
                    conv.key = conversation_key(conv.thread, conv.started_at)
                    missed[conv.id] = rng.random() < 0.65
                    rescored.add(conv.id)
                    grown += 1
                for w in rng.sample(live, 6):
                    if ids[w] in rescored:
                        continue
                    missed[ids[w]] = not missed[ids[w]]
                    rescored.add(ids[w])
                    flipped += 1
                merged += _merge_one(session, rng, ids, missed, rescored)
                internal = [w for w in live if world[w].kind is ConversationKind.INTERNAL]
                for w in rng.sample(internal, min(2, len(internal))):
                    conv = session.get(Conversation, ids[w])
                    assert conv is not None
                    conv.staff_id = staff_ids[1] if conv.staff_id == staff_ids[0] else staff_ids[0]
                    rescored.add(conv.id)
                    moved += 1
                new = sorted(i for i in rescored if i in missed)
            _score(session, new, missed)
        raise_quality_alerts(engine, low_score=0, streak=STREAK, batch_size=7)
        assert _got(engine) == _expected(engine), f"after round {n}"
    assert len(_expected(engine)) >= 10
    assert merged >= 3 and grown >= 10 and flipped >= 10 and moved >= 3

    # a conversation between two staff members that separated two short runs of one of
    # them moves to the other (its first writer changed): the runs join
    with session_scope(engine) as session:
        order = session.execute(
            select(Conversation.id, Conversation.kind)
            .join(Score, Score.conversation_id == Conversation.id)
            .where(Conversation.staff_id == staff_ids[0])
            .order_by(Conversation.started_at, Conversation.key)
        ).all()
        at = next(
            i
            for i, (_, kind) in enumerate(order)
            if kind is ConversationKind.INTERNAL and 2 <= i < len(order) - 3
        )
        around = [c for c, _ in order[at - 2 : at + 4] if c != order[at][0]]
        for c, flag in zip(around, (False, True, True, True, False), strict=True):
            missed[c] = flag
        _score(session, around, missed)
    raise_quality_alerts(engine, low_score=0, streak=STREAK, batch_size=7)
    assert f"{PREFIX}{staff_ids[0]}:{around[1]}" not in {k for k, *_ in _got(engine)}
    with session_scope(engine) as session:
        conv = session.get(Conversation, order[at][0])
        assert conv is not None
        conv.staff_id = staff_ids[1]
        _score(session, [conv.id], missed)
    raise_quality_alerts(engine, low_score=0, streak=STREAK, batch_size=7)
    assert f"{PREFIX}{staff_ids[0]}:{around[1]}" in {k for k, *_ in _got(engine)}
    assert _got(engine) == _expected(engine)

    # nothing new: nothing is read; one rescored conversation: its neighbourhood only
    with _reads_of_conversations(engine) as reads:
        raise_quality_alerts(engine, low_score=0, streak=STREAK, batch_size=7)
    assert reads == []
    with session_scope(engine) as session:
        total = len(missed)
        last = max(missed)
        missed[last] = not missed[last]
        _score(session, [last], missed)
    with _reads_of_conversations(engine) as reads:
        raise_quality_alerts(engine, low_score=0, streak=STREAK, batch_size=7)
    assert _got(engine) == _expected(engine)
    assert 0 < len(reads) < total / 4


def _merge_one(
    session: Session,
    rng: random.Random,
    ids: dict[int, int],
    missed: dict[int, bool],
    rescored: set[int],
) -> int:
    """Merge two conversations of one thread-less pair, as a bridging message would: the
    later one's span goes into the earlier one's, which is rescored."""
    live = sorted(i for i in missed if i not in rescored)
    for _ in range(20):
        a, b = rng.sample(live, 2)
        first = session.get(Conversation, a)
        second = session.get(Conversation, b)
        assert first is not None and second is not None
        if first.staff_id != second.staff_id or first.kind is not ConversationKind.SINGLE:
            continue
        if second.started_at < first.started_at:
            first, second = second, first
        if second.started_at - first.started_at > dt.timedelta(days=2):
            continue
        carry_over(session, first.id, {second.id: second.key})
        session.expunge(second)
        first.ended_at = max(first.ended_at, second.ended_at)
        missed.pop(second.id)
        ids.update({w: first.id for w, i in ids.items() if i == second.id})
        missed[first.id] = rng.random() < 0.65
        rescored.add(first.id)
        return 1
    return 0
