"""审计日志 / Audit trail: sign-ins, conversation views, reviews, exports (append-only)."""

from __future__ import annotations

import auth
import datasource as ds
import streamlit as st

from audit.domain import Action

who = auth.require()
url = ds.database_url()
st.title("审计日志 · Audit trail")
if not who.sees_trail:
    st.error("只有合规与管理员可以查看 / compliance officers and admins only.")
    st.stop()

actions: list[Action] = st.multiselect(
    "操作 Actions（不选即全部 all when empty）",
    list(Action),
    format_func=lambda a: a.bilingual,
    key="trail_actions",
    placeholder="全部操作 All actions",
)
trail = ds.audit_trail(url, who, tuple(actions))
st.caption(f"最近 {len(trail):,} 条 / newest first")
st.dataframe(trail, hide_index=True, key="trail_table")
