"""The queries behind the staff, customer and quality pages, on SQLite and PostgreSQL.

On the seed of ``dashboard_seed.py`` (see ``test_drilldown_pages.py`` for what it holds); the
quality clock is the default one: 09:00-21:00 every day, China time, SLA 5 minutes.
"""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest
from dashboard_seed import DashSeed, seed_dashboard
from sqlalchemy import Engine, select, update

from audit import reports
from audit.quality.metrics import BusinessClock
from audit.reports import customer, quality, staff
from audit.store.access import AccessDenied, Principal, pseudonym
from audit.store.daily import refresh_daily
from audit.store.db import session_scope
from audit.store.models import Alert, Customer, Follow, Role, Staff

TZ = "Asia/Shanghai"
WHOLE = reports.ReportFilter(reports.Period(dt.date(2026, 11, 16), dt.date(2026, 11, 18), TZ))
CLOCK = BusinessClock.parse("09:00-21:00", range(1, 8), TZ)
SLA = 5.0
NOW = dt.datetime(2026, 11, 18, 3, 0, tzinfo=dt.UTC)  # 11:00 China time, 54 minutes after 10:06


@pytest.fixture
def seed(engine: Engine) -> DashSeed:
    return seed_dashboard(engine)


def _who(role: Role, units: tuple[int, ...] | None = None) -> Principal:
    # a named user (user_id): only named users may see personal data unmasked
    return Principal(user_id=1, username=role.value, role=role, unit_ids=units)


def _ids(engine: Engine) -> tuple[dict[str, int], dict[str, int]]:
    with engine.connect() as conn:
        people = dict(conn.execute(select(Staff.userid, Staff.id)).all())
        customers = dict(conn.execute(select(Customer.external_userid, Customer.id)).all())
    return people, customers


# --------------------------------------------------------------------------- staff


def test_a_staff_profile_counts_their_conversations_and_pools_response_times(
    engine: Engine, seed: DashSeed
):
    people, customers = _ids(engine)
    p = staff.staff_profile(engine, _who(Role.COMPLIANCE), people["zhangwei"], WHOLE, SLA)
    assert p is not None
    assert (p.name, p.store, p.store_id) == (
        "张伟 (zhangwei)",
        "华东区 / 上海 / 南京路店",
        seed.chain.nanjing,
    )
    c = p.conversations
    assert list(c["customer_id"]) == [customers["wmcust1"], customers["wmcust0"]]
    assert list(c["customer"]) == ["客户1", "客户0"]
    assert list(c["messages"]) == [2, 7] and list(c["findings"]) == [1, 4]
    assert list(c["alerts"]) == [1, 1] and list(c["unanswered"]) == [False, False]
    assert [str(t) for t in c["started_at"]] == ["2026-11-16 23:30:00", "2026-11-16 01:00:00"]
    assert math.isnan(c["score"].iloc[0]) and c["score"].iloc[1] == 72.5
    assert (p.findings, p.scored, p.score_avg) == (5, 1, 72.5)
    # bursts answered in 60 s and 600 s of business time: one within 5 minutes
    assert p.responses == {
        "responses": 2,
        "within_sla": 1,
        "sla_rate": 0.5,
        "response_p50_min": pytest.approx(5.5),
        "response_p90_min": pytest.approx(9.1),
    }
    with engine.connect() as conn:
        abuse = conn.scalar(select(Alert.id).where(Alert.category == "abuse"))
    assert list(p.alerts["alert_id"]) == sorted([seed.alert_nanjing, abuse], reverse=True)
    assert set(p.alerts["category"]) == {"隐私泄露", "辱骂"}
    assert set(p.alerts["state"]) == {"待处理", "已确认"}


def test_a_staff_profile_is_scoped_and_pseudonymised(engine: Engine, seed: DashSeed):
    people, customers = _ids(engine)
    nanjing = _who(Role.SUPERVISOR, (seed.chain.nanjing,))
    assert staff.staff_profile(engine, nanjing, people["lina"], WHOLE, SLA) is None
    assert staff.staff_profile(engine, nanjing, 10**6, WHOLE, SLA) is None
    assert staff.staff_profile(engine, nanjing, people["zhangwei"], WHOLE, SLA) is not None
    # a city supervisor sees both stores' staff
    city = _who(Role.SUPERVISOR, (seed.chain.city,))
    assert staff.staff_profile(engine, city, people["lina"], WHOLE, SLA) is not None
    analyst = staff.staff_profile(engine, _who(Role.ANALYST), people["zhangwei"], WHOLE, SLA)
    assert analyst is not None
    assert analyst.name == pseudonym("staff", people["zhangwei"])
    assert list(analyst.conversations["customer"]) == [
        pseudonym("customer", customers["wmcust1"]),
        pseudonym("customer", customers["wmcust0"]),
    ]
    with pytest.raises(AccessDenied):
        staff.staff_profile(engine, _who(Role.VIEWER), people["zhangwei"], WHOLE, SLA)


