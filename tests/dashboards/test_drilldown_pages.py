"""The drill-down pages (staff, customer) and the quality page, for every role that has them.

On the seed of ``dashboard_seed.py``: 张伟 (南京路店) has conversations 1 and 2 (scored: 1,
answered in 1 and 10 business minutes), 李娜 (徐家汇店) conversation 3, whose customer has
been waiting since 11-18 10:06 China time. Every sample is below the minimum, so every rate
reads 样本不足.
"""

from __future__ import annotations

import pytest
from apptest_helpers import app_as, principal, texts
from dashboard_seed import DashSeed
from sqlalchemy import Engine, select
from streamlit.testing.v1 import AppTest

from audit.store.models import Customer, Staff

STAFF = "views/staff.py"
CUSTOMER = "views/customer.py"
QUALITY = "views/quality.py"
STORES = "views/stores.py"
STAFF_NOT_FOUND = (
    "找不到该员工，或不在您的权限范围内 / staff member not found or not in your scope."
)
CUSTOMER_NOT_FOUND = "找不到该客户，或不在您的权限范围内 / customer not found or not in your scope."
# stored codes that must never reach a page as such
CODES = ("open", "confirmed", "critical", "high", "privacy", "abuse", "None", "(unassigned)")

pytestmark = pytest.mark.usefixtures("isolated_app")


def _ids(engine: Engine) -> tuple[dict[str, int], dict[str, int]]:
    with engine.connect() as conn:
        staff = dict(conn.execute(select(Staff.userid, Staff.id)).all())
        customers = dict(conn.execute(select(Customer.external_userid, Customer.id)).all())
    return {k: int(v) for k, v in staff.items()}, {k: int(v) for k, v in customers.items()}


# the tables of each page, in the order the page draws them
TABLES = {
    "staff_conversations": ["messages", "unanswered"],
    "staff_alerts": ["alert_id", "severity"],
    "customer_follows": ["channel", "remark"],
    "customer_conversations": ["conversation_id", "staff_link"],
    "quality_waiting": ["waiting_min", "since"],
    "quality_staff": ["response_p50_min", "waiting_p90_min"],
    "quality_trend": ["per_1k_text", "negative_text"],
    "stores_staff": ["staff", "scored"],
    "stores_ranking": ["label", "per_1k_text"],
}


def _frame(at: AppTest, key: str):  # type: ignore[no-untyped-def]
    """The one table of the page with the columns of ``key`` (AppTest has no widget keys for
    tables)."""
    found = [f for f in at.dataframe if set(TABLES[key]) <= set(f.value.columns)]
    assert len(found) == 1, (key, len(found))
    return found[0].value


def _shown_columns(at: AppTest, key: str) -> list[str]:
    [frame] = [f for f in at.dataframe if set(TABLES[key]) <= set(f.value.columns)]
    return list(frame.proto.column_order)


def _no_codes(at: AppTest) -> None:
    shown = "\n".join(
        [str(e.value) for kind in ("markdown", "caption", "title", "subheader", "info", "error")
         for e in at.get(kind)]
        + [str(m.value) for m in at.metric]
    )  # fmt: skip
    for frame in at.dataframe:
        for column in frame.value.columns:
            if frame.value[column].dtype == object:
                shown += "\n" + "\n".join(str(v) for v in frame.value[column] if v is not None)
    for code in CODES:
        assert code not in shown.split(), code


# --------------------------------------------------------------------------- staff


def test_the_staff_page_shows_a_staff_members_work_with_links(db: tuple[Engine, DashSeed]):
    engine, seed = db
    staff, customers = _ids(engine)
    at = app_as(principal(engine, "officer"), STAFF, staff=str(staff["zhangwei"]))
    assert at.subheader[0].value == "张伟 (zhangwei)"
    assert at.caption[0].value.startswith("华东区 / 上海 / 南京路店")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {
        "会话 Conversations": "2",
        "违规 Findings": "5",
        "预警 Alerts": "2",
        "平均分 Score": "72.5",
        "SLA 达标率": "样本不足",
        "响应 p50": "5.5 分钟",
        "响应 p90": "9.1 分钟",
    }
    convs = _frame(at, "staff_conversations")
    assert list(convs["conversation_id"]) == [2, seed.conv_nanjing]
    assert list(convs["score"]) == ["—", "72.5"]  # not "None" for the unscored one
    assert list(convs["conversation_link"]) == [
        "conversation?conversation=2",
        f"conversation?conversation={seed.conv_nanjing}",
    ]
    assert list(convs["customer_link"]) == [
        f"customer?customer={customers['wmcust1']}",
        f"customer?customer={customers['wmcust0']}",
    ]
    alerts = _frame(at, "staff_alerts")
    assert sorted(zip(alerts["severity"], alerts["category"], alerts["state"], strict=True)) == [
        ("严重", "辱骂", "已确认"),
        ("高", "隐私泄露", "待处理"),
    ]
    _no_codes(at)


