"""Sign-in through WeCom (企业微信扫码登录 / 网页授权), beside the password form, when
``[signin] wecom`` is on (off by default: then both routes answer 404).

``GET /auth/wecom?next=PAGE`` draws a random ``state`` (256 bits), keeps it on the server
with the page asked for, gives it to the browser in an HTTP-only cookie, and sends the browser
to WeCom: the QR-code login (``signin.wecom_login_url``), or, inside the WeCom app, the web
authorization (``signin.wecom_authorize_url``). WeCom sends it back to ``GET
/auth/wecom/callback?code=...&state=...`` (under ``digest.dashboard_url`` when set, else the
address the browser used; it must be the application's trusted domain, 可信域名).

The callback signs in only when the ``state`` is the one in this browser's cookie and still
held on the server (each is taken once, within ``signin.wecom_state_minutes``): a callback
forged for someone else's browser, or replayed, is refused before WeCom is asked. Then
``auth/getuserinfo`` (with the application's access token, :mod:`audit.archive.wecom_api`)
names the member, ``[signin]`` links the member's userid to a dashboard user, and the same
server-side session as a password sign-in is opened. Every refusal (bad state, used or expired
code, WeCom's errors, a member linked to nobody, a disabled user) is written to the trail and
counted by the sign-in throttle like a wrong password (:func:`audit.store.users.sign_in_wecom`).

The states are held in this process: a dashboard served by several processes behind one
address needs sticky sessions for ``/auth/wecom``.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from webauth import (
    SIGNIN_PATH,
    WECOM_PATH,
    client_address,
    engine,
    locked_message,
    page,
    safe_next,
    signed_in,
    throttle_policy,
)

from audit.archive.wecom_api import WeComApiError, WeComClient
from audit.config import Settings, load_settings
from audit.store.db import session_scope
from audit.store.users import refuse_wecom, sign_in_wecom, wecom_locked_until
from audit.store.websessions import open_session

log = logging.getLogger(__name__)

CALLBACK_PATH = f"{WECOM_PATH}/callback"
STATE_COOKIE = "audit_wecom_state"
MAX_PENDING = 10_000  # states held at once; the oldest go first beyond it
INVALID_CODE = 40029  # WeCom: the code is used, expired or another application's


class PendingSignins:
    """Started WeCom sign-ins: the state's SHA-256 -> (deadline, page asked for).

    ``take`` gives a state's page once, before its deadline; ``now`` is a monotonic clock
    reading, a parameter so that tests use their own.
    """

    def __init__(self, limit: int = MAX_PENDING) -> None:
        self.limit = limit
        self._held: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(state: str) -> str:
        return hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()

    def issue(self, state: str, next_path: str, now: float, ttl: float) -> None:
        with self._lock:
            if len(self._held) >= self.limit:
                live = {k: v for k, v in self._held.items() if v[0] > now}
                while len(live) >= self.limit:
                    del live[next(iter(live))]
                self._held = live
            self._held[self._key(state)] = (now + ttl, next_path)

    def take(self, state: str, now: float) -> str | None:
        if not state or len(state) > 128:
            return None
        with self._lock:
            held = self._held.pop(self._key(state), None)
        if held is None or held[0] <= now:
            return None
        return held[1]


PENDING = PendingSignins()

_clients: dict[tuple[object, ...], WeComClient] = {}
_clients_lock = threading.Lock()


def _client(settings: Settings) -> WeComClient:
    """The sign-in application's client, kept so that its access token is reused."""
    secret = settings.wecom_signin_secret.get_secret_value()
    key = (settings.wecom, settings.wecom.corpid or settings.archive.corpid, secret)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            if len(_clients) >= 8:  # the configuration changed: the old ones are of no use
                for old in _clients.values():
                    old.close()
                _clients.clear()
            client = WeComClient.from_settings(settings, secret, interactive=True)
            _clients[key] = client
        return client


def authorize_url(settings: Settings, redirect_uri: str, state: str, in_wecom: bool) -> str:
    """WeCom's page that asks the member, then sends the browser to ``redirect_uri``."""
    corpid = settings.wecom.corpid or settings.archive.corpid
    agentid = str(settings.wecom_signin_agentid)
    s = settings.signin
    if in_wecom:  # 网页授权: the member is already signed in to the WeCom app
        query = {
            "appid": corpid,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
            "agentid": agentid,
        }
        return f"{s.wecom_authorize_url}?{urllib.parse.urlencode(query)}#wechat_redirect"
    query = {
        "login_type": "CorpApp",
        "appid": corpid,
        "agentid": agentid,
        "redirect_uri": redirect_uri,
        "state": state,
    }
    return f"{s.wecom_login_url}?{urllib.parse.urlencode(query)}"


def _callback_url(settings: Settings, request: Request) -> str:
    base = settings.digest.dashboard_url.rstrip("/") or str(request.base_url).rstrip("/")
    return base + CALLBACK_PATH


def _not_enabled() -> Response:
    body = "<p>未启用企业微信登录 / sign-in with WeCom is not enabled.</p>"
    return page("未找到 Not found", body, 404)


# --------------------------------------------------------------------------- start


