"""The paged alert queue over the chain of ``seed_chain.py``, on SQLite and PostgreSQL.

The queue is also a conversation's alert list (``conversation_id``, oldest first).

The three alerts: a1 privacy HIGH open (南京路店, message 11-15 17:00 UTC), a2 abuse CRITICAL
confirmed (南京路店 through its conversation, 11-16 16:10), a3 complaint MEDIUM open (徐家汇店,
11-18 02:00). They are raised at fixed times before ``NOW`` so that a1 is past its 8-hour
deadline and a3 (24 hours) is not; a2 is no longer pending.
"""

from __future__ import annotations

import datetime as dt

import pytest
from seed_chain import Seeded, seed_chain
from sqlalchemy import Engine, select

from audit.config import ReviewHoursConfig
from audit.reports.alerts import QueueQuery, alert_queue_page, review_hours
from audit.reports.common import Period
from audit.reports.conversation import conversation_alerts
from audit.store.access import AccessDenied, Principal
from audit.store.db import session_scope
from audit.store.models import Alert, AlertState, Finding, Role, Severity

NOW = dt.datetime(2026, 11, 20, 0, 0, tzinfo=dt.UTC)
RAISED = {"a1": NOW - dt.timedelta(hours=9), "a2": NOW - dt.timedelta(hours=100)}
RAISED["a3"] = NOW - dt.timedelta(hours=23)
ANY = ()  # every state


@pytest.fixture
def seeded(engine: Engine) -> tuple[Seeded, dict[str, int]]:
    chain = seed_chain(engine)
    with session_scope(engine) as s:
        ids = {}
        for alert in s.scalars(select(Alert)):
            alert.created_at = RAISED[alert.dedupe_key]
            ids[alert.dedupe_key] = alert.id
    return chain, ids


def _who(role: Role, units: tuple[int, ...] | None) -> Principal:
    return Principal(user_id=None, username=role.value, role=role, unit_ids=units)


def _page(engine: Engine, who: Principal, **kw: object):  # type: ignore[no-untyped-def]
    query = QueueQuery(**{"states": ANY, **kw})  # type: ignore[arg-type]
    return alert_queue_page(engine, who, query, review_hours(), now=NOW)


def _keys(page, ids: dict[str, int]) -> list[str]:  # type: ignore[no-untyped-def]
    by_id = {v: k for k, v in ids.items()}
    return [by_id[int(i)] for i in page.rows["alert_id"]]


COMPLIANCE = _who(Role.COMPLIANCE, None)


@pytest.mark.parametrize(
    ("sort", "descending", "expected"),
    [
        ("time", True, ["a3", "a2", "a1"]),
        ("time", False, ["a1", "a2", "a3"]),
        ("severity", True, ["a2", "a1", "a3"]),
        ("store", False, ["a1", "a2", "a3"]),
        ("store", True, ["a3", "a2", "a1"]),
        ("category", False, ["a2", "a3", "a1"]),
        ("state", False, ["a2", "a3", "a1"]),
    ],
)
def test_when_sorted_then_rows_in_that_order(
    engine: Engine, seeded: tuple[Seeded, dict[str, int]], sort: str, descending: bool, expected
):
    _, ids = seeded
    page = _page(engine, COMPLIANCE, sort=sort, descending=descending)
    assert _keys(page, ids) == expected
    assert (page.total, page.page, page.pages) == (3, 1, 1)


def test_when_paged_then_true_total_and_pages_do_not_overlap(
    engine: Engine, seeded: tuple[Seeded, dict[str, int]]
):
    _, ids = seeded
    first = _page(engine, COMPLIANCE, sort="time", page_size=2, page=1)
    second = _page(engine, COMPLIANCE, sort="time", page_size=2, page=2)
    assert (first.total, first.pages, _keys(first, ids)) == (3, 2, ["a3", "a2"])
    assert (second.total, second.page, _keys(second, ids)) == (3, 2, ["a1"])
    past_the_end = _page(engine, COMPLIANCE, sort="time", page_size=2, page=9)
    assert (past_the_end.page, _keys(past_the_end, ids)) == (2, ["a1"])