def test_a_supervisor_cannot_open_another_stores_staff(db: tuple[Engine, DashSeed]):
    engine, _ = db
    staff, _ = _ids(engine)
    who = principal(engine, "nanjing")
    assert app_as(who, STAFF, staff=str(staff["zhangwei"])).subheader[0].value.startswith("张伟")
    for value in (str(staff["lina"]), "abc", "-1", "0", "9" * 40, "１"):
        at = app_as(who, STAFF, staff=value)
        assert [e.value for e in at.error] == [STAFF_NOT_FOUND], value
        assert not at.dataframe and "李娜" not in texts(at)


def test_an_analyst_sees_a_pseudonym_and_cannot_open_conversations(db: tuple[Engine, DashSeed]):
    engine, _ = db
    staff, _ = _ids(engine)
    at = app_as(principal(engine, "analyst"), STAFF, staff=str(staff["zhangwei"]))
    shown = texts(at)
    assert at.subheader[0].value.startswith("员工-")
    assert "张伟" not in shown and "zhangwei" not in shown and "客户0" not in shown
    convs = _frame(at, "staff_conversations")
    assert all(c.startswith("客户-") for c in convs["customer"])
    assert _shown_columns(at, "staff_conversations")[0] == "conversation_id"  # not a link
    assert "conversation_link" not in _shown_columns(at, "staff_alerts")


# --------------------------------------------------------------------------- customer


def test_the_customer_page_as_compliance(db: tuple[Engine, DashSeed]):
    engine, seed = db
    staff, customers = _ids(engine)
    at = app_as(principal(engine, "officer"), CUSTOMER, customer=str(customers["wmcust0"]))
    assert at.subheader[0].value == "客户0"
    assert "wmcust0" in at.caption[0].value
    assert "客户等级: VIP" in texts(at)
    follows = _frame(at, "customer_follows")
    assert list(follows["channel"]) == ["store_qr"]
    assert list(follows["staff_link"]) == [f"staff?staff={staff['zhangwei']}"]
    convs = _frame(at, "customer_conversations")
    assert list(convs["conversation_id"]) == [seed.conv_nanjing]
    assert list(convs["store"]) == ["南京路店"] and list(convs["findings"]) == [4]
    _no_codes(at)


def test_the_customer_page_is_scoped_and_masked(db: tuple[Engine, DashSeed]):
    engine, _ = db
    _, customers = _ids(engine)
    nanjing = principal(engine, "nanjing")
    at = app_as(nanjing, CUSTOMER, customer=str(customers["wmcust2"]))
    assert [e.value for e in at.error] == [CUSTOMER_NOT_FOUND] and not at.dataframe
    for value in ("x1", "99999"):
        at = app_as(nanjing, CUSTOMER, customer=value)
        assert [e.value for e in at.error] == [CUSTOMER_NOT_FOUND]
    at = app_as(principal(engine, "analyst"), CUSTOMER, customer=str(customers["wmcust0"]))
    shown = texts(at)
    assert at.subheader[0].value.startswith("客户-")
    assert "客户0" not in shown and "wmcust0" not in shown and "张伟" not in shown
    assert "remark" not in _shown_columns(at, "customer_follows")
    assert set(_frame(at, "customer_follows")["remark"]) == {""}


# --------------------------------------------------------------------------- quality


