"""服务质量 / Quality: customers waiting now, response times per staff member, daily trends.

Response and waiting times are business minutes on the quality clock (``[quality]``
business hours, days and zone); rates show their sample and say 样本不足 below
``widgets.MIN_SAMPLE`` cases.
"""

from __future__ import annotations

import datetime as dt

import auth
import datasource as ds
import pandas as pd
import streamlit as st
import widgets

MINUTES = "%.1f 分钟"
MINUTE_COLUMNS = ("response_p50_min", "response_p90_min", "waiting_p50_min", "waiting_p90_min")

who = auth.require()
url = ds.database_url()
st.title("服务质量 · Quality")

period = ds.data_period(url)
if period is None:
    st.info(widgets.NO_DATA)
    st.stop()
start, end = widgets.preset_input(period, "quality_dates")
stores = dict(ds.store_choices(url, who))
ALL = 0
unit_pick = st.selectbox(
    "门店 Store",
    [ALL, *stores],
    format_func=lambda i: "全部（您的范围）All in scope" if i == ALL else stores[i],
    key="quality_store",
)
unit = None if unit_pick == ALL else int(unit_pick)
_, sla = ds.quality_clock()
st.caption(
    f"按期间内开始的会话统计；时间为营业时间内的分钟数，SLA {sla:g} 分钟；"
    f"比率在样本少于 {widgets.MIN_SAMPLE} 时显示“{widgets.TOO_FEW}”。"
)

if who.sees_people:
    now = dt.datetime.now(dt.UTC)
    st.subheader("待回复 Waiting now")
    waiting, per_staff = ds.waiting_and_staff(url, who, start, end, unit, now)
    if waiting.empty:
        st.info("没有等待回复的客户 / no customer is waiting for a reply.")
    else:
        overdue = int(waiting["overdue"].sum())
        st.caption(f"{len(waiting):,} 个会话等待回复，其中 {overdue:,} 个已超时。")
        shown = waiting.assign(
            staff_link=widgets.person_links(waiting, "staff"),
            customer_link=widgets.person_links(waiting, "customer"),
        )
        widgets.conversation_table(
            shown,
            who.reads_messages,
            [
                *("staff", "staff_link", "store", "customer", "customer_link"),
                *("since", "waiting_min", "overdue"),
            ],
            {
                "staff": "员工 Staff",
                "staff_link": widgets.person_link_column("staff"),
                "store": "门店 Store",
                "customer": "客户 Customer",
                "customer_link": widgets.person_link_column("customer"),
                "since": st.column_config.DatetimeColumn(
                    f"等待起于（{period.tz}）", format="YYYY-MM-DD HH:mm"
                ),
                "waiting_min": st.column_config.NumberColumn("已等待", format=MINUTES),
                "overdue": st.column_config.CheckboxColumn("超时", help=f"超过 SLA {sla:g} 分钟"),
            },
            key="quality_waiting",
        )

    st.subheader("员工响应 Response times by staff")
    if per_staff.empty:
        st.info("所选范围内没有已评分的会话 / no scored conversations here.")
    else:
        shown = widgets.as_text(
            per_staff,
            **dict.fromkeys(MINUTE_COLUMNS, widgets.minutes),
        ).assign(
            sla_text=[
                widgets.rate(v, n)
                for v, n in zip(per_staff["sla_rate"], per_staff["responses"], strict=True)
            ]
        )
        order = ["staff", "store", "conversations", "responses", "sla_text"]
        order += ["response_p50_min", "response_p90_min", "unanswered", "overdue"]
        order += ["waiting_p50_min", "waiting_p90_min"]
        if "staff_id" in shown.columns:
            shown["staff_link"] = widgets.person_links(shown, "staff")
            order.insert(1, "staff_link")
        st.dataframe(
            shown,
            hide_index=True,
            column_order=order,
            column_config={
                "staff": "员工 Staff",
                "staff_link": widgets.person_link_column("staff"),
                "store": "门店 Store",
                "conversations": st.column_config.NumberColumn("评分会话", format="%d"),
                "responses": st.column_config.NumberColumn("回复样本 n", format="%d"),
                "sla_text": "SLA 达标率",
                "response_p50_min": "响应 p50",
                "response_p90_min": "响应 p90",
                "unanswered": st.column_config.NumberColumn("待回复", format="%d"),
                "overdue": st.column_config.NumberColumn("已超时", format="%d"),
                "waiting_p50_min": "等待 p50",
                "waiting_p90_min": "等待 p90",
            },
            key="quality_staff",
        )
else:
    st.caption(f"{widgets.AGGREGATES_ONLY} (no per-person rows).")

st.subheader("每日趋势 Daily trend")
trend = ds.daily_trend(url, who, start, end, unit)
shown = widgets.as_text(trend, score_avg=widgets.num).assign(
    per_1k_text=[
        widgets.per_1k(v, n)
        for v, n in zip(trend["findings_per_1k"], trend["messages"], strict=True)
    ],
    sla_text=[widgets.rate(v, n) for v, n in zip(trend["sla_rate"], trend["scored"], strict=True)],
    negative_text=[
        widgets.rate(v, n) for v, n in zip(trend["negative_rate"], trend["scored"], strict=True)
    ],
)
st.dataframe(
    shown,
    hide_index=True,
    column_order=[
        *("day", "messages", "findings", "per_1k_text", "alerts", "alerts_open"),
        *("conversations", "scored", "score_avg", "sla_text", "negative_text"),
    ],
    column_config={
        "day": st.column_config.DateColumn(f"日期（{period.tz}）", format="YYYY-MM-DD"),
        "messages": st.column_config.NumberColumn("消息 n", format="%d"),
        "findings": st.column_config.NumberColumn("违规", format="%d"),
        "per_1k_text": st.column_config.TextColumn(
            "每千条违规", help="findings per 1,000 messages"
        ),
        "alerts": st.column_config.NumberColumn("预警", format="%d"),
        "alerts_open": st.column_config.NumberColumn("待处理", format="%d"),
        "conversations": st.column_config.NumberColumn("会话", format="%d"),
        "scored": st.column_config.NumberColumn("评分样本 n", format="%d"),
        "score_avg": "平均分",
        "sla_text": "SLA 达标率",
        "negative_text": st.column_config.TextColumn(
            "负面客户占比", help="customer-negative share of scored conversations"
        ),
    },
    key="quality_trend",
)
chart = pd.DataFrame(
    {
        "每千条违规": trend["findings_per_1k"].where(trend["messages"] >= widgets.MIN_SAMPLE),
        "平均分": trend["score_avg"],
    },
).set_index(pd.to_datetime(trend["day"]))
st.line_chart(chart, x_label="", y_label="")
if unit is None and who.unit_ids is None:
    st.caption("全部范围含未分配门店的消息 / “all” includes messages not yet assigned to a store.")
