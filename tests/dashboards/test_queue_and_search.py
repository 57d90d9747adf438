"""The alert queue (paging, sorting, click-through, confirmed bulk review, deadlines) and the
search page, under AppTest on the seed of ``dashboard_seed.py``.

Open alerts: a1 (南京路店, privacy, high) and a3 (徐家汇店, complaint, medium); a2 (abuse) is
confirmed. A table row is clicked or ticked by writing the selection state the browser would
send (``{"selection": {"rows": [...]}}``) and running the script again.
"""

from __future__ import annotations

import datetime as dt

import pytest
from apptest_helpers import app_as, principal, texts
from dashboard_seed import DashSeed
from sqlalchemy import Engine, select, update
from streamlit.testing.v1 import AppTest

from audit.domain import SenderKind
from audit.reports.alerts import MAX_PAGE_SIZE
from audit.store.access import pseudonym
from audit.store.db import session_scope
from audit.store.models import Alert, AlertState, Customer, Severity, Staff
from audit.store.types import utcnow

pytestmark = pytest.mark.usefixtures("isolated_app")  # fixtures: conftest.py

ALERTS = "views/alerts.py"
SEARCH = "views/search.py"


def _caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if "条预警" in c.value)


def _click_rows(at: AppTest, key: str, rows: list[int]) -> AppTest:
    at.session_state[key] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _states(engine: Engine) -> dict[int, AlertState]:
    with session_scope(engine) as s:
        return {a.id: AlertState(a.state) for a in s.scalars(select(Alert))}


# --------------------------------------------------------------------------- queue


def test_compliance_sees_every_store_with_the_true_total(db: tuple[Engine, DashSeed]):
    engine, seed = db
    at = app_as(principal(engine, "officer"), ALERTS)
    assert _caption(at) == "共 2 条预警 alerts · 逾期 overdue 0 · 第 1 / 1 页 page"
    queue = at.dataframe[0].value
    assert list(queue["alert_id"]) == [seed.alert_nanjing, seed.alert_xujiahui]  # by severity
    assert list(queue["severity"]) == ["高", "中"]
    assert list(queue["state"]) == ["待处理", "待处理"]
    assert list(queue["category"]) == ["隐私泄露 privacy", "投诉风险 complaint"]


def test_a_supervisor_sees_only_their_store(db: tuple[Engine, DashSeed]):
    engine, seed = db
    at = app_as(principal(engine, "xujiahui"), ALERTS)
    assert _caption(at).startswith("共 1 条预警")
    assert list(at.dataframe[0].value["alert_id"]) == [seed.alert_xujiahui]


def test_sorting_by_store_ascending(db: tuple[Engine, DashSeed]):
    engine, seed = db
    at = app_as(principal(engine, "officer"), ALERTS)
    at.multiselect(key="alerts_state").set_value([]).run()  # every state
    at.selectbox(key="alerts_sort").set_value("store").run()
    at.segmented_control(key="alerts_order").set_value("asc").run()
    queue = at.dataframe[0].value
    assert list(queue["store"]) == ["南京路店", "南京路店", "徐家汇店"]
    # within a store: severity ascending too (high a1 before critical a2)
    assert list(queue["alert_id"])[::2] == [seed.alert_nanjing, seed.alert_xujiahui]
    assert list(queue["severity"]) == ["高", "严重", "中"]


def test_pages_move_with_the_buttons_and_totals_stay_true(fresh_db: tuple[Engine, DashSeed]):
    engine, seed = fresh_db
    with session_scope(engine) as s:
        s.add_all(
            Alert(
                dedupe_key=f"extra{i}",
                category="promise",
                severity=Severity.LOW,
                title=f"extra {i}",
                conversation_id=seed.conv_nanjing,
                org_unit_id=seed.chain.nanjing,
            )
            for i in range(30)
        )
    at = app_as(principal(engine, "officer"), ALERTS)
    assert _caption(at) == "共 32 条预警 alerts · 逾期 overdue 0 · 第 1 / 1 页 page"
    at.selectbox(key="alerts_page_size").set_value(25).run()
    assert _caption(at) == "共 32 条预警 alerts · 逾期 overdue 0 · 第 1 / 2 页 page"
    assert len(at.dataframe[0].value) == 25
    at.button(key="alerts_next").click().run()
    assert _caption(at).endswith("第 2 / 2 页 page")
    assert len(at.dataframe[0].value) == 7
    at.multiselect(key="alerts_severity").set_value(["low"]).run()  # new filters: page 1
    assert _caption(at) == "共 30 条预警 alerts · 逾期 overdue 0 · 第 1 / 2 页 page"


def test_clicking_a_row_opens_its_conversation_with_the_alert_in_focus(
    db: tuple[Engine, DashSeed],
):
    engine, seed = db
    at = app_as(principal(engine, "officer"), ALERTS)
    row = list(at.dataframe[0].value["alert_id"]).index(seed.alert_xujiahui)
    _click_rows(at, "alerts_open_rows", [row])
    assert at.title[0].value == "会话 · Conversation"
    assert at.query_params["alert"] == str(seed.alert_xujiahui)
    assert at.selectbox(key="conv_alert_pick").value == seed.alert_xujiahui
    [transcript] = [h.proto.body for h in at.get("html") if 'class="tx"' in h.proto.body]
    focused = transcript.split('<div class="bubble focus">')
    assert len(focused) == 2 and focused[1].split("</div></div>")[0].count("我要打") == 1


