"""Sign-in through WeCom (``dashboards/wecomauth.py``) against the local WeCom stand-in.

The dashboard's routes run in Starlette's test client (the browser); the stand-in
(``tests/fake_wecom.py``) is a real HTTP server playing WeCom's sign-in pages and
``auth/getuserinfo``. The browser's trip through WeCom is followed by hand: the dashboard
sends it to WeCom, WeCom sends it back to the callback with a one-time code.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_wecom import AGENTID, APP_SECRET, CORPID, FakeWeCom, serve
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
from audit.store.users import create_user, disable_user
from audit.store.websessions import COOKIE

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dashboards"))
import webauth
import wecomauth

HTML = {"accept": "text/html"}
PASSWORD = "password-1"
IN_WECOM = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 wxwork/4.1.22 MicroMessenger/7.0.1"
CALLBACK = "http://dash.test/auth/wecom/callback"


async def _page(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"page {request.url.path}")


def _app() -> Starlette:
    return Starlette(
        routes=[*webauth.ROUTES, *wecomauth.ROUTES, Route("/{path:path}", _page)],
        middleware=[Middleware(webauth.SignInRedirect)],
    )


@pytest.fixture
def browser() -> Iterator[TestClient]:
    with TestClient(_app(), base_url="http://dash.test", follow_redirects=False) as c:
        yield c


@pytest.fixture
def fake() -> Iterator[FakeWeCom]:
    with serve(FakeWeCom(trusted_host="dash.test", scanner={"userid": "LiSi"})) as f:
        yield f


def _configure(monkeypatch: pytest.MonkeyPatch, fake: FakeWeCom, **extra: str) -> None:
    monkeypatch.delenv("AUDIT_CONFIG", raising=False)
    env = {
        "AUDIT_SIGNIN__WECOM": "true",
        "AUDIT_SIGNIN__WECOM_AGENTID": str(AGENTID),
        "AUDIT_SIGNIN__WECOM_SECRET": APP_SECRET,
        "AUDIT_SIGNIN__WECOM_LOGIN_URL": fake.login_url,
        "AUDIT_SIGNIN__WECOM_AUTHORIZE_URL": fake.authorize_url,
        "AUDIT_SIGNIN__WECOM_USERIDS": json.dumps({"lisi": "LiSi", "zhao": "ZhaoLiu"}),
        "AUDIT_WECOM__BASE_URL": fake.base_url,
        "AUDIT_WECOM__CORPID": CORPID,
        "AUDIT_WECOM__PROXY": "",
        "AUDIT_WECOM__REQUESTS_PER_SECOND": "1000",
        **extra,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def users(engine: Engine, db_url: str, fake: FakeWeCom, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """Two compliance officers on either backend: ``lisi`` (WeCom LiSi) and ``zhao``
    (WeCom ZhaoLiu, disabled); WeCom sign-in configured against the stand-in."""
    monkeypatch.setenv("AUDIT_DATABASE__URL", db_url)
    _configure(monkeypatch, fake)
    with session_scope(engine) as s:
        create_user(s, "lisi", PASSWORD, "compliance", display_name="李四")
        create_user(s, "zhao", PASSWORD, "compliance")
        disable_user(s, "zhao")
    return engine


def _trail(engine: Engine) -> list[tuple[str, str, dict[str, Any]]]:
    with session_scope(engine) as s:
        rows = s.execute(
            select(AuditLog.actor, AuditLog.action, AuditLog.detail)
            .where(AuditLog.action.like("signin%"))
            .order_by(AuditLog.id)
        )
        return [(a, b, dict(c or {})) for a, b, c in rows]


def _to_wecom(browser: TestClient, next_path: str = "/", agent: str = "") -> str:
    """Start a WeCom sign-in; the URL of WeCom's page the browser is sent to."""
    headers = {"user-agent": agent} if agent else {}
    r = browser.get("/auth/wecom", params={"next": next_path}, headers=headers)
    assert r.status_code == 302, r.text
    return str(r.headers["location"])


