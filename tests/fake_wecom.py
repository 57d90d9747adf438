"""A local server speaking WeCom's JSON, standing in for the WeCom HTTP APIs in tests.

It checks what the real service enforces (tokens, at most 100 ids per call, the misspelled
``exteranalopenid``) and records every request so tests can assert batch sizes.

It also stands in for WeCom's sign-in pages: the QR-code login (``/wwlogin/sso/login``) and
the web authorization inside the WeCom app (``/connect/oauth2/authorize``) check their
parameters like WeCom and, when ``scanner`` says who confirms on the phone, send the browser
back to ``redirect_uri`` with a one-time ``code``, which ``auth/getuserinfo`` exchanges (with
the same application's token) for the member's userid, once.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from audit.archive.wecom_api import WeComClient

SECRET = "S3cret-value-NEVER-shown-0123456789"
CORPID = "ww0123456789abcdef"
AGENTID = 1000005  # a self-built application (自建应用) members sign in through
APP_SECRET = "App-S3cret-of-1000005-NEVER-shown"
LOGIN_PATH = "/wwlogin/sso/login"
AUTHORIZE_PATH = "/connect/oauth2/authorize"


@dataclass
class Seen:
    api: str
    query: dict[str, str]
    body: Any


@dataclass
class Code:
    """A sign-in code: which application issued it and whom ``auth/getuserinfo`` names."""

    agentid: int
    who: dict[str, str]
    used: bool = False


@dataclass
class FakeWeCom:
    """WeCom's behaviour, as data. ``script[api]`` queues answers: a dict (JSON) or an int
    (HTTP status), served before the normal answer."""

    base_url: str = ""
    expires_in: int = 7200
    page: int = 100  # follow_user page size of externalcontact/get
    tokens: set[str] = field(default_factory=set)
    issued: int = 0
    script: dict[str, list[Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    tag_groups: list[dict[str, Any]] = field(default_factory=list)
    # userid -> [(external_contact, follow_info)]
    by_user: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = field(default_factory=dict)
    permit: dict[int, list[str]] = field(default_factory=dict)
    agree: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    room_agree: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)
    internal_rooms: dict[str, dict[str, Any]] = field(default_factory=dict)
    customer_rooms: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: set[str] | None = None  # message/send: the corp's userids (None: anyone)
    # sign-in: applications (agentid -> secret), the trusted domain of redirect_uri (None:
    # any), and who confirms on the phone: {"userid": ...} for a member, {"openid": ...,
    # "external_userid": ...} for someone outside the corp (None: nobody, the QR page stays)
    root: str = ""
    apps: dict[int, str] = field(default_factory=lambda: {AGENTID: APP_SECRET})
    trusted_host: str | None = None
    scanner: dict[str, str] | None = None
    codes: dict[str, Code] = field(default_factory=dict)
    token_agent: dict[str, int | None] = field(default_factory=dict)

    def calls(self, api: str) -> list[Seen]:
        return [s for s in self.seen if s.api == api]

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def expire_codes(self) -> None:
        """Every sign-in code issued so far is past its 5 minutes."""
        for code in self.codes.values():
            code.used = True

    @property
    def login_url(self) -> str:
        return self.root + LOGIN_PATH

    @property
    def authorize_url(self) -> str:
        return self.root + AUTHORIZE_PATH

    # --------------------------------------------------------------- sign-in pages

    def authorize(self, path: str, query: dict[str, str]) -> tuple[int, str, str]:
        """A sign-in page: (HTTP status, Location to send the browser to or "", page text)."""
        self.seen.append(Seen(path, query, None))
        if path == LOGIN_PATH and query.get("login_type") != "CorpApp":
            return 400, "", "login_type 参数错误"
        if path == AUTHORIZE_PATH and (
            query.get("response_type") != "code"
            or query.get("scope") not in ("snsapi_base", "snsapi_privateinfo")
        ):
            return 400, "", "response_type 或 scope 参数错误"
        if query.get("appid") != CORPID:
            return 400, "", "appid 参数错误"
        agentid = int(query.get("agentid") or 0)
        if agentid not in self.apps:
            return 400, "", "agentid 参数错误"
        redirect = query.get("redirect_uri", "")
        target = urllib.parse.urlsplit(redirect)
        if target.scheme not in ("http", "https") or (
            self.trusted_host is not None and target.netloc != self.trusted_host
        ):
            return 400, "", "redirect_uri 需与应用可信域名一致"
        if self.scanner is None:
            return 200, "", "请使用企业微信扫描二维码登录"
        code = f"CODE{len(self.codes) + 1:04d}sign"
        self.codes[code] = Code(agentid, dict(self.scanner))
        back = {"code": code, **({"state": query["state"]} if "state" in query else {})}
        joiner = "&" if target.query else "?"
        return 302, f"{redirect}{joiner}{urllib.parse.urlencode(back)}", ""

    # --------------------------------------------------------------- dispatch

    def handle(self, api: str, query: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        self.seen.append(Seen(api, query, body))
        queued = self.script.get(api)
        if queued:
            answer = queued.pop(0)
            if isinstance(answer, int):
                return answer, {}
            return 200, answer
        if api == "gettoken":
            if query.get("corpid") != CORPID:
                return 200, {"errcode": 40013, "errmsg": "invalid corpid"}
            agents = {secret: agentid for agentid, secret in self.apps.items()}
            secret = query.get("corpsecret", "")
            if secret != SECRET and secret not in agents:
                return 200, {"errcode": 40001, "errmsg": "invalid credential"}
            self.issued += 1
            token = f"TOKEN{self.issued:04d}xyz"
            self.tokens.add(token)
            self.token_agent[token] = agents.get(secret)
            return 200, {
                "errcode": 0,
                "errmsg": "ok",
                "access_token": token,
                "expires_in": self.expires_in,
            }
        if query.get("access_token") not in self.tokens:
            return 200, {"errcode": 42001, "errmsg": "access_token expired"}
        method = getattr(self, "_" + api.replace("/", "_"), None)
        if method is None:
            return 200, {"errcode": 48002, "errmsg": "api forbidden"}
        return 200, {"errcode": 0, "errmsg": "ok", **method(query, body)}

    # --------------------------------------------------------------- auth

    def _auth_getuserinfo(self, query: Any, body: Any) -> dict[str, Any]:
        """The code's person, once, and only to the application that asked for the code."""
        code = self.codes.get(query.get("code", ""))
        agentid = self.token_agent.get(query["access_token"])
        if code is None or code.used or code.agentid != agentid:
            raise Refused(40029, "invalid code")
        code.used = True
        return dict(code.who)

    # --------------------------------------------------------------- externalcontact

    def _externalcontact_get_corp_tag_list(self, query: Any, body: Any) -> dict[str, Any]:
        return {"tag_group": self.tag_groups}

    def _externalcontact_batch_get_by_user(self, query: Any, body: Any) -> dict[str, Any]:
        ids, limit = body["userid_list"], body.get("limit", 50)
        if len(ids) > 100:
            raise Refused(301060, "userid_list exceeds 100")
        if not 1 <= limit <= 100:
            raise Refused(40058, "invalid limit")
        rows = [(c, f) for u in ids for c, f in self.by_user.get(u, [])]
        start = int(body.get("cursor") or 0)
        chunk = rows[start : start + limit]
        more = start + limit < len(rows)
        return {
            "external_contact_list": [{"external_contact": c, "follow_info": f} for c, f in chunk],
            "next_cursor": str(start + limit) if more else "",
        }

    def _externalcontact_get(self, query: Any, body: Any) -> dict[str, Any]:
        ext = query["external_userid"]
        found = [
            (c, f) for rows in self.by_user.values() for c, f in rows if c["external_userid"] == ext
        ]
        if not found:
            raise Refused(84061, "not external contact")
        start = int(query.get("cursor") or 0)
        follows = [dict(f) for _, f in found][start : start + self.page]
        more = start + self.page < len(found)
        return {
            "external_contact": found[0][0],
            "follow_user": follows,
            "next_cursor": str(start + self.page) if more else "",
        }

    def _externalcontact_groupchat_get(self, query: Any, body: Any) -> dict[str, Any]:
        room = self.customer_rooms.get(body["chat_id"])
        if room is None:
            raise Refused(40050, "chat_id not found")
        return {"group_chat": room}

    # --------------------------------------------------------------- message

    def _message_send(self, query: Any, body: Any) -> dict[str, Any]:
        """An application message; ``members`` (when set) are the userids that exist."""
        if body.get("msgtype") != "markdown" or not body.get("markdown", {}).get("content"):
            raise Refused(40008, "invalid message type")
        if len(body["markdown"]["content"].encode("utf-8")) > 2048:
            raise Refused(40058, "markdown.content exceed max length")
        if self.members is not None:
            unknown = [u for u in body["touser"].split("|") if u not in self.members]
            return {"invaliduser": "|".join(unknown)}
        return {"invaliduser": ""}

    # --------------------------------------------------------------- msgaudit

    def _msgaudit_get_permit_user_list(self, query: Any, body: Any) -> dict[str, Any]:
        kinds = [body["type"]] if "type" in body else [1, 2, 3]
        return {"ids": list(dict.fromkeys(u for k in kinds for u in self.permit.get(k, [])))}

    def _msgaudit_check_single_agree(self, query: Any, body: Any) -> dict[str, Any]:
        info = body["info"]
        if len(info) > 100:
            raise Refused(301060, "too many info")
        out = []
        for item in info:
            if set(item) != {"userid", "exteranalopenid"}:
                raise Refused(40058, f"bad keys {sorted(item)}")
            status, when = self.agree.get((item["userid"], item["exteranalopenid"]), ("Agree", 0))
            out.append({**item, "agree_status": status, "status_change_time": when})
        return {"agreeinfo": out}

    def _msgaudit_check_room_agree(self, query: Any, body: Any) -> dict[str, Any]:
        return {
            "agreeinfo": [
                {"exteranalopenid": e, "agree_status": s, "status_change_time": t}
                for e, s, t in self.room_agree.get(body["roomid"], [])
            ]
        }

    def _msgaudit_groupchat_get(self, query: Any, body: Any) -> dict[str, Any]:
        room = self.internal_rooms.get(body["roomid"])
        if room is None:
            raise Refused(301021, "room not found in archive")  # code made up for the fake
        return room


