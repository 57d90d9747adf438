"""The supervisors' dashboard: ``streamlit run dashboards/app.py``.

This entry script only checks that there is a database to show and lists the pages; each
page is a thin script under ``views/`` over :mod:`datasource`. Pages are registered with
``st.navigation`` (not discovered from a ``pages/`` folder) so that a later sign-in can choose which
pages a role sees.
"""

from __future__ import annotations

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

PAGES = [
    st.Page("views/overview.py", title="门店概览", icon=":material/storefront:", default=True),
]

st.navigation(PAGES).run()
