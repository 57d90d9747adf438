"""导出 / QA export: conversation packs for trainers, with the same code as `audit export`.

Masked unless an admin or compliance officer asks otherwise; the user's scope applies; every
export is written to the audit log by :mod:`audit.export.run`.
"""

from __future__ import annotations

import datetime as dt
import io

import auth
import datasource as ds
import streamlit as st
import widgets

from audit.domain import CATEGORIES
from audit.export.run import Format, export_packs
from audit.export.selection import PackQuery
from audit.store.models import AlertState

FORMATS: dict[str, str] = {"xlsx": "Excel (XLSX)", "csv": "CSV", "jsonl": "JSON lines"}
FORMAT_KEYS: list[Format] = ["xlsx", "csv", "jsonl"]
MIME = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
}
BANDS: dict[str, str] = {
    "": "全部 All",
    "worst": "每店最差 Worst per store",
    "best": "每店最佳 Best per store",
}
BAND_KEYS: list[str] = list(BANDS)

who = auth.require()
st.title("导出 · QA export")
if not who.may_export:
    st.error("您的角色不能导出 / your role cannot export conversations.")
    st.stop()

url = ds.database_url()
period = ds.data_period(url)
if period is None:
    st.info(widgets.NO_DATA)
    st.stop()
stores = [n for n in ds.scoped_org_tree(url, who) if n.kind == "store"]
store_names = {n.id: n.label for n in stores}
with st.form("export_form"):
    # the default is the last week that has data, not the calendar's: an archive pulled
    # yesterday still exports something on the first click
    last_week = period.shifted(max(period.start, period.end - dt.timedelta(days=6)), period.end)
    start, end = widgets.period_input(last_week, "export_dates", st)
    picked_stores: list[int] = st.multiselect(
        "门店 Stores（不选即全部 all when empty）",
        list(store_names),
        format_func=lambda i: store_names[i],
        key="export_stores",
        placeholder="全部门店 All stores",
    )
    col1, col2, col3 = st.columns(3)
    fmt: Format = col1.selectbox(
        "格式 Format", FORMAT_KEYS, format_func=lambda k: FORMATS[k], key="export_fmt"
    )
    category = col2.selectbox(
        "类别 Category",
        ["", *CATEGORIES],
        format_func=lambda c: ds.CATEGORY_LABELS.get(c, "全部 All"),
        key="export_category",
    )
    band: str = col3.selectbox(
        "分档 Band", BAND_KEYS, format_func=lambda k: BANDS[k], key="export_band"
    )
    states = st.multiselect(
        "审核状态 Review state", [s.value for s in AlertState], key="export_states"
    )
    unmask = False
    if who.may_unmask:
        unmask = st.checkbox("不脱敏 Keep personal data (logged)", key="export_unmask")
    submitted = st.form_submit_button("生成 Export")

if submitted:
    query = PackQuery(
        start=start,
        end=end,
        timezone=ds.timezone(),
        org_unit_ids=tuple(picked_stores) or None,
        categories=(category,) if category else (),
        review_states=tuple(AlertState(s) for s in states),
        band="best" if band == "best" else "worst" if band == "worst" else None,
    )
    buffer = io.BytesIO()
    engine = ds.engine_for(url)
    result = export_packs(
        engine,
        query,
        fmt,
        buffer,
        who,
        unmask=unmask,
        target="dashboard",
        progress=widgets.progress_bar,
    )
    c = result.counts
    st.success(f"{c.conversations:,} 个会话 conversations, {c.messages:,} 条消息 messages")
    st.download_button(
        "下载 Download",
        buffer.getvalue(),
        file_name=f"qa-export-{start}-{end}.{fmt}",
        mime=MIME[fmt],
        key="export_download",
    )
