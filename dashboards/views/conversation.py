"""会话 / Conversation: the transcript with findings marked, its scores, and its alerts.

Opened by ``?conversation=ID`` or ``?alert=ID`` (the digest's links). Loading goes through
``open_conversation``, which checks the scope and writes the view to the audit log; an id
outside the user's stores shows the same "not found" as an id that does not exist.
"""

from __future__ import annotations

from html import escape

import auth
import datasource as ds
import pandas as pd
import render
import streamlit as st
import widgets

from audit.export.masking import masker_for
from audit.store.access import AccessDenied
from audit.store.models import AlertState
from audit.store.reviews import ACTIONS, ReviewError, actions_from

VIEW_KEY = "conversation_view"
FLASH = "conversation_flash"
NOT_FOUND = "找不到该会话，或不在您的权限范围内 / conversation not found or not in your scope."

who = auth.require()
url = ds.database_url()
tz = ds.timezone()
st.title("会话 · Conversation")
if not who.reads_messages:
    st.error("此角色不能查看会话内容 / this role does not read conversations.")
    st.stop()


for kind, text in st.session_state.pop(FLASH, []):
    getattr(st, kind)(text)

with st.form("conversation_go"):
    a, b, c = st.columns([2, 2, 1])
    typed_conv = a.text_input(
        "会话编号 Conversation #", value=st.query_params.get("conversation", "")
    )
    typed_alert = b.text_input("预警编号 Alert #", value=st.query_params.get("alert", ""))
    if c.form_submit_button("打开 Open"):
        st.query_params.clear()
        if typed_alert.strip():
            st.query_params["alert"] = typed_alert.strip()
        elif typed_conv.strip():
            st.query_params["conversation"] = typed_conv.strip()
        st.session_state.pop(VIEW_KEY, None)
        st.rerun()

conversation_id, alert_id = widgets.id_param("conversation"), widgets.id_param("alert")
if conversation_id is None and alert_id is None:
    st.info("从预警列表打开一个会话，或输入编号 / open one from the alert queue, or enter an id.")
    st.stop()

# one logged view per conversation opened (reruns for widgets on this page reuse it)
wanted = (who, conversation_id, alert_id)
cached = st.session_state.get(VIEW_KEY)
if cached is None or cached[0] != wanted:
    try:
        view = ds.open_conversation(url, who, conversation_id, alert_id)
    except AccessDenied as exc:
        st.error(str(exc))
        st.stop()
    st.session_state[VIEW_KEY] = (wanted, view)
else:
    view = cached[1]
if view is None:
    st.error(NOT_FOUND)
    st.stop()

# ---------------------------------------------------------------- header
st.caption(
    f"#{view.id} · {render.md_text(view.store)} · {render.md_text(view.staff or '—')} ↔ "
    f"{render.md_text(view.customer or view.thread)} · "
    f"{render.clock_time(view.started_at, tz)} – {render.clock_time(view.ended_at, tz)} ({tz})"
)
cols = st.columns(4)
cols[0].metric("消息 Messages", len(view.messages))
cols[1].metric("违规 Findings", sum(len(m.findings) for m in view.messages))
cols[2].metric(
    "评分 Score",
    widgets.num(view.score),
    help=f"scorecard {view.scorecard_version}" if view.scorecard_version else "未评分 not scored",
)
cols[3].metric("SLA 达标率", widgets.pct(view.metrics.get("sla_rate")))

left, right = st.columns([3, 2])
with left:
    st.subheader("记录 Transcript")
    focus = frozenset(
        f.id for m in view.messages for f in m.findings if f.alert_id == view.focus_alert_id
    )
    st.html(render.transcript_html(view.messages, focus, masker_for(who), tz))

