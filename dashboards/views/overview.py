"""门店概览 / Store overview: volumes, findings and alerts per store for a period."""

from __future__ import annotations

import datetime as dt

import datasource as ds
import streamlit as st

from audit.store import reports

NO_DATA = (
    "数据库里还没有会话数据。请运行 `audit demo` 生成演示数据，"
    "或运行 `audit run` 拉取并分析会话存档。\n\n"
    "No chat data yet: run `audit demo` for a demo, or `audit run` to pull and analyse the archive."
)
UNASSIGNED_LABEL = "（未归属门店 unassigned）"


def picked_range(value: object, default: reports.Period) -> tuple[dt.date, dt.date]:
    """``st.date_input`` gives a 0, 1 or 2-tuple while a range is being picked."""
    if isinstance(value, dt.date):
        return value, value
    dates = [d for d in value if isinstance(d, dt.date)] if isinstance(value, tuple) else []
    if len(dates) == 2:
        return dates[0], dates[1]
    if len(dates) == 1:
        return dates[0], dates[0]
    return default.start, default.end


url = ds.database_url()
st.title("门店概览 · Store overview")

period = ds.data_period(url)
if period is None:
    st.info(NO_DATA)
    st.stop()

nodes = ds.org_tree(url)
by_id = {n.id: n for n in nodes}
# the levels a supervisor filters by (regions, cities): every unit that has units below it
choices: list[int | None] = [None, *(n.id for n in nodes if n.has_children)]

left, right = st.columns([1, 2])
start, end = picked_range(
    left.date_input(
        "日期（北京时间）Dates, China time",
        value=(period.start, period.end),
        format="YYYY-MM-DD",
        key="overview_dates",
    ),
    period,
)
unit = right.selectbox(
    "区域 / 城市 Region / city",
    options=choices,
    format_func=lambda i: "全部 All" if i is None else by_id[i].label,
    key="overview_unit",
)
units = None if unit is None else (unit,)

table = ds.store_table(url, start, end, units)
totals = reports.summarize(table)

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
    categories = [*reports.CATEGORIES, *(["other"] if shown["other"].any() else [])]
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
    per_day = ds.messages_per_day(url, start, end, units)
    st.line_chart(per_day, x="day", y="messages", x_label="", y_label="消息 messages")

st.caption("日期按北京时间（UTC+8）划分；消息、违规按所属会话的门店归属。")
