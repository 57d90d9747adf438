"""Sign-in and sign-out as plain HTTP routes beside the Streamlit app (see ``server.py``).

A Streamlit script cannot set an HTTP-only cookie, so signing in happens here: ``POST
/auth/signin`` checks the password (with the sign-in throttle of :mod:`audit.store.throttle`,
every attempt written to the trail), opens a server-side session
(:mod:`audit.store.websessions`) and sets its token as an HTTP-only, ``SameSite=Lax`` cookie,
then sends the browser to the page it asked for. The Streamlit script reads that cookie on
every run (``st.context.cookies``) and resolves it again, so the session survives refreshes
and new tabs, and ends everywhere at once on sign-out. ``SignInRedirect`` sends a browser
without a live session from any page to the sign-in form, remembering the page.

Nothing here imports Streamlit's runtime: the routes are Starlette handlers, tested with
Starlette's test client and in a real browser.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from audit.config import DashboardConfig, load_settings
from audit.days import local_time
from audit.store.db import make_engine, session_scope
from audit.store.throttle import ThrottlePolicy
from audit.store.users import sign_in
from audit.store.websessions import COOKIE, SessionPolicy, end_session, open_session, resolve

SERVED_FLAG = "AUDIT_DASHBOARD_SIGNIN_ROUTES"
SIGNIN_PATH = "/auth/signin"
SIGNOUT_PATH = "/auth/signout"
WECOM_PATH = "/auth/wecom"  # sign-in through WeCom, when [signin] wecom is on (wecomauth.py)
MAX_FORM_BYTES = 8192
# Streamlit's own endpoints and assets, and ours: never redirected to the sign-in form
_OPEN_PREFIXES = ("/_stcore", "/static", "/auth/", "/component", "/media", "/app/static")

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def throttle_policy(d: DashboardConfig) -> ThrottlePolicy:
    return ThrottlePolicy(
        max_failures=d.signin_max_failures,
        max_failures_ip=d.signin_max_failures_per_address,
        window=dt.timedelta(seconds=d.signin_window_seconds),
        lockout=dt.timedelta(minutes=d.signin_lockout_minutes),
    )


def session_policy(d: DashboardConfig) -> SessionPolicy:
    return SessionPolicy(
        idle=dt.timedelta(minutes=d.session_idle_minutes),
        lifetime=dt.timedelta(hours=d.session_max_hours),
    )


@functools.cache
def engine(url: str) -> Engine:
    return make_engine(url)


def safe_next(target: str | None) -> str:
    """Only a path on this server: never another host (``//evil``, ``/\\evil``, ``http:``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(c in target for c in "\r\n\x00") or len(target) > 2000:
        return "/"
    return target


def live_session(token: str | None) -> bool:
    """Whether ``token`` is a live session now (counts as activity)."""
    if not token:
        return False
    settings = load_settings()
    with session_scope(engine(settings.database.url)) as s:
        return resolve(s, token, session_policy(settings.dashboard)) is not None


# --------------------------------------------------------------------------- pages

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · 会话质检</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Source Sans Pro", sans-serif; background: #f6f7f9;
       margin: 0; display: flex; min-height: 100vh; align-items: center;
       justify-content: center; }}
main {{ background: #fff; padding: 2rem 2.5rem; border-radius: .5rem; width: 22rem;
       box-shadow: 0 1px 4px rgba(0,0,0,.12); }}
