"""The pre-aggregated tables (:mod:`audit.store.daily`): the reports read from them give
exactly what the live computation gives, on SQLite and PostgreSQL; an incremental refresh
leaves the same rows as a full rebuild; stale tables are never read."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, delete, func, select, update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "dashboards"))

from dashboard_seed import DashSeed, seed_dashboard

from audit import reports
from audit.config import QualityConfig
from audit.quality.metrics import BusinessClock
from audit.reports import quality
from audit.store import daily
from audit.store.access import Principal
from audit.store.db import session_scope, stage_mark
from audit.store.models import (
    Conversation,
    ConversationFact,
    Envelope,
    Finding,
    Message,
    Role,
    ScanRun,
    Score,
    SenderKind,
    Severity,
    StoreDay,
    StoreDayFinding,
)

pytestmark = pytest.mark.slow  # long-running: scheduled first (tests/conftest.py)

WHOLE = reports.Period(dt.date(2026, 11, 14), dt.date(2026, 11, 22))
ONE_DAY = reports.Period(dt.date(2026, 11, 16), dt.date(2026, 11, 16))
QUALITY = QualityConfig()
CLOCK = BusinessClock.from_config(QUALITY)
WAITING_AT = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)  # the quality page's "now"
# the dormant list at several moments: every pair silent; a "now" before some of the
# messages (read from the messages, not the facts); one page of one pair, and past the end
DORMANT = (
    (dt.datetime(2026, 12, 31, tzinfo=dt.UTC), 30, 1, None),
    (dt.datetime(2026, 12, 31, tzinfo=dt.UTC), 30, 2, 1),
    (dt.datetime(2026, 12, 31, tzinfo=dt.UTC), 30, 9, 1),
    (dt.datetime(2026, 11, 19, 12, 0, tzinfo=dt.UTC), 1, 1, None),
    (dt.datetime(2026, 11, 17, tzinfo=dt.UTC), 1, 1, None),
)


@pytest.fixture
def seed(engine: Engine) -> DashSeed:
    return seed_dashboard(engine)


def _live(engine: Engine) -> Engine:
    """The same database, every report computed from the live tables."""
    return reports.live(engine)


def _who(role: Role, units: tuple[int, ...] | None) -> Principal:
    return Principal(user_id=None, username=role.value, role=role, unit_ids=units)


def _every_report(engine: Engine, seed: DashSeed) -> dict[str, Any]:
    """What the pages ask for, for several people, periods and levels."""
    chain = seed.chain
    people = {
        "compliance": _who(Role.COMPLIANCE, None),
        "supervisor": _who(Role.SUPERVISOR, (chain.nanjing,)),
        "analyst": _who(Role.ANALYST, (chain.city,)),
    }
    out: dict[str, Any] = {}
    for name, who in people.items():
        for label, period in (("whole", WHOLE), ("day", ONE_DAY)):
            f = reports.ReportFilter(period)
            key = f"{name}/{label}"
            for level in reports.LEVELS:
                out[f"{key}/ranking/{level}"] = reports.store_ranking(engine, who, f, level)
            out[f"{key}/staff"] = reports.staff_table(engine, who, f)
            out[f"{key}/staff/nanjing"] = reports.staff_table(engine, who, f, chain.nanjing)
            out[f"{key}/tags"] = reports.tag_table(engine, who, f)
            out[f"{key}/channels"] = reports.channel_table(engine, who, f)
            out[f"{key}/stores"] = reports.scoped_store_table(engine, who, f)
            out[f"{key}/per_day"] = reports.scoped_messages_per_day(engine, who, f)
            picked = reports.ReportFilter(period, (chain.xujiahui,))
            out[f"{key}/stores/picked"] = reports.scoped_store_table(engine, who, picked)
            if who.sees_people:
                for unit in (None, chain.nanjing):
                    waiting = quality.waiting_now(
                        engine, who, f, CLOCK, QUALITY.sla_minutes, WAITING_AT, unit
                    )
                    out[f"{key}/waiting/{unit}"] = waiting
                    out[f"{key}/staff_quality/{unit}"] = quality.staff_quality(
                        engine, who, f, CLOCK, QUALITY.sla_minutes, WAITING_AT, unit, waiting
                    )
            out[f"{key}/trend"] = quality.daily_trend(engine, who, f)
            out[f"{key}/trend/nanjing"] = quality.daily_trend(engine, who, f, chain.nanjing)
            for units in (None, (chain.city,)):
                view = reports.overview(engine, who, period, units, period.end)
                out[f"{key}/overview/{units}"] = (
                    view.windows,
                    view.table,
                    view.per_day,
                    view.movers,
                )
        for now, days, page, size in DORMANT:
            found = reports.dormant_page(engine, who, days, page, size, now=now)
            assert found is not None
            label = f"{name}/dormant/{now:%m-%d}/{days}/{page}/{size}"
            out[f"{label}/rows"] = found.rows
            out[f"{label}/total"] = [found.total, found.page]
    return out


def _assert_same(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        other = got[key]
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(other, value, obj=key)
        elif isinstance(value, tuple):  # an overview
            assert other[0] == value[0], key  # the windows: totals, scores, SLA
            for mine, theirs in zip(other[1:], value[1:], strict=True):
                pd.testing.assert_frame_equal(mine, theirs, obj=key)
        else:
            assert other == value, key


def _rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The derived tables' contents, without surrogate ids, in a stable order."""
    out = {}
    with engine.connect() as conn:
        for table in (ConversationFact, StoreDay, StoreDayFinding):
            columns = [c for c in table.__table__.columns if c.name != "id"]
            rows = conn.execute(select(*columns)).all()
            out[table.__tablename__] = sorted(
                (tuple(r) for r in rows), key=lambda r: tuple((v is None, str(v)) for v in r)
            )
    return out


