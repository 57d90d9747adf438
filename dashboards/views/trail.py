"""审计日志 / Audit trail: sign-ins, conversation views and reviews (append-only)."""

from __future__ import annotations

import auth
import datasource as ds
import streamlit as st

PREFIXES = {
    "": "全部 All",
    "conversation.": "会话查看 Conversation views",
    "alert.": "预警处理 Reviews and assignments",
    "signin": "登录 Sign-ins",
    "user.": "账号 Accounts",
}

who = auth.require()
url = ds.database_url()
st.title("审计日志 · Audit trail")
if not who.sees_trail:
    st.error("只有合规与管理员可以查看 / compliance officers and admins only.")
    st.stop()

prefix = st.selectbox(
    "类型 Kind", list(PREFIXES), format_func=lambda p: PREFIXES[p], key="trail_kind"
)
trail = ds.audit_trail(url, who, prefix)
st.caption(f"最近 {len(trail):,} 条 / newest first")
st.dataframe(trail, hide_index=True, key="trail_table")