def test_overdue_is_marked_counted_and_filterable(
    engine: Engine, seeded: tuple[Seeded, dict[str, int]]
):
    _, ids = seeded
    page = _page(engine, COMPLIANCE, sort="time")
    assert page.overdue == 1
    assert dict(zip(_keys(page, ids), page.rows["overdue"], strict=True)) == {
        "a3": False,
        "a2": False,
        "a1": True,
    }
    # deadlines in China time: a1 raised 11-19 15:00 UTC + 8 h = 11-19 23:00 UTC = 11-20 07:00
    a1 = page.rows[page.rows["alert_id"] == ids["a1"]].iloc[0]
    assert a1["deadline"].to_pydatetime() == dt.datetime(2026, 11, 20, 7, 0)
    late = _page(engine, COMPLIANCE, overdue_only=True)
    assert (late.total, late.overdue, _keys(late, ids)) == (1, 1, ["a1"])


def test_deadlines_come_from_the_configuration(
    engine: Engine, seeded: tuple[Seeded, dict[str, int]]
):
    _, ids = seeded
    hours = review_hours(ReviewHoursConfig(high=10, medium=12))  # a1 now in time, a3 late
    page = alert_queue_page(engine, COMPLIANCE, QueueQuery(overdue_only=True), hours, now=NOW)
    assert (page.total, _keys(page, ids)) == (1, ["a3"])


def test_a_supervisor_pages_through_their_store_only(
    engine: Engine, seeded: tuple[Seeded, dict[str, int]]
):
    chain, ids = seeded
    nanjing = _page(engine, _who(Role.SUPERVISOR, (chain.nanjing,)), sort="time")
    assert (nanjing.total, _keys(nanjing, ids)) == (2, ["a2", "a1"])
    assert set(nanjing.rows["store"]) == {"南京路店"}
    xujiahui = _page(engine, _who(Role.SUPERVISOR, (chain.xujiahui,)), sort="time")
    assert (xujiahui.total, xujiahui.overdue, _keys(xujiahui, ids)) == (1, 0, ["a3"])
    nobody = _page(engine, _who(Role.SUPERVISOR, ()), sort="time")
    assert (nobody.total, nobody.pages, list(nobody.rows["alert_id"])) == (0, 1, [])


def test_filters_narrow_the_total(engine: Engine, seeded: tuple[Seeded, dict[str, int]]):
    chain, ids = seeded
    open_only = _page(engine, COMPLIANCE, states=("open",), sort="time")
    assert (open_only.total, _keys(open_only, ids)) == (2, ["a3", "a1"])
    store = _page(engine, COMPLIANCE, unit_ids=(chain.xujiahui,))
    assert _keys(store, ids) == ["a3"]
    critical = _page(engine, COMPLIANCE, severities=("critical",))
    assert _keys(critical, ids) == ["a2"]


def test_roles_without_message_text_are_refused(
    engine: Engine, seeded: tuple[Seeded, dict[str, int]]
):
    with pytest.raises(AccessDenied):
        _page(engine, _who(Role.ANALYST, None))


def test_bad_sort_or_page_size_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="sort 'x': use one of time, severity"):
        QueueQuery(sort="x")
    with pytest.raises(ValueError, match="page_size 1000"):
        QueueQuery(page_size=1000)


def _two_more_on_conversation_1(engine: Engine, ids: dict[str, int]) -> int:
    """a4: an escalated alert on conversation 1 itself (no finding, no store of its own: its
    time is the conversation's start, 17:00 UTC, as a1's message); a5: a false positive on the
    diversion finding of 17:10 UTC, its conversation only through the message. Returns conv 1."""
    with session_scope(engine) as s:
        a1 = s.get(Alert, ids["a1"])
        assert a1 is not None and a1.conversation_id is not None
        diversion = s.scalars(select(Finding).where(Finding.rule == "diversion.test")).one()
        a4 = Alert(
            dedupe_key="a4",
            category="abuse",
            severity=Severity.LOW,
            state=AlertState.ESCALATED,
            title="conversation",
            conversation_id=a1.conversation_id,
            created_at=NOW - dt.timedelta(hours=200),
        )
        a5 = Alert(
            dedupe_key="a5",
            category="diversion",
            severity=Severity.HIGH,
            state=AlertState.FALSE_POSITIVE,
            title="diversion",
            finding_id=diversion.id,
            created_at=NOW - dt.timedelta(hours=200),
        )
        s.add_all([a4, a5])
        s.flush()
        ids.update(a4=a4.id, a5=a5.id)
        return a1.conversation_id


