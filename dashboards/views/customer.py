"""客户 / Customer: one customer's conversations, tags and acquisition channels.

Opened by ``?customer=ID``. Names are masked as on the conversation page (analysts see
pseudonyms only); an id outside the user's stores shows the same "not found" as one that does
not exist.
"""

from __future__ import annotations

import auth
import datasource as ds
import render
import streamlit as st
import widgets

from audit import reports
from audit.reports.customer import CONVERSATION_LIMIT

NOT_FOUND = "找不到该客户，或不在您的权限范围内 / customer not found or not in your scope."

who = auth.require()
url = ds.database_url()
tz = ds.timezone()
st.title("客户 · Customer")
widgets.people_only(who)

customer_id = widgets.open_by_id(
    "customer",
    "客户编号 Customer #",
    "从会话、员工或搜索页打开客户，或输入编号 / open one from a table, or enter an id.",
)

profile = ds.customer_profile(url, who, customer_id) if customer_id > 0 else None
if profile is None:
    st.error(NOT_FOUND)
    st.stop()

st.subheader(profile.name)
st.caption(f"企业微信客户 ID：{render.md_text(profile.wecom_id)}")
if not who.sees_names:
    st.caption("客户与员工已假名化 / people are pseudonymised for this role.")

st.markdown("**标签 Tags**")
if profile.tags:
    st.html(render.codes_html([f"{g}: {t}" for g, t in profile.tags]))
else:
    st.caption("无标签 no tags")

st.subheader("添加关系与渠道 Follows & channels")
if profile.follows.empty:
    st.caption("您的范围内没有添加关系 / no follows in your scope.")
else:
    follows = profile.follows.assign(
        staff_link=widgets.person_links(profile.follows, "staff"),
        channel=ds.channel_names(profile.follows["channel"]),
        store=profile.follows["store"].replace(reports.UNASSIGNED, widgets.UNASSIGNED_LABEL),
    )
    order = ["staff", "staff_link", "store", "channel", "added_at"]
    if who.sees_names:
        order.insert(4, "remark")
    st.dataframe(
        follows,
        hide_index=True,
        column_order=order,
        column_config={
            "staff": "员工 Staff",
            "staff_link": widgets.person_link_column("staff"),
            "store": "门店 Store",
            "channel": "渠道 Channel",
            "remark": "备注 Remark",
            "added_at": st.column_config.DatetimeColumn(
                f"添加时间（{tz}）", format="YYYY-MM-DD HH:mm"
            ),
        },
        key="customer_follows",
    )

st.subheader("会话 Conversations")
convs = profile.conversations
if convs.empty:
    st.caption("您的范围内没有会话 / no conversations in your scope.")
    st.stop()
if profile.total_conversations > len(convs):
    st.caption(f"共 {profile.total_conversations:,} 个会话，显示最近 {CONVERSATION_LIMIT:,} 个。")
shown = widgets.as_text(convs, score=widgets.num).assign(
    store=convs["store"].replace(reports.UNASSIGNED, widgets.UNASSIGNED_LABEL),
    staff_link=widgets.person_links(convs, "staff"),
)
widgets.conversation_table(
    shown,
    who.reads_messages,
    [
        *("started_at", "staff", "staff_link", "store"),
        *("messages", "findings", "alerts", "score"),
    ],
    {
        **widgets.conversation_columns(tz),
        "staff": "员工 Staff",
        "staff_link": widgets.person_link_column("staff"),
        "store": "门店 Store",
    },
    key="customer_conversations",
)
