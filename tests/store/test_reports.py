"""Reports over the small chain of ``tests/seed_chain.py``, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest
from seed_chain import Seeded, seed_chain
from sqlalchemy import Engine

from audit.domain import CATEGORIES
from audit.reports import (
    UNASSIGNED,
    Period,
    ReportFilter,
    data_period,
    findings_by_category,
    live,
    messages_per_day,
    org_tree,
    store_table,
    summarize,
)
from audit.store.daily import is_fresh, refresh_daily
from audit.store.db import session_scope
from audit.store.models import (
    Finding,
    Message,
    ScanRun,
    Severity,
)

UTC = dt.UTC
D = dt.date


@pytest.fixture
def seeded(engine: Engine) -> Seeded:
    return seed_chain(engine)


WHOLE = Period(D(2026, 11, 16), D(2026, 11, 18))


def _row(table, store: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    rows = table[table["store"] == store].to_dict("records")
    assert len(rows) == 1, f"{store}: {rows}"
    return rows[0]


def test_when_messages_exist_then_data_period_is_in_china_days(engine: Engine, seeded: Seeded):
    # the first message is 11-15 17:00 UTC, i.e. 11-16 01:00 in Beijing
    assert data_period(engine) == WHOLE


def test_when_empty_then_no_data_period(engine: Engine):
    assert data_period(engine) is None
    table = store_table(engine, ReportFilter(WHOLE))
    assert table.empty
    assert summarize(table).messages == 0


def test_org_tree_knows_region_city_and_label(engine: Engine, seeded: Seeded):
    nodes = {n.id: n for n in org_tree(engine)}
    store = nodes[seeded.nanjing]
    assert (store.region, store.city, store.label) == ("华东区", "上海", "华东区 / 上海 / 南京路店")
    assert nodes[seeded.city].has_children and not store.has_children
    assert [n.name for n in org_tree(engine)][:2] == ["华东区", "上海"]


def test_store_table_over_the_whole_period(engine: Engine, seeded: Seeded):
    table = store_table(engine, ReportFilter(WHOLE))
    assert list(table["store"]) == ["南京路店", "徐家汇店", "陆家嘴店", UNASSIGNED]

    nanjing = _row(table, "南京路店")
    assert (nanjing["region"], nanjing["city"], nanjing["code"]) == ("华东区", "上海", "S1")
    assert nanjing["messages"] == 5
    assert nanjing["conversations"] == 2
    assert {c: nanjing[c] for c in CATEGORIES} == {
        "privacy": 1,
        "diversion": 1,
        "promise": 1,
        "abuse": 1,
        "complaint": 0,
        "fraud": 0,
        "illegal": 0,
    }
    assert nanjing["findings"] == 4
    assert nanjing["findings_per_1k"] == pytest.approx(800.0)
    # the abuse alert has no org unit of its own: it is the store's through its conversation
    assert (nanjing["alerts_open"], nanjing["alerts_total"]) == (1, 2)

    xujiahui = _row(table, "徐家汇店")
    assert (xujiahui["messages"], xujiahui["conversations"], xujiahui["complaint"]) == (2, 1, 1)
    assert xujiahui["findings_per_1k"] == pytest.approx(500.0)
    assert (xujiahui["alerts_open"], xujiahui["alerts_total"]) == (1, 1)

    silent = _row(table, "陆家嘴店")
    assert (silent["messages"], silent["findings"], silent["alerts_total"]) == (0, 0, 0)
    assert math.isnan(silent["findings_per_1k"])  # type: ignore[arg-type]

    orphan = _row(table, UNASSIGNED)
    assert (orphan["messages"], orphan["conversations"], orphan["illegal"]) == (1, 0, 1)


def test_summary_agrees_with_the_table(engine: Engine, seeded: Seeded):
    totals = summarize(store_table(engine, ReportFilter(WHOLE)))
    assert totals.messages == 8
    assert totals.conversations == 3
    assert totals.findings == 6
    assert (totals.alerts_open, totals.alerts_total) == (2, 3)
    assert (totals.stores, totals.active_stores) == (3, 2)


def test_days_are_china_days(engine: Engine, seeded: Seeded):
    # 11-16 16:10 UTC is 11-17 00:10 in Beijing: the abuse message and its alert move there
    day = store_table(engine, ReportFilter(Period(D(2026, 11, 17), D(2026, 11, 17))))
    nanjing = _row(day, "南京路店")
    assert (nanjing["messages"], nanjing["conversations"], nanjing["abuse"]) == (1, 0, 1)
    assert (nanjing["alerts_open"], nanjing["alerts_total"]) == (0, 1)
    assert _row(day, UNASSIGNED)["messages"] == 1
    assert _row(day, "徐家汇店")["messages"] == 0

    first = store_table(engine, ReportFilter(Period(D(2026, 11, 16), D(2026, 11, 16))))
    nanjing = _row(first, "南京路店")
    assert (nanjing["messages"], nanjing["conversations"], nanjing["findings"]) == (4, 2, 3)
    assert (nanjing["alerts_open"], nanjing["alerts_total"]) == (1, 1)
    assert UNASSIGNED not in set(first["store"])


def test_days_follow_the_configured_zone_and_so_do_the_daily_tables(engine: Engine, seeded: Seeded):
    utc_days = Period(D(2026, 11, 15), D(2026, 11, 18), "UTC")
    assert data_period(engine, "UTC") == utc_days
    live_per_day = messages_per_day(engine, ReportFilter(utc_days))
    assert list(zip(live_per_day["day"], live_per_day["messages"], strict=True)) == [
        (D(2026, 11, 15), 3),
        (D(2026, 11, 16), 2),
        (D(2026, 11, 17), 1),
        (D(2026, 11, 18), 2),
    ]
    live_stores = store_table(engine, ReportFilter(utc_days))
    # the pre-aggregated tables answer only for the zone they were built in
    assert refresh_daily(engine, tz="UTC").mode == "full"
    with engine.connect() as conn:
        assert is_fresh(conn, "UTC") and not is_fresh(conn, "Asia/Shanghai")
    pd.testing.assert_frame_equal(messages_per_day(engine, ReportFilter(utc_days)), live_per_day)
    pd.testing.assert_frame_equal(store_table(engine, ReportFilter(utc_days)), live_stores)
    china = store_table(engine, ReportFilter(WHOLE))  # computed live: the tables are in UTC
    pd.testing.assert_frame_equal(china, store_table(live(engine), ReportFilter(WHOLE)))
    again = refresh_daily(engine)
    assert (again.mode, again.reason) == ("full", "time zone is now Asia/Shanghai")
    with engine.connect() as conn:
        assert is_fresh(conn, "Asia/Shanghai") and not is_fresh(conn, "UTC")
    pd.testing.assert_frame_equal(store_table(engine, ReportFilter(WHOLE)), china)


def test_messages_per_day(engine: Engine, seeded: Seeded):
    frame = messages_per_day(engine, ReportFilter(Period(D(2026, 11, 15), D(2026, 11, 19))))
    assert list(zip(frame["day"], frame["messages"], strict=True)) == [
        (D(2026, 11, 15), 0),
        (D(2026, 11, 16), 4),
        (D(2026, 11, 17), 2),
        (D(2026, 11, 18), 2),
        (D(2026, 11, 19), 0),
    ]
    scoped = messages_per_day(engine, ReportFilter(WHOLE, (seeded.xujiahui,)))
    assert list(scoped["messages"]) == [0, 0, 2]


def test_org_filter_covers_everything_below(engine: Engine, seeded: Seeded):
    for unit in (seeded.region, seeded.city):
        table = store_table(engine, ReportFilter(WHOLE, (unit,)))
        # the unsessionized message belongs to no store, so not to this city either
        assert list(table["store"]) == ["南京路店", "徐家汇店", "陆家嘴店"]
        assert summarize(table).messages == 7
        assert (summarize(table).alerts_open, summarize(table).alerts_total) == (2, 3)

    one = store_table(engine, ReportFilter(WHOLE, (seeded.xujiahui,)))
    assert list(one["store"]) == ["徐家汇店"]
    assert summarize(one).findings == 1
    assert store_table(engine, ReportFilter(WHOLE, ())).empty


def test_findings_by_category(engine: Engine, seeded: Seeded):
    frame = findings_by_category(store_table(engine, ReportFilter(WHOLE)))
    assert dict(zip(frame["category"], frame["findings"], strict=True)) == {
        "privacy": 1,
        "diversion": 1,
        "promise": 1,
        "abuse": 1,
        "complaint": 1,
        "fraud": 0,
        "illegal": 1,
    }


def test_unknown_categories_are_counted_as_other(engine: Engine, seeded_other: None):
    table = store_table(engine, ReportFilter(WHOLE))
    assert _row(table, "南京路店")["other"] == 1
    assert _row(table, "南京路店")["findings"] == 5
    frame = findings_by_category(table)
    assert frame.iloc[-1].to_dict() == {"category": "other", "findings": 1}


@pytest.fixture
def seeded_other(engine: Engine, seeded: Seeded) -> None:
    with session_scope(engine) as s:
        msg = s.query(Message).filter_by(msgid="msg1").one()
        run = s.query(ScanRun).one()
        s.add(
            Finding(
                message_id=msg.id,
                scan_run_id=run.id,
                category="spam",
                rule="spam.x",
                severity=Severity.LOW,
                start=0,
                end=1,
                matched="我",
            )
        )


def test_period_rejects_an_end_before_the_start():
    with pytest.raises(ValueError, match="before it starts"):
        Period(D(2026, 11, 2), D(2026, 11, 1))
