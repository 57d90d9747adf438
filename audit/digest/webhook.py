"""The WeCom group robot (群机器人) webhook: markdown, split and throttled.

WeCom's limits (wecom-archive-format.md §5): at most 20 messages a minute per robot, markdown
content at most 4,096 bytes (UTF-8), text 2,048. A long digest is split on line boundaries
into numbered parts; a single line longer than a part is cut between characters. A sliding
window keeps each robot under 20 messages in any 60 seconds, sleeping when needed.

Answers: ``{"errcode": 0}`` is success. ``45009`` (frequency limit) and ``-1`` (busy) are
retried after a backoff of at least the rate window's remainder; HTTP 429 and 5xx are retried
honouring ``Retry-After``; anything else (``93000`` invalid webhook key, ``40058`` bad content,
other 4xx) fails at once. The webhook URL carries the robot's key, so it is never logged: errors
name the robot by host only.
"""

from __future__ import annotations

import collections
import functools
import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from audit.digest.channel import (
    DEFAULT_RETRY,
    DeliveryError,
    TransientError,
    deliver_with_retries,
)
from audit.digest.recipients import Recipient
from audit.digest.render import RenderedDigest
from audit.net import HttpClient, NetError, RetryPolicy

MARKDOWN_LIMIT = 4096
TEXT_LIMIT = 2048
PER_MINUTE = 20
WINDOW = 60.0
RETRY_ERRCODES = frozenset({-1, 45009})
LIMITED_WAIT = 15.0  # seconds at least after a 45009
HINTS = {
    93000: "invalid webhook URL or key: copy it again from the group's robot settings",
    45009: "rate limit (20 messages a minute per robot)",
    40058: "invalid content (too long or malformed markdown)",
}
_FOOTER_RESERVE = 16  # bytes kept free for "\n(12/34)"


def split_markdown(text: str, limit: int = MARKDOWN_LIMIT) -> list[str]:
    """``text`` in parts of at most ``limit`` UTF-8 bytes, cut on line boundaries, numbered."""
    if len(text.encode("utf-8")) <= limit:
        return [text]
    budget = limit - _FOOTER_RESERVE
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.splitlines():
        for piece in _cut(line, budget):
            cost = len(piece.encode("utf-8")) + (1 if current else 0)
            if current and size + cost > budget:
                parts.append("\n".join(current))
                current, size = [], 0
                cost = len(piece.encode("utf-8"))
            current.append(piece)
            size += cost
    if current:
        parts.append("\n".join(current))
    n = len(parts)
    return [f"{p}\n({i}/{n})" for i, p in enumerate(parts, start=1)]


def _cut(line: str, budget: int) -> list[str]:
    """A line longer than ``budget`` bytes cut between characters (never inside one)."""
    if len(line.encode("utf-8")) <= budget:
        return [line]
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > budget:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    pieces.append("".join(current))
    return pieces


class SlidingWindow:
    """At most ``limit`` events in any ``window`` seconds; ``acquire`` sleeps until allowed."""

    def __init__(
        self,
        limit: int = PER_MINUTE,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit, self.window = limit, window
        self.clock, self.sleep = clock, sleep
        self.events: collections.deque[float] = collections.deque()

    def wait_time(self) -> float:
        now = self.clock()
        while self.events and now - self.events[0] >= self.window:
            self.events.popleft()
        if len(self.events) < self.limit:
            return 0.0
        return self.window - (now - self.events[0])

    def acquire(self) -> None:
        while (delay := self.wait_time()) > 0:
            self.sleep(delay)
        self.events.append(self.clock())


def robot_name(url: str) -> str:
    """The webhook without its key, for messages."""
    parts = urllib.parse.urlsplit(url)
    return f"robot at {parts.netloc}{parts.path}"


class RobotWebhookChannel:
    name = "webhook"

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        limit_bytes: int = MARKDOWN_LIMIT,
        per_minute: int = PER_MINUTE,
    ) -> None:
        self.timeout, self.retry = timeout, retry
        self.clock, self.sleep = clock, sleep
        self.limit_bytes, self.per_minute = limit_bytes, per_minute
        self._windows: dict[str, SlidingWindow] = {}  # one rate limit per robot
        self._http = HttpClient(timeout=timeout)  # the environment's proxy, like a browser

    def _window(self, url: str) -> SlidingWindow:
        if url not in self._windows:
            self._windows[url] = SlidingWindow(self.per_minute, WINDOW, self.clock, self.sleep)
        return self._windows[url]

    def send(self, recipient: Recipient, digest: RenderedDigest) -> int:
        parts = split_markdown(digest.markdown, self.limit_bytes)
        for part in parts:
            body = {"msgtype": "markdown", "markdown": {"content": part}}
            deliver_with_retries(
                functools.partial(self._post, recipient.address, body),
                self.retry,
                self.sleep,
                robot_name(recipient.address),
            )
        return len(parts)

    def _post(self, url: str, body: dict[str, Any]) -> None:
        window = self._window(url)
        window.acquire()
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        try:
            raw = self._http.request("POST", url, content=data, headers=headers)
        except NetError as exc:  # its message never holds the URL (and so the key)
            if exc.transient:
                raise TransientError(str(exc), exc.retry_after) from None
            raise DeliveryError(str(exc)) from None
        try:
            payload = json.loads(raw.decode("utf-8"))
            code = int(payload.get("errcode", -1))
        except (ValueError, AttributeError, TypeError):
            raise TransientError("answer is not WeCom JSON") from None
        if code == 0:
            return
        message = f"errcode {code} ({payload.get('errmsg', '')})"
        if code in HINTS:
            message += f": {HINTS[code]}"
        if code == 45009:
            # the robot counts its own minute (other senders too): wait a good part of it
            raise TransientError(message, retry_after=max(LIMITED_WAIT, window.wait_time()))
        if code in RETRY_ERRCODES:
            raise TransientError(message)
        raise DeliveryError(message)