with right:
    st.subheader("客户 Customer")
    if view.customer_id is not None:
        st.page_link(
            "views/customer.py",
            label="客户详情 Customer page",
            icon=":material/person:",
            query_params={"customer": str(view.customer_id)},
        )
    if view.tags:
        st.html(render.codes_html([f"{g}: {t}" for g, t in view.tags]))
    else:
        st.caption("无标签 no tags")
    channels = "、".join(ds.channel_names(view.channels)) if view.channels else "—"
    st.html(f"渠道 Channel: {escape(channels)}")

    st.subheader("评分 Scorecard")
    if view.deductions:
        st.dataframe(pd.DataFrame(list(view.deductions)), hide_index=True, key="conv_deductions")
    elif view.score is not None:
        st.caption("无扣分 no deductions")
    if view.metrics:
        scalars = {k: v for k, v in view.metrics.items() if isinstance(v, int | float | bool | str)}
        with st.expander("指标 Metrics"):
            st.dataframe(
                pd.DataFrame(
                    {"metric": list(scalars), "value": [str(v) for v in scalars.values()]}
                ),
                hide_index=True,
                key="conv_metrics",
            )
        classifier = view.metrics.get("scores_max") or {}
        if classifier:
            st.markdown("**分类器 Classifier scores (max over messages)**")
            st.dataframe(
                pd.DataFrame({"classifier": list(classifier), "score": list(classifier.values())}),
                hide_index=True,
                key="conv_classifiers",
            )

    st.subheader("同一客户的会话 The pair's conversations")
    pair = pd.DataFrame(view.pair, columns=["id", "started_at", "messages", "findings"])
    pair["this"] = pair["id"] == view.id
    st.dataframe(pair, hide_index=True, key="conv_pair")
    others = [i for i, *_ in view.pair if i != view.id]
    if others:
        target = st.selectbox("打开 Open", others, key="conv_pair_pick")
        if st.button("打开该会话 Open", key="conv_pair_open"):
            st.query_params.clear()
            st.query_params["conversation"] = str(target)
            st.rerun()

# ---------------------------------------------------------------- alerts of this conversation
st.subheader("预警 Alerts")
listed = ds.conversation_alerts(url, who, view.id)
alerts = listed.rows
if alerts.empty:
    st.caption("本会话没有预警 / no alerts on this conversation.")
    st.stop()
if listed.total > len(alerts):
    st.caption(
        f"显示最早的 {len(alerts):,} 条，共 {listed.total:,} 条 / "
        f"the oldest {len(alerts):,} of {listed.total:,} shown."
    )
st.dataframe(
    alerts,
    hide_index=True,
    column_order=["alert_id", "at", "severity", "category", "state", "title", "assignee", "rule"],
    key="conv_alerts",
)
ids = [int(i) for i in alerts["alert_id"]]
default = ids.index(view.focus_alert_id) if view.focus_alert_id in ids else 0
alert = st.selectbox("预警 Alert", ids, index=default, key="conv_alert_pick")
state = AlertState(alerts.loc[alerts["alert_id"] == alert, "state"].iloc[0])
allowed = [a.name for a in actions_from(state)]
history = ds.alert_history(url, who, alert)
if history:
    st.dataframe(pd.DataFrame([h.__dict__ for h in history]), hide_index=True, key="conv_history")
if who.reviews and allowed:
    # not clear_on_submit: a refused submission keeps the chosen action and the comment
    with st.form("conv_review"):
        action = st.radio(
            "操作 Action",
            allowed,
            format_func=lambda a: ACTIONS[a].label + (" *" if ACTIONS[a].comment_required else ""),
            horizontal=True,
            key="conv_action",
        )
        comment = st.text_area("说明 Comment (* 必填 required)", key="conv_comment")
        if st.form_submit_button("提交 Submit", type="primary"):
            try:
                ds.review(url, who, [alert], action, comment)
            except (ReviewError, AccessDenied) as exc:
                st.error(str(exc))
            else:
                st.session_state[FLASH] = [("success", f"预警 #{alert} 已处理 / reviewed.")]
                for key in (VIEW_KEY, "conv_action", "conv_comment"):  # a fresh form next
                    st.session_state.pop(key, None)
                st.rerun()
