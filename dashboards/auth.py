"""Sign-in and the signed-in principal, kept in ``st.session_state``.

The page scripts never look at roles or scopes themselves beyond hiding what a role cannot
use: they pass :func:`require` 's principal to :mod:`datasource`, whose queries narrow
themselves through :mod:`audit.store.access`. The local password form is one way to obtain a
principal; an OIDC sign-in (``st.login`` / ``st.user``) would map ``st.user.email`` to a
``users`` row and call :func:`sign_in_as` with it, nothing else changes.
"""

from __future__ import annotations

import datasource as ds
import streamlit as st

from audit.store.access import Principal

KEY = "principal"
DEEP_LINK_KEY = "deep_link"
DEEP_LINK_PARAMS = ("alert", "conversation")


def current() -> Principal | None:
    """The signed-in principal, re-read from the database (role, scope) each minute.

    The session ends at once, on its next page load, when the user's session epoch is no
    longer the one it signed in with (password changed, user disabled or deleted).
    """
    principal = st.session_state.get(KEY)
    if not isinstance(principal, Principal) or principal.user_id is None:
        return None
    url = ds.database_url()
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


def sign_in_as(principal: Principal) -> None:
    st.session_state[KEY] = principal
    link = st.session_state.pop(DEEP_LINK_KEY, None)
    if link:  # back to where the digest's link pointed
        st.query_params.update(link)


def sign_out() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def remember_deep_link() -> None:
    """Keep ``?alert=`` / ``?conversation=`` across the sign-in form."""
    link = {k: st.query_params[k] for k in DEEP_LINK_PARAMS if k in st.query_params}
    if link:
        st.session_state[DEEP_LINK_KEY] = link


def _client_ip() -> str:
    """The browser's address, for throttling per address (empty when Streamlit cannot tell)."""
    return str(getattr(st.context, "ip_address", None) or "")


def sign_in_page() -> None:
    st.title("会话质检 · WeCom audit")
    remember_deep_link()
    with st.form("signin"):
        st.subheader("登录 Sign in")
        username = st.text_input("用户名 Username", key="signin_username")
        password = st.text_input("密码 Password", type="password", key="signin_password")
        submitted = st.form_submit_button("登录 Sign in", type="primary")
    if submitted:
        try:
            principal = ds.authenticate(ds.database_url(), username, password, _client_ip())
        except ds.SignInLocked as exc:
            st.error(str(exc))
            return
        if principal is None:
            st.error("用户名或密码错误，或账号已停用 / wrong username or password, or disabled.")
        else:
            sign_in_as(principal)
            st.rerun()
    st.caption("账号由管理员用 `audit users add` 创建 / accounts are made with `audit users add`.")
