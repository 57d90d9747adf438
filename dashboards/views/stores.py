"""门店排名 / Stores: a ranking by region, city or store, with a drill-down to staff."""

from __future__ import annotations

import auth
import datasource as ds
import streamlit as st
import widgets

from audit import reports

LEVEL_LABELS = {"region": "区域 Region", "city": "城市 City", "store": "门店 Store"}
MEASURES = {
    "messages": st.column_config.NumberColumn("消息", format="%d"),
    "conversations": st.column_config.NumberColumn("会话", format="%d"),
    "findings": st.column_config.NumberColumn("违规", format="%d"),
    "per_1k_text": st.column_config.TextColumn(
        "每千条违规", help="findings per 1,000 messages; 消息少于 20 条为样本不足"
    ),
    "alerts_open": st.column_config.NumberColumn("待处理预警", format="%d"),
    "score_text": st.column_config.TextColumn("平均分"),
    "scored": st.column_config.NumberColumn("评分样本 n", format="%d", help="scored conversations"),
    "sla_text": st.column_config.TextColumn("SLA 达标", help="评分样本少于 20 为样本不足"),
    "response_median_text": st.column_config.TextColumn("响应中位数"),
    "negative_text": st.column_config.TextColumn("负面客户率", help="评分样本少于 20 为样本不足"),
}

who = auth.require()
url = ds.database_url()
st.title("门店排名 · Stores")

period = ds.data_period(url)
if period is None:
    st.info(widgets.NO_DATA)
    st.stop()

a, b = st.columns([2, 1])
start, end = widgets.period_input(period, "stores_dates", a)
level = b.radio(
    "层级 Level",
    list(reports.LEVELS),
    index=2,
    format_func=lambda x: LEVEL_LABELS[x],
    horizontal=True,
    key="stores_level",
)

ranking = ds.store_ranking(url, who, start, end, level)
st.caption("按每千条消息违规数从高到低排序；评分、SLA 与负面率按期间内开始的会话统计，n 为样本数。")
if ranking.empty:
    st.info("所选范围内没有数据 / nothing in this selection.")
    st.stop()
ranking = widgets.with_rate_texts(ranking)
picked = st.dataframe(
    ranking,
    hide_index=True,
    column_order=["label", *MEASURES],
    column_config={"label": LEVEL_LABELS[level], **MEASURES},
    key="stores_ranking",
    on_select="rerun",
    selection_mode="single-row",
)

if not who.sees_people:
    st.caption(f"{widgets.AGGREGATES_ONLY} (no staff drill-down).")
    st.stop()

st.subheader("员工 Staff")
units = {int(r.unit_id): r.label for r in ranking.itertuples()}
rows = widgets.selected_rows(picked)
clicked = int(ranking["unit_id"].iloc[rows[0]]) if rows else None
if clicked is not None and st.session_state.get("stores_clicked") != clicked:
    st.session_state["stores_drill"] = clicked  # a newly clicked row opens its staff below
st.session_state["stores_clicked"] = clicked
unit = st.selectbox(
    "展开 Drill down (点击上表的行 click a row above)",
    list(units),
    format_func=lambda i: units[i],
    key="stores_drill",
)
staff = ds.staff_table(url, who, start, end, unit)
if staff.empty:
    st.info("该单位在所选期间没有会话 / no conversations there in this period.")
else:
    staff = widgets.with_rate_texts(staff)
    links = []
    if "staff_id" in staff.columns:
        staff = staff.assign(staff_link=widgets.person_links(staff, "staff"))
        links = ["staff_link"]
    st.dataframe(
        staff,
        hide_index=True,
        column_order=["staff", *links, "store", *(m for m in MEASURES if m in staff.columns)],
        column_config={
            "staff": "员工 Staff",
            "staff_link": widgets.person_link_column("staff"),
            "store": "门店 Store",
            **MEASURES,
        },
        key="stores_staff",
    )
    if not who.sees_names:
        st.caption("员工姓名已假名化 / staff names are pseudonymised for this role.")
