"""audit.net against a real local HTTP server: classification, backoff, Retry-After, proxies.

Waits are recorded through the injected ``sleep``; nothing here waits for a backoff.
"""

from __future__ import annotations

import email.utils
import http.server
import logging
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

import pytest

from audit.net import (
    GaveUp,
    HttpClient,
    HttpStatusError,
    NetError,
    RetryPolicy,
    call_with_retries,
    parse_retry_after,
)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b'{"errcode": 0}'


@dataclass
class Script:
    """Answers in order (the last one repeats) and every request line seen."""

    answers: Sequence[Answer]
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)

    def next(self) -> Answer:
        return self.answers[min(len(self.seen) - 1, len(self.answers) - 1)]


class _Handler(http.server.BaseHTTPRequestHandler):
    script: Script

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.script.seen.append((self.command, self.path, self.rfile.read(length)))
        answer = self.script.next()
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def serve() -> Iterator[partial[str]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(script: Script) -> str:
        handler = type("Handler", (_Handler,), {"script": script})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield partial(start)
    for server in servers:
        server.shutdown()
        server.server_close()


def _get(client: HttpClient, url: str) -> bytes:
    return client.request("GET", url)


def test_503_is_retried_with_backoff_then_succeeds(serve: partial[str]) -> None:
    script = Script([Answer(503), Answer(503), Answer(200, body=b"done")])
    base = serve(script)
    slept: list[float] = []
    with HttpClient(timeout=5, proxy="") as client:
        body = call_with_retries(
            lambda: client.request("POST", f"{base}/send", content=b"hello"),
            RetryPolicy(attempts=4, backoff=0.5, backoff_max=30),
            sleep=slept.append,
            what="robot",
        )
    assert body == b"done"
    assert slept == [0.5, 1.0]
    assert script.seen == [("POST", "/send", b"hello")] * 3


def test_retry_after_in_seconds_is_honoured_within_the_cap(serve: partial[str]) -> None:
    script = Script(
        [
            Answer(429, (("Retry-After", "7"),)),
            Answer(503, (("Retry-After", "120"),)),  # above backoff_max: capped
            Answer(503, (("Retry-After", "soon"),)),  # unreadable: plain backoff
            Answer(200),
        ]
    )
    base = serve(script)
    slept: list[float] = []
    with HttpClient(timeout=5, proxy="") as client:
        call_with_retries(
            lambda: _get(client, f"{base}/x"),
            RetryPolicy(attempts=4, backoff=0.5, backoff_max=60),
            sleep=slept.append,
        )
    assert slept == [7.0, 60.0, 2.0]
    assert len(script.seen) == 4


def test_retry_after_as_an_http_date_counts_from_the_injected_clock(
    serve: partial[str],
) -> None:
    now = 1_800_000_000.0
    when = email.utils.formatdate(now + 42, usegmt=True)
    base = serve(Script([Answer(503, (("Retry-After", when),)), Answer(200)]))
    slept: list[float] = []
    with HttpClient(timeout=5, proxy="", now=lambda: now) as client:
        call_with_retries(lambda: _get(client, base), RetryPolicy(backoff=1), sleep=slept.append)
    assert slept == [42.0]
    assert parse_retry_after(when, lambda: now + 100) == 0.0  # already past: no wait
    assert parse_retry_after("-3") is None and parse_retry_after(None) is None


def test_400_is_not_retried(serve: partial[str]) -> None:
    script = Script([Answer(400, (("Retry-After", "5"),)), Answer(200)])
    base = serve(script)
    slept: list[float] = []
    with HttpClient(timeout=5, proxy="") as client, pytest.raises(HttpStatusError) as err:
        call_with_retries(lambda: _get(client, f"{base}/x"), RetryPolicy(), sleep=slept.append)
    assert (err.value.status, err.value.transient, err.value.retry_after) == (400, False, None)
    assert str(err.value) == "HTTP 400 Bad Request"
    assert slept == [] and len(script.seen) == 1


def test_gives_up_after_the_attempts_with_a_clear_message(serve: partial[str]) -> None:
    script = Script([Answer(502)])
    base = serve(script)
    slept: list[float] = []
    with HttpClient(timeout=5, proxy="") as client, pytest.raises(GaveUp) as err:
        call_with_retries(
            lambda: _get(client, f"{base}/x?key=robot-secret"),
            RetryPolicy(attempts=3, backoff=2),
            sleep=slept.append,
            what="robot at 127.0.0.1",
        )
    assert str(err.value) == "robot at 127.0.0.1: HTTP 502 Bad Gateway (gave up after 3 tries)"
    assert isinstance(err.value.last, HttpStatusError) and err.value.attempts == 3
    assert slept == [2.0, 4.0] and len(script.seen) == 3
    assert "robot-secret" not in str(err.value)


def test_reraise_gives_the_last_error_itself(serve: partial[str]) -> None:
    base = serve(Script([Answer(500)]))
    with HttpClient(timeout=5, proxy="") as client, pytest.raises(HttpStatusError) as err:
        call_with_retries(
            lambda: _get(client, base), RetryPolicy(attempts=2), sleep=lambda _s: None, reraise=True
        )
    assert err.value.status == 500 and err.value.transient


def test_a_timeout_is_transient() -> None:
    # a listening socket that never accepts: the connection is made by the kernel, no answer
    # ever comes, so the read times out whatever the machine's load
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/x"
        slept: list[float] = []
        with HttpClient(timeout=0.2, proxy="") as client, pytest.raises(GaveUp) as err:
            call_with_retries(
                lambda: _get(client, url), RetryPolicy(attempts=2, backoff=1), sleep=slept.append
            )
    last = err.value.last
    assert isinstance(last, NetError) and last.transient
    assert str(last).startswith("network: ReadTimeout")
    assert slept == [1.0]


def test_a_refused_connection_is_transient() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with HttpClient(timeout=5, proxy="") as client, pytest.raises(NetError) as err:
        _get(client, f"http://127.0.0.1:{port}/x")
    assert err.value.transient and str(err.value).startswith("network: ConnectError")


def test_only_what_retry_if_accepts_is_retried() -> None:
    calls: list[int] = []

    def action() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("not a transient error")
        return "ok"

    with pytest.raises(KeyError):
        call_with_retries(action, RetryPolicy(), sleep=lambda _s: None)
    assert len(calls) == 1
    slept: list[float] = []
    result = call_with_retries(
        action, RetryPolicy(backoff=3), sleep=slept.append, retry_if=lambda e: True
    )
    assert result == "ok" and slept == [] and len(calls) == 2
    calls.clear()
    assert call_with_retries(
        action,
        RetryPolicy(backoff=3),
        sleep=slept.append,
        retry_if=lambda e: isinstance(e, KeyError),
    ) == ("ok")
    assert slept == [3.0] and len(calls) == 2


def test_a_policy_without_attempts_is_refused() -> None:
    with pytest.raises(ValueError, match="attempts is 0, it must be at least 1"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="must not be negative"):
        RetryPolicy(backoff=-1)


def test_proxy_url_empty_and_environment(
    serve: partial[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy_script = Script([Answer(200, body=b"via proxy")])
    proxy = serve(proxy_script)
    direct_script = Script([Answer(200, body=b"direct")])
    direct = serve(direct_script)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("http_proxy", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with HttpClient(timeout=5, proxy="") as client:  # "": no proxy, whatever the environment
        assert _get(client, f"{direct}/a") == b"direct"
    with HttpClient(timeout=5) as client:  # None: the environment's
        assert _get(client, f"{direct}/b") == b"via proxy"
    monkeypatch.delenv("HTTP_PROXY")
    monkeypatch.delenv("http_proxy")
    with HttpClient(timeout=5, proxy=proxy) as client:  # that URL
        assert _get(client, "http://wecom.invalid/c") == b"via proxy"
    assert [path for _, path, _ in direct_script.seen] == ["/a"]
    assert [path for _, path, _ in proxy_script.seen] == [f"{direct}/b", "http://wecom.invalid/c"]


def test_the_http_library_log_never_shows_a_secret(
    serve: partial[str], caplog: pytest.LogCaptureFixture
) -> None:
    base = serve(Script([Answer(200)]))
    with caplog.at_level(logging.DEBUG), HttpClient(timeout=5, proxy="") as client:
        _get(client, f"{base}/gettoken?corpid=ww1&corpsecret=s3cr3t&access_token=t0k3n&key=k3y")
    assert "corpsecret=***" in caplog.text and "access_token=***" in caplog.text
    assert "key=***" in caplog.text
    assert not any(secret in caplog.text for secret in ("s3cr3t", "t0k3n", "k3y"))
