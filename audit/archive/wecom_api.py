"""A small client for the WeCom HTTP APIs used beside the archive (``/cgi-bin/...``).

HTTP and retries go through :mod:`audit.net`. What this client adds:

- **Access token**: fetched with ``gettoken``, cached until ``expires_in`` minus a margin, and
  fetched again (once per call) when an API answers 40014 / 42001 / 40001.
- **Errors**: every non-zero ``errcode`` becomes a :class:`WeComApiError` naming the API, the
  code, WeCom's message and, for the common codes, what to do about it.
- **Rate limits**: a client-side limiter spaces requests; ``45009`` / ``45033`` (frequency and
  concurrency limits), ``-1`` (system busy), HTTP 429 / 5xx and network errors are retried with
  exponential backoff (``Retry-After`` honoured); other HTTP 4xx fail at once.
- **Secrets**: the corp secret and the access token never appear in a repr, a log line or an
  exception; URLs are redacted before any message is built, and the HTTP library's own
  exceptions (which hold the full URL) are not chained.

Which secret: ``externalcontact/*`` needs the customer-contact (客户联系) secret or an app with
that permission; ``msgaudit/*`` needs the archive (会话内容存档) secret; ``auth/getuserinfo``
(dashboard sign-in) the secret of the application the member signed in through. Use one
client per secret.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr

from audit.net import HttpClient, NetError, RetryPolicy, call_with_retries, redact

if TYPE_CHECKING:
    from audit.config import Settings

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com/cgi-bin"
MAX_IDS = 100  # userid_list, check_single_agree info, batch limit: 301060 above this

TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # invalid credential / token / expired
RETRY_ERRCODES = frozenset({-1, 45009, 45033})  # system busy, frequency, concurrency
# a customer group asked on msgaudit/groupchat/get (or the reverse) fails with some other code;
# these mean the call itself cannot work, so trying the other endpoint would only hide them
NO_FALLBACK = frozenset({40013, 40001, 41001, 42001, 40014, 60020}) | RETRY_ERRCODES

HINTS: dict[int, str] = {
    -1: "WeCom is busy; retried with backoff and still failing, try again later",
    40001: "invalid secret: check the secret of the app this client uses "
    "(客户联系 for externalcontact/*, 会话内容存档 for msgaudit/*)",
    40003: "invalid userid: the member does not exist in this corp",
    40013: "invalid corpid: check the corp id (ww..., 管理后台 > 我的企业 > 企业ID)",
    40014: "invalid access_token (refreshed once and still refused)",
    40029: "invalid code: a sign-in code is used once and expires after 5 minutes",
    40096: "invalid external_userid: not an external contact of this corp",
    41001: "access_token missing",
    42001: "access_token expired (refreshed once and still refused)",
    45009: "rate limit reached; retried with backoff and still limited, lower requests_per_second",
    45033: "too many concurrent calls; retried with backoff and still limited",
    48002: "API forbidden: the app behind this secret has no permission for this API "
    "(grant 客户联系 or 会话内容存档 access in 管理后台)",
    60011: "no permission: the user or contact is outside the app's visible range "
    "(可见范围) in 管理后台",
    60020: "this server's IP is not in the app's trusted IP list (企业可信IP)",
    84061: "no follow relationship between this member and the external contact",
    301052: "the archive (会话内容存档) service has expired",
    301053: "the archive (会话内容存档) service is not enabled",
    301060: "too many ids in one call (at most 100)",
}


class WeComApiError(Exception):
    """A WeCom API call failed. ``errcode`` is WeCom's (``-1`` also for network/HTTP failures).

    ``transient``: retried inside the client (the retry errcodes unless said otherwise: an
    HTTP 4xx or a non-JSON answer is also ``-1`` but not worth another try).
    """

    def __init__(
        self,
        errcode: int,
        errmsg: str,
        api: str,
        *,
        transient: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.errcode = errcode
        self.errmsg = redact(errmsg)
        self.api = api
        self.hint = HINTS.get(errcode, "")
        self.transient = errcode in RETRY_ERRCODES if transient is None else transient
        self.retry_after = retry_after
        text = f"WeCom {api}: errcode {errcode} ({self.errmsg})"
        super().__init__(f"{text}: {self.hint}" if self.hint else text)

    @property
    def retryable(self) -> bool:
        return self.errcode in RETRY_ERRCODES


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class CorpTag:
    id: str
    name: str
    order: int
    create_time: int
    deleted: bool


@dataclass(frozen=True)
class CorpTagGroup:
    group_id: str
    name: str
    order: int
    create_time: int
    deleted: bool
    tags: tuple[CorpTag, ...]


@dataclass(frozen=True)
class FollowTag:
    tag_id: str
    group_name: str  # "" when the id is not in the corp tag list (deleted since)
    tag_name: str
    type: int  # 1 corp tag, 2 personal tag, 3 rule-group tag


@dataclass(frozen=True)
class ExternalContact:
    external_userid: str
    name: str
    type: int  # 1 WeChat user, 2 WeCom user of another company
    gender: int  # 0 unknown, 1 male, 2 female
    corp_name: str
    unionid: str


@dataclass(frozen=True)
class FollowInfo:
    userid: str
    remark: str
    createtime: int
    add_way: int
    state: str  # the acquisition channel set on the contact-me QR code / link
    tags: tuple[FollowTag, ...]


@dataclass(frozen=True)
class ContactFollow:
    """One row of ``batch/get_by_user``: a contact as followed by one member."""

    contact: ExternalContact
    follow: FollowInfo


@dataclass(frozen=True)
class ContactDetail:
    """``externalcontact/get``: a contact and every member following it."""

    contact: ExternalContact
    follows: tuple[FollowInfo, ...]


@dataclass(frozen=True)
class AgreeInfo:
    userid: str  # "" for room results
    external_userid: str
    status: Literal["agree", "disagree", "unknown"]
    changed_at: int  # seconds since the epoch


@dataclass(frozen=True)
class AuthUser:
    """Who a sign-in code (网页授权 / 扫码登录) belongs to: a member of the corp (``userid``),
    or someone outside it (``openid``, and ``external_userid`` for a customer)."""

    userid: str
    openid: str
    external_userid: str


@dataclass(frozen=True)
class GroupMember:
    userid: str
    type: int  # 1 member of this corp, 2 external contact, 0 unknown (msgaudit groups)
    join_time: int


@dataclass(frozen=True)
class GroupChat:
    roomid: str
    name: str
    creator: str
    create_time: int
    notice: str
    kind: Literal["internal", "customer"]
    members: tuple[GroupMember, ...]


# --------------------------------------------------------------------------- helpers


class RateLimiter:
    """At most ``rate`` requests per second, spaced evenly (thread-safe)."""

    def __init__(
        self, rate: float, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._clock, self._sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            self._sleep(wait)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _agree(item: Mapping[str, Any]) -> AgreeInfo:
    raw = str(item.get("agree_status", ""))
    status: Literal["agree", "disagree", "unknown"] = (
        "agree"
        if raw in ("Agree", "Default_Agree")
        else "disagree"
        if raw == "Disagree"
        else "unknown"
    )
    return AgreeInfo(
        userid=str(item.get("userid", "")),
        external_userid=str(item.get("exteranalopenid", "")),  # sic: WeCom's spelling
        status=status,
        changed_at=_int(item.get("status_change_time")),
    )


def _contact(data: Mapping[str, Any]) -> ExternalContact:
    return ExternalContact(
        external_userid=str(data.get("external_userid", "")),
        name=str(data.get("name", "")),
        type=_int(data.get("type")) or 1,
        gender=_int(data.get("gender")),
        corp_name=str(data.get("corp_name", "") or data.get("corp_full_name", "")),
        unionid=str(data.get("unionid", "")),
    )


def _follow(data: Mapping[str, Any], tags: tuple[FollowTag, ...]) -> FollowInfo:
    return FollowInfo(
        userid=str(data.get("userid", "")),
        remark=str(data.get("remark", "")),
        createtime=_int(data.get("createtime")),
        add_way=_int(data.get("add_way")),
        state=str(data.get("state", "")),
        tags=tags,
    )


# --------------------------------------------------------------------------- client


class WeComClient:
    """One corp id and one secret; see the module docstring for what it handles."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        corpid: str = "",
        secret: str | SecretStr = "",
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        *,
        requests_per_second: float = 10.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        backoff_max: float = 60.0,
        token_margin: float = 300.0,
        proxy: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.corpid = corpid
        self._secret = secret if isinstance(secret, SecretStr) else SecretStr(secret)
        self.timeout = timeout
        self._clock, self._sleep = clock, sleep
        self.max_retries, self.backoff, self.backoff_max = max_retries, backoff, backoff_max
        self._retry = RetryPolicy(max_retries + 1, backoff, backoff_max)
        self.token_margin = token_margin
        self._limiter = RateLimiter(requests_per_second, clock, sleep)
        self._token = SecretStr("")
        self._token_expires = 0.0
        self._token_lock = threading.Lock()
        # proxy: None = the environment's (http_proxy, no_proxy), "" = none, else that URL
        self._transport = HttpClient(timeout=timeout, proxy=proxy)

    @classmethod
    def from_settings(
        cls, settings: Settings, secret: str | SecretStr, *, interactive: bool = False
    ) -> WeComClient:
        """The client for one secret as ``[wecom]`` configures it (rate, retries, proxy).

        ``interactive``: a person is waiting on the answer (signing in), so at most one retry
        and a short backoff rather than minutes of them.
        """
        w = settings.wecom
        return cls(
            base_url=w.base_url,
            corpid=w.corpid or settings.archive.corpid,
            secret=secret,
            timeout=w.timeout,
            requests_per_second=w.requests_per_second,
            max_retries=min(w.max_retries, 1) if interactive else w.max_retries,
            backoff=min(w.backoff_seconds, 0.5) if interactive else w.backoff_seconds,
            backoff_max=min(w.backoff_max_seconds, 2.0) if interactive else w.backoff_max_seconds,
            proxy=w.proxy,
        )

    def close(self) -> None:
        self._transport.close()

    def __repr__(self) -> str:
        return f"WeComClient(base_url={self.base_url!r}, corpid={self.corpid!r}, secret='***')"

    def _error(
        self,
        errcode: int,
        errmsg: str,
        api: str,
        *,
        transient: bool | None = None,
        retry_after: float | None = None,
    ) -> WeComApiError:
        """The error, with the secret and the token scrubbed even if WeCom echoed them."""
        for value in (self._secret.get_secret_value(), self._token.get_secret_value()):
            if value:
                errmsg = errmsg.replace(value, "***")
        return WeComApiError(errcode, errmsg, api, transient=transient, retry_after=retry_after)

    # ----------------------------------------------------------------- transport

    def _http(self, api: str, method: str, query: dict[str, str], body: Any) -> dict[str, Any]:
        """One HTTP exchange with retries for transient failures; returns the JSON object."""
        url = f"{self.base_url}/{api}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = None if data is None else {"Content-Type": "application/json; charset=utf-8"}

        def once() -> dict[str, Any]:
            self._limiter.acquire()
            try:
                raw = self._transport.request(method, url, content=data, headers=headers)
            except NetError as exc:
                raise self._error(
                    -1, str(exc), api, transient=exc.transient, retry_after=exc.retry_after
                ) from None
            try:
                payload = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise WeComApiError(-1, "response is not JSON", api, transient=False) from None
            if not isinstance(payload, dict):
                raise WeComApiError(-1, "response is not a JSON object", api, transient=False)
            code = _int(payload.get("errcode"))
            if code in RETRY_ERRCODES:
                raise self._error(code, str(payload.get("errmsg", "")), api)
            return payload

        return call_with_retries(once, self._retry, sleep=self._sleep, reraise=True)

    def _fetch_token(self) -> None:
        payload = self._http(
            "gettoken",
            "GET",
            {"corpid": self.corpid, "corpsecret": self._secret.get_secret_value()},
            None,
        )
        code = _int(payload.get("errcode"))
        if code:
            raise self._error(code, str(payload.get("errmsg", "")), "gettoken")
        token = str(payload.get("access_token", ""))
        if not token:
            raise WeComApiError(-1, "gettoken answered without access_token", "gettoken")
        expires_in = float(payload.get("expires_in") or 7200)
        margin = min(self.token_margin, expires_in / 2)
        self._token = SecretStr(token)
        self._token_expires = self._clock() + expires_in - margin

    def access_token(self, *, refresh: bool = False) -> str:
        with self._token_lock:
            if (
                refresh
                or not self._token.get_secret_value()
                or self._clock() >= self._token_expires
            ):
                self._fetch_token()
            return self._token.get_secret_value()

    def call(
        self,
        api: str,
        body: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST ``body`` (or GET with ``params`` when ``body`` is None) to ``api``.

        Returns the JSON answer when ``errcode`` is 0; raises :class:`WeComApiError` otherwise.
        """
        method = "GET" if body is None else "POST"
        token = self.access_token()
        for refreshed in (False, True):
            query = {**(params or {}), "access_token": token}
            payload = self._http(api, method, query, None if body is None else dict(body))
            code = _int(payload.get("errcode"))
            if code == 0:
                return payload
            if code in TOKEN_ERRCODES and not refreshed:
                log.info("WeCom %s: errcode %d, refreshing the access token", api, code)
                token = self.access_token(refresh=True)
                continue
            raise self._error(code, str(payload.get("errmsg", "")), api)
        raise AssertionError("unreachable")  # pragma: no cover

    # ----------------------------------------------------------------- auth

    def get_auth_userinfo(self, code: str) -> AuthUser:
        """``auth/getuserinfo``: whom the ``code`` of a WeCom sign-in redirect names.

        The code comes from the QR-code login or the web authorization of the application
        whose secret this client holds; WeCom accepts it once, within 5 minutes (else 40029).
        """
        p = self.call("auth/getuserinfo", params={"code": code})
        return AuthUser(
            userid=str(p.get("userid") or p.get("UserId") or ""),  # UserId: the older API's
            openid=str(p.get("openid") or p.get("OpenId") or ""),
            external_userid=str(p.get("external_userid") or ""),
        )

    # ----------------------------------------------------------------- externalcontact

    def get_corp_tag_list(
        self, tag_ids: Sequence[str] = (), group_ids: Sequence[str] = ()
    ) -> list[CorpTagGroup]:
        payload = self.call(
            "externalcontact/get_corp_tag_list",
            {"tag_id": list(tag_ids), "group_id": list(group_ids)},
        )
        groups = []
        for g in payload.get("tag_group") or []:
            tags = tuple(
                CorpTag(
                    id=str(t.get("id", "")),
                    name=str(t.get("name", "")),
                    order=_int(t.get("order")),
                    create_time=_int(t.get("create_time")),
                    deleted=bool(t.get("deleted", False)),
                )
                for t in g.get("tag") or []
            )
            groups.append(
                CorpTagGroup(
                    group_id=str(g.get("group_id", "")),
                    name=str(g.get("group_name", "")),
                    order=_int(g.get("order")),
                    create_time=_int(g.get("create_time")),
                    deleted=bool(g.get("deleted", False)),
                    tags=tags,
                )
            )
        return groups

    def batch_get_by_user(
        self,
        userids: Iterable[str],
        tag_groups: Sequence[CorpTagGroup] | None = None,
        *,
        limit: int = MAX_IDS,
    ) -> list[ContactFollow]:
        """Every contact of every member in ``userids``, one row per (contact, member).

        The API returns tag ids only; they are joined with ``tag_groups`` (fetched with
        :meth:`get_corp_tag_list` when not given). Ids missing from the list keep empty names.
        """
        ids = list(dict.fromkeys(userids))
        limit = max(1, min(limit, MAX_IDS))
        if tag_groups is None:
            tag_groups = self.get_corp_tag_list()
        by_id = {t.id: (g.name, t.name) for g in tag_groups for t in g.tags}
        out: list[ContactFollow] = []
        for chunk in _chunks(ids, MAX_IDS):
            cursor = ""
            while True:
                payload = self.call(
                    "externalcontact/batch/get_by_user",
                    {"userid_list": list(chunk), "cursor": cursor, "limit": limit},
                )
                for item in payload.get("external_contact_list") or []:
                    info = item.get("follow_info") or {}
                    tags = tuple(
                        FollowTag(str(tid), *by_id.get(str(tid), ("", "")), 1)
                        for tid in info.get("tag_id") or []
                    )
                    out.append(
                        ContactFollow(
                            _contact(item.get("external_contact") or {}), _follow(info, tags)
                        )
                    )
                cursor = str(payload.get("next_cursor") or "")
                if not cursor:
                    break
        return out

    def get_external_contact(self, external_userid: str) -> ContactDetail:
        """``externalcontact/get``, following ``next_cursor`` over long follower lists."""
        contact: ExternalContact | None = None
        follows: list[FollowInfo] = []
        cursor = ""
        while True:
            params = {"external_userid": external_userid}
            if cursor:
                params["cursor"] = cursor
            payload = self.call("externalcontact/get", params=params)
            if contact is None:
                contact = _contact(payload.get("external_contact") or {})
            for f in payload.get("follow_user") or []:
                tags = tuple(
                    FollowTag(
                        tag_id=str(t.get("tag_id", "")),
                        group_name=str(t.get("group_name", "")),
                        tag_name=str(t.get("tag_name", "")),
                        type=_int(t.get("type")) or 1,
                    )
                    for t in f.get("tags") or []
                )
                follows.append(_follow(f, tags))
            cursor = str(payload.get("next_cursor") or "")
            if not cursor:
                break
        return ContactDetail(contact, tuple(follows))

    # ----------------------------------------------------------------- msgaudit

    def get_permit_user_list(self, type: int | None = None) -> list[str]:
        """Members whose chats are archived; ``type`` 1 office, 2 service, 3 both (None: all)."""
        body: dict[str, Any] = {} if type is None else {"type": type}
        payload = self.call("msgaudit/get_permit_user_list", body)
        return [str(i) for i in payload.get("ids") or []]

    def check_single_agree(self, pairs: Iterable[tuple[str, str]]) -> list[AgreeInfo]:
        """Consent of each (member userid, external_userid) pair, asked 100 at a time."""
        items = list(dict.fromkeys(pairs))
        out: list[AgreeInfo] = []
        for chunk in _chunks(items, MAX_IDS):
            info = [{"userid": u, "exteranalopenid": e} for u, e in chunk]  # sic
            payload = self.call("msgaudit/check_single_agree", {"info": info})
            out.extend(_agree(i) for i in payload.get("agreeinfo") or [])
        return out

    def check_room_agree(self, roomid: str) -> list[AgreeInfo]:
        payload = self.call("msgaudit/check_room_agree", {"roomid": roomid})
        return [_agree(i) for i in payload.get("agreeinfo") or []]

    def groupchat_get(
        self, roomid: str, kind: Literal["auto", "internal", "customer"] = "auto"
    ) -> GroupChat:
        """A group's name, owner and members.

        ``internal`` asks ``msgaudit/groupchat/get`` (groups without external contacts),
        ``customer`` asks ``externalcontact/groupchat/get``; ``auto`` tries the first and falls
        back to the second unless the error means neither can work (bad corp id, secret, IP...).
        """
        if kind == "customer":
            return self._customer_group(roomid)
        try:
            return self._internal_group(roomid)
        except WeComApiError as exc:
            if kind == "internal" or exc.errcode in NO_FALLBACK:
                raise
            log.info("%s; trying externalcontact/groupchat/get", exc)
            return self._customer_group(roomid)

    def _internal_group(self, roomid: str) -> GroupChat:
        p = self.call("msgaudit/groupchat/get", {"roomid": roomid})
        return GroupChat(
            roomid=roomid,
            name=str(p.get("roomname", "")),
            creator=str(p.get("creator", "")),
            create_time=_int(p.get("room_create_time")),
            notice=str(p.get("notice", "")),
            kind="internal",
            members=tuple(
                GroupMember(str(m.get("memberid", "")), 0, _int(m.get("jointime")))
                for m in p.get("members") or []
            ),
        )

    def _customer_group(self, roomid: str) -> GroupChat:
        p = self.call("externalcontact/groupchat/get", {"chat_id": roomid, "need_name": 0})
        g = p.get("group_chat") or {}
        return GroupChat(
            roomid=str(g.get("chat_id") or roomid),
            name=str(g.get("name", "")),
            creator=str(g.get("owner", "")),
            create_time=_int(g.get("create_time")),
            notice=str(g.get("notice", "")),
            kind="customer",
            members=tuple(
                GroupMember(str(m.get("userid", "")), _int(m.get("type")), _int(m.get("join_time")))
                for m in g.get("member_list") or []
            ),
        )