# --------------------------------------------------------------------------- customer


def test_a_customer_profile_as_compliance_and_as_a_supervisor(engine: Engine, seed: DashSeed):
    people, customers = _ids(engine)
    with session_scope(engine) as s:
        s.execute(
            update(Follow)
            .where(Follow.customer_id == customers["wmcust0"])
            .values(remark="王女士 13912345678")
        )
    officer = customer.customer_profile(engine, _who(Role.COMPLIANCE), customers["wmcust0"], TZ)
    assert officer is not None
    assert (officer.name, officer.wecom_id, officer.tags) == (
        "客户0",
        "wmcust0",
        (("客户等级", "VIP"),),
    )
    assert officer.follows.to_dict("records") == [
        {
            "staff_id": people["zhangwei"],
            "staff": "张伟 (zhangwei)",
            "store": "南京路店",
            "channel": "store_qr",
            "remark": "王女士 13912345678",  # compliance may unmask, as on the conversation page
            "added_at": pd.Timestamp("2026-11-15 09:00:00"),
        }
    ]
    assert list(officer.conversations["conversation_id"]) == [seed.conv_nanjing]
    assert officer.total_conversations == 1
    row = officer.conversations.iloc[0]
    assert (row["staff"], row["store"], row["messages"], row["findings"], row["alerts"]) == (
        "张伟 (zhangwei)",
        "南京路店",
        7,
        4,
        1,
    )
    assert row["score"] == 72.5
    supervisor = _who(Role.SUPERVISOR, (seed.chain.nanjing,))
    mine = customer.customer_profile(engine, supervisor, customers["wmcust0"], TZ)
    assert mine is not None and mine.name == "客户0"
    [remark] = mine.follows["remark"]
    assert "13912345678" not in remark and remark.startswith("王女士")  # the masker's phone rule
    assert customer.customer_profile(engine, supervisor, customers["wmcust2"], TZ) is None
    assert customer.customer_profile(engine, supervisor, 10**6, TZ) is None


def test_a_customer_profile_for_an_analyst_is_pseudonyms_only(engine: Engine, seed: DashSeed):
    people, customers = _ids(engine)
    p = customer.customer_profile(engine, _who(Role.ANALYST), customers["wmcust0"], TZ)
    assert p is not None
    assert p.name == p.wecom_id == pseudonym("customer", customers["wmcust0"])
    assert list(p.follows["staff"]) == [pseudonym("staff", people["zhangwei"])]
    assert list(p.follows["remark"]) == [""]
    assert list(p.conversations["staff"]) == [pseudonym("staff", people["zhangwei"])]
    with pytest.raises(AccessDenied):
        customer.customer_profile(engine, _who(Role.VIEWER), customers["wmcust0"], TZ)


# --------------------------------------------------------------------------- quality


def test_waiting_customers_are_timed_in_business_minutes(engine: Engine, seed: DashSeed):
    people, customers = _ids(engine)
    officer = _who(Role.COMPLIANCE)
    waiting = quality.waiting_now(engine, officer, WHOLE, CLOCK, SLA, NOW)
    assert waiting.drop(columns="since").to_dict("records") == [
        {
            "conversation_id": seed.conv_xujiahui,
            "staff_id": people["lina"],
            "staff": "李娜 (lina)",
            "store": "徐家汇店",
            "customer_id": customers["wmcust2"],
            "customer": "客户2",
            "waiting_min": 54.0,
            "overdue": True,
        }
    ]
    assert str(waiting["since"].iloc[0]) == "2026-11-18 10:06:00"
    # next morning 09:30: 10:06-21:00 and 09:00-09:30, the night does not count
    morning = dt.datetime(2026, 11, 19, 1, 30, tzinfo=dt.UTC)
    later = quality.waiting_now(engine, officer, WHOLE, CLOCK, SLA, morning)
    assert list(later["waiting_min"]) == [654.0 + 30.0]
    # two minutes after: not yet overdue
    soon = dt.datetime(2026, 11, 18, 2, 8, tzinfo=dt.UTC)
    assert list(quality.waiting_now(engine, officer, WHOLE, CLOCK, SLA, soon)["overdue"]) == [False]
    nanjing = _who(Role.SUPERVISOR, (seed.chain.nanjing,))
    assert quality.waiting_now(engine, nanjing, WHOLE, CLOCK, SLA, NOW).empty
    assert quality.waiting_now(engine, officer, WHOLE, CLOCK, SLA, NOW, seed.chain.nanjing).empty
    with pytest.raises(AccessDenied):
        quality.waiting_now(engine, _who(Role.VIEWER), WHOLE, CLOCK, SLA, NOW)


