"""词表 / Word lists: hits per rule and the false-positive rate from reviews."""

from __future__ import annotations

import auth
import datasource as ds
import streamlit as st
import widgets

who = auth.require()
url = ds.database_url()
st.title("词表 · Word lists")
if not who.sees_wordlists:
    st.error("此角色不能查看词表 / this role does not see the word lists.")
    st.stop()

period = ds.data_period(url)
if period is None:
    st.info(widgets.NO_DATA)
    st.stop()
start, end = widgets.period_input(period, "wordlists_dates")

rules = ds.rule_table(url, who, start, end)
st.caption(
    "命中数按期间内的消息统计；确认与误报为每条预警最近一次审核结论（全部时间）。"
    "误报率高的词条值得收紧或加入 allow.txt。"
)
if rules.empty:
    st.info("所选期间没有命中 / no hits in this period.")
    st.stop()
st.dataframe(
    rules,
    hide_index=True,
    column_config={
        "rule": "规则 Rule",
        "category": "类别 Category",
        "hits": st.column_config.NumberColumn("命中 hits", format="%d"),
        "variants": st.column_config.NumberColumn("不同写法 variants", format="%d"),
        "confirmed": st.column_config.NumberColumn("确认 confirmed", format="%d"),
        "false_positives": st.column_config.NumberColumn("误报 false positives", format="%d"),
        "false_positive_rate": st.column_config.ProgressColumn(
            "误报率 FP rate", format="percent", min_value=0.0, max_value=1.0
        ),
    },
    key="wordlists_rules",
)

if who.reads_messages:
    rule = st.selectbox("查看命中原文 Matched text of", list(rules["rule"]), key="wordlists_rule")
    examples = ds.rule_examples(url, who, start, end, rule)
    st.dataframe(examples, hide_index=True, key="wordlists_examples")
