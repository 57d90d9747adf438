"""词表 / Word lists: hits per rule, the false-positive rate from reviews, and the officers'
edits (terms added, switched off and on, annotated) with the rescan they queue."""

from __future__ import annotations

import auth
import datasource as ds
import pandas as pd
import streamlit as st
import widgets
from render import clock_time

from audit.domain import CATEGORIES, Category, Severity
from audit.scan.wordlist import WordListError
from audit.store.access import AccessDenied
from audit.store.wordlist_edits import ADDED, MAX_NOTE, MAX_TERM, ROLE_LABELS, EditError

CATEGORY_OPTIONS = list(CATEGORIES)
SEVERITY_OPTIONS = [s.value for s in Severity]
ROLE_OPTIONS = list(ROLE_LABELS)
# the add form's widgets: cleared after a term is added, kept when it is refused
ADD_KEYS = ("wl_add_term", "wl_add_variants", "wl_add_note")

who = auth.require()
url = ds.database_url()
tz = ds.timezone()
st.title("词表 · Word lists")
if not who.sees_wordlists:
    st.error("此角色不能查看词表 / this role does not see the word lists.")
    st.stop()


def category_label(value: str) -> str:
    return Category(value).bilingual


# --------------------------------------------------------------------------- hits and verdicts

st.subheader("命中与误报 · Hits and verdicts")
period = ds.data_period(url)
if period is None:
    st.info(widgets.NO_DATA)
else:
    start, end = widgets.period_input(period, "wordlists_dates")
    rules = ds.rule_table(url, who, start, end)
    st.caption(
        "命中数按期间内的消息统计；确认与误报为每条预警最近一次审核结论（全部时间）。"
        "误报率高的词条值得收紧、停用或加入 allow.txt。"
    )
    if rules.empty:
        st.info("所选期间没有命中 / no hits in this period.")
    else:
        st.dataframe(
            rules,
            hide_index=True,
            column_config={
                "rule": "规则 Rule",
                "category": "类别 Category",
                "hits": st.column_config.NumberColumn("命中 hits", format="%d"),
                "variants": st.column_config.NumberColumn("不同写法 variants", format="%d"),
                "confirmed": st.column_config.NumberColumn("确认 confirmed", format="%d"),
                "false_positives": st.column_config.NumberColumn(
                    "误报 false positives", format="%d"
                ),
                "false_positive_rate": st.column_config.ProgressColumn(
                    "误报率 FP rate", format="percent", min_value=0.0, max_value=1.0
                ),
            },
            key="wordlists_rules",
        )
        if who.reads_messages:
            rule = st.selectbox(
                "查看命中原文 Matched text of", list(rules["rule"]), key="wordlists_rule"
            )
            examples = ds.rule_examples(url, who, start, end, rule)
            st.dataframe(examples, hide_index=True, key="wordlists_examples")

# --------------------------------------------------------------------------- edits

st.subheader("词条维护 · Terms added, disabled and annotated")
try:
    edits, rescans = ds.wordlist_edits_and_rescans(url, who)
except WordListError as exc:
    st.error(f"词表文件有误，无法维护词条 / the word-list files have errors:\n\n{exc}")
    st.stop()

if rescans.queued:
    first = rescans.queued[0]
    st.warning(
        f"**重新扫描已排队 / rescan queued**：{len(rescans.queued)} 项词表修改待生效"
        f"（最早 {clock_time(first.requested_at, tz)}，{first.requested_by}：{first.reason}）。"
        "下一次 `audit run`、`audit watch` 周期或 `audit scan` 会用新词表重新扫描全部消息。 / "
        "The next run, watch cycle or scan rescans every message with the edited lists."
    )
elif rescans.last_done is not None and rescans.last_done.done_at is not None:
    done = rescans.last_done
    st.caption(
        f"最近一次重新扫描已完成 / last rescan done：{clock_time(done.done_at, tz)}"
        + (f"，扫描批次 scan run #{done.scan_run_id}" if done.scan_run_id else "")
        + f"（{done.reason}）"
    )

flash = st.session_state.pop("wl_flash", None)
if flash:
    st.success(flash)

if not who.edits_wordlists:
    st.caption(
        "只读：只有合规专员和管理员可以修改词表 / read-only: only compliance officers and "
        "admins change the word lists."
    )
