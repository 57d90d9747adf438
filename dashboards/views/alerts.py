"""预警 / Alerts: the review queue.

The queue is paged (the total counted in the database, never by loading it), sorted by a
column the reviewer picks, and marks alerts past their review deadline. A click on a row opens
its conversation with the alert in focus; in 选择处理 mode rows are ticked instead, the ticked
alerts are listed, and an action is applied only after a confirmation. The chosen action and
comment live in ``st.session_state`` (no form that clears itself), so a refused submission
keeps them.
"""

from __future__ import annotations

import dataclasses

import auth
import datasource as ds
import streamlit as st
import widgets

from audit import reports
from audit.domain import CATEGORIES
from audit.reports.alerts import PAGE_SIZES, SORTS, QueueQuery
from audit.store.access import AccessDenied
from audit.store.models import AlertState, Severity
from audit.store.reviews import ACTIONS, ReviewError, missing_comment

FLASH = "alerts_flash"
PAGE = "alerts_page_no"  # the page shown; a plain value, moved by the buttons below
FILTERS = "alerts_filters"  # the filters the page number belongs to
CONFIRM = "alerts_confirm"  # (alert ids, action) waiting for the confirmation click
RESET = "alerts_reset"  # after a successful review: clear the selection, action and comment
ROWS_OF = "alerts_rows_of"  # the alert ids the table selection refers to
OPEN_MODE, SELECT_MODE = "open", "select"
MODES = {OPEN_MODE: "点击打开会话 Click opens", SELECT_MODE: "勾选批量处理 Tick to review"}
STATE_LABELS = {s.value: s.label for s in AlertState}
SEVERITY_LABELS = {s.value: s.label for s in Severity}
OVERDUE_MARK = "⏰ 逾期"

who = auth.require()
url = ds.database_url()
st.title("预警 · Alerts")
if not who.reads_messages:  # the navigation hides this page; the queries refuse anyway
    st.error("此角色不能查看预警 / this role does not see alerts.")
    st.stop()

if st.session_state.pop(RESET, False):
    for key in ("alerts_rows", "alerts_all", "alerts_action", "alerts_comment", CONFIRM):
        st.session_state.pop(key, None)
for kind, text in st.session_state.pop(FLASH, []):
    getattr(st, kind)(text)

period = ds.data_period(url)
if period is None:
    st.info(widgets.NO_DATA)
    st.stop()

stores = [n for n in ds.scoped_org_tree(url, who) if n.kind == reports.STORE_KIND]
store_names = {n.id: n.label for n in stores}
staff = dict(ds.staff_choices(url, who))
hours = ds.review_hours()

with st.container(border=True):
    a, b, c, d = st.columns(4)
    start, end = widgets.period_input(period, "alerts_dates", a)
    severities = b.multiselect(
        "严重程度 Severity",
        [s.value for s in Severity][::-1],
        format_func=lambda x: SEVERITY_LABELS[x],
        placeholder="全部 all",
        key="alerts_severity",
    )
    categories = c.multiselect(
        "类别 Category",
        list(CATEGORIES),
        format_func=lambda x: ds.CATEGORY_LABELS.get(x, x),
        placeholder="全部 all",
        key="alerts_category",
    )
    states = d.multiselect(
        "状态 State",
        [s.value for s in AlertState],
        default=["open"],
        format_func=lambda x: STATE_LABELS.get(x, x),
        placeholder="全部 all",
        key="alerts_state",
    )
    e, f, g, h = st.columns(4)
    picked_stores = e.multiselect(
        "门店 Store",
        list(store_names),
        format_func=lambda i: store_names[i],
        placeholder="全部 all",
        key="alerts_store",
    )
    picked_staff = f.multiselect(
        "员工 Staff",
        list(staff),
        format_func=lambda i: staff[i],
        placeholder="全部 all",
        key="alerts_staff",
    )
    overdue_only = g.toggle(
        "只看逾期 Overdue only",
        key="alerts_overdue",
        help="处理时限 review deadlines: "
        + "，".join(f"{s.label} {hours[s]:g} 小时" for s in list(Severity)[::-1]),
    )
    mine = h.toggle("只看分配给我的 Assigned to me", key="alerts_mine")
    i, j, k, _ = st.columns(4)
    sort = i.selectbox(
        "排序 Sort", list(SORTS), index=1, format_func=lambda s: SORTS[s], key="alerts_sort"
    )
    order = j.segmented_control(
        "顺序 Order",
        ["desc", "asc"],
        default="desc",
        format_func=lambda o: "降序 ↓" if o == "desc" else "升序 ↑",
        key="alerts_order",
    )
    page_size = k.selectbox("每页 Per page", PAGE_SIZES, index=1, key="alerts_page_size")