def test_the_quality_page_for_compliance(db: tuple[Engine, DashSeed]):
    engine, seed = db
    staff, _ = _ids(engine)
    at = app_as(principal(engine, "officer"), QUALITY)
    waiting = _frame(at, "quality_waiting")
    assert list(waiting["conversation_id"]) == [seed.conv_xujiahui]
    assert list(waiting["staff"]) == ["李娜 (lina)"] and bool(waiting["overdue"].iloc[0])
    per_staff = _frame(at, "quality_staff").set_index("staff")
    assert list(per_staff.index) == ["李娜 (lina)", "张伟 (zhangwei)"]
    assert list(per_staff["response_p50_min"]) == ["0.5 分钟", "5.5 分钟"]
    assert list(per_staff["response_p90_min"]) == ["0.5 分钟", "9.1 分钟"]
    assert list(per_staff["waiting_p90_min"]) == [per_staff["waiting_p50_min"].iloc[0], "—"]
    assert list(per_staff["sla_text"]) == ["样本不足", "样本不足"]
    assert list(per_staff["staff_link"]) == [
        f"staff?staff={staff['lina']}",
        f"staff?staff={staff['zhangwei']}",
    ]
    trend = _frame(at, "quality_trend")
    assert list(trend["score_avg"]) == ["72.5", "—", "90.0"]
    assert [str(d) for d in trend["day"]] == ["2026-11-16", "2026-11-17", "2026-11-18"]
    assert list(trend["per_1k_text"]) == ["样本不足"] * 3
    assert list(trend["sla_text"]) == ["样本不足", "—", "样本不足"]
    _no_codes(at)


def test_the_quality_page_is_scoped(db: tuple[Engine, DashSeed]):
    engine, _ = db
    at = app_as(principal(engine, "nanjing"), QUALITY)
    assert "没有等待回复的客户 / no customer is waiting for a reply." in texts(at)
    assert list(_frame(at, "quality_staff")["staff"]) == ["张伟 (zhangwei)"]
    assert list(_frame(at, "quality_trend")["messages"]) == [8, 1, 0]
    assert "徐家汇店" not in texts(at)
    analyst = app_as(principal(engine, "analyst"), QUALITY)
    shown = texts(analyst)
    assert "李娜" not in shown and "张伟" not in shown and "员工-" in shown
    viewer = app_as(principal(engine, "viewer"), QUALITY)
    assert len(viewer.dataframe) == 1  # the trend only
    assert "员工-" not in texts(viewer) and "张伟" not in texts(viewer)
    assert list(_frame(viewer, "quality_trend")["messages"]) == [8, 2, 2]


def test_the_store_ranking_links_staff_to_their_page(db: tuple[Engine, DashSeed]):
    engine, _ = db
    staff, _ = _ids(engine)
    at = app_as(principal(engine, "officer"), STORES)
    ranking = _frame(at, "stores_ranking")
    assert list(ranking["unit"]) == ["南京路店", "徐家汇店", "陆家嘴店"]
    assert list(ranking["per_1k_text"]) == ["样本不足", "样本不足", "—"]  # 9 and 2 messages
    assert list(ranking["sla_text"]) == ["样本不足", "样本不足", "—"]  # 1 scored each
    assert list(ranking["response_median_text"]) == ["1.5 分钟", "0.5 分钟", "—"]
    assert list(ranking["score_text"]) == ["72.5", "90.0", "—"]
    assert "response_median_s" not in _shown_columns(at, "stores_ranking")
    # 南京路店 ranks first (555.6 findings per 1,000 messages) and is drilled into first
    assert list(_frame(at, "stores_staff")["staff_link"]) == [f"staff?staff={staff['zhangwei']}"]


def test_people_found_by_search_link_to_their_pages(db: tuple[Engine, DashSeed]):
    engine, _ = db
    staff, customers = _ids(engine)
    at = app_as(principal(engine, "officer"), "views/search.py")
    at.text_input(key="search_staff").input("lina")
    [button] = [b for b in at.button if b.key and "search_staff_form" in b.key]
    button.click().run()
    assert not at.exception
    assert list(at.dataframe[0].value["staff_link"]) == [f"staff?staff={staff['lina']}"]
    at.text_input(key="search_customer").input("客户2")
    [button] = [b for b in at.button if b.key and "search_customers_form" in b.key]
    button.click().run()
    links = [list(f.value["customer_link"]) for f in at.dataframe if "customer_link" in f.value]
    assert links == [[f"customer?customer={customers['wmcust2']}"]]