else:
    if st.session_state.pop("wl_clear", False):
        for key in ADD_KEYS:  # set, not removed: the browser would send its value again
            st.session_state[key] = ""
    with st.form("wl_add", clear_on_submit=False):
        st.markdown("**新增词条 · Add a term**")
        left, right = st.columns(2)
        category = left.selectbox(
            "类别 Category", CATEGORY_OPTIONS, format_func=category_label, key="wl_add_category"
        )
        term = right.text_input(
            f"词条 Term（最多 {MAX_TERM} 字 at most {MAX_TERM} characters）",
            key="wl_add_term",
            placeholder="例：私聊转账码",
        )
        severity = left.selectbox(
            "严重程度 Severity",
            SEVERITY_OPTIONS,
            index=SEVERITY_OPTIONS.index(Severity.MEDIUM.value),
            format_func=lambda v: Severity(v).bilingual,
            key="wl_add_severity",
        )
        roles = right.selectbox(
            "适用于谁说的话 Said by",
            ROLE_OPTIONS,
            index=ROLE_OPTIONS.index("both"),
            format_func=ROLE_LABELS.__getitem__,
            key="wl_add_roles",
        )
        variants = st.text_input(
            "其他写法 Variants（逗号分隔 comma separated）", key="wl_add_variants"
        )
        note = st.text_input("备注 Note（为何添加 why）", key="wl_add_note")
        added = st.form_submit_button("添加 Add")
    if added:
        try:
            result = ds.add_wordlist_term(
                url,
                who,
                category=category,
                term=term,
                severity=severity,
                roles=roles,
                variants=variants,
                note=note,
            )
        except (EditError, AccessDenied) as exc:
            st.error(str(exc))  # the form keeps what was typed
        else:
            queued = "，重新扫描已排队 / rescan queued" if result.rescan_id else ""
            st.session_state["wl_flash"] = f"已添加 / added：{category}/{term.strip()}{queued}"
            st.session_state["wl_clear"] = True
            st.rerun()

STATUS = {
    "on": "生效 on",
    "off": "已停用 disabled",
    "clash": "未生效 not in effect",
}


def status_of(disabled: bool, problem: str) -> str:
    if disabled:
        return STATUS["off"]
    return STATUS["clash"] if problem else STATUS["on"]


if edits:
    any_problem = any(e.problem for e in edits)
    table = pd.DataFrame(
        [
            {
                "category": category_label(e.category),
                "term": e.term,
                "origin": "新增 added" if e.origin == ADDED else "文件 file",
                "status": status_of(e.disabled, e.problem),
                "severity": Severity(e.severity).bilingual,
                "roles": ROLE_LABELS.get(e.roles, e.roles),
                "variants": "、".join(e.variants),
                "note": e.note,
                "problem": e.problem,
                "updated_by": e.updated_by,
                "updated_at": clock_time(e.updated_at, tz),
            }
            for e in edits
        ]
    )
    if not any_problem:
        table = table.drop(columns=["problem"])
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "category": "类别 Category",
            "term": "词条 Term",
            "origin": "来源 Source",
            "status": "状态 Status",
            "severity": "严重程度 Severity",
            "roles": "适用 Said by",
            "variants": "其他写法 Variants",
            "note": "备注 Note",
            "problem": "未生效原因 Why not in effect",
            "updated_by": "修改人 By",
            "updated_at": "修改时间 At",
        },
        key="wl_edits",
    )
else:
    st.info("尚无修改：生效的是词表文件本身 / no edits yet: the files are the lists.")

if who.edits_wordlists:
    st.markdown("**停用、启用或备注 · Disable, enable or annotate a term**")
    left, right = st.columns(2)
    pick_category = left.selectbox(
        "类别 Category", CATEGORY_OPTIONS, format_func=category_label, key="wl_edit_category"
    )
    choices = ds.wordlist_terms(url, pick_category)
    if not choices:
        st.info("此类别没有词条 / this category has no terms.")
    else:
        pick = right.selectbox("词条 Term", choices, key="wl_edit_term")
        current = next((e for e in edits if e.category == pick_category and e.term == pick), None)
        is_off = current is not None and current.disabled
        st.caption(f"当前状态 / now：{STATUS['off'] if is_off else STATUS['on']}")
        note_text = st.text_area(
            "备注 Note",
            value=current.note if current else "",
            max_chars=MAX_NOTE,
            key=f"wl_note_{pick_category}_{pick}",
        )
        toggle, save = st.columns(2)
        switch = toggle.button(
            "启用 Enable" if is_off else "停用 Disable", key="wl_toggle", type="primary"
        )
        annotate = save.button("保存备注 Save note", key="wl_save_note")
        try:
            if switch:
                result = ds.set_wordlist_term_disabled(
                    url, who, pick_category, pick, disabled=not is_off
                )
                verb = "已启用 / enabled" if is_off else "已停用 / disabled"
                queued = "，重新扫描已排队 / rescan queued" if result.rescan_id else ""
                st.session_state["wl_flash"] = f"{verb}：{pick_category}/{pick}{queued}"
                st.rerun()
            if annotate:
                ds.annotate_wordlist_term(url, who, pick_category, pick, note_text)
                st.session_state["wl_flash"] = f"备注已保存 / note saved：{pick_category}/{pick}"
                st.rerun()
        except (EditError, AccessDenied) as exc:
            st.error(str(exc))