class Refused(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        self.errcode, self.errmsg = errcode, errmsg


def _handler(fake: FakeWeCom) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, body: Any) -> None:
            url = urllib.parse.urlsplit(self.path)
            api = url.path.removeprefix("/cgi-bin/")
            query = dict(urllib.parse.parse_qsl(url.query))
            try:
                status, payload = fake.handle(api, query, body)
            except Refused as r:
                status, payload = 200, {"errcode": r.errcode, "errmsg": r.errmsg}
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "3")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path in (LOGIN_PATH, AUTHORIZE_PATH):
                status, location, text = fake.authorize(
                    url.path, dict(urllib.parse.parse_qsl(url.query))
                )
                page = f"<!doctype html><title>企业微信</title><p>{text}</p>".encode()
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                return
            self._serve(None)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._serve(json.loads(self.rfile.read(length) or b"{}"))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve(fake: FakeWeCom | None = None) -> Iterator[FakeWeCom]:
    fake = fake or FakeWeCom()
    server = HTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.root = f"http://127.0.0.1:{server.server_address[1]}"
    fake.base_url = f"{fake.root}/cgi-bin"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class FakeClock:
    """``now`` for the client's clock; ``sleep`` advances it and remembers each delay."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.t += seconds


def client_for(fake: FakeWeCom, clock: FakeClock | None = None, **kwargs: Any) -> WeComClient:
    clock = clock or FakeClock()
    options: dict[str, Any] = {"requests_per_second": 0, "proxy": "", **kwargs}
    return WeComClient(
        fake.base_url,
        options.pop("corpid", CORPID),
        options.pop("secret", SECRET),
        timeout=5,
        clock=clock.now,
        sleep=clock.sleep,
        **options,
    )