def test_a_conversations_alerts_are_every_state_oldest_first(
    engine: Engine, seeded: tuple[Seeded, dict[str, int]]
):
    _, ids = seeded
    conv = _two_more_on_conversation_1(engine, ids)
    page = conversation_alerts(engine, COMPLIANCE, conv, hours=review_hours(), now=NOW)
    assert (page.total, page.overdue, page.page, page.pages) == (3, 1, 1, 1)
    assert _keys(page, ids) == ["a1", "a4", "a5"]  # a1 and a4 at the same time: raised order
    rows = page.rows
    assert list(rows["conversation_id"]) == [conv, conv, conv]
    assert list(rows["store"]) == ["南京路店", "南京路店", "南京路店"]
    assert list(rows["state"]) == ["open", "escalated", "false_positive"]
    assert list(rows["overdue"]) == [True, False, False]
    assert [t.to_pydatetime() for t in rows["at"]] == [  # China time
        dt.datetime(2026, 11, 16, 1, 0),
        dt.datetime(2026, 11, 16, 1, 0),
        dt.datetime(2026, 11, 16, 1, 10),
    ]
    utc = conversation_alerts(engine, COMPLIANCE, conv, "UTC", review_hours(), NOW).rows
    assert [t.to_pydatetime() for t in utc["at"]] == [
        dt.datetime(2026, 11, 15, 17, 0),
        dt.datetime(2026, 11, 15, 17, 0),
        dt.datetime(2026, 11, 15, 17, 10),
    ]
    # the queue holds all five; the filter keeps this conversation's
    assert _page(engine, COMPLIANCE).total == 5


def test_a_conversations_alerts_follow_the_scope(
    engine: Engine, seeded: tuple[Seeded, dict[str, int]]
):
    chain, ids = seeded
    conv = _two_more_on_conversation_1(engine, ids)
    nanjing = conversation_alerts(engine, _who(Role.SUPERVISOR, (chain.nanjing,)), conv)
    assert _keys(nanjing, ids) == ["a1", "a4", "a5"]
    other_store = conversation_alerts(engine, _who(Role.SUPERVISOR, (chain.xujiahui,)), conv)
    assert (other_store.total, list(other_store.rows["alert_id"])) == (0, [])
    with pytest.raises(AccessDenied):
        conversation_alerts(engine, _who(Role.ANALYST, None), conv)


def test_the_conversation_filter_combines_with_the_others(
    engine: Engine, seeded: tuple[Seeded, dict[str, int]]
):
    _, ids = seeded
    conv = _two_more_on_conversation_1(engine, ids)
    pending = _page(engine, COMPLIANCE, conversation_id=conv, states=("open", "escalated"))
    assert _keys(pending, ids) == ["a1", "a4"]  # by severity: high, then low
    late = _page(engine, COMPLIANCE, conversation_id=conv, overdue_only=True)
    assert (late.total, _keys(late, ids)) == (1, ["a1"])
    assert _page(engine, COMPLIANCE, conversation_id=conv + 1000).total == 0


def test_the_period_and_the_shown_times_share_one_zone() -> None:
    period = Period(dt.date(2026, 11, 16), dt.date(2026, 11, 18), "UTC")
    with pytest.raises(ValueError, match="the period is in UTC, the query in Asia/Shanghai"):
        QueueQuery(period=period)
    assert QueueQuery(period=period, tz="UTC").tz == "UTC"