def _utc(year: int, month: int, day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def _add_chats(engine: Engine, seed: DashSeed) -> None:
    """New data of every kind: a message that extends a conversation on a new day, a new
    conversation with a finding and a score, a message without a conversation."""
    with session_scope(engine) as s:
        run_id = s.scalar(select(func.max(ScanRun.id)))
        c1 = s.get(Conversation, seed.conv_nanjing)
        assert c1 is not None and run_id is not None
        n = (s.scalar(select(func.max(Envelope.id))) or 0) + 1

        def message(conv: Conversation | None, at: dt.datetime, text: str) -> Message:
            nonlocal n
            env = Envelope(source="test", seq=5000 + n, msgid=f"new{n}")
            s.add(env)
            s.flush()
            msg = Message(
                envelope_id=env.id,
                msgid=env.msgid,
                seq=5000 + n,
                action="send",
                msgtype="text",
                sender="zhangwei",
                sender_kind=SenderKind.STAFF,
                msgtime=at,
                text=text,
                conversation_id=conv.id if conv else None,
            )
            s.add(msg)
            s.flush()
            n += 1
            return msg

        message(c1, _utc(2026, 11, 19, 20, 0), "后来的一条")  # China 11-20
        conv = Conversation(
            key="single:zhangwei:new:1",
            thread="single:zhangwei:new",
            kind="single",
            staff_id=c1.staff_id,
            customer_id=c1.customer_id,
            org_unit_id=c1.org_unit_id,
            started_at=_utc(2026, 11, 20, 17, 0),  # China 11-21 01:00
            ended_at=_utc(2026, 11, 20, 17, 5),
            message_count=2,
            staff_messages=2,
        )
        s.add(conv)
        s.flush()
        message(conv, _utc(2026, 11, 20, 17, 0), "你好")
        bad = message(conv, _utc(2026, 11, 20, 17, 5), "加我微信")
        s.add(
            Finding(
                message_id=bad.id,
                conversation_id=conv.id,
                scan_run_id=run_id,
                category="diversion",
                rule="diversion.加我微信",
                severity=Severity.HIGH,
                start=0,
                end=4,
                matched="加我微信",
            )
        )
        s.add(
            Score(
                conversation_id=conv.id,
                scorecard_version="v1",
                score=55.0,
                deductions=[],
                metrics={
                    "within_sla": 0,
                    "responses": 1,
                    "response_median_seconds": 600.0,
                    "scores_max": {"customer_negative": 0.7},
                },
            )
        )
        message(None, _utc(2026, 11, 21, 3, 0), "还没有会话")
        c1.message_count += 1


def test_reports_from_the_tables_equal_the_live_ones(engine: Engine, seed: DashSeed) -> None:
    with engine.connect() as conn:
        assert not daily.is_fresh(conn)  # never refreshed: the reports compute live
    expected = _every_report(engine, seed)
    stats = daily.refresh_daily(engine)
    assert stats.mode == "full"
    with engine.connect() as conn:
        assert daily.is_fresh(conn)
        assert (conn.scalar(select(func.count()).select_from(StoreDay)) or 0) > 0
    _assert_same(_every_report(engine, seed), expected)
    _assert_same(_every_report(_live(engine), seed), expected)
    # what the quality page and the dormant list compare is there to compare
    assert len(expected["compliance/whole/waiting/None"]) == 1
    assert expected["compliance/whole/staff_quality/None"]["responses"].sum() == 3
    assert expected["compliance/dormant/12-31/30/1/None/total"] == [3, 1]
    assert expected["compliance/dormant/12-31/30/1/None/rows"][
        "unanswered_staff_messages"
    ].tolist() == [1, 1, 1]


def _quality_and_dormant(engine: Engine) -> dict[str, Any]:
    who = _who(Role.COMPLIANCE, None)
    f = reports.ReportFilter(WHOLE)
    sla = QUALITY.sla_minutes
    waiting = quality.waiting_now(engine, who, f, CLOCK, sla, WAITING_AT)
    found = reports.dormant_page(engine, who, 30, now=dt.datetime(2026, 12, 31, tzinfo=dt.UTC))
    assert found is not None
    return {
        "waiting": waiting,
        "staff": quality.staff_quality(engine, who, f, CLOCK, sla, WAITING_AT, None, waiting),
        "dormant": found.rows,
    }


def test_the_quality_page_and_the_dormant_list_read_the_facts(
    engine: Engine, seed: DashSeed
) -> None:
    """Facts changed behind the refresh's back show on the default engine only: the pages'
    fast paths read them (so the comparisons above compare two computations)."""
    daily.refresh_daily(engine)
    truth = _quality_and_dormant(engine)
    _assert_same(_quality_and_dormant(_live(engine)), truth)
    with session_scope(engine) as s:
        s.execute(
            update(ConversationFact)
            .where(ConversationFact.unanswered_since.is_not(None))
            .values(unanswered_since="2026-11-18T00:00:00+00:00")
        )
        s.execute(
            update(ConversationFact)
            .where(ConversationFact.response_business_s.is_not(None))
            .values(response_business_s="[1.5]")
        )
        day = 86_400_000_000  # microseconds
        s.execute(
            update(ConversationFact)
            .where(ConversationFact.last_customer_us.is_not(None))
            .values(
                last_customer_us=ConversationFact.last_customer_us - day,
                pair_last_customer_us=ConversationFact.pair_last_customer_us - day,
            )
        )
    with engine.connect() as conn:
        assert daily.is_fresh(conn)
    tampered = _quality_and_dormant(engine)
    assert tampered["waiting"]["since"].tolist() != truth["waiting"]["since"].tolist()
    assert set(tampered["staff"]["response_p50_min"]) == {1.5 / 60}
    assert (
        tampered["dormant"]["silent_days"].tolist()
        == (truth["dormant"]["silent_days"] + 1).tolist()
    )
    _assert_same(_quality_and_dormant(_live(engine)), truth)


def test_a_live_engine_ignores_fresh_tables(engine: Engine, seed: DashSeed) -> None:
    """Tampering with a fresh pre-aggregated row shows on the default engine only."""
    daily.refresh_daily(engine)

    def messages(eng: Engine) -> int:
        counts = reports.daily_counts(eng, reports.ReportFilter(WHOLE))
        return sum(counts.messages.values())

    truth = messages(engine)
    assert truth > 0
    with session_scope(engine) as s:
        s.execute(update(StoreDay).values(messages=StoreDay.messages + 1000))
    with engine.connect() as conn:
        assert daily.is_fresh(conn)
    assert messages(engine) > truth
    assert messages(_live(engine)) == truth


def test_stale_tables_are_not_read_and_an_incremental_refresh_catches_up(
    engine: Engine, seed: DashSeed
) -> None:
    daily.refresh_daily(engine)
    _add_chats(engine, seed)
    with engine.connect() as conn:
        assert not daily.is_fresh(conn)
    expected = _every_report(_live(engine), seed)
    _assert_same(_every_report(engine, seed), expected)  # stale: computed live

    stats = daily.refresh_daily(engine)
    assert stats.mode == "incremental"
    assert stats.days == 3  # 11-16 (conv 1 started), 11-20 (its new message), 11-21
    assert daily.refresh_daily(engine).mode == "none"  # idempotent
    _assert_same(_every_report(engine, seed), expected)

    incremental = _rows(engine)
    assert daily.refresh_daily(engine, full=True).mode == "full"
    assert _rows(engine) == incremental


def test_removed_findings_and_a_new_scorecard_make_it_rebuild(
    engine: Engine, seed: DashSeed
) -> None:
    daily.refresh_daily(engine)
    with session_scope(engine) as s:  # what a full rescan does with a word gone from the lists
        gone = s.scalar(select(func.max(Finding.id)).where(Finding.category == "privacy"))
        s.execute(delete(Finding).where(Finding.id == gone))
    stats = daily.refresh_daily(engine)
    assert (stats.mode, stats.reason) == ("full", "findings were removed")
    expected = _every_report(_live(engine), seed)
    _assert_same(_every_report(engine, seed), expected)

    with session_scope(engine) as s:  # a new card scores one conversation so far
        s.add(
            Score(
                conversation_id=seed.conv_xujiahui,
                scorecard_version="v2",
                score=40.0,
                deductions=[],
                metrics={"within_sla": 0, "responses": 2, "response_median_seconds": 5.0},
            )
        )
    stats = daily.refresh_daily(engine)
    assert stats.mode == "full" and "v2" in stats.reason
    expected = _every_report(_live(engine), seed)
    assert expected["compliance/whole/ranking/store"]["scored"].sum() == 1
    _assert_same(_every_report(engine, seed), expected)


def test_an_empty_database_refreshes_to_nothing(engine: Engine) -> None:
    assert daily.refresh_daily(engine).mode == "none"
    with engine.connect() as conn:
        assert daily.is_fresh(conn)
    assert _rows(engine) == {"conversation_facts": [], "store_day": [], "store_day_findings": []}


def test_messages_sessionized_later_move_to_their_store(engine: Engine, seed: DashSeed) -> None:
    daily.refresh_daily(engine)
    with session_scope(engine) as s:  # the sessionizer places a message the refresh has seen
        orphan = s.scalar(select(Message).where(Message.conversation_id.is_(None)))
        assert orphan is not None
        orphan.conversation_id = seed.conv_xujiahui
        stage_mark(s, daily.SESSIONIZE_STAGE).seq = orphan.id
    with engine.connect() as conn:
        assert not daily.is_fresh(conn)
    assert daily.refresh_daily(engine).mode == "incremental"
    expected = _every_report(_live(engine), seed)
    assert reports.UNASSIGNED not in set(expected["compliance/whole/stores"]["store"])
    _assert_same(_every_report(engine, seed), expected)
    incremental = _rows(engine)
    daily.refresh_daily(engine, full=True)
    assert _rows(engine) == incremental
