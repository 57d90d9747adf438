"""Claiming a row so that only one sender sends it.

The daily digest (``digests_sent``) and the real-time push (``alert_pushes``) each keep one
row per thing to send, under a unique key. Before sending, a sender **claims** the row in a
transaction of its own: it inserts the row, or, where one is there already, takes it over
only while a condition the caller gives still holds (a failed send to retry, a claim so old
that its sender must have crashed). The insert is refused by the unique key and the take-over
is one conditional ``UPDATE``, so of two senders (two processes, two hosts) exactly one wins,
on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Engine, select, update
from sqlalchemy.exc import IntegrityError

from audit.store.db import session_scope
from audit.store.models import Base


def claim_row(
    engine: Engine,
    table: type[Base],
    key: Mapping[str, Any],
    claimed: Mapping[str, Any],
    *,
    new: Mapping[str, Any] | None = None,
    retake: ColumnElement[bool] | None = None,
) -> bool:
    """Take the row of ``table`` with ``key`` for this sender; False when it is not to be had.

    No row yet: insert ``key``, ``claimed`` and ``new`` (values only a new row gets). A row:
    set ``claimed`` on it where ``retake`` holds (``None``: never take over an existing row).
    """
    columns = [getattr(table, column) for column in key]
    where = [column == value for column, value in zip(columns, key.values(), strict=True)]
    try:
        with session_scope(engine) as session:
            exists = session.execute(select(*columns).where(*where)).first()
            if exists is None:
                session.add(table(**key, **claimed, **(new or {})))
                session.flush()
                return True
            if retake is None:
                return False
            taken = session.execute(update(table).where(*where, retake).values(**claimed))
            return bool(taken.rowcount == 1)  # type: ignore[attr-defined]
    except IntegrityError:  # another sender inserted the same key a moment ago
        return False