filters = QueueQuery(
    period=reports.Period(start, end, period.tz),
    severities=tuple(severities),
    categories=tuple(categories),
    states=tuple(states),
    unit_ids=tuple(picked_stores),
    staff_ids=tuple(picked_staff),
    assignee_id=who.user_id,
    mine_only=mine,
    overdue_only=overdue_only,
    sort=sort,
    descending=order != "asc",
    page_size=page_size,
    tz=period.tz,
)
if st.session_state.get(FILTERS) != filters:  # other filters: back to the first page
    st.session_state[FILTERS] = filters
    st.session_state[PAGE] = 1
result = ds.alert_queue_page(
    url, who, dataclasses.replace(filters, page=st.session_state.get(PAGE, 1))
)
st.session_state[PAGE] = result.page

st.caption(
    f"共 {result.total:,} 条预警 alerts · 逾期 overdue {result.overdue:,} · "
    f"第 {result.page:,} / {result.pages:,} 页 page"
)
if result.total == 0:
    st.info("没有符合条件的预警 / no alerts match.")
    st.stop()


widgets.pager(PAGE, "alerts", result.page, result.pages)

queue = result.rows
ids = [int(x) for x in queue["alert_id"]]
if st.session_state.get(ROWS_OF) != ids:  # another page: a selection would point elsewhere
    st.session_state[ROWS_OF] = ids
    for key in ("alerts_rows", "alerts_open_rows", "alerts_all", CONFIRM):
        st.session_state.pop(key, None)

mode = (
    st.segmented_control(
        "点击行 Row click",
        list(MODES),
        default=OPEN_MODE,
        format_func=lambda m: MODES[m],
        key="alerts_mode",
    )
    if who.reviews
    else OPEN_MODE
) or OPEN_MODE

shown = queue.fillna({"store": "—", "staff": "—", "assignee": "—", "rule": "—"}).assign(
    severity=queue["severity"].map(SEVERITY_LABELS),
    category=queue["category"].map(lambda x: ds.CATEGORY_LABELS.get(x, x)),
    state=queue["state"].map(STATE_LABELS),
    overdue=queue["overdue"].map(lambda late: OVERDUE_MARK if late else ""),
)
table = st.dataframe(
    shown,
    hide_index=True,
    column_order=[
        "alert_id",
        "overdue",
        "at",
        "severity",
        "category",
        "state",
        "title",
        "store",
        "staff",
        "assignee",
        "deadline",
        "rule",
    ],
    column_config={
        "alert_id": st.column_config.NumberColumn("#", format="%d"),
        "overdue": "时限 Due",
        "at": st.column_config.DatetimeColumn("时间 Time", format="MM-DD HH:mm"),
        "severity": "严重 Severity",
        "category": "类别 Category",
        "state": "状态 State",
        "title": "标题 Title",
        "store": "门店 Store",
        "staff": "员工 Staff",
        "assignee": "处理人 Assignee",
        "deadline": st.column_config.DatetimeColumn("处理时限 Deadline", format="MM-DD HH:mm"),
        "rule": "规则 Rule",
    },
    on_select="rerun",
    selection_mode="single-row" if mode == OPEN_MODE else "multi-row",
    key="alerts_open_rows" if mode == OPEN_MODE else "alerts_rows",
)
picked = [ids[r] for r in table.selection.rows if r < len(ids)]


def open_alert(alert_id: int) -> None:
    st.session_state.pop("alerts_open_rows", None)  # coming back must not jump again
    st.switch_page("views/conversation.py", query_params={"alert": str(alert_id)})