async def start(request: Request) -> Response:
    settings = await run_in_threadpool(load_settings)
    if not settings.signin.wecom:
        return _not_enabled()
    state = secrets.token_urlsafe(32)
    minutes = settings.signin.wecom_state_minutes
    next_path = safe_next(request.query_params.get("next"))
    PENDING.issue(state, next_path, time.monotonic(), minutes * 60)
    in_wecom = "wxwork" in request.headers.get("user-agent", "").lower()
    url = authorize_url(settings, _callback_url(settings, request), state, in_wecom)
    response = RedirectResponse(url, status_code=302)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=minutes * 60,
        path=WECOM_PATH,
        httponly=True,
        samesite="lax",  # sent on the top-level GET back from WeCom, never on a sub-request
        secure=settings.dashboard.cookie_secure,
    )
    return response


# --------------------------------------------------------------------------- callback


@dataclass(frozen=True)
class Outcome:
    """A session token to set, or the refusal to show (message and HTTP status)."""

    token: str = ""
    message: str = ""
    status: int = 200


STATE_REFUSED = (
    "登录请求无效或已过期，请重新登录 / this sign-in request is invalid, expired or already "
    "used: please sign in again."
)
CODE_REFUSED = (
    "企业微信登录凭证无效或已过期，请重新扫码 / the WeCom sign-in code is invalid or expired: "
    "please scan again."
)
NOT_MEMBER = "仅限本企业成员登录 / only members of this company can sign in."


def _unlinked(userid: str) -> str:
    return (
        f"企业微信账号 {userid} 未关联可用的看板账号，请联系管理员 / WeCom account {userid} is "
        "not linked to an active dashboard user: ask an administrator."
    )


def _wecom_failed(errcode: int) -> str:
    return (
        f"企业微信暂时无法完成登录（错误码 {errcode}），请稍后再试或联系管理员 / WeCom could not "
        f"complete the sign-in (errcode {errcode}): try again later, or ask an administrator."
    )


def _finish(settings: Settings, pending: str | None, code: str, ip: str, agent: str) -> Outcome:
    """The callback's work, in order: the address's lock, the state, WeCom, the user."""
    db = engine(settings.database.url)
    policy = throttle_policy(settings.dashboard)

    def refuse(reason: str, message: str, status: int, errcode: int | None = None) -> Outcome:
        with session_scope(db) as s:
            until = refuse_wecom(s, reason, ip=ip, policy=policy, errcode=errcode)
        log.info("WeCom sign-in from %s refused: %s", ip, reason)
        if until is not None:  # this refusal was one too many
            return Outcome(message=locked_message(until), status=429)
        return Outcome(message=message, status=status)

    with session_scope(db) as s:
        until = wecom_locked_until(s, ip=ip, policy=policy)
    if until is not None:
        return Outcome(message=locked_message(until), status=429)
    if pending is None:
        return refuse("state", STATE_REFUSED, 400)
    if not code or len(code) > 512:
        return refuse("code", CODE_REFUSED, 400)
    try:
        who = _client(settings).get_auth_userinfo(code)
    except WeComApiError as exc:
        if exc.errcode == INVALID_CODE:
            return refuse("code", CODE_REFUSED, 400, errcode=exc.errcode)
        log.warning("WeCom sign-in: %s", exc)
        return refuse("wecom", _wecom_failed(exc.errcode), 502, errcode=exc.errcode)
    if not who.userid:
        return refuse("not_member", NOT_MEMBER, 403)
    username = settings.signin.username_for(who.userid)
    with session_scope(db) as s:
        result = sign_in_wecom(s, who.userid, username, ip=ip, policy=policy)
        if result.locked_until is not None:
            return Outcome(message=locked_message(result.locked_until), status=429)
        if result.user is None:
            return Outcome(message=_unlinked(who.userid), status=403)
        return Outcome(token=open_session(s, result.user, ip=ip, user_agent=agent))


def _refusal(message: str, status: int, next_path: str) -> Response:
    back = html.escape(f"{SIGNIN_PATH}?{urllib.parse.urlencode({'next': next_path})}")
    body = f"""<p class="error" role="alert">{html.escape(message)}</p>
<p class="note"><a href="{back}">返回登录 Back to sign-in</a></p>"""
    return page("企业微信登录失败 WeCom sign-in failed", body, status)


async def callback(request: Request) -> Response:
    settings = await run_in_threadpool(load_settings)
    if not settings.signin.wecom:
        return _not_enabled()
    state = request.query_params.get("state", "")
    cookie = request.cookies.get(STATE_COOKIE, "")
    # the state must be this browser's (its cookie) and still held: taken once, here
    bound = bool(state) and hmac.compare_digest(
        state.encode("utf-8", "surrogatepass"), cookie.encode("utf-8", "surrogatepass")
    )
    pending = PENDING.take(state, time.monotonic()) if bound else None
    code = request.query_params.get("code", "")
    ip = client_address(request)
    agent = request.headers.get("user-agent", "")
    outcome = await run_in_threadpool(_finish, settings, pending, code, ip, agent)
    if outcome.token:
        response = signed_in(pending or "/", outcome.token)
    else:
        response = _refusal(outcome.message, outcome.status, pending or "/")
    response.delete_cookie(STATE_COOKIE, path=WECOM_PATH)
    return response


ROUTES = [
    Route(WECOM_PATH, start, methods=["GET"]),
    Route(CALLBACK_PATH, callback, methods=["GET"]),
]
