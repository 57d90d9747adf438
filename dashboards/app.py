"""The supervisors' dashboard: ``streamlit run dashboards/app.py`` (or ``audit dashboard``).

This entry script checks that there is a database, asks for a sign-in, and lists the pages
the signed-in role may use; each page is a thin script under ``views/`` over
:mod:`datasource`, whose every query takes the principal (see ``audit/store/access.py``).
Before sign-in the navigation holds only the sign-in page, so no page can render data.

Deep links: ``?alert=ID`` or ``?conversation=ID`` (on any path) open the conversation page;
they survive the sign-in form. The drill-down pages take ``/staff?staff=ID`` and
``/customer?customer=ID``. Served by ``server.py``, which adds the sign-in routes.
"""

from __future__ import annotations

import auth
import datasource
import streamlit as st

st.set_page_config(page_title="会话质检 · WeCom audit", page_icon="🛡️", layout="wide")

problem = datasource.settings_problem() or datasource.database_problem(datasource.database_url())
if problem is not None:
    st.title("会话质检 · WeCom audit")
    if problem.fatal:
        st.error(problem.message)
    else:
        st.info(problem.message)
    st.stop()

principal = auth.current()
if principal is None:
    st.navigation([st.Page(auth.sign_in_page, title="登录 Sign in", url_path="signin")]).run()
    st.stop()

deep_link = any(k in st.query_params for k in auth.DEEP_LINK_PARAMS)
pages = [
    st.Page(
        "views/overview.py",
        title="概览 Overview",
        icon=":material/dashboard:",
        default=not (deep_link and principal.reads_messages),
    ),
    st.Page("views/stores.py", title="门店排名 Stores", icon=":material/storefront:"),
    st.Page("views/quality.py", title="服务质量 Quality", icon=":material/timer:"),
]
if principal.reads_messages:
    pages += [
        st.Page("views/alerts.py", title="预警 Alerts", icon=":material/notifications:"),
        st.Page(
            "views/conversation.py",
            title="会话 Conversation",
            icon=":material/forum:",
            default=deep_link,
        ),
    ]
pages.append(st.Page("views/customers.py", title="客户与标签 Customers", icon=":material/sell:"))
if principal.sees_people:
    pages += [
        st.Page("views/staff.py", title="员工 Staff", icon=":material/badge:"),
        st.Page("views/customer.py", title="客户 Customer", icon=":material/person:"),
        st.Page("views/search.py", title="搜索 Search", icon=":material/search:"),
    ]
if principal.sees_wordlists:
    pages.append(
        st.Page("views/wordlists.py", title="词表 Word lists", icon=":material/spellcheck:")
    )
if principal.role.value in ("admin", "compliance", "supervisor"):
    pages.append(st.Page("views/export.py", title="导出 Export", icon=":material/download:"))
if principal.sees_trail:
    pages.append(st.Page("views/trail.py", title="审计日志 Audit trail", icon=":material/history:"))

with st.sidebar:
    st.markdown(f"**{principal.label}** · `{principal.role.value}`")
    auth.sign_out_link()

st.navigation(pages).run()
