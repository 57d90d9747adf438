"""The signed-in principal of a page run.

In a browser, the principal comes from the session cookie that the sign-in route sets
(``webauth.py``, served beside the app by ``server.py``): it is resolved again on every run,
so a refresh or a new tab stays signed in, and a sign-out, an expired session, a password
change or a disabled account ends it at the next page load. Without a cookie (the app run
in-process, as by Streamlit's AppTest) the principal is the one in ``st.session_state``,
checked against the user's session epoch the same way. The page scripts never look at roles or
scopes themselves beyond hiding what a role cannot use: they pass :func:`require` 's
principal to :mod:`datasource`, whose queries narrow themselves through
:mod:`audit.store.access`.
"""

from __future__ import annotations

import html
import os
import urllib.parse

import datasource as ds
import streamlit as st
import webauth

from audit.store.access import Principal
from audit.store.websessions import COOKIE

KEY = "principal"
DEEP_LINK_PARAMS = ("alert", "conversation")


def _cookie() -> str | None:
    try:
        token = st.context.cookies.get(COOKIE)
    except (AttributeError, RuntimeError):  # no browser behind this run
        return None
    return token if isinstance(token, str) and token else None  # AppTest has no real cookies


def current() -> Principal | None:
    """The signed-in principal, re-read from the database (role, scope) on every run."""
    token = _cookie()
    url = ds.database_url()
    if token is not None:  # a browser: the server-side session is the only authority
        principal = ds.principal_for_session(url, token)
        if principal is None:
            sign_out()
        else:
            st.session_state[KEY] = principal
        return principal
    principal = st.session_state.get(KEY)
    if not isinstance(principal, Principal) or principal.user_id is None:
        return None
    if ds.session_epoch(url, principal.user_id) != principal.session_epoch:
        sign_out()
        return None
    fresh = ds.principal_by_id(url, principal.user_id, principal.session_epoch)
    if fresh is None or fresh.session_epoch != principal.session_epoch:  # changed meanwhile
        sign_out()
        return None
    if fresh != principal:
        st.session_state[KEY] = fresh
    return fresh


def require() -> Principal:
    """The principal, or stop the page (the navigation only offers pages after sign-in)."""
    principal = current()
    if principal is None:
        st.warning("请先登录 / please sign in.")
        st.stop()
    return principal


def sign_out() -> None:
    """Forget this run's state (the server-side session is ended by ``/auth/signout``)."""
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def _here() -> str:
    """This page's path and query, for the sign-in form to come back to."""
    query = {k: st.query_params[k] for k in st.query_params}
    path = urllib.parse.urlsplit(str(getattr(st.context, "url", "") or "")).path or "/"
    return path + (f"?{urllib.parse.urlencode(query)}" if query else "")


def sign_in_page() -> None:
    """What a run without a principal shows: the way to the sign-in form, and no data."""
    st.title("会话质检 · WeCom audit")
    if not os.environ.get(webauth.SERVED_FLAG):
        st.error(
            "登录页由 `audit dashboard` 提供，请用它启动看板 / sign-in is served by "
            "`audit dashboard` (or `streamlit run dashboards/server.py`), not by `app.py` alone."
        )
        return
    target = urllib.parse.urlencode({"next": webauth.safe_next(_here())})
    st.info("请先登录 / please sign in.")
    st.markdown(
        f'<a href="{webauth.SIGNIN_PATH}?{html.escape(target)}" target="_self">登录 Sign in</a>',
        unsafe_allow_html=True,
    )


def sign_out_link() -> None:
    """A plain link in this tab (Streamlit's own links and link buttons open a new one)."""
    st.markdown(
        f'<a href="{webauth.SIGNOUT_PATH}" target="_self">退出 Sign out</a>', unsafe_allow_html=True
    )