def test_a_refused_review_on_the_conversation_page_keeps_the_action_and_comment(
    fresh_db: tuple[Engine, DashSeed],
):
    engine, seed = fresh_db
    at = app_as(
        principal(engine, "nanjing"), "views/conversation.py", alert=str(seed.alert_nanjing)
    )
    at.radio(key="conv_action").set_value("escalate")
    at.text_area(key="conv_comment").input("   ")
    next(b for b in at.button if "Submit" in str(b.label)).click().run()
    assert "a comment is required" in at.error[0].value
    assert at.radio(key="conv_action").value == "escalate"  # not back to 确认违规
    at.text_area(key="conv_comment").input("请区域经理处理")
    next(b for b in at.button if "Submit" in str(b.label)).click().run()
    assert _states(engine)[seed.alert_nanjing] is AlertState.ESCALATED
    assert "reviewed" in at.success[0].value


def test_the_conversation_page_lists_its_alerts_with_the_queue_query(
    fresh_db: tuple[Engine, DashSeed],
):
    engine, seed = fresh_db
    with session_scope(engine) as s:  # at the conversation's start, as a1's message: ties
        s.add_all(
            Alert(
                dedupe_key=f"conv{i}",
                category="promise",
                severity=Severity.LOW,
                state=AlertState.FALSE_POSITIVE,
                title=f"conv {i}",
                conversation_id=seed.conv_nanjing,
            )
            for i in range(MAX_PAGE_SIZE)
        )
        extra = [a.id for a in s.scalars(select(Alert).where(Alert.title.like("conv %")))]
    nanjing = principal(engine, "nanjing")
    at = app_as(nanjing, "views/conversation.py", alert=str(seed.alert_nanjing))
    shown = next(d.value for d in at.dataframe if "alert_id" in d.value and "rule" in d.value)
    # every state, oldest first, ties in the order raised; one page of the largest size
    assert list(shown["alert_id"]) == [seed.alert_nanjing, *sorted(extra)[: MAX_PAGE_SIZE - 1]]
    assert list(shown["state"][:2]) == ["open", "false_positive"]
    assert f"显示最早的 {MAX_PAGE_SIZE} 条，共 {MAX_PAGE_SIZE + 1} 条" in texts(at)
    assert at.selectbox(key="conv_alert_pick").value == seed.alert_nanjing


def test_overdue_alerts_are_marked_and_filterable(fresh_db: tuple[Engine, DashSeed]):
    engine, seed = fresh_db
    with session_scope(engine) as s:  # high: 8 hours to review; raised 9 hours ago
        s.execute(
            update(Alert)
            .where(Alert.id == seed.alert_nanjing)
            .values(created_at=utcnow() - dt.timedelta(hours=9))
        )
    at = app_as(principal(engine, "officer"), ALERTS)
    assert "逾期 overdue 1" in _caption(at)
    queue = at.dataframe[0].value
    marks = dict(zip(queue["alert_id"], queue["overdue"], strict=True))
    assert marks == {seed.alert_nanjing: "⏰ 逾期", seed.alert_xujiahui: ""}
    at.toggle(key="alerts_overdue").set_value(True).run()
    assert list(at.dataframe[0].value["alert_id"]) == [seed.alert_nanjing]


def test_bulk_review_lists_the_alerts_keeps_the_action_and_asks_first(
    fresh_db: tuple[Engine, DashSeed],
):
    engine, seed = fresh_db
    at = app_as(principal(engine, "officer"), ALERTS)
    at.segmented_control(key="alerts_mode").set_value("select").run()
    _click_rows(at, "alerts_rows", [0, 1])
    assert "已选 2 条预警 · 2 selected" in [h.value for h in at.subheader]
    listed = at.dataframe[1].value  # the ticked alerts, listed
    assert sorted(listed["alert_id"]) == sorted([seed.alert_nanjing, seed.alert_xujiahui])
    at.selectbox(key="alerts_action").set_value("false_positive").run()
    at.button(key="alerts_submit").click().run()  # no comment: refused before anything
    assert "a comment is required" in at.error[0].value
    assert at.selectbox(key="alerts_action").value == "false_positive"  # the choice survives
    at.text_area(key="alerts_comment").input("客户自己留的号码").run()
    at.button(key="alerts_submit").click().run()
    assert "Apply false_positive to the 2 alerts listed above?" in at.warning[0].value
    assert _states(engine)[seed.alert_nanjing] is AlertState.OPEN  # nothing done yet
    at.button(key="alerts_confirm_yes").click().run()
    assert not at.exception
    assert "reviewed 2" in at.success[0].value
    states = _states(engine)
    assert states[seed.alert_nanjing] is AlertState.FALSE_POSITIVE
    assert states[seed.alert_xujiahui] is AlertState.FALSE_POSITIVE
    assert "alerts_comment" not in at.session_state  # cleared for the next review