def _back_from_wecom(wecom_page: str) -> str:
    """WeCom's page, as the browser sees it once the member confirmed: the callback path."""
    r = httpx.get(wecom_page, follow_redirects=False, trust_env=False)
    assert r.status_code == 302, r.text
    back = urllib.parse.urlsplit(r.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    return f"{back.path}?{back.query}"


def _sign_in_through_wecom(browser: TestClient, next_path: str = "/") -> httpx.Response:
    return browser.get(_back_from_wecom(_to_wecom(browser, next_path)))


# --------------------------------------------------------------------------- the flow


@pytest.mark.parametrize("agent", ["", IN_WECOM], ids=["qr-code", "inside-wecom"])
def test_a_linked_member_signs_in_and_the_session_works(
    users: Engine, fake: FakeWeCom, browser: TestClient, agent: str
) -> None:
    asked = "/alerts?alert=7"
    # the sign-in form offers WeCom, keeping the page asked for
    form = browser.get("/auth/signin", params={"next": asked})
    assert (
        'href="/auth/wecom?next=%2Falerts%3Falert%3D7">企业微信登录 Sign in with WeCom' in form.text
    )
    wecom_page = _to_wecom(browser, asked, agent)
    state = browser.cookies[wecomauth.STATE_COOKIE]
    url = urllib.parse.urlsplit(wecom_page)
    query = dict(urllib.parse.parse_qsl(url.query))
    if agent:  # inside the WeCom app: web authorization, no QR code
        assert f"{url.scheme}://{url.netloc}{url.path}" == fake.authorize_url
        assert url.fragment == "wechat_redirect"
        assert query == {
            "appid": CORPID,
            "redirect_uri": CALLBACK,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
            "agentid": str(AGENTID),
        }
    else:
        assert f"{url.scheme}://{url.netloc}{url.path}" == fake.login_url
        assert query == {
            "login_type": "CorpApp",
            "appid": CORPID,
            "agentid": str(AGENTID),
            "redirect_uri": CALLBACK,
            "state": state,
        }
    assert len(state) >= 43 and asked not in wecom_page  # the page is kept on the server

    r = browser.get(_back_from_wecom(wecom_page))
    assert r.status_code == 303 and r.headers["location"] == asked
    cookies = r.headers.get_list("set-cookie")
    [session_cookie] = [c for c in cookies if c.startswith(f"{COOKIE}=")]
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie
    [state_cookie] = [c for c in cookies if c.startswith(f"{wecomauth.STATE_COOKIE}=")]
    assert "Max-Age=0" in state_cookie  # used up
    # signed in: pages are served on the server-side session
    assert browser.get(asked, headers=HTML).text == "page /alerts"
    with session_scope(users) as s:
        [(username, web)] = s.execute(
            select(User.username, WebSession).join(User, User.id == WebSession.user_id)
        ).all()
        assert username == "lisi" and web.ended_at is None
    # the application's secret got the token; the code was exchanged once
    [token] = fake.calls("gettoken")
    assert token.query["corpsecret"] == APP_SECRET
    assert [c.query["code"] for c in fake.calls("auth/getuserinfo")] == ["CODE0001sign"]
    assert _trail(users) == [
        ("lisi", "signin", {"ip": "testclient", "method": "wecom", "wecom_userid": "LiSi"})
    ]
    # and signing out ends it like any other session
    r = browser.post("/auth/signout", headers={"origin": "http://dash.test"})
    assert r.status_code == 303
    assert browser.get(asked, headers=HTML).status_code == 303


def test_a_replayed_or_forged_state_is_refused_before_wecom_is_asked(
    users: Engine, fake: FakeWeCom, browser: TestClient
) -> None:
    callback = _back_from_wecom(_to_wecom(browser))
    state = browser.cookies[wecomauth.STATE_COOKIE]
    assert browser.get(callback).status_code == 303  # the real one, once
    browser.cookies.clear()
    # replayed, with the state cookie put back: the state was taken
    browser.cookies.set(wecomauth.STATE_COOKIE, state, domain="dash.test", path="/auth/wecom")
    r = browser.get(callback)
    assert r.status_code == 400 and COOKIE not in r.cookies
    assert "登录请求无效或已过期" in r.text and "already used" in r.text
    # another browser's callback (login CSRF): its state is not in this browser's cookie
    with TestClient(_app(), base_url="http://dash.test", follow_redirects=False) as attacker:
        planted = _back_from_wecom(_to_wecom(attacker))
    _to_wecom(browser)  # this browser has a state of its own, not the attacker's
    r = browser.get(planted)
    assert r.status_code == 400 and COOKIE not in r.cookies
    # made up, cookie and all
    browser.cookies.set(wecomauth.STATE_COOKIE, "made-up", domain="dash.test", path="/auth/wecom")
    assert browser.get("/auth/wecom/callback?code=CODE0001sign&state=made-up").status_code == 400
    # no state at all
    assert browser.get("/auth/wecom/callback?code=CODE0002sign").status_code == 400
    assert len(fake.calls("auth/getuserinfo")) == 1  # only the real one reached WeCom
    refused = [(a, b, d["reason"]) for a, b, d in _trail(users)[1:]]
    assert refused == [("wecom:?", "signin.failed", "state")] * 4
    with session_scope(users) as s:
        assert s.scalars(select(SigninFailure.username)).all() == ["wecom:?"] * 4


@pytest.mark.parametrize(
    ("scanner", "reason", "shown"),
    [
        ({"userid": "WangWu"}, "unlinked", "企业微信账号 WangWu 未关联可用的看板账号"),
        ({"userid": "zhaoliu"}, "disabled", "企业微信账号 zhaoliu 未关联可用的看板账号"),
        ({"openid": "oX1", "external_userid": "wmX1"}, "not_member", "仅限本企业成员登录"),
    ],
    ids=["unlinked", "disabled", "outsider"],
)
def test_a_member_linked_to_no_active_user_is_refused_and_trailed(
    users: Engine,
    fake: FakeWeCom,
    browser: TestClient,
    scanner: dict[str, str],
    reason: str,
    shown: str,
) -> None:
    fake.scanner = scanner
    r = _sign_in_through_wecom(browser)
    assert r.status_code == 403 and shown in r.text and COOKIE not in r.cookies
    [(actor, action, detail)] = _trail(users)[-1:]
    assert (action, detail["reason"], detail["method"]) == ("signin.failed", reason, "wecom")
    expected = {"unlinked": "wecom:WangWu", "disabled": "zhao", "not_member": "wecom:?"}[reason]
    assert actor == expected
    with session_scope(users) as s:
        assert s.scalars(select(SigninFailure.username)).all() == [expected]
        assert s.scalar(select(WebSession.id)) is None


def test_a_used_or_expired_code_and_wecom_errors_are_refused(
    users: Engine, fake: FakeWeCom, browser: TestClient
) -> None:
    callback = _back_from_wecom(_to_wecom(browser))
    fake.expire_codes()
    r = browser.get(callback)
    assert r.status_code == 400 and "企业微信登录凭证无效或已过期" in r.text
    fake.script["auth/getuserinfo"] = [{"errcode": 60020, "errmsg": "not allow to access"}]
    r = _sign_in_through_wecom(browser)
    assert r.status_code == 502 and "错误码 60020" in r.text and COOKIE not in r.cookies
    assert [(d["reason"], d["errcode"]) for _, _, d in _trail(users)] == [
        ("code", 40029),
        ("wecom", 60020),
    ]


def test_wecom_sign_in_is_throttled_like_passwords(
    users: Engine, fake: FakeWeCom, browser: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_DASHBOARD__SIGNIN_MAX_FAILURES_PER_ADDRESS", "3")
    browser.cookies.set(wecomauth.STATE_COOKIE, "guess", domain="dash.test", path="/auth/wecom")
    statuses = [browser.get("/auth/wecom/callback?code=C&state=guess").status_code for _ in "123"]
    assert statuses == [400, 400, 429]  # the third refusal locks the address
    # locked: a perfectly good sign-in is refused before WeCom is asked
    r = _sign_in_through_wecom(browser)
    assert r.status_code == 429 and "登录失败次数过多" in r.text and COOKIE not in r.cookies
    assert fake.calls("auth/getuserinfo") == []
    assert [(a, b) for a, b, _ in _trail(users)][-1] == ("wecom:?", "signin.locked")
    # a user whose name is locked (wrong passwords) is refused through WeCom too
    monkeypatch.setenv("AUDIT_DASHBOARD__SIGNIN_MAX_FAILURES_PER_ADDRESS", "0")
    with session_scope(users) as s:
        s.add_all(SigninFailure(at=utcnow(), username="lisi", ip="elsewhere") for _ in range(5))
    r = _sign_in_through_wecom(browser)
    assert r.status_code == 429 and COOKIE not in r.cookies
    assert [(a, b) for a, b, _ in _trail(users)][-1] == ("lisi", "signin.locked")


# --------------------------------------------------------------------------- configuration


def test_wecom_sign_in_is_off_by_default(
    sqlite_url: str, browser: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUDIT_CONFIG", raising=False)
    monkeypatch.setenv("AUDIT_DATABASE__URL", sqlite_url)
    form = browser.get("/auth/signin")
    assert form.status_code == 200 and "登录 Sign in" in form.text
    assert "/auth/wecom" not in form.text and "企业微信登录" not in form.text
    for path in ("/auth/wecom", "/auth/wecom/callback?code=C&state=S"):
        r = browser.get(path)
        assert r.status_code == 404 and "未启用企业微信登录" in r.text, path
        assert wecomauth.STATE_COOKIE not in r.cookies


def test_the_callback_is_under_the_dashboard_url_when_set(
    fake: FakeWeCom, browser: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(monkeypatch, fake, AUDIT_DIGEST__DASHBOARD_URL="https://audit.corp.cn/")
    wecom_page = _to_wecom(browser, "/overview")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(wecom_page).query))
    assert query["redirect_uri"] == "https://audit.corp.cn/auth/wecom/callback"
    # WeCom refuses a callback outside the application's trusted domain (here dash.test)
    r = httpx.get(wecom_page, follow_redirects=False, trust_env=False)
    assert r.status_code == 400 and "可信域名" in r.text


def test_a_state_is_taken_once_and_only_in_time() -> None:
    pending = wecomauth.PendingSignins(limit=3)
    pending.issue("a", "/x", now=100.0, ttl=600)
    pending.issue("b", "/y", now=100.0, ttl=600)
    assert pending.take("a", now=699.0) == "/x"
    assert pending.take("a", now=699.0) is None  # once
    assert pending.take("b", now=700.0) is None  # too late
    for i, state in enumerate("cdef"):  # over the limit: the oldest go first
        pending.issue(state, f"/{state}", now=200.0 + i, ttl=600)
    assert [pending.take(s, now=300.0) for s in "cdef"] == [None, "/d", "/e", "/f"]
    assert pending.take("", now=300.0) is None
