"""Local days in the configured zone (audit.days): in Python, and in SQL on both backends."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, literal, select

from audit.days import day_bounds, local_date, local_day, offset_spans
from audit.store.types import UTCDateTime

UTC = dt.UTC
D = dt.date


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_a_day_is_local_midnight_to_midnight_and_can_be_23_hours():
    assert day_bounds(D(2026, 11, 16), D(2026, 11, 16), "Asia/Shanghai") == (
        utc(2026, 11, 15, 16),
        utc(2026, 11, 16, 16),
    )
    lo, hi = day_bounds(D(2026, 3, 29), D(2026, 3, 29), "Europe/Berlin")  # clocks go forward
    assert (lo, hi) == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))
    assert local_date(utc(2026, 11, 15, 17), "Asia/Shanghai") == D(2026, 11, 16)
    assert local_date(dt.datetime(2026, 11, 15, 17), "UTC") == D(2026, 11, 15)  # naive is UTC


def test_offset_spans_end_exactly_at_each_change():
    spans = offset_spans("Europe/Berlin", utc(2026, 3, 1), utc(2026, 11, 1))
    assert spans == [
        (utc(2026, 3, 29, 1), 3600),
        (utc(2026, 10, 25, 1), 7200),
        (utc(2026, 11, 1), 3600),
    ]
    assert offset_spans("Asia/Shanghai", utc(2026, 1, 1), utc(2027, 1, 1)) == [
        (utc(2027, 1, 1), 8 * 3600)
    ]
    # a change at the very end of the range shifts nothing inside it
    assert offset_spans("Europe/Berlin", utc(2026, 3, 28), utc(2026, 3, 29, 1)) == [
        (utc(2026, 3, 29, 1), 3600)
    ]


INSTANTS = [
    utc(2026, 3, 28, 22, 59, 59),  # 03-28 23:59:59 CET
    utc(2026, 3, 28, 23, 0),  # 03-29 00:00 CET
    utc(2026, 3, 29, 0, 59, 59),  # just before the change
    utc(2026, 3, 29, 1, 0),  # 03:00 CEST
    utc(2026, 3, 29, 21, 59, 59),  # 03-29 23:59:59 CEST
    utc(2026, 3, 29, 22, 0),  # 03-30 00:00 CEST
    utc(2026, 10, 24, 22, 0),  # 10-25 00:00 CEST
    utc(2026, 10, 25, 22, 59),  # 10-25 23:59 CET
    utc(2026, 10, 25, 23, 0),  # 10-26 00:00 CET
]


@pytest.mark.parametrize("tz", ["Europe/Berlin", "Asia/Shanghai", "UTC"])
def test_the_sql_day_is_the_python_day_across_summer_time(engine: Engine, tz: str):
    lo, hi = utc(2026, 3, 1), utc(2026, 11, 1)
    with engine.connect() as conn:
        got = [
            conn.scalar(
                select(local_day(conn.dialect.name, literal(at, UTCDateTime()), tz, lo, hi))
            )
            for at in INSTANTS
        ]
    expected = [local_date(at, tz) for at in INSTANTS]
    assert [d if isinstance(d, dt.date) else D.fromisoformat(d) for d in got] == expected
    if tz == "Europe/Berlin":
        assert expected[:2] == [D(2026, 3, 28), D(2026, 3, 29)]
        assert expected[4:6] == [D(2026, 3, 29), D(2026, 3, 30)]
        assert expected[7:] == [D(2026, 10, 25), D(2026, 10, 26)]


def test_an_unknown_zone_is_refused(engine: Engine):
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        local_day("sqlite", literal(utc(2026, 1, 1), UTCDateTime()), "Mars/Olympus", *INSTANTS[:2])
