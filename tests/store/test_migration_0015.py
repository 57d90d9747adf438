"""Migration 0015 on a database whose daily tables were refreshed at 0014, on both backends:
the old facts lack the new columns, so the upgrade leaves them stale (read live) until the next
refresh rebuilds them, after which the quality page and the dormant list read them and give
the live numbers."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from migrated import database_at
from sqlalchemy import Engine, column, insert, select, table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "dashboards"))

from dashboard_seed import seed_dashboard

from audit import reports
from audit.config import QualityConfig
from audit.quality.metrics import BusinessClock
from audit.reports import quality
from audit.store import daily
from audit.store.access import Principal
from audit.store.db import migrate
from audit.store.models import Checkpoint, ConversationFact, Role

WHOLE = reports.Period(dt.date(2026, 11, 14), dt.date(2026, 11, 22))
NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)
QUALITY = QualityConfig()
CLOCK = BusinessClock.from_config(QUALITY)
OFFICER = Principal(user_id=None, username="officer", role=Role.COMPLIANCE, unit_ids=None)

# conversation_facts as 0014 had it
_facts_0014 = table(
    "conversation_facts",
    *(
        column(c)
        for c in (
            "conversation_id",
            "org_unit_id",
            "staff_id",
            "customer_id",
            "started_at",
            "day",
            "message_count",
            "findings",
        )
    ),
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine_0014(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Engine]:
    """An empty database migrated to 0014 only."""
    yield from database_at(request, tmp_path, "0014")


def _pages(engine: Engine) -> dict[str, pd.DataFrame]:
    f = reports.ReportFilter(WHOLE)
    sla = QUALITY.sla_minutes
    waiting = quality.waiting_now(engine, OFFICER, f, CLOCK, sla, NOW)
    found = reports.dormant_page(engine, OFFICER, 30, now=dt.datetime(2026, 12, 31, tzinfo=dt.UTC))
    assert found is not None
    return {
        "waiting": waiting,
        "staff": quality.staff_quality(engine, OFFICER, f, CLOCK, sla, NOW, None, waiting),
        "trend": quality.daily_trend(engine, OFFICER, f),
        "tags": reports.tag_table(engine, OFFICER, f),
        "dormant": found.rows,
    }


def _assert_same(got: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    assert got.keys() == expected.keys()
    for key, frame in expected.items():
        pd.testing.assert_frame_equal(got[key], frame, obj=key)


def test_an_upgraded_database_reads_live_until_a_refresh_rebuilds_the_facts(
    engine_0014: Engine,
) -> None:
    engine = engine_0014
    seed = seed_dashboard(engine)
    # a refresh at 0014: facts without the new columns, and marks saying they are fresh
    with engine.begin() as conn:
        now = daily.sources(conn)
        conn.execute(
            insert(_facts_0014).values(
                conversation_id=seed.conv_nanjing,
                org_unit_id=seed.chain.nanjing,
                staff_id=None,
                customer_id=None,
                started_at=dt.datetime(2026, 11, 15, 17, 0, tzinfo=dt.UTC),
                day=dt.date(2026, 11, 16),
                message_count=3,
                findings=3,
            )
        )
        marks = [
            {"source": source, "seq": getattr(now, name)} for name, source in daily.MARKS.items()
        ]
        marks.append({"source": f"{daily.ZONE_MARK}Asia/Shanghai", "seq": 0})
        conn.execute(insert(Checkpoint), marks)
        assert daily.is_fresh(conn)  # as 0014 code would have read them

    migrate(engine)
    with engine.connect() as conn:
        assert not daily.is_fresh(conn)  # stale: the reports compute live
        assert conn.scalar(select(ConversationFact.unanswered_since)) is None
    live = _pages(reports.live(engine))
    assert len(live["waiting"]) == 1 and len(live["dormant"]) == 3
    _assert_same(_pages(engine), live)

    stats = daily.refresh_daily(engine)
    assert (stats.mode, stats.reason) == ("full", "first refresh")
    with engine.connect() as conn:
        assert daily.is_fresh(conn)
        assert conn.scalar(select(ConversationFact.last_customer_us).limit(1)) is not None
    _assert_same(_pages(engine), live)
