"""搜索 / Search: messages by keyword, customers by name, remark or phone, staff by name or id.

The queries (:mod:`audit.search`) are scoped to the user's stores and return text already
masked for the role; roles that see pseudonyms search people by pseudonym. A click on a
message opens its conversation.
"""

from __future__ import annotations

import auth
import datasource as ds
import streamlit as st
import widgets

from audit.domain import SenderKind
from audit.search import MIN_INDEXED, SearchError, SearchResult
from audit.store.access import AccessDenied

SENDER_LABELS = {k.value: k.label for k in SenderKind}

who = auth.require()
url = ds.database_url()
st.title("搜索 · Search")
widgets.people_only(who)


def run(kind: str, query: str) -> SearchResult | None:
    search = {
        "messages": ds.search_messages,
        "customers": ds.search_customers,
        "staff": ds.search_staff,
    }[kind]
    try:
        return search(url, who, query)
    except (SearchError, AccessDenied) as exc:
        st.error(str(exc))
        return None


def found(result: SearchResult) -> bool:
    st.caption(f"找到 {result.total_label} 条 / {result.total_label} found")
    if not result.indexed:
        st.caption(
            f"少于 {MIN_INDEXED} 个字的关键词无法使用索引，搜索较慢 / "
            f"keywords under {MIN_INDEXED} characters are scanned, not indexed."
        )
    return result.total > 0


names = ["customers", "staff"]
labels = {"messages": "消息 Messages", "customers": "客户 Customers", "staff": "员工 Staff"}
if who.reads_messages:
    names.insert(0, "messages")
tabs = dict(zip(names, st.tabs([labels[n] for n in names]), strict=True))

if "messages" in tabs:
    with tabs["messages"]:
        with st.form("search_messages_form"):
            keyword = st.text_input(
                "关键词 Keyword", key="search_keyword", placeholder="例如：加微信、退款、12315"
            )
            st.form_submit_button("搜索 Search", type="primary")
        if keyword.strip():
            result = run("messages", keyword)
            if result is not None and found(result):
                rows = result.rows.assign(sender_kind=result.rows["sender_kind"].map(SENDER_LABELS))
                table = st.dataframe(
                    rows,
                    hide_index=True,
                    column_order=["at", "store", "staff", "sender_kind", "excerpt"],
                    column_config={
                        "at": st.column_config.DatetimeColumn(
                            "时间 Time", format="YYYY-MM-DD HH:mm"
                        ),
                        "store": "门店 Store",
                        "staff": "员工 Staff",
                        "sender_kind": "发送方 Sender",
                        "excerpt": st.column_config.TextColumn("内容 Text", width="large"),
                    },
                    on_select="rerun",
                    selection_mode="single-row",
                    key="search_message_rows",
                )
                st.caption("点击一行打开该会话 / click a row to open its conversation.")
                for r in table.selection.rows:
                    conv = rows["conversation_id"].iloc[r]
                    if conv is not None and conv == conv:  # pandas NA: not sessionized yet
                        st.session_state.pop("search_message_rows", None)
                        st.switch_page(
                            "views/conversation.py", query_params={"conversation": str(conv)}
                        )
                    st.info("该消息尚未归入会话 / this message is not in a conversation yet.")

with tabs["customers"]:
    with st.form("search_customers_form"):
        hint = (
            "姓名、备注或手机号 name, remark or phone"
            if who.sees_names
            else "客户代号 pseudonym, e.g. 客户-3f9a1c"
        )
        query = st.text_input(f"客户 Customer（{hint}）", key="search_customer")
        st.form_submit_button("搜索 Search", type="primary")
    if query.strip():
        result = run("customers", query)
        if result is not None and found(result):
            rows = result.rows
            st.dataframe(
                rows.assign(
                    channel=ds.channel_names(rows["channel"]),
                    customer_link=widgets.person_links(rows, "customer"),
                ),
                hide_index=True,
                column_order=["customer", "customer_link", "remark", "channel", "staff", "store"],
                column_config={
                    "customer": "客户 Customer",
                    "customer_link": widgets.person_link_column("customer"),
                    "remark": "备注 Remark",
                    "channel": "渠道 Channel",
                    "staff": "添加人 Staff",
                    "store": "门店 Store",
                },
                key="search_customer_rows",
            )

with tabs["staff"]:
    with st.form("search_staff_form"):
        hint = "姓名或账号 name or id" if who.sees_names else "员工代号 pseudonym, e.g. 员工-3f9a1c"
        query = st.text_input(f"员工 Staff（{hint}）", key="search_staff")
        st.form_submit_button("搜索 Search", type="primary")
    if query.strip():
        result = run("staff", query)
        if result is not None and found(result):
            st.dataframe(
                result.rows.assign(
                    active=result.rows["active"].map({True: "在职", False: "停用"}),
                    staff_link=widgets.person_links(result.rows, "staff"),
                ),
                hide_index=True,
                column_order=["staff", "staff_link", "userid", "position", "store", "active"],
                column_config={
                    "staff": "员工 Staff",
                    "staff_link": widgets.person_link_column("staff"),
                    "userid": "账号 Id",
                    "position": "岗位 Position",
                    "store": "门店 Store",
                    "active": "状态 Status",
                },
                key="search_staff_rows",
            )
