"""Items set aside by a stage, with the reason: one poison item never stops a batch.

A stage works on batches, one transaction each. When a batch raises, :func:`isolate` splits it
in halves and tries again until each failure is a single item; the others are written as
usual. What fails alone is recorded here (``stage_failures``) or, for decryption, on its
envelope; ``audit failures`` lists both and ``audit retry-failed`` tries them again.

Errors that say the database itself is unwell (connection lost, locked, out of disk) are not an
item's fault: they propagate, so that nothing is quarantined for them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, delete, exists, func, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from audit.archive.values import repair_text
from audit.store.models import StageFailure
from audit.store.types import utcnow

T = TypeVar("T")

ERROR_MAX = 2000  # characters of an error message kept
# msgids of failed envelopes that are a second, different version of a msgid
CONFLICT_PREFIX = "!bad:conflict:"


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` is the database's trouble rather than the item's."""
    return isinstance(exc, OperationalError | InterfaceError)


def describe(exc: BaseException) -> str:
    """A one-paragraph, storable reason (no NUL or lone surrogates, bounded length)."""
    text = f"{type(exc).__name__}: {exc}".split("\n[SQL:")[0].strip()
    return reason(text)


def reason(text: str) -> str:
    """``text`` made storable as an error: repaired and cut to :data:`ERROR_MAX` characters."""
    return repair_text(text)[0][:ERROR_MAX]


def isolate(items: Sequence[T], attempt: Callable[[Sequence[T]], None]) -> list[tuple[T, str]]:
    """Apply ``attempt`` (one transaction) to ``items``, bisecting around failures.

    Returns the items that fail on their own, with the reason; every other item has been
    attempted successfully. Transient database errors propagate.
    """
    if not items:
        return []
    try:
        attempt(items)
        return []
    except Exception as exc:
        if transient(exc):
            raise
        if len(items) == 1:
            return [(items[0], describe(exc))]
    mid = len(items) // 2
    return isolate(items[:mid], attempt) + isolate(items[mid:], attempt)


def record_failure(session: Session, stage: str, item: str, error: str) -> None:
    """Set ``item`` aside for ``stage`` (again: the attempt is counted)."""
    item = reason(item)[:255]
    row = session.scalars(
        select(StageFailure).where(StageFailure.stage == stage, StageFailure.item == item)
    ).first()
    if row is None:
        session.add(StageFailure(stage=stage, item=item, error=reason(error), attempts=1))
    else:
        row.error, row.attempts, row.failed_at = reason(error), row.attempts + 1, utcnow()


def failed_items(session: Session, stage: str) -> set[str]:
    return set(session.scalars(select(StageFailure.item).where(StageFailure.stage == stage)))


def failure_counts(session: Session) -> dict[str, int]:
    """Items set aside, by stage."""
    return {
        stage: int(n)
        for stage, n in session.execute(
            select(StageFailure.stage, func.count()).group_by(StageFailure.stage)
        )
    }


def release(session: Session, stages: Sequence[str]) -> list[tuple[str, str]]:
    """Forget the failures of ``stages`` so that they are tried again; returns the
    (stage, item) pairs released."""
    where = StageFailure.stage.in_(list(stages))
    released = [
        (s, i)
        for s, i in session.execute(select(StageFailure.stage, StageFailure.item).where(where))
    ]
    session.execute(delete(StageFailure).where(where))
    return released


def is_set_aside(stage: str, item: ColumnElement[str] | Any) -> ColumnElement[bool]:
    """SQL: ``item`` (a column naming items as ``stage`` does) has been set aside."""
    return exists().where(StageFailure.stage == stage, StageFailure.item == item)
