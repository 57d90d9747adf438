"""客户与标签 / Customers & tags: findings, scores and negative rates by tag and channel."""

from __future__ import annotations

import auth
import datasource as ds
import streamlit as st
import widgets

DORMANT_PAGE = "customers_dormant_page"  # the page of the dormant list shown

MEASURES = {
    "customers": st.column_config.NumberColumn("客户", format="%d"),
    "conversations": st.column_config.NumberColumn("会话", format="%d"),
    "messages": st.column_config.NumberColumn("消息", format="%d"),
    "findings": st.column_config.NumberColumn("违规", format="%d"),
    "per_1k_text": st.column_config.TextColumn(
        "每千条违规", help="findings per 1,000 messages; 消息少于 20 条为样本不足"
    ),
    "score_text": st.column_config.TextColumn("平均分"),
    "scored": st.column_config.NumberColumn("评分样本 n", format="%d"),
    "sla_text": st.column_config.TextColumn("SLA 达标", help="评分样本少于 20 为样本不足"),
    "negative_text": st.column_config.TextColumn(
        "负面客户率", help="scored conversations whose customer was negative (n < 20: 样本不足)"
    ),
}

who = auth.require()
url = ds.database_url()
st.title("客户与标签 · Customers & tags")

period = ds.data_period(url)
if period is None:
    st.info(widgets.NO_DATA)
    st.stop()
start, end = widgets.period_input(period, "customers_dates")

st.subheader("按标签 By tag")
tags = ds.tag_table(url, who, start, end)
if tags.empty:
    st.info("没有带标签客户的会话 / no conversations with tagged customers.")
else:
    st.dataframe(
        widgets.with_rate_texts(tags),
        hide_index=True,
        column_order=["group", "tag", *MEASURES],
        column_config={"group": "标签组 Group", "tag": "标签 Tag", **MEASURES},
        key="customers_tags",
    )
    groups = tags.groupby("group", as_index=False)[["conversations", "findings"]].sum()
    st.bar_chart(groups, x="group", y="findings", x_label="", y_label="违规 findings")

st.subheader("获客渠道 Acquisition channel (state)")
channels = ds.channel_table(url, who, start, end)
if channels.empty:
    st.info("没有渠道数据 / no follows with a channel.")
else:
    st.dataframe(
        widgets.with_rate_texts(channels.assign(channel=ds.channel_names(channels["channel"]))),
        hide_index=True,
        column_order=["channel", "acquired", *MEASURES],
        column_config={
            "channel": "渠道 Channel",
            "acquired": st.column_config.NumberColumn("期间新增 acquired", format="%d"),
            **MEASURES,
        },
        key="customers_channels",
    )

st.subheader("沉睡客户 Dormant customers")
if not who.sees_people:
    st.caption(f"{widgets.AGGREGATES_ONLY}.")
else:
    dormant = ds.dormant_page(url, who, 30, st.session_state.get(DORMANT_PAGE, 1))
    if dormant is None:
        st.caption("沉睡客户清单尚不可用 / the dormant list is not available yet.")
    elif dormant.total == 0:
        st.caption("没有沉睡客户 / no dormant customers.")
    else:
        st.session_state[DORMANT_PAGE] = dormant.page
        st.caption(
            f"共 {dormant.total:,} 个沉睡客户 dormant pairs · "
            f"第 {dormant.page:,} / {dormant.pages:,} 页 page"
        )
        if dormant.pages > 1:
            widgets.pager(DORMANT_PAGE, "dormant", dormant.page, dormant.pages, ends=False)
        st.dataframe(dormant.rows, hide_index=True, key="customers_dormant")
