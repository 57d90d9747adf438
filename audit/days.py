"""Local calendar days in the configured time zone (``quality.timezone``): the one definition.

The store keeps instants in UTC; people read days and times in their own zone. Everything that
turns one into the other comes through here: the dashboard's reports and pre-aggregated daily
tables, digests, exports and the quality metrics. A "day" is ``[00:00, next day 00:00)`` local
time, so a day in a zone with daylight saving time can be 23 or 25 hours long.

Importing this module loads no database library; :func:`local_day` builds its SQL expression
with SQLAlchemy, imported when called.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement

DEFAULT_ZONE = "Asia/Shanghai"  # the default of ``quality.timezone``


@lru_cache(maxsize=32)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ``ValueError`` naming it when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (an IANA name such as {DEFAULT_ZONE!r})"
        ) from None


def local_date(instant: dt.datetime, tz: str) -> dt.date:
    """The local calendar day of ``instant`` in ``tz`` (a naive instant is taken as UTC)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(zone(tz)).date()


def local_time(instant: dt.datetime, tz: str) -> dt.datetime:
    """``instant`` as an aware local time in ``tz`` (a naive instant is taken as UTC)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(zone(tz))


def day_bounds(start: dt.date, end: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """``[start 00:00, end + 1 day 00:00)`` local time in ``tz``, as aware UTC datetimes."""
    here = zone(tz)
    lo = dt.datetime.combine(start, dt.time(), tzinfo=here)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=here)
    return lo.astimezone(dt.UTC), hi.astimezone(dt.UTC)


def as_date(value: object) -> dt.date:
    """A day as the database returns it: a date on PostgreSQL, ``'YYYY-MM-DD'`` on SQLite."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)


def micros(instant: dt.datetime) -> int:
    """Whole microseconds since the epoch of an aware instant (exact)."""
    return (instant - EPOCH) // _MICRO


def from_micros(value: int) -> dt.datetime:
    """:func:`micros` back to an aware UTC instant."""
    return EPOCH + dt.timedelta(microseconds=int(value))


def epoch_micros(dialect: str, column: Any) -> ColumnElement[Any]:
    """:func:`micros` of a UTC timestamp column, in SQL, exactly: from the stored text on
    SQLite (``YYYY-MM-DD HH:MM:SS.ffffff``), from the epoch on PostgreSQL (rounded: the
    epoch is numeric, or a double before PostgreSQL 14)."""
    from sqlalchemy import BigInteger, Integer, String, cast, extract, func, type_coerce

    if dialect == "postgresql":
        return cast(func.round(extract("epoch", column) * 1_000_000), BigInteger)
    if dialect != "sqlite":
        raise NotImplementedError(f"epochs are not implemented for {dialect}")
    text = type_coerce(column, String)
    seconds = cast(func.strftime("%s", text), Integer)
    return seconds * 1_000_000 + cast(func.substr(text.concat("000000"), 21, 6), Integer)


def local_day(
    dialect: str, column: Any, tz: str, lo: dt.datetime, hi: dt.datetime
) -> ColumnElement[Any]:
    """The local calendar day in ``tz`` of a UTC timestamp column, for instants in [lo, hi).

    PostgreSQL converts with its own zone database (a ``date``). SQLite has none, so the
    range is cut into spans of constant UTC offset (one span unless a daylight saving change
    falls inside) and each span shifts by its offset (a ``'YYYY-MM-DD'`` text). Constants are
    literals so that the same expression in SELECT and GROUP BY compiles to identical SQL
    (PostgreSQL refuses two different bind parameters there).
    """
    from sqlalchemy import Date, case, cast, func, literal_column

    here = zone(tz)  # refuses unknown names, and so anything unsafe to inline
    if dialect == "postgresql":
        return cast(func.timezone(literal_column(f"'{here.key}'"), column), Date)
    if dialect != "sqlite":
        raise NotImplementedError(f"local days are not implemented for {dialect}")
    spans = offset_spans(tz, lo, hi)
    if len(spans) == 1:
        return func.date(column, literal_column(f"'{spans[0][1]:+d} seconds'"))
    whens = [
        (
            column < literal_column(f"'{until.replace(tzinfo=None).isoformat(sep=' ')}'"),
            func.date(column, literal_column(f"'{offset:+d} seconds'")),
        )
        for until, offset in spans[:-1]
    ]
    last = func.date(column, literal_column(f"'{spans[-1][1]:+d} seconds'"))
    return case(*whens, else_=last)


def offset_spans(tz: str, lo: dt.datetime, hi: dt.datetime) -> list[tuple[dt.datetime, int]]:
    """[(span end in UTC, offset seconds)] covering [lo, hi); the last end is ``hi``.

    Offsets change at most a few times a year, so the range is walked a day at a time and a
    change is then found to the second by bisection.
    """
    here = zone(tz)
    lo, hi = lo.astimezone(dt.UTC), max(lo, hi).astimezone(dt.UTC)

    def offset(at: dt.datetime) -> int:
        delta = at.astimezone(here).utcoffset()
        return int(delta.total_seconds()) if delta else 0

    spans: list[tuple[dt.datetime, int]] = []
    current = offset(lo)
    step = dt.timedelta(days=1)
    at = lo
    while at < hi:
        nxt = min(at + step, hi)
        if offset(nxt) != current:
            a, b = at, nxt  # the change lies in (a, b]
            while (b - a) > dt.timedelta(seconds=1):
                mid = a + (b - a) / 2
                a, b = (mid, b) if offset(mid) == current else (a, mid)
            b = a.replace(microsecond=0) + dt.timedelta(seconds=1)  # zones change on a second
            while offset(b) == current:
                b += dt.timedelta(seconds=1)
            if b >= hi:  # at the very end: nothing in range is shifted by the new offset
                break
            spans.append((b, current))
            current = offset(b)
            at = b
            continue
        at = nxt
    spans.append((hi, current))
    return spans