if mode == OPEN_MODE:
    st.caption("点击一行打开该会话 / click a row to open its conversation.")
    if picked:
        open_alert(picked[0])
    st.stop()

# ---------------------------------------------------------------- bulk review (select mode)
select_all = st.checkbox("选择本页全部 Select this page", key="alerts_all")
chosen = ids if select_all else picked
if not chosen:
    st.info("在表格左侧勾选预警，或选择本页全部 / tick alerts in the table, or select this page.")
    st.stop()

st.subheader(f"已选 {len(chosen)} 条预警 · {len(chosen)} selected")
chosen_rows = shown[shown["alert_id"].isin(chosen)]
st.dataframe(
    chosen_rows[["alert_id", "severity", "state", "title", "store", "overdue"]],
    hide_index=True,
    column_config={
        "alert_id": st.column_config.NumberColumn("#", format="%d"),
        "severity": "严重 Severity",
        "state": "状态 State",
        "title": "标题 Title",
        "store": "门店 Store",
        "overdue": "时限 Due",
    },
    key="alerts_chosen",
)
if len(chosen) == 1 and st.button("打开会话 Open conversation", key="alerts_open_button"):
    open_alert(chosen[0])

left, right = st.columns([2, 1])
with left:
    action = st.selectbox(
        "操作 Action",
        list(ACTIONS),
        format_func=lambda a: ACTIONS[a].label + (" *" if ACTIONS[a].comment_required else ""),
        key="alerts_action",
    )
    comment = st.text_area(
        "说明 Comment（* 误报、上报、重新打开必填 required for *）", key="alerts_comment"
    )
    if st.button("提交 Submit", type="primary", key="alerts_submit"):
        if ACTIONS[action].comment_required and not comment.strip():
            st.error(missing_comment(ACTIONS[action]))
            st.session_state.pop(CONFIRM, None)
        else:
            st.session_state[CONFIRM] = (tuple(chosen), action)
    pending = st.session_state.get(CONFIRM)
    if pending is not None and pending != (tuple(chosen), action):
        st.session_state.pop(CONFIRM, None)  # the choice changed since: ask again
        pending = None
    if pending is not None:
        listed = "、".join(f"#{i}" for i in chosen[:20]) + (" …" if len(chosen) > 20 else "")
        st.warning(
            f"确认对以上 {len(chosen)} 条预警执行「{ACTIONS[action].label}」？{listed}\n\n"
            f"Apply {action} to the {len(chosen)} alerts listed above?"
        )
        yes, no = st.columns(2)
        if yes.button("确认执行 Confirm", type="primary", key="alerts_confirm_yes"):
            st.session_state.pop(CONFIRM, None)
            try:
                done = ds.review(url, who, list(chosen), action, comment)
            except (ReviewError, AccessDenied) as exc:
                st.error(str(exc))
            else:
                flash = [
                    (
                        "success",
                        f"已处理 {len(done.reviewed)} 条预警 / reviewed {len(done.reviewed)}.",
                    )
                ]
                if done.skipped:
                    skipped = "; ".join(f"#{i}: {why}" for i, why in done.skipped.items())
                    flash.append(("warning", f"跳过 skipped {len(done.skipped)}: {skipped}"))
                st.session_state[FLASH] = flash
                st.session_state[RESET] = True
                st.rerun()
        if no.button("取消 Cancel", key="alerts_confirm_no"):
            st.session_state.pop(CONFIRM, None)
            st.rerun()

with right:
    users = dict(ds.assignable_users(url, who))
    assignee = st.selectbox(
        "分配给 Assign to",
        [None, *users],
        format_func=lambda u: "（取消分配 unassign）" if u is None else users[u],
        key="alerts_assignee",
    )
    if st.button("分配 Assign", key="alerts_assign"):
        try:
            n = ds.assign(url, who, list(chosen), assignee)
        except (ReviewError, AccessDenied) as exc:
            st.error(str(exc))
        else:
            st.session_state[FLASH] = [("success", f"已分配 {n} 条 / assigned {n}.")]
            st.rerun()
