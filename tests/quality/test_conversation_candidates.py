"""The conversation stage reads, of each thread in a batch, only the conversations near the
batch's time window: not the thread's whole history once per batch (a cost that grew with
the square of the data: every batch of a 1,000,000-message load re-read every earlier
conversation of the threads it touched)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

from sqlalchemy import Engine, event, select

from audit.quality.conversations import build_conversations
from audit.store.db import make_engine, session_scope
from audit.store.models import Conversation, Envelope, Message, SenderKind

STAFF, CUSTOMER = "li.s001", "wmCUSTOMERxyz"
GAP = dt.timedelta(minutes=30)
T0 = dt.datetime(2026, 11, 16, 1, 0, tzinfo=dt.UTC)
# 30 conversations two hours apart; the last lasts an hour (four messages 20 minutes apart)
HISTORY = [T0 + dt.timedelta(hours=2 * n) for n in range(30)]
LAST = [HISTORY[-1] + dt.timedelta(minutes=20 * k) for k in range(1, 4)]


def _add(engine: Engine, times: list[dt.datetime], start: int) -> None:
    with session_scope(engine) as s:
        for n, at in enumerate(times, start=start):
            env = Envelope(source="test", seq=n, msgid=f"m{n}")
            s.add(env)
            s.flush()
            msg = Message(
                envelope_id=env.id, msgid=env.msgid, seq=n, action="send", msgtype="text",
                sender=STAFF, sender_kind=SenderKind.STAFF, text="您好", tolist=[CUSTOMER],
                msgtime=at, raw={},
            )  # fmt: skip
            s.add(msg)


def _history(engine: Engine) -> None:
    _add(engine, [*HISTORY, *LAST], 1)
    build_conversations(engine, GAP)


def _conversations(engine: Engine) -> list[tuple[dt.datetime, dt.datetime, int]]:
    with session_scope(engine) as s:
        return [
            (c.started_at, c.ended_at, c.message_count)
            for c in s.scalars(select(Conversation).order_by(Conversation.started_at))
        ]


def test_a_message_joins_the_conversation_that_started_before_its_window(engine: Engine) -> None:
    _history(engine)
    assert len(_conversations(engine)) == 30
    # 20 minutes after the last conversation's end: its window starts after that
    # conversation's start, which still reaches into it
    late = LAST[-1] + dt.timedelta(minutes=20)
    # and one the idle gap after the first conversation: a conversation of its own
    alone = HISTORY[0] + dt.timedelta(minutes=31)
    _add(engine, [late, alone], 100)
    stats = build_conversations(engine, GAP)
    assert (stats.created, stats.extended, stats.merged) == (1, 1, 0)
    convs = _conversations(engine)
    assert len(convs) == 31
    assert convs[-1] == (HISTORY[-1], late, 5)
    assert convs[1] == (alone, alone, 1)
    assert [c[2] for c in convs[2:-1]] == [1] * 28


def test_a_batch_does_not_read_the_threads_history(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    _history(engine)
    _add(engine, [LAST[-1] + dt.timedelta(minutes=20)], 100)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM conversations" in statement and statement.lstrip().startswith(("SELECT", "WITH")):
            statements.append((statement, params))

    build_conversations(engine, GAP)
    assert statements
    raw = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    try:
        searched = 0
        for statement, params in statements:
            plan = [row[-1] for row in raw.execute("EXPLAIN QUERY PLAN " + statement, params)]
            # a scan, or a Bloom filter (built by one), reads every conversation
            assert not any(
                step.startswith(("SCAN conversations", "BLOOM FILTER")) or "TEMP B-TREE" in step
                for step in plan
            ), plan
            for step in plan:
                if "ix_conversations_thread_started_at" in step:
                    searched += 1
                    # bounded on both sides, or one start: never all that started before
                    assert (
                        "started_at>? AND started_at<?" in step
                        or "started_at=?" in step
                        # the latest start before the window
                        or ("started_at<?" in step and "COVERING INDEX" in step)
                    ), plan
        assert searched
    finally:
        raw.close()
    engine.dispose()
