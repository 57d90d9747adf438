"""Running the stages after decryption so that one poison item never stops them.

Each stage works in batches, one transaction each, and raises when a batch fails. When it
does, :func:`run_isolated` runs it again with smaller and smaller batches: the batches before
the poison item commit, so with batches of one the failing batch is that item alone. The item
is then set aside (``stage_failures``, with the stage's error) so that the stage skips it, and
the stage goes on with its normal batch size. ``audit failures`` lists what was set aside;
``audit retry-failed`` releases it (:func:`release`) and the next run tries it again.

How a stage finds its next item, skips it and takes it back is stage by stage (:class:`Guard`):

* ``conversations``, ``alerts``, ``quality_alerts`` keep a high-water mark over ids
  (``stage:<name>`` checkpoints): the item is the first id after the mark, skipped by moving
  the mark past it. Taking one back moves the mark back before it: alerts are keyed by cause,
  and the sessionizer places only messages not placed yet, so going over the items in between
  again changes nothing, and the released message joins (or merges) conversations exactly as
  if it had arrived late.
* ``scan`` selects its work by query, and leaves out what is set aside.
* ``scores`` isolates its poison conversations itself, batch by batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from audit.alerts import QUALITY_STAGE
from audit.alerts import STAGE as ALERTS_MARK
from audit.archive.consent import STAGE as CONSENT_MARK
from audit.quality.conversations import STAGE as CONVERSATIONS_MARK
from audit.scan.stage import SCAN_STAGE
from audit.store.db import session_scope, stage_mark
from audit.store.models import Finding, Message, ScanRun, Score
from audit.store.quarantine import failed_items, record_failure, transient
from audit.store.quarantine import release as release_rows

log = logging.getLogger(__name__)

T = TypeVar("T")

# More items set aside by one stage in one run than this means the stage itself is broken,
# not its input: it stops with the error instead of setting everything aside.
MAX_SET_ASIDE = 100


@dataclass(frozen=True)
class Guard:
    """A stage's name in ``stage_failures``, and how to set its next item aside.

    ``blame`` is called, after a batch of one failed, in a transaction of its own; it names
    the item that failed and makes the stage skip it, or returns None when there is none (the
    failure is then the stage's own and is raised).
    """

    stage: str
    blame: Callable[[Session], str | None]


def run_isolated(
    engine: Engine,
    guard: Guard,
    run: Callable[[int], T],
    batch_size: int,
    set_aside: dict[str, int],
) -> T:
    """``run(batch_size)``, setting aside the items it fails on (counted in ``set_aside``)."""
    size = batch_size
    skipped = 0
    while True:
        try:
            return run(size)
        except Exception as exc:
            if transient(exc):
                raise
            if size > 1:
                # the batches before the failing one are committed: it is within the next size
                size = max(1, size // 8)
                continue
            with session_scope(engine) as session:
                item = guard.blame(session)
                if item is None:
                    raise
                record_failure(session, guard.stage, item, f"{type(exc).__name__}: {exc}")
            skipped += 1
            set_aside[guard.stage] = set_aside.get(guard.stage, 0) + 1
            log.warning("%s: set aside %s: %s", guard.stage, item, exc)
            if skipped > MAX_SET_ASIDE:
                raise
            size = batch_size


def _past_mark(
    mark_name: str, next_id: Callable[[Session, int], int | None]
) -> Callable[[Session], int | None]:
    def skip(session: Session) -> int | None:
        mark = stage_mark(session, mark_name)
        item = next_id(session, mark.seq)
        if item is not None:
            mark.seq = item
        return item

    return skip


def _first_after(column: object) -> Callable[[Session, int], int | None]:
    def first(session: Session, after: int) -> int | None:
        return session.scalar(select(func.min(column)).where(column > after))  # type: ignore[operator, arg-type]

    return first


def conversations_guard() -> Guard:
    skip = _past_mark(CONVERSATIONS_MARK, _first_after(Message.id))

    def blame(session: Session) -> str | None:
        message_id = skip(session)
        if message_id is None:
            return None
        return session.scalar(select(Message.msgid).where(Message.id == message_id))

    return Guard("conversations", blame)


def _by_id(stage: str, mark_name: str, column: object) -> Guard:
    skip = _past_mark(mark_name, _first_after(column))

    def blame(session: Session) -> str | None:
        item = skip(session)
        return None if item is None else str(item)

    return Guard(stage, blame)


def alerts_guard() -> Guard:
    """Items are finding ids."""
    return _by_id("alerts", ALERTS_MARK, Finding.id)


def quality_alerts_guard() -> Guard:
    """Items are score ids."""
    return _by_id("quality_alerts", QUALITY_STAGE, Score.id)


def scan_guard(full: bool, skip_withheld: bool) -> Guard:
    """Items are msgids: the first message the failed scan run did not get to."""

    def blame(session: Session) -> str | None:
        run_id = session.scalar(select(func.max(ScanRun.id)))
        query = (
            select(Message.msgid)
            .where(
                Message.text != "",
                Message.msgid.not_in(failed_items(session, SCAN_STAGE)),
                (Message.scanned_run_id.is_(None) | (Message.scanned_run_id != run_id)),
            )
            .order_by(Message.id)
            .limit(1)
        )
        if not full:
            query = query.where(Message.scanned_run_id.is_(None))
        if skip_withheld:
            query = query.where(Message.consent_withheld.is_(False))
        return session.scalar(query)

    return Guard(SCAN_STAGE, blame)


# What :func:`release` takes back: every stage after decryption.
RELEASED_STAGES = ("conversations", "scan", "scores", "alerts", "quality_alerts")


def release(engine: Engine) -> int:
    """Take back what later stages set aside, so that the next run tries it again."""
    with session_scope(engine) as session:
        released = release_rows(session, RELEASED_STAGES)
        msgids = [i for s, i in released if s == "conversations"]
        if msgids:  # items are msgids; the sessionizer's mark is over message ids
            ids = _message_ids(session, msgids)
            _move_back(session, CONVERSATIONS_MARK, ids)
            # consent checks placed messages past its mark: these are placed on the next run
            _move_back(session, CONSENT_MARK, ids)
        for stage, mark_name in (("alerts", ALERTS_MARK), ("quality_alerts", QUALITY_STAGE)):
            # alerts are keyed by cause: going over the ones in between is harmless
            _move_back(
                session, mark_name, [int(i) for s, i in released if s == stage and i.isdigit()]
            )
    return len(released)


def _message_ids(session: Session, msgids: list[str]) -> list[int]:
    ids: list[int] = []
    for i in range(0, len(msgids), 500):
        ids += session.scalars(select(Message.id).where(Message.msgid.in_(msgids[i : i + 500])))
    return ids


def _move_back(session: Session, mark_name: str, ids: list[int]) -> None:
    """The stage's mark before the first of ``ids``, so that its next run gets to them."""
    if ids:
        mark = stage_mark(session, mark_name)
        mark.seq = min(mark.seq, min(ids) - 1)
