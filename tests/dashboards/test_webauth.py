"""Sign-in, sessions and sign-out over HTTP (``dashboards/webauth.py``), on both backends.

The routes and the redirecting middleware run in Starlette's test client in front of a
stand-in page (the Streamlit app itself is driven in a real browser by ``test_browser.py``).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_seed import PASSWORD, DashSeed, seed_dashboard
from sqlalchemy import Engine, select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from audit.store.db import session_scope
from audit.store.models import AuditLog, SigninFailure, User, WebSession
from audit.store.types import utcnow
from audit.store.users import set_password
from audit.store.websessions import COOKIE, SessionPolicy, open_session, resolve

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dashboards"))
import webauth

HTML = {"accept": "text/html"}


async def _page(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"page {request.url.path}")


@pytest.fixture
def seeded(engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch) -> DashSeed:
    monkeypatch.setenv("AUDIT_DATABASE__URL", db_url)
    monkeypatch.delenv("AUDIT_CONFIG", raising=False)
    return seed_dashboard(engine)


@pytest.fixture
def client(seeded: DashSeed) -> Iterator[TestClient]:
    app = Starlette(
        routes=[*webauth.ROUTES, Route("/{path:path}", _page)],
        middleware=[Middleware(webauth.SignInRedirect)],
    )
    with TestClient(app, base_url="http://dash.test", follow_redirects=False) as c:
        yield c


def _post_signin(client: TestClient, username: str, password: str, next_path: str = "/"):
    return client.post(
        "/auth/signin",
        data={"username": username, "password": password, "next": next_path},
        headers={"origin": "http://dash.test"},
    )


def _actions(engine: Engine) -> list[str]:
    with session_scope(engine) as s:
        return list(
            s.scalars(
                select(AuditLog.action).where(AuditLog.action.like("sign%")).order_by(AuditLog.id)
            )
        )


def test_a_page_without_a_session_goes_to_the_form_and_comes_back(
    client: TestClient, engine: Engine, seeded: DashSeed
):
    asked = f"/alerts?alert={seeded.alert_nanjing}"
    r = client.get(asked, headers=HTML)
    assert r.status_code == 303
    assert r.headers["location"] == f"/auth/signin?next=%2Falerts%3Falert%3D{seeded.alert_nanjing}"
    form = client.get(r.headers["location"])
    assert form.status_code == 200 and f'name="next" value="{asked}"' in form.text
    r = _post_signin(client, "nanjing", PASSWORD, asked)
    assert r.status_code == 303 and r.headers["location"] == asked
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Max-Age=86400" in cookie  # dashboard.session_max_hours
    token = r.cookies[COOKIE]
    assert token not in r.headers["location"]
    # signed in: the page is served, in this "tab" and any other that sends the cookie
    assert client.get(asked, headers=HTML).text == "page /alerts"
    with session_scope(engine) as s:
        [web] = s.scalars(select(WebSession)).all()
        assert web.token_hash != token and len(web.token_hash) == 64  # only a digest is kept
    assert _actions(engine) == ["signin"]


def test_a_wrong_password_is_refused_and_the_name_kept(client: TestClient, engine: Engine):
    r = _post_signin(client, "nanjing", "wrong-password")
    assert r.status_code == 401
    assert "wrong username or password" in r.text and 'value="nanjing"' in r.text
    assert COOKIE not in r.cookies
    with session_scope(engine) as s:
        assert s.scalar(select(WebSession.id)) is None
    assert _actions(engine) == ["signin.failed"]


def test_after_five_failures_the_right_password_is_refused(client: TestClient, engine: Engine):
    with session_scope(engine) as s:  # five failures just now (the throttle's clock: test_users)
        s.add_all(SigninFailure(at=utcnow(), username="nanjing", ip="") for _ in range(5))
    r = _post_signin(client, "nanjing", PASSWORD)
    assert r.status_code == 429 and "too many failed sign-ins: try again after" in r.text
    assert COOKIE not in r.cookies
    assert _actions(engine) == ["signin.locked"]


def test_sign_out_ends_the_session_on_the_server(client: TestClient, engine: Engine):
    token = _post_signin(client, "nanjing", PASSWORD).cookies[COOKIE]
    assert "退出 Sign out" in client.get("/auth/signout").text  # a confirmation, not a GET action
    assert client.get("/", headers=HTML).status_code == 200
    r = client.post("/auth/signout", headers={"origin": "http://dash.test"})
    assert r.status_code == 303 and r.headers["location"] == "/auth/signin"
    assert f'{COOKIE}=""' in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
    # the old token, replayed, is worth nothing
    client.cookies.set(COOKIE, token)
    assert client.get("/overview", headers=HTML).status_code == 303
    assert _actions(engine) == ["signin", "signout"]


def test_posts_from_another_site_are_refused(client: TestClient, engine: Engine):
    r = client.post(
        "/auth/signin",
        data={"username": "nanjing", "password": PASSWORD},
        headers={"origin": "http://evil.test"},
    )
    assert r.status_code == 403 and COOKIE not in r.cookies
    token = _post_signin(client, "nanjing", PASSWORD).cookies[COOKIE]
    r = client.post("/auth/signout", headers={"origin": "http://evil.test"})
    assert r.status_code == 403
    with session_scope(engine) as s:
        assert resolve(s, token) is not None


@pytest.mark.parametrize(
    "target", ["//evil.test/x", "/\\evil.test", "http://evil.test/", "javascript:alert(1)", ""]
)
def test_next_never_leaves_the_site(client: TestClient, target: str):
    r = _post_signin(client, "nanjing", PASSWORD, target)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_streamlit_endpoints_and_assets_are_not_redirected(client: TestClient):
    for path in ("/_stcore/health", "/static/js/index.js", "/auth/signin"):
        assert client.get(path, headers=HTML).status_code == 200, path
    # not a page load (no text/html): left to the app
    assert client.get("/overview").status_code == 200


def test_sessions_end_when_idle_too_old_or_the_password_changes(engine: Engine, seeded: DashSeed):
    policy = SessionPolicy(idle=dt.timedelta(hours=8), lifetime=dt.timedelta(hours=24))
    t0 = utcnow()
    with session_scope(engine) as s:
        user = s.scalars(select(User).where(User.username == "nanjing")).one()
        active = open_session(s, user, now=t0)
        idle = open_session(s, user, now=t0)
        old = open_session(s, user, now=t0)
    with session_scope(engine) as s:
        for hour in range(1, 24):  # used every hour of a long day: stays open
            assert resolve(s, active, policy, t0 + dt.timedelta(hours=hour)) is not None
            if hour < 8:
                assert resolve(s, old, policy, t0 + dt.timedelta(hours=hour)) is not None
        assert resolve(s, idle, policy, t0 + dt.timedelta(hours=8, minutes=1)) is None
        assert resolve(s, old, policy, t0 + dt.timedelta(hours=24, minutes=1)) is None
        assert resolve(s, active, policy, t0 + dt.timedelta(hours=24, minutes=1)) is None
        fresh = open_session(s, user, now=t0)
        assert resolve(s, fresh, policy, t0) is not None
    with session_scope(engine) as s:
        set_password(s, "nanjing", "a-new-password-2")
    with session_scope(engine) as s:
        assert resolve(s, fresh, policy, t0) is None
        assert resolve(s, "not-a-token", policy, t0) is None
        assert resolve(s, "x" * 500, policy, t0) is None