def test_response_times_per_staff_member(engine: Engine, seed: DashSeed):
    people, _ = _ids(engine)
    table = quality.staff_quality(engine, _who(Role.COMPLIANCE), WHOLE, CLOCK, SLA, NOW)
    nan = float("nan")
    expected = pd.DataFrame(
        {
            "staff_id": [people["lina"], people["zhangwei"]],
            "staff": ["李娜 (lina)", "张伟 (zhangwei)"],
            "store": ["徐家汇店", "南京路店"],
            "conversations": [1, 1],
            "responses": [1, 2],
            "within_sla": [1, 1],
            "sla_rate": [1.0, 0.5],
            "response_p50_min": [0.5, 5.5],
            "response_p90_min": [0.5, 9.1],
            "unanswered": [1, 0],
            "overdue": [1, 0],
            "waiting_p50_min": [54.0, nan],
            "waiting_p90_min": [54.0, nan],
        }
    )
    for column in ("staff_id", "conversations", "responses", "within_sla", "unanswered"):
        expected[column] = expected[column].astype("int64")
    expected["overdue"] = expected["overdue"].astype("int64")
    pd.testing.assert_frame_equal(table, expected)
    waiting = quality.waiting_now(engine, _who(Role.COMPLIANCE), WHOLE, CLOCK, SLA, NOW)
    again = quality.staff_quality(
        engine, _who(Role.COMPLIANCE), WHOLE, CLOCK, SLA, NOW, waiting=waiting
    )
    pd.testing.assert_frame_equal(again, expected)  # the page passes the waiting it has
    analyst = quality.staff_quality(engine, _who(Role.ANALYST), WHOLE, CLOCK, SLA, NOW)
    assert list(analyst["staff"]) == [
        pseudonym("staff", people["lina"]),
        pseudonym("staff", people["zhangwei"]),
    ]


def _trend_expected(messages: list[int], findings: list[int], alerts: list[int]) -> pd.DataFrame:
    nan = float("nan")
    frame = pd.DataFrame(
        {
            "day": [dt.date(2026, 11, 16), dt.date(2026, 11, 17), dt.date(2026, 11, 18)],
            "messages": messages,
            "findings": findings,
            "findings_per_1k": [
                f * 1000 / m if m else nan for f, m in zip(findings, messages, strict=True)
            ],
            "alerts": alerts,
            "alerts_open": [1, 0, alerts[2]],
        }
    )
    return frame


@pytest.mark.parametrize("fresh_tables", [False, True])
def test_the_daily_trend_reuses_the_figures(engine: Engine, seed: DashSeed, fresh_tables: bool):
    if fresh_tables:  # the same answers from the pre-aggregated tables
        refresh_daily(engine, tz=TZ)
    officer = _who(Role.COMPLIANCE)
    trend = quality.daily_trend(engine, officer, WHOLE)
    assert list(trend.columns) == quality.TREND_COLUMNS
    counts = _trend_expected([8, 2, 2], [4, 2, 1], [1, 1, 1])
    pd.testing.assert_frame_equal(trend[counts.columns], counts, check_dtype=False)
    assert list(trend["conversations"]) == [2, 0, 1] and list(trend["scored"]) == [1, 0, 1]
    assert trend["score_avg"].tolist()[::2] == [72.5, 90.0]
    assert trend["sla_rate"].tolist()[::2] == [0.5, 1.0]
    assert trend["negative_rate"].tolist()[::2] == [0.0, 1.0]
    assert math.isnan(trend["score_avg"].iloc[1]) and math.isnan(trend["sla_rate"].iloc[1])

    # one store (picked, or the scope of its supervisor): the unassigned message is not in it
    nanjing = _who(Role.SUPERVISOR, (seed.chain.nanjing,))
    for who, unit in ((officer, seed.chain.nanjing), (nanjing, None)):
        mine = quality.daily_trend(engine, who, WHOLE, unit)
        counts = _trend_expected([8, 1, 0], [4, 1, 0], [1, 1, 0])
        pd.testing.assert_frame_equal(mine[counts.columns], counts, check_dtype=False)
        assert list(mine["scored"]) == [1, 0, 0]
    # a supervisor who picks another store gets nothing of it
    other = quality.daily_trend(engine, nanjing, WHOLE, seed.chain.xujiahui)
    assert list(other["messages"]) == [0, 0, 0] and list(other["conversations"]) == [0, 0, 0]


def test_store_choices_follow_the_scope(engine: Engine, seed: DashSeed):
    chain = seed.chain
    assert quality.store_choices(engine, _who(Role.COMPLIANCE)) == [  # the org tree's order
        (chain.nanjing, "华东区 / 上海 / 南京路店"),
        (chain.xujiahui, "华东区 / 上海 / 徐家汇店"),
        (chain.lujiazui, "华东区 / 上海 / 陆家嘴店"),
    ]
    nanjing = _who(Role.SUPERVISOR, (chain.nanjing,))
    assert quality.store_choices(engine, nanjing) == [(chain.nanjing, "华东区 / 上海 / 南京路店")]
