"""Every page for every role on a seeded database: what each role can and cannot see.

The seed is ``dashboard_seed.py``: 南京路店 and 徐家汇店 with conversations and alerts, users
``admin``, ``officer`` (compliance), ``nanjing`` / ``xujiahui`` (supervisors of one store each),
``analyst`` and ``viewer``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import streamlit as st
from apptest_helpers import app_as, principal, texts
from dashboard_seed import DashSeed
from sqlalchemy import Engine, func, select
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Button

from audit.domain import Action
from audit.reports import DORMANT_PAGE
from audit.store.access import pseudonym
from audit.store.daily import refresh_daily
from audit.store.db import session_scope
from audit.store.models import (
    Alert,
    AlertState,
    AuditLog,
    Conversation,
    ConversationKind,
    Customer,
    Envelope,
    Message,
    Review,
    SenderKind,
    Staff,
)

PAGES = {
    "overview": "views/overview.py",
    "stores": "views/stores.py",
    "alerts": "views/alerts.py",
    "conversation": "views/conversation.py",
    "customers": "views/customers.py",
    "wordlists": "views/wordlists.py",
    "trail": "views/trail.py",
    "export": "views/export.py",
    "search": "views/search.py",
    "quality": "views/quality.py",
    "staff": "views/staff.py",
    "customer": "views/customer.py",
}
ALLOWED = {
    "admin": set(PAGES),
    "officer": set(PAGES),
    "nanjing": {
        *("overview", "stores", "alerts", "conversation", "customers", "export", "search"),
        *("quality", "staff", "customer"),
    },
    "analyst": {"overview", "stores", "customers", "wordlists", "search", "quality", "staff"}
    | {"customer"},
    "viewer": {"overview", "stores", "customers", "quality"},
}


pytestmark = pytest.mark.usefixtures("isolated_app")


# --------------------------------------------------------------------------- sign-in


def test_before_sign_in_only_the_way_to_the_form_is_shown(
    db: tuple[Engine, DashSeed], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AUDIT_DASHBOARD_SIGNIN_ROUTES", "1")  # as server.py sets it
    at = app_as(None)
    assert not at.metric and not at.dataframe and not at.text_input
    assert at.info[0].value == "请先登录 / please sign in."
    assert 'href="/auth/signin?next=%2F"' in at.markdown[0].value
    with pytest.raises(ValueError):  # data pages are not even registered
        at.switch_page("views/overview.py")


def test_app_py_alone_says_how_to_start_the_dashboard(db: tuple[Engine, DashSeed]):
    at = app_as(None)
    assert "audit dashboard" in at.error[0].value and not at.dataframe


def test_a_deep_link_before_sign_in_shows_nothing_but_the_way_to_sign_in(
    db: tuple[Engine, DashSeed], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AUDIT_DASHBOARD_SIGNIN_ROUTES", "1")
    _, seed = db
    at = app_as(None, conversation=str(seed.conv_nanjing))
    assert not at.get("html") and not at.dataframe
    assert "13800138000" not in texts(at)
    assert f"next=%2F%3Fconversation%3D{seed.conv_nanjing}" in at.markdown[0].value


def test_a_disabled_user_is_signed_out(fresh_db: tuple[Engine, DashSeed]):
    from audit.store.users import disable_user

    engine, _ = fresh_db
    who = principal(engine, "nanjing")
    with session_scope(engine) as s:
        disable_user(s, "nanjing")
    at = app_as(who)
    assert "principal" not in at.session_state
    assert not at.dataframe and not at.metric


def test_a_password_change_ends_open_sessions(fresh_db: tuple[Engine, DashSeed]):
    from audit.store.users import set_password

    engine, _ = fresh_db
    at = app_as(principal(engine, "nanjing"))
    assert at.session_state["principal"].username == "nanjing"
    with session_scope(engine) as s:
        set_password(s, "nanjing", "a-new-password-2")
    at.run()
    assert not at.exception
    assert "principal" not in at.session_state
    assert not at.dataframe and not at.metric


# --------------------------------------------------------------------------- every page, every role


@pytest.mark.parametrize("user", list(ALLOWED))
def test_each_role_gets_its_pages_and_no_others(db: tuple[Engine, DashSeed], user: str):
    engine, seed = db
    who = principal(engine, user)
    for name, path in PAGES.items():
        if name in ALLOWED[user]:
            query = {"alert": str(seed.alert_nanjing)} if name == "conversation" else {}
            at = app_as(who, path, **query)
            assert at.title, (user, name)
        else:
            at = app_as(who)
            with pytest.raises(ValueError):
                at.switch_page(path)


def test_a_supervisor_sees_only_their_store(db: tuple[Engine, DashSeed]):
    engine, _ = db
    who = principal(engine, "nanjing")
    overview = app_as(who, PAGES["overview"])
    frame = overview.dataframe[0].value
    assert list(frame["store"]) == ["南京路店"]
    stores = app_as(who, PAGES["stores"])
    assert "徐家汇店" not in texts(stores)
    alerts = app_as(who, PAGES["alerts"])
    queue = alerts.dataframe[0].value
    assert set(queue["store"]) == {"南京路店"}
    customers = texts(app_as(who, PAGES["customers"]))
    assert "VIP" in customers and "5G" not in customers


def test_compliance_sees_every_store(db: tuple[Engine, DashSeed]):
    engine, _ = db
    at = app_as(principal(engine, "officer"), PAGES["alerts"])
    assert {"南京路店", "徐家汇店"} <= set(at.dataframe[0].value["store"])


def test_an_analyst_sees_aggregates_with_pseudonyms_and_no_text(db: tuple[Engine, DashSeed]):
    engine, _ = db
    who = principal(engine, "analyst")
    stores = app_as(who, PAGES["stores"])
    shown = texts(stores)
    assert "员工-" in shown and "张伟" not in shown and "zhangwei" not in shown
    words = app_as(who, PAGES["wordlists"])
    shown = texts(words)
    assert "diversion.加我微信" in shown
    assert "13800138000" not in shown and "38" not in list(
        words.dataframe[0].value.get("matched", [])
    )
    assert len(words.dataframe) == 1  # no matched-text table


def test_a_viewer_gets_no_people(db: tuple[Engine, DashSeed]):
    engine, _ = db
    at = app_as(principal(engine, "viewer"), PAGES["stores"])
    shown = texts(at)
    assert "员工-" not in shown and "张伟" not in shown
    assert len(at.dataframe) == 1


# --------------------------------------------------------------------------- conversation


def test_the_transcript_is_escaped_and_marked(db: tuple[Engine, DashSeed]):
    engine, seed = db
    at = app_as(
        principal(engine, "officer"), PAGES["conversation"], conversation=str(seed.conv_nanjing)
    )
    [html] = [e.proto.body for e in at.get("html") if 'class="tx"' in e.proto.body]
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "<b>加我微信</b>" not in html  # the explanation's markup is escaped too
    assert 'title="diversion · diversion.加我微信 · high">加我微信</mark>' in html
    assert "已撤回 recalled" in html and "consent withheld" in html
    assert "图片 image" in html
    shown = texts(at)
    assert "VIP" in shown and "store_qr" in shown  # a channel without a configured name
    assert "未问候" in shown  # the scorecard deduction


def test_a_channel_shows_its_configured_name(
    db: tuple[Engine, DashSeed], monkeypatch: pytest.MonkeyPatch
):
    engine, seed = db
    monkeypatch.setenv(
        "AUDIT_DASHBOARD__CHANNEL_LABELS", '{"store_*": "门店扫码", "store_q*": "门店二维码"}'
    )
    at = app_as(
        principal(engine, "officer"), PAGES["conversation"], conversation=str(seed.conv_nanjing)
    )
    shown = texts(at)
    assert "渠道 Channel: 门店二维码" in shown  # the longest prefix names it
    assert "store_qr" not in shown


def test_personal_data_in_the_transcript_is_masked_unless_the_role_may_unmask(
    db: tuple[Engine, DashSeed],
):
    engine, seed = db
    shown = {}
    for user in ("nanjing", "officer"):
        at = app_as(
            principal(engine, user), PAGES["conversation"], conversation=str(seed.conv_nanjing)
        )
        [html] = [e.proto.body for e in at.get("html") if 'class="tx"' in e.proto.body]
        shown[user] = html
    # a supervisor reads the chat as a masked export shows it; compliance in the clear
    # (the seeded privacy finding covers the number: its mark moves onto the token)
    assert "13800138000" not in shown["nanjing"]
    assert 'title="privacy · privacy.test · high">[手机号]</mark>' in shown["nanjing"]
    # (for compliance the mark stays on the finding's two digits)
    assert 'high">38</mark>00138000' in shown["officer"] and "[手机号]" not in shown["officer"]


def test_markup_in_tag_names_shows_as_written(fresh_db: tuple[Engine, DashSeed]):
    from audit.store.models import Tag

    engine, seed = fresh_db
    with session_scope(engine) as s:
        s.get(Tag, "etVIP").name = "**VIP** [x](http://e.test) :red[!]"  # type: ignore[union-attr]
    at = app_as(
        principal(engine, "officer"), PAGES["conversation"], conversation=str(seed.conv_nanjing)
    )
    assert not at.exception
    assert "<code>客户等级: **VIP** [x](http://e.test) :red[!]</code>" in texts(at)
    assert not [e for e in at.get("markdown") if "VIP" in str(e.value)]


def test_every_view_of_a_conversation_is_logged(fresh_db: tuple[Engine, DashSeed]):
    engine, seed = fresh_db
    app_as(principal(engine, "nanjing"), PAGES["conversation"], conversation=str(seed.conv_nanjing))
    with session_scope(engine) as s:
        logs = s.scalars(select(AuditLog).where(AuditLog.action == "conversation.view")).all()
        assert [(log.actor, log.target_id) for log in logs] == [("nanjing", str(seed.conv_nanjing))]


@pytest.mark.parametrize("param", ["conversation", "alert"])
def test_a_supervisor_cannot_open_another_stores_conversation_by_editing_the_url(
    fresh_db: tuple[Engine, DashSeed], param: str
):
    engine, seed = fresh_db
    target = seed.conv_xujiahui if param == "conversation" else seed.alert_xujiahui
    at = app_as(principal(engine, "nanjing"), PAGES["conversation"], **{param: str(target)})
    assert "not in your scope" in at.error[0].value
    assert not at.get("html")
    shown = texts(at)
    assert "12315" not in shown and "李娜" not in shown
    with session_scope(engine) as s:
        [log] = s.scalars(select(AuditLog).where(AuditLog.action.like("conversation.%"))).all()
        assert log.action == "conversation.denied"


def test_a_mismatched_alert_and_conversation_pair_is_refused(fresh_db: tuple[Engine, DashSeed]):
    engine, seed = fresh_db
    at = app_as(
        principal(engine, "nanjing"),
        PAGES["conversation"],
        conversation=str(seed.conv_nanjing),
        alert=str(seed.alert_xujiahui),
    )
    assert "not in your scope" in at.error[0].value


@pytest.mark.parametrize("value", ["abc", "-1", "999999", "1 OR 1=1"])
def test_garbage_in_the_query_string_is_not_found(fresh_db: tuple[Engine, DashSeed], value: str):
    engine, _ = fresh_db
    at = app_as(principal(engine, "nanjing"), PAGES["conversation"], conversation=value)
    assert "not found" in at.error[0].value


@pytest.mark.parametrize("param", ["conversation", "alert"])
@pytest.mark.parametrize(
    "value", ["1" * 23, str(2**63), str(-(2**63) - 1), "0", "1_000", "１２", " 7 0"]
)
def test_an_id_too_large_for_the_database_is_not_found_not_a_traceback(
    db: tuple[Engine, DashSeed], param: str, value: str
):
    engine, _ = db
    at = app_as(principal(engine, "nanjing"), PAGES["conversation"], **{param: value})
    assert not at.exception
    [error] = at.error
    assert "conversation not found or not in your scope" in error.value


# --------------------------------------------------------------------------- reviews


def submit(at: AppTest) -> Button:
    return next(b for b in at.button if "Submit" in str(b.label))


def test_reviewing_from_the_conversation_page(fresh_db: tuple[Engine, DashSeed]):
    engine, seed = fresh_db
    at = app_as(principal(engine, "nanjing"), PAGES["conversation"], alert=str(seed.alert_nanjing))
    at.radio(key="conv_action").set_value("false_positive")
    submit(at).click().run()  # no comment: refused
    assert "comment is required" in at.error[0].value
    at.radio(key="conv_action").set_value("false_positive")
    at.text_area(key="conv_comment").input("客户自己留的号码")
    submit(at).click().run()
    assert not at.exception
    with session_scope(engine) as s:
        alert = s.get(Alert, seed.alert_nanjing)
        assert alert is not None and alert.state is AlertState.FALSE_POSITIVE
        [review] = s.scalars(select(Review)).all()
        assert review.comment == "客户自己留的号码"


def test_the_trail_shows_reviews_to_compliance(fresh_db: tuple[Engine, DashSeed]):
    engine, seed = fresh_db
    app_as(principal(engine, "nanjing"), PAGES["conversation"], alert=str(seed.alert_nanjing))
    at = app_as(principal(engine, "officer"), PAGES["trail"])
    frame = at.dataframe[0].value
    row = frame[frame["action_value"] == "conversation.view"].iloc[0]
    assert (row["action"], row["actor"], row["target_type"], row["target_id"]) == (
        "查看会话",
        "nanjing",
        "conversation",
        str(seed.conv_nanjing),
    )


def test_the_trail_filter_lists_every_action_with_its_chinese_label(
    fresh_db: tuple[Engine, DashSeed],
):
    engine, seed = fresh_db
    app_as(principal(engine, "nanjing"), PAGES["conversation"], alert=str(seed.alert_nanjing))
    at = app_as(principal(engine, "officer"), PAGES["trail"])
    actions = at.multiselect(key="trail_actions")
    assert actions.options == [f"{a.label} {a.value.replace('_', ' ')}" for a in Action]
    assert len(actions.options) == len(Action) == 20
    assert "查看会话 conversation.view" in actions.options
    assert "登录失败 signin.failed" in actions.options
    actions.set_value([Action.ALERT_REVIEW]).run()
    assert not at.exception and at.dataframe[0].value.empty
    at.multiselect(key="trail_actions").set_value([Action.CONVERSATION_VIEW]).run()
    frame = at.dataframe[0].value
    assert list(frame["action_value"]) == ["conversation.view"]
    assert list(frame["action"]) == ["查看会话"]


def test_an_analyst_sees_the_pseudonyms_of_the_configured_key(
    db: tuple[Engine, DashSeed], monkeypatch: pytest.MonkeyPatch
):
    engine, _ = db
    with session_scope(engine) as s:
        zhang = s.scalar(select(Staff.id).where(Staff.userid == "zhangwei"))
    for key in (b"k" * 24, b"q" * 24):
        monkeypatch.setenv("AUDIT_PRIVACY__PSEUDONYM_KEY", key.decode())
        st.cache_data.clear()
        shown = texts(app_as(principal(engine, "analyst"), PAGES["stores"]))
        assert pseudonym("staff", zhang, key) in shown
        other = b"q" * 24 if key == b"k" * 24 else b"k" * 24
        assert pseudonym("staff", zhang, other) not in shown


def _export_as(engine: Engine, user: str) -> AppTest:
    at = app_as(principal(engine, user), PAGES["export"])
    at.date_input(key="export_dates").set_value((dt.date(2020, 1, 1), dt.date(2030, 1, 1)))
    at.selectbox(key="export_fmt").set_value("jsonl")
    at.button[0].click().run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_export_page_writes_a_masked_scoped_file_and_logs_it(
    fresh_db: tuple[Engine, DashSeed],
) -> None:
    engine, _seed = fresh_db
    at = _export_as(engine, "nanjing")
    assert not [c for c in at.checkbox if c.key == "export_unmask"]  # supervisors: no unmask
    assert any("会话" in str(m.value) for m in at.success)
    officer = _export_as(engine, "officer")
    assert [c for c in officer.checkbox if c.key == "export_unmask"]
    with session_scope(engine) as s:
        logs = s.scalars(
            select(AuditLog).where(AuditLog.action == "export").order_by(AuditLog.id)
        ).all()
    assert [log.actor for log in logs] == ["nanjing", "officer"]
    mine, everyone = (log.detail for log in logs)
    assert mine["masked"] and mine["target"] == "dashboard"
    assert mine["filters"]["org_unit_ids"]  # the supervisor's scope, never the whole company
    assert everyone["filters"]["org_unit_ids"] is None
    assert 0 < mine["conversations"] < everyone["conversations"]


def test_export_page_defaults_to_the_last_week_with_data_and_picks_stores(
    fresh_db: tuple[Engine, DashSeed],
) -> None:
    """The first click exports something (the data's last week, not the calendar's), a store
    picker narrows it, and times are in the configured zone."""
    engine, _seed = fresh_db
    at = app_as(principal(engine, "officer"), PAGES["export"])
    start, end = at.date_input(key="export_dates").value
    with session_scope(engine) as s:
        last = s.scalar(select(func.max(Message.msgtime)))
    assert end == last.astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    assert (end - start).days <= 6
    at.selectbox(key="export_fmt").set_value("jsonl")
    at.button[0].click().run()
    assert not at.exception, [e.message for e in at.exception]
    everyone = _last_export(engine)
    assert everyone["conversations"] > 0
    stores = at.multiselect(key="export_stores")
    one = stores.options[0]
    stores.select(one)
    at.button[0].click().run()
    assert not at.exception, [e.message for e in at.exception]
    picked = _last_export(engine)
    assert picked["filters"]["org_unit_ids"] and picked["filters"]["timezone"] == "Asia/Shanghai"
    assert 0 < picked["conversations"] < everyone["conversations"]


def _last_export(engine: Engine) -> dict[str, Any]:
    with session_scope(engine) as s:
        log = s.scalars(
            select(AuditLog).where(AuditLog.action == "export").order_by(AuditLog.id.desc())
        ).first()
    assert log is not None
    return dict(log.detail)


def test_the_dormant_list_is_shown_a_page_at_a_time(fresh_db: tuple[Engine, DashSeed]):
    """More dormant pairs than a page holds: the first page, their number, and the next page
    on a click, from fresh daily tables (as after the pipeline)."""
    engine, _ = fresh_db
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)  # dormant whenever the page asks
    with session_scope(engine) as s:
        zhang = s.scalar(select(Staff).where(Staff.userid == "zhangwei"))
        assert zhang is not None
        for i in range(DORMANT_PAGE + 5):
            customer = Customer(external_userid=f"wmold{i:03d}", name=f"老客户{i:03d}")
            s.add(customer)
            s.flush()
            conv = Conversation(
                key=f"single:zhangwei:wmold{i}:1",
                thread=f"single:zhangwei:wmold{i}",
                kind=ConversationKind.SINGLE,
                staff_id=zhang.id,
                customer_id=customer.id,
                org_unit_id=zhang.org_unit_id,
                started_at=old,
                ended_at=old,
            )
            s.add(conv)
            s.flush()
            for n, kind in ((0, SenderKind.CUSTOMER), (1, SenderKind.STAFF)):
                env = Envelope(source="test", seq=90_000 + 2 * i + n, msgid=f"old{i}-{n}")
                s.add(env)
                s.flush()
                s.add(
                    Message(
                        envelope_id=env.id,
                        msgid=env.msgid,
                        seq=env.seq,
                        action="send",
                        msgtype="text",
                        sender="x",
                        sender_kind=kind,
                        msgtime=old - dt.timedelta(days=i, minutes=-n),
                        text="在吗",
                        conversation_id=conv.id,
                    )
                )
    assert refresh_daily(engine).mode == "full"
    at = app_as(principal(engine, "officer"), PAGES["customers"])
    shown = texts(at)
    assert f"共 {DORMANT_PAGE + 5:,} 个沉睡客户" in shown and "第 1 / 2 页" in shown
    first = at.dataframe[-1].value
    assert len(first) == DORMANT_PAGE
    assert first["silent_days"].is_monotonic_decreasing  # one staff member: longest first
    at.button(key="dormant_next").click().run()
    assert "第 2 / 2 页" in texts(at)
    second = at.dataframe[-1].value
    assert len(second) == 5
    assert not set(second["customer_id"]) & set(first["customer_id"])