h1 {{ font-size: 1.4rem; margin: 0 0 1.2rem; }}
label {{ display: block; margin: .8rem 0 .3rem; font-size: .95rem; }}
input[type=text], input[type=password] {{ width: 100%; box-sizing: border-box;
       padding: .5rem; font-size: 1rem; border: 1px solid #c8ccd2; border-radius: .3rem; }}
button {{ margin-top: 1.2rem; width: 100%; padding: .6rem; font-size: 1rem; color: #fff;
         background: #ff4b4b; border: 0; border-radius: .3rem; cursor: pointer; }}
.error {{ color: #b00020; background: #fdecee; padding: .6rem; border-radius: .3rem; }}
.note {{ color: #666; font-size: .85rem; margin-top: 1rem; }}
.alt {{ display: block; margin-top: .8rem; padding: .55rem; text-align: center;
        color: #07c160; border: 1px solid #07c160; border-radius: .3rem;
        text-decoration: none; }}
</style></head>
<body><main>
<h1>会话质检 · WeCom audit</h1>
{body}
</main></body></html>
"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A page of the sign-in routes (never cached, never framed)."""
    response = HTMLResponse(_PAGE.format(title=html.escape(title), body=body), status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def signin_form(
    next_path: str,
    username: str = "",
    error: str = "",
    status: int = 200,
    *,
    wecom: bool = False,
) -> Response:
    """The password form; ``wecom``: with the link to sign in through WeCom beside it."""
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    if wecom:
        target = html.escape(f"{WECOM_PATH}?{urllib.parse.urlencode({'next': next_path})}")
        alternative = f'<a class="alt" href="{target}">企业微信登录 Sign in with WeCom</a>'
    else:
        alternative = ""
    body = f"""{message}
<form method="post" action="{SIGNIN_PATH}">
<input type="hidden" name="next" value="{html.escape(next_path)}">
<label for="username">用户名 Username</label>
<input type="text" id="username" name="username" aria-label="用户名 Username"
       value="{html.escape(username)}" autocomplete="username" required autofocus>
<label for="password">密码 Password</label>
<input type="password" id="password" name="password" aria-label="密码 Password"
       autocomplete="current-password" required>
<button type="submit">登录 Sign in</button>
</form>
{alternative}
<p class="note">账号由管理员用 <code>audit users add</code> 创建 /
accounts are made with <code>audit users add</code>.</p>"""
    return page("登录 Sign in", body, status)


def wecom_enabled() -> bool:
    return load_settings().signin.wecom


def _signout_form() -> Response:
    body = f"""<p>确定要退出登录吗？ / Sign out of the dashboard?</p>
<form method="post" action="{SIGNOUT_PATH}">
<button type="submit">退出 Sign out</button>
</form>
<p class="note"><a href="/">返回 Back</a></p>"""
    return page("退出 Sign out", body)


# --------------------------------------------------------------------------- handlers


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return dict(pairs)


def _same_origin(request: Request) -> bool:
    """A form posted from another site is refused (the cookie is also ``SameSite=Lax``)."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urllib.parse.urlsplit(origin).netloc == request.headers.get("host", "")


def _sign_in(username: str, password: str, ip: str, agent: str) -> tuple[str | None, str]:
    """A session token, or ``None`` with the reason shown to the person signing in."""
    settings = load_settings()
    policy = throttle_policy(settings.dashboard)
    with session_scope(engine(settings.database.url)) as s:
        result = sign_in(s, username, password, ip=ip, policy=policy)
        if result.locked_until is not None:
            return None, locked_message(result.locked_until)
        if result.user is None:
            return None, "用户名或密码错误，或账号已停用 / wrong username or password, or disabled."
        return open_session(s, result.user, ip=ip, user_agent=agent), ""


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def signed_in(next_path: str, token: str) -> Response:
    """The answer to a successful sign-in: the session cookie, and on to the page asked for."""
    settings = load_settings().dashboard
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.session_max_hours * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )
    return response


def locked_message(until: dt.datetime) -> str:
    """The refusal while a name or address is locked, the time in the configured zone."""
    at = local_time(until, load_settings().quality.timezone).strftime("%H:%M")
    return (
        f"登录失败次数过多，请于 {at} 后再试，或联系管理员 / too many failed "
        f"sign-ins: try again after {at}, or ask an administrator."
    )


async def signin(request: Request) -> Response:
    wecom = await run_in_threadpool(wecom_enabled)
    if request.method == "GET":
        return signin_form(safe_next(request.query_params.get("next")), wecom=wecom)
    form = await _form(request)
    next_path = safe_next(form.get("next"))
    username = form.get("username", "")[:128]
    if not _same_origin(request):
        return signin_form(next_path, username, "请求来源无效 / request refused.", 403, wecom=wecom)
    ip = client_address(request)
    agent = request.headers.get("user-agent", "")
    token, error = await run_in_threadpool(_sign_in, username, form.get("password", ""), ip, agent)
    if token is None:
        status = 429 if "too many" in error else 401
        return signin_form(next_path, username, error, status, wecom=wecom)
    return signed_in(next_path, token)


def _sign_out(token: str | None) -> None:
    settings = load_settings()
    with session_scope(engine(settings.database.url)) as s:
        end_session(s, token)


async def signout(request: Request) -> Response:
    if request.method == "GET":
        return _signout_form()
    if not _same_origin(request):
        return page("退出 Sign out", '<p class="error">请求来源无效 / request refused.</p>', 403)
    await run_in_threadpool(_sign_out, request.cookies.get(COOKIE))
    response = RedirectResponse(SIGNIN_PATH, status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


ROUTES = [
    Route(SIGNIN_PATH, signin, methods=["GET", "POST"]),
    Route(SIGNOUT_PATH, signout, methods=["GET", "POST"]),
]


class SignInRedirect:
    """ASGI middleware: a page requested without a live session goes to the sign-in form
    (``?next=`` keeps the page and its query, e.g. a digest's ``?alert=`` link).

    Only page loads are redirected (GET asking for HTML, outside Streamlit's endpoints and
    assets); the Streamlit script checks the session again itself on every run.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            request = Request(scope)
            path = request.url.path
            wants_page = "text/html" in request.headers.get("accept", "")
            if wants_page and not path.startswith(_OPEN_PREFIXES) and path != "/favicon.png":
                token = request.cookies.get(COOKIE)
                if not await run_in_threadpool(live_session, token):
                    target = path + (f"?{request.url.query}" if request.url.query else "")
                    query = urllib.parse.urlencode({"next": safe_next(target)})
                    response = RedirectResponse(f"{SIGNIN_PATH}?{query}", status_code=303)
                    if token:
                        response.delete_cookie(COOKIE, path="/")
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
