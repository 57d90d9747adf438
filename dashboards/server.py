"""The dashboard server: ``streamlit run dashboards/server.py`` (what ``audit dashboard`` runs).

The Streamlit app (``app.py``) served with the sign-in and sign-out routes beside it and a
middleware that sends a browser without a live session to the sign-in form (``webauth.py``),
and the routes of sign-in through WeCom (``wecomauth.py``, answering only when configured).
"""

from __future__ import annotations

import os

import streamlit as st
import webauth
import wecomauth
from starlette.middleware import Middleware

# app.py reads this to know that sign-in is served here (plain ``streamlit run app.py`` has no
# sign-in route, and says so instead of showing a form that could not set the cookie)
os.environ[webauth.SERVED_FLAG] = "1"

app = st.App(
    "app.py",
    routes=[*webauth.ROUTES, *wecomauth.ROUTES],
    middleware=[Middleware(webauth.SignInRedirect)],
)
