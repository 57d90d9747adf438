"""Running ``dashboards/app.py`` under AppTest as a given user."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select
from streamlit.testing.v1 import AppTest

from audit.store.access import Principal, principal_for_user
from audit.store.db import session_scope
from audit.store.models import User

APP = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
TIMEOUT = 60  # the first run imports pandas, altair and the models


def principal(engine: Engine, username: str) -> Principal:
    with session_scope(engine) as s:
        user = s.scalar(select(User).where(User.username == username))
        assert user is not None, username
        return principal_for_user(s, user)


def app_as(who: Principal | None, page: str | None = None, **query: str) -> AppTest:
    """The app signed in as ``who`` (the state the sign-in form leaves), on ``page``."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if who is not None:
        at.session_state["principal"] = who
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, [(e.message, e.stack_trace) for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    """Everything written on the page, as one string (for "must not show" checks)."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "title", "subheader", "info", "error", "warning"):
        parts += [str(e.value) for e in at.get(kind)]
    parts += [str(e.proto.body) for e in at.get("html")]
    for frame in at.dataframe:
        parts.append(frame.value.to_string())
    return "\n".join(parts)
