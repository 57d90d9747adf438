"""The scoped reports behind the pages, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from dashboard_seed import DashSeed, seed_dashboard
from sqlalchemy import Engine

from audit import reports
from audit.domain import Action
from audit.store.access import AccessDenied, Principal, pseudonym
from audit.store.models import Role

WHOLE = reports.Period(dt.date(2026, 11, 16), dt.date(2026, 11, 18))


@pytest.fixture
def seed(engine: Engine) -> DashSeed:
    return seed_dashboard(engine)


def _who(role: Role, units: tuple[int, ...] | None) -> Principal:
    return Principal(user_id=None, username=role.value, role=role, unit_ids=units)


def test_the_one_pass_overview_agrees_with_the_store_table(engine: Engine, seed: DashSeed):
    officer = _who(Role.COMPLIANCE, None)
    data = reports.overview(engine, officer, WHOLE, None, WHOLE.end)
    expected = reports.store_table(engine, reports.ReportFilter(WHOLE))
    pd.testing.assert_frame_equal(data.table, expected)
    per_day = reports.messages_per_day(engine, reports.ReportFilter(WHOLE))
    pd.testing.assert_frame_equal(data.per_day, per_day)
    latest, week, month = data.windows
    assert latest.totals.messages == 2 and week.totals.messages == month.totals.messages == 12
    assert week.score_avg == pytest.approx(81.25) and week.scored == 2
    assert week.sla_rate == pytest.approx(2 / 3)


def test_a_picked_city_and_a_supervisor_scope_narrow_the_overview(engine: Engine, seed: DashSeed):
    chain = seed.chain
    officer = _who(Role.COMPLIANCE, None)
    picked = reports.overview(engine, officer, WHOLE, (chain.city,), WHOLE.end)
    assert reports.UNASSIGNED not in set(picked.table["store"])
    sup = _who(Role.SUPERVISOR, (chain.nanjing,))
    own = reports.overview(engine, sup, WHOLE, (chain.city,), WHOLE.end)
    assert list(own.table["store"]) == ["南京路店"]
    assert own.windows[-1].totals.messages == 9


def test_rankings_by_level_carry_scores_with_sample_sizes(engine: Engine, seed: DashSeed):
    officer = _who(Role.COMPLIANCE, None)
    f = reports.ReportFilter(WHOLE)
    stores = reports.store_ranking(engine, officer, f, "store").set_index("unit")
    assert stores.loc["南京路店", "scored"] == 1
    assert stores.loc["南京路店", "score_avg"] == pytest.approx(72.5)
    assert stores.loc["南京路店", "findings_per_1k"] == pytest.approx(5 * 1000 / 9)
    [city] = reports.store_ranking(engine, officer, f, "city").to_dict("records")
    assert (city["unit"], city["messages"], city["scored"]) == ("上海", 11, 2)
    assert city["score_avg"] == pytest.approx(81.25)
    # the city's rates are those of its conversations (as on the overview), not its stores' mean
    assert city["sla_rate"] == pytest.approx(2 / 3)
    by_store = stores.loc[["南京路店", "徐家汇店"], "sla_rate"]
    assert city["sla_rate"] != pytest.approx(by_store.mean())


def test_staff_names_by_role(engine: Engine, seed: DashSeed):
    f = reports.ReportFilter(WHOLE)
    officer = reports.staff_table(engine, _who(Role.COMPLIANCE, None), f)
    assert "张伟 (zhangwei)" in set(officer["staff"])
    analyst = reports.staff_table(engine, _who(Role.ANALYST, None), f)
    assert all(name.startswith("员工-") for name in analyst["staff"])
    assert "staff_id" not in analyst
    with pytest.raises(AccessDenied):
        reports.staff_table(engine, _who(Role.VIEWER, None), f)


def test_analysts_see_the_keyed_pseudonym_of_the_configured_key(
    engine: Engine, seed: DashSeed, monkeypatch: pytest.MonkeyPatch
):
    f = reports.ReportFilter(WHOLE)
    ids = list(reports.staff_table(engine, _who(Role.COMPLIANCE, None), f)["staff_id"])
    shown = {}
    for key in (b"k" * 24, b"q" * 24):
        monkeypatch.setenv("AUDIT_PRIVACY__PSEUDONYM_KEY", key.decode())
        analyst = reports.staff_table(engine, _who(Role.ANALYST, None), f)
        assert list(analyst["staff"]) == [pseudonym("staff", i, key) for i in ids]
        shown[key] = set(analyst["staff"])
    assert len(ids) >= 2 and not shown[b"k" * 24] & shown[b"q" * 24]


def test_tags_channels_and_rules(engine: Engine, seed: DashSeed):
    officer = _who(Role.COMPLIANCE, None)
    f = reports.ReportFilter(WHOLE)
    tags = reports.tag_table(engine, officer, f).set_index("tag")
    assert tags.loc["VIP", "group"] == "客户等级"
    assert tags.loc["5G", "negative_rate"] == pytest.approx(1.0)
    channels = reports.channel_table(engine, officer, f).set_index("channel")
    assert channels.loc["ad_5g", "acquired"] == 1
    rules = reports.rule_table(engine, officer, f).set_index("rule")
    assert rules.loc["diversion.加我微信", "hits"] == 1
    with pytest.raises(AccessDenied):
        reports.rule_table(engine, _who(Role.VIEWER, None), f)
    with pytest.raises(AccessDenied):
        reports.alert_queue_page(engine, _who(Role.ANALYST, None), reports.QueueQuery())
    with pytest.raises(AccessDenied):
        reports.open_conversation(engine, _who(Role.ANALYST, None), seed.conv_nanjing)


def test_times_are_shown_in_the_configured_zone(engine: Engine, seed: DashSeed):
    officer = _who(Role.COMPLIANCE, None)
    assert reports.open_conversation(engine, officer, seed.conv_nanjing) is not None
    viewed = (Action.CONVERSATION_VIEW, Action.CONVERSATION_DENIED)
    utc = reports.audit_trail(engine, officer, viewed, tz="UTC")
    china = reports.audit_trail(engine, officer, viewed)
    assert len(utc) == 1 and list(china["at"] - utc["at"]) == [pd.Timedelta(hours=8)]
    queue_utc = reports.alert_queue_page(engine, officer, reports.QueueQuery(states=(), tz="UTC"))
    queue = reports.alert_queue_page(engine, officer, reports.QueueQuery(states=()))
    assert queue.total == 3 and list(queue.rows["alert_id"]) == list(queue_utc.rows["alert_id"])
    for column in ("at", "raised_at", "deadline"):
        shift = set(queue.rows[column] - queue_utc.rows[column])
        assert shift == {pd.Timedelta(hours=8)}, column
    conv = reports.conversation_alerts(engine, officer, seed.conv_nanjing).rows
    conv_utc = reports.conversation_alerts(engine, officer, seed.conv_nanjing, "UTC").rows
    assert list(conv["alert_id"]) == [seed.alert_nanjing]
    assert set(conv["at"] - conv_utc["at"]) == {pd.Timedelta(hours=8)}
    with pytest.raises(ValueError, match="the period is in UTC"):
        reports.QueueQuery(period=reports.Period(WHOLE.start, WHOLE.end, "UTC"))
