"""员工 / Staff: one staff member's conversations, findings, alerts, scores and response times.

Opened by ``?staff=ID`` (the links in the stores, quality and customer pages). An id outside
the user's stores shows the same "not found" as one that does not exist.
"""

from __future__ import annotations

import auth
import datasource as ds
import streamlit as st
import widgets

from audit import reports

NOT_FOUND = "找不到该员工，或不在您的权限范围内 / staff member not found or not in your scope."

who = auth.require()
url = ds.database_url()
st.title("员工 · Staff")
widgets.people_only(who)

staff_id = widgets.open_by_id(
    "staff",
    "员工编号 Staff #",
    "从门店排名、服务质量或搜索页打开员工，或输入编号 / open one from a table, or enter an id.",
)

period = ds.data_period(url)
if period is None:
    st.info(widgets.NO_DATA)
    st.stop()
start, end = widgets.preset_input(period, "staff_dates")

profile = ds.staff_profile(url, who, staff_id, start, end) if staff_id > 0 else None
if profile is None:
    st.error(NOT_FOUND)
    st.stop()

st.subheader(profile.name)
store = widgets.UNASSIGNED_LABEL if profile.store == reports.UNASSIGNED else profile.store
st.caption(f"{store} · 按期间内开始的会话统计；响应时间为营业时间内的分钟数。")
r = profile.responses
cols = st.columns(7)
cols[0].metric("会话 Conversations", f"{len(profile.conversations):,}")
cols[1].metric("违规 Findings", f"{profile.findings:,}")
cols[2].metric("预警 Alerts", f"{len(profile.alerts):,}")
cols[3].metric(
    "平均分 Score", widgets.num(profile.score_avg), help=f"评分样本 n = {profile.scored}"
)
cols[4].metric(
    "SLA 达标率", widgets.rate(r["sla_rate"], r["responses"]), help=f"回复样本 n = {r['responses']}"
)
for col, name in ((cols[5], "p50"), (cols[6], "p90")):
    col.metric(
        f"响应 {name}",
        widgets.minutes(r[f"response_{name}_min"]),
        help=f"营业时间分钟 business minutes; 回复样本 n = {r['responses']}",
    )
st.caption(
    f"SLA 与响应时间的样本：{r['responses']} 次回复（少于 {widgets.MIN_SAMPLE} 次不计比率）。"
)

st.subheader("会话 Conversations")
convs = profile.conversations
if convs.empty:
    st.info("所选期间没有会话 / no conversations in this period.")
else:
    shown = widgets.as_text(convs, score=widgets.num).assign(
        customer_link=widgets.person_links(convs, "customer"),
    )
    widgets.conversation_table(
        shown,
        who.reads_messages,
        [
            *("started_at", "customer", "customer_link", "messages", "findings", "alerts"),
            *("score", "unanswered"),
        ],
        {
            **widgets.conversation_columns(period.tz),
            "customer": "客户 Customer",
            "customer_link": widgets.person_link_column("customer"),
            "unanswered": st.column_config.CheckboxColumn("待回复", help="客户最后的消息无人回复"),
        },
        key="staff_conversations",
    )

st.subheader("预警 Alerts")
if profile.alerts.empty:
    st.caption("所选期间没有预警 / no alerts in this period.")
else:
    alerts = profile.alerts.assign(
        conversation_link=[
            widgets.link("conversation", "conversation", i)
            for i in profile.alerts["conversation_id"]
        ]
    )
    conv_column = "conversation_link" if who.reads_messages else "conversation_id"
    st.dataframe(
        alerts,
        hide_index=True,
        column_order=["alert_id", "created_at", "severity", "category", "state", conv_column],
        column_config={
            "alert_id": st.column_config.NumberColumn("预警 #", format="%d"),
            "created_at": st.column_config.DatetimeColumn(
                f"预警时间（{period.tz}）", format="YYYY-MM-DD HH:mm"
            ),
            "severity": "严重度",
            "category": "类别",
            "state": "状态",
            "conversation_link": widgets.link_column("会话 #", "打开会话 open the conversation"),
            "conversation_id": st.column_config.NumberColumn("会话 #", format="%d"),
        },
        key="staff_alerts",
    )