def test_cancelling_the_confirmation_reviews_nothing(fresh_db: tuple[Engine, DashSeed]):
    engine, seed = fresh_db
    at = app_as(principal(engine, "nanjing"), ALERTS)
    at.segmented_control(key="alerts_mode").set_value("select").run()
    at.checkbox(key="alerts_all").check().run()
    at.button(key="alerts_submit").click().run()  # confirm needs no comment
    assert "Apply confirm to the 1 alerts" in at.warning[0].value
    at.button(key="alerts_confirm_no").click().run()
    assert not at.warning
    assert _states(engine)[seed.alert_nanjing] is AlertState.OPEN


def test_assigning_ticked_alerts(fresh_db: tuple[Engine, DashSeed]):
    engine, seed = fresh_db
    at = app_as(principal(engine, "officer"), ALERTS)
    at.segmented_control(key="alerts_mode").set_value("select").run()
    row = list(at.dataframe[0].value["alert_id"]).index(seed.alert_xujiahui)
    _click_rows(at, "alerts_rows", [row])
    at.selectbox(key="alerts_assignee").set_value(seed.user_ids["xujiahui"]).run()
    at.button(key="alerts_assign").click().run()
    assert not at.exception
    with session_scope(engine) as s:
        alert = s.get(Alert, seed.alert_xujiahui)
        assert alert is not None and alert.assignee_id == seed.user_ids["xujiahui"]


# --------------------------------------------------------------------------- search


def _search(at: AppTest, key: str, query: str) -> AppTest:
    at.text_input(key=key).input(query)
    form_button = {"search_keyword": 0, "search_customer": 1, "search_staff": 2}
    buttons = [b for b in at.button if "Search" in str(b.label)]
    offset = 0 if len(buttons) == 3 else -1
    buttons[form_button[key] + offset].click().run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_compliance_finds_a_keyword_in_every_store(db: tuple[Engine, DashSeed]):
    engine, _ = db
    at = _search(app_as(principal(engine, "officer"), SEARCH), "search_keyword", "12315")
    rows = at.dataframe[0].value
    assert list(rows["excerpt"]) == ["我要打12315投诉"]
    assert list(rows["store"]) == ["徐家汇店"]
    assert list(rows["sender_kind"]) == [SenderKind.CUSTOMER.label]


def test_a_supervisor_finds_only_their_stores(db: tuple[Engine, DashSeed]):
    engine, _ = db
    at = _search(app_as(principal(engine, "nanjing"), SEARCH), "search_keyword", "12315")
    assert not at.dataframe
    assert "找到 0 条 / 0 found" in [c.value for c in at.caption]
    at = _search(at, "search_keyword", "电话138")
    assert list(at.dataframe[0].value["excerpt"]) == ["我的电话[手机号]"]


def test_clicking_a_message_opens_its_conversation(db: tuple[Engine, DashSeed]):
    engine, seed = db
    at = _search(app_as(principal(engine, "officer"), SEARCH), "search_keyword", "12315")
    _click_rows(at, "search_message_rows", [0])
    assert at.title[0].value == "会话 · Conversation"
    assert at.query_params["conversation"] == str(seed.conv_xujiahui)


def test_people_search_per_role(db: tuple[Engine, DashSeed]):
    engine, _ = db
    nanjing = _search(app_as(principal(engine, "nanjing"), SEARCH), "search_customer", "客户")
    assert list(nanjing.dataframe[0].value["customer"]) == ["客户0"]
    nanjing = _search(nanjing, "search_staff", "lina")
    assert len(nanjing.dataframe) == 1  # the customers found before; no staff
    assert "找到 0 条 / 0 found" in [c.value for c in nanjing.caption]
    assert "李娜" not in texts(nanjing)
    officer = _search(app_as(principal(engine, "officer"), SEARCH), "search_staff", "lina")
    assert list(officer.dataframe[0].value["staff"]) == ["李娜"]


def test_an_analyst_searches_people_by_pseudonym_and_no_messages(db: tuple[Engine, DashSeed]):
    engine, _ = db
    with session_scope(engine) as s:
        cust0 = s.scalar(select(Customer.id).where(Customer.external_userid == "wmcust0"))
        zhang = s.scalar(select(Staff.id).where(Staff.userid == "zhangwei"))
    at = app_as(principal(engine, "analyst"), SEARCH)
    assert [t.label for t in at.tabs] == ["客户 Customers", "员工 Staff"]
    at = _search(at, "search_customer", "客户0")
    assert "找到 0 条 / 0 found" in [c.value for c in at.caption]
    at = _search(at, "search_customer", pseudonym("customer", cust0))
    rows = at.dataframe[0].value
    assert list(rows["customer"]) == [pseudonym("customer", cust0)]
    assert list(rows["staff"]) == [pseudonym("staff", zhang)]
    assert "客户0" not in texts(at) and "张伟" not in texts(at)


def test_a_viewer_has_no_search_page(db: tuple[Engine, DashSeed]):
    engine, _ = db
    at = app_as(principal(engine, "viewer"))
    with pytest.raises(ValueError):
        at.switch_page(SEARCH)
