"""预警 / Alerts: the review queue, with filters, assignment and single or bulk review."""

from __future__ import annotations

import auth
import datasource as ds
import streamlit as st
import widgets

from audit import reports
from audit.domain import CATEGORIES
from audit.store.access import AccessDenied
from audit.store.models import AlertState, Severity
from audit.store.reviews import ACTIONS, ReviewError

FLASH = "alerts_flash"
STATE_LABELS = {s.value: s.bilingual for s in AlertState}

who = auth.require()
url = ds.database_url()
st.title("预警 · Alerts")
if not who.reads_messages:  # the navigation hides this page; the queries refuse anyway
    st.error("此角色不能查看预警 / this role does not see alerts.")
    st.stop()

for kind, text in st.session_state.pop(FLASH, []):
    getattr(st, kind)(text)

period = ds.data_period(url)
if period is None:
    st.info(widgets.NO_DATA)
    st.stop()

stores = [n for n in ds.scoped_org_tree(url, who) if n.kind == reports.STORE_KIND]
store_names = {n.id: n.label for n in stores}
staff = dict(ds.staff_choices(url, who))

with st.container(border=True):
    a, b, c, d = st.columns(4)
    start, end = widgets.period_input(period, "alerts_dates", a)
    severities = b.multiselect(
        "严重程度 Severity", [s.value for s in Severity][::-1], key="alerts_severity"
    )
    categories = c.multiselect(
        "类别 Category",
        list(CATEGORIES),
        format_func=lambda x: ds.CATEGORY_LABELS.get(x, x),
        key="alerts_category",
    )
    states = d.multiselect(
        "状态 State",
        [s.value for s in AlertState],
        default=["open"],
        format_func=lambda x: STATE_LABELS.get(x, x),
        key="alerts_state",
    )
    e, f, g, h = st.columns(4)
    picked_stores = e.multiselect(
        "门店 Store", list(store_names), format_func=lambda i: store_names[i], key="alerts_store"
    )
    picked_staff = f.multiselect(
        "员工 Staff", list(staff), format_func=lambda i: staff[i], key="alerts_staff"
    )
    sort = g.selectbox(
        "排序 Sort",
        list(reports.ALERT_SORTS),
        format_func=lambda s: reports.ALERT_SORTS[s],
        key="alerts_sort",
    )
    mine = h.toggle("只看分配给我的 Assigned to me", key="alerts_mine")

query = reports.AlertQuery(
    period=reports.Period(start, end, period.tz),
    severities=tuple(severities),
    categories=tuple(categories),
    states=tuple(states),
    unit_ids=tuple(picked_stores),
    staff_ids=tuple(picked_staff),
    assignee_id=who.user_id,
    mine_only=mine,
    sort=sort,
    tz=period.tz,
)
queue = ds.alert_queue(url, who, query)
st.caption(
    f"{len(queue):,} 条预警 alerts"
    + (f"（最多显示 {reports.ALERT_LIMIT:,} 条）" if len(queue) >= reports.ALERT_LIMIT else "")
)
if queue.empty:
    st.info("没有符合条件的预警 / no alerts match.")
    st.stop()

st.dataframe(
    queue,
    hide_index=True,
    column_order=[
        "alert_id",
        "at",
        "severity",
        "category",
        "state",
        "title",
        "store",
        "staff",
        "assignee",
        "rule",
    ],
    column_config={
        "alert_id": st.column_config.NumberColumn("#", format="%d"),
        "at": st.column_config.DatetimeColumn("时间 Time", format="MM-DD HH:mm"),
        "severity": "严重 Severity",
        "category": "类别 Category",
        "state": "状态 State",
        "title": "标题 Title",
        "store": "门店 Store",
        "staff": "员工 Staff",
        "assignee": "处理人 Assignee",
        "rule": "规则 Rule",
    },
    key="alerts_table",
)

labels = {
    int(r.alert_id): f"#{r.alert_id} · {r.severity} · {r.title} · {r.store or ''}"
    for r in queue.itertuples()
}

st.subheader("处理 Review")
select_all = st.checkbox("选择全部显示的预警 Select all shown", key="alerts_all")
selected = st.multiselect(
    "选择预警 Select alerts",
    list(labels),
    default=list(labels) if select_all else None,
    format_func=lambda i: labels[i],
    key="alerts_selected",
    disabled=select_all,
)
chosen = list(labels) if select_all else selected

left, right = st.columns([2, 1])
with left.form("alerts_review", clear_on_submit=True):
    action = st.selectbox(
        "操作 Action",
        list(ACTIONS),
        format_func=lambda a: ACTIONS[a].label + (" *" if ACTIONS[a].comment_required else ""),
        key="alerts_action",
    )
    comment = st.text_area(
        "说明 Comment（* 误报、上报、重新打开必填 required for *）", key="alerts_comment"
    )
    submitted = st.form_submit_button("提交 Submit", type="primary")
if submitted:
    try:
        result = ds.review(url, who, chosen, action, comment)
    except (ReviewError, AccessDenied) as exc:
        st.error(str(exc))
    else:
        flash = [
            ("success", f"已处理 {len(result.reviewed)} 条预警 / reviewed {len(result.reviewed)}.")
        ]
        if result.skipped:
            skipped = "; ".join(f"#{i}: {why}" for i, why in result.skipped.items())
            flash.append(("warning", f"跳过 skipped {len(result.skipped)}: {skipped}"))
        st.session_state[FLASH] = flash
        st.rerun()

with right:
    users = dict(ds.assignable_users(url, who))
    assignee = st.selectbox(
        "分配给 Assign to",
        [None, *users],
        format_func=lambda i: "（取消分配 unassign）" if i is None else users[i],
        key="alerts_assignee",
    )
    if st.button("分配 Assign", key="alerts_assign", disabled=not chosen):
        try:
            n = ds.assign(url, who, chosen, assignee)
        except (ReviewError, AccessDenied) as exc:
            st.error(str(exc))
        else:
            st.session_state[FLASH] = [("success", f"已分配 {n} 条 / assigned {n}.")]
            st.rerun()
    st.divider()
    target = st.selectbox(
        "打开会话 Open conversation",
        list(labels),
        format_func=lambda i: labels[i],
        key="alerts_open",
    )
    if st.button("打开 Open", key="alerts_open_button"):
        st.switch_page("views/conversation.py", query_params={"alert": str(target)})
