"""概览 / Overview: the latest day and the last 7/30 days, per store, trends, worst movers."""

from __future__ import annotations

import auth
import datasource as ds
import streamlit as st
import widgets

from audit import reports
from audit.domain import CATEGORIES

UNASSIGNED_LABEL = widgets.UNASSIGNED_LABEL
picked_range = widgets.picked_range  # kept for callers of the first version

who = auth.require()
url = ds.database_url()
st.title("门店概览 · Store overview")

period = ds.data_period(url)
if period is None:
    st.info(widgets.NO_DATA)
    st.stop()

lag = ds.pipeline_lag(url, who)
if lag is not None:
    st.caption(widgets.lag_line(lag, period.tz))

nodes = ds.scoped_org_tree(url, who)
by_id = {n.id: n for n in nodes}
choices: list[int | None] = [None, *(n.id for n in nodes if n.has_children)]

# the pickers sit below the windows but are read first: one query pass serves the page
windows_slot = st.container()
st.divider()
# ---------------------------------------------------------------- period table

left, right = st.columns([1, 2])
start, end = widgets.period_input(period, "overview_dates", left)
unit = right.selectbox(
    "区域 / 城市 Region / city",
    options=choices,
    format_func=lambda i: "全部 All" if i is None else by_id[i].label,
    key="overview_unit",
)
units = None if unit is None else (unit,)

data = ds.overview(url, who, start, end, units, period.end)
table = data.table
totals = reports.summarize(table)

with windows_slot:
    windows = data.windows
    labels = {
        "yesterday": f"最近一天 {period.end:%m-%d}",
        "7d": "近 7 天 7 days",
        "30d": "近 30 天 30 days",
    }
    for column, window in zip(st.columns(len(windows)), windows, strict=True):
        with column.container(border=True):
            st.markdown(f"**{labels[window.label]}**")
            t = window.totals
            a, b = st.columns(2)
            a.metric("消息 Messages", f"{t.messages:,}")
            b.metric("会话 Conversations", f"{t.conversations:,}")
            a.metric("违规 Findings", f"{t.findings:,}")
            b.metric("待处理预警 Open alerts", f"{t.alerts_open:,}")
            a.metric(
                "平均分 Avg score",
                widgets.num(window.score_avg),
                help=f"{window.scored:,} 个会话有评分 conversations scored",
            )
            b.metric("SLA 达标率", widgets.pct(window.sla_rate))

cols = st.columns(5)
cols[0].metric("消息 Messages", f"{totals.messages:,}")
cols[1].metric("会话 Conversations", f"{totals.conversations:,}", help="按会话开始时间统计")
cols[2].metric("违规 Findings", f"{totals.findings:,}")
cols[3].metric(
    "待处理预警 Open alerts",
    f"{totals.alerts_open:,}",
    help=f"所选期间共 {totals.alerts_total:,} 条预警",
)
cols[4].metric(
    "门店 Stores",
    f"{totals.stores:,}",
    help=f"其中 {totals.active_stores:,} 家在所选期间有消息",
)

st.subheader("门店明细 Per store")
if table.empty:
    st.info("所选范围内没有门店 / no stores in this selection.")
else:
    shown = table.copy()
    shown.loc[shown["org_unit_id"].isna(), "store"] = UNASSIGNED_LABEL
    categories = [*CATEGORIES, *(["other"] if shown["other"].any() else [])]
    st.dataframe(
        shown,
        hide_index=True,
        column_order=[
            "region",
            "city",
            "store",
            "messages",
            "conversations",
            *categories,
            "findings",
            "findings_per_1k",
            "alerts_open",
            "alerts_total",
        ],
        column_config={
            "region": "区域 Region",
            "city": "城市 City",
            "store": "门店 Store",
            "messages": st.column_config.NumberColumn("消息", format="%d"),
            "conversations": st.column_config.NumberColumn("会话", format="%d"),
            **{c: ds.CATEGORY_LABELS[c] for c in categories},
            "findings": st.column_config.NumberColumn("违规合计", format="%d"),
            "findings_per_1k": st.column_config.NumberColumn(
                "每千条消息违规", format="%.1f", help="findings per 1,000 messages"
            ),
            "alerts_open": st.column_config.NumberColumn("待处理预警", format="%d"),
            "alerts_total": st.column_config.NumberColumn("预警总数", format="%d"),
        },
    )
    if shown["org_unit_id"].isna().any():
        st.caption(f"{UNASSIGNED_LABEL}：尚未归入会话的消息，会在下一次 `audit run` 后归属门店。")

chart_left, chart_right = st.columns(2)
with chart_left:
    st.subheader("违规类别 Findings by category")
    by_category = reports.findings_by_category(table)
    by_category["category"] = by_category["category"].map(ds.CATEGORY_LABELS)
    st.bar_chart(
        by_category,
        x="category",
        y="findings",
        x_label="",
        y_label="违规 findings",
        sort="-findings",
    )
with chart_right:
    st.subheader("每日消息 Messages per day")
    per_day = data.per_day
    st.line_chart(per_day, x="day", y="messages", x_label="", y_label="消息 messages")

st.subheader("变化最大的门店 Worst-moving stores")
movers = data.movers
if movers.empty:
    st.caption(
        "近 7 天与之前 7 天都有至少 50 条消息的门店才参与比较 / needs 50+ messages in both weeks."
    )
else:
    st.dataframe(
        movers,
        hide_index=True,
        column_order=[
            "store",
            "city",
            "messages",
            "findings_per_1k_before",
            "findings_per_1k",
            "change",
        ],
        column_config={
            "store": "门店 Store",
            "city": "城市 City",
            "messages": st.column_config.NumberColumn("近 7 天消息", format="%d"),
            "findings_per_1k_before": st.column_config.NumberColumn("之前 每千条", format="%.1f"),
            "findings_per_1k": st.column_config.NumberColumn("近 7 天 每千条", format="%.1f"),
            "change": st.column_config.NumberColumn("变化 change", format="%+.1f"),
        },
        key="overview_movers",
    )

st.caption(f"日期按 {period.tz} 当地时间划分；消息、违规按所属会话的门店归属。")
