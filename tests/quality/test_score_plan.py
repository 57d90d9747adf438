"""The scoring stage looks its conversations' messages up by conversation, whatever the
planner's statistics say: at 1,000,000 messages, on statistics taken while most messages
were not placed yet, a query that asked for time order was planned as a walk of the whole
time index, once per batch."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Engine, event
from text_messages import add_text_messages

from audit.quality.stage import _messages
from audit.store.db import make_engine, session_scope

# the messages' statistics of that database (ANALYZE with analysis_limit=1000)
STALE = {
    "msgtype": "985986 501",
    "sender": "3217896 1001",
    "seq": "1217300 1",
    "conversation_id": "644840 112",
    "recall_of": "1170927 2",
    "msgtime_id": "435072 1 1",
    "staff_id": "1030320 1001",
    "scanned_run_id": "1043072 1001",
    "roomid": "3395700 1001",
    "customer_id": "1175040 501",
}


def test_messages_of_a_batch_are_looked_up_by_conversation(sqlite_url: str) -> None:
    engine: Engine = make_engine(sqlite_url)
    add_text_messages(engine, [("您好", "staff"), ("在吗", "customer")], "plan")
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
        # what a million messages, most not yet in a conversation, left in the statistics
        conn.exec_driver_sql("DELETE FROM sqlite_stat1 WHERE tbl = 'messages'")
        conn.exec_driver_sql(
            "INSERT INTO sqlite_stat1 VALUES (?, ?, ?)",
            [("messages", f"ix_messages_{index}", stat) for index, stat in STALE.items()],
        )
    engine.dispose()
    engine = make_engine(sqlite_url)  # a new connection reads the statistics
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM messages" in statement:
            statements.append((statement, params))

    with session_scope(engine) as session:
        _messages(session, list(range(1, 501)))
    assert statements
    raw = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    try:
        for statement, params in statements:
            plan = [row[-1] for row in raw.execute("EXPLAIN QUERY PLAN " + statement, params)]
            assert not any(step.startswith("SCAN messages") for step in plan), plan
            assert any("ix_messages_conversation_id" in step for step in plan), plan
    finally:
        raw.close()
    engine.dispose()
