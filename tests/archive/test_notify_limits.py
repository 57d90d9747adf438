"""The msgaudit_notify endpoint under hostile clients, on a real loopback server.

No assertion depends on timing: the bounds are counted (threads, refused connections) and
the one timeout that must fire is made small by the limits, with generous client timeouts
only so that a broken server fails the test instead of hanging it.
"""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from test_watch import CRYPTO, NOTIFY_XML, SENT_AT

from audit.archive.notify import CallbackError, NotifyLimits, NotifyServer, event_of

CLIENT_TIMEOUT = 30.0  # only so that a broken server fails the test rather than hanging it


def _clock() -> float:
    return float(SENT_AT)


@contextmanager
def _server(limits: NotifyLimits, woken: list[int] | None = None) -> Iterator[NotifyServer]:
    calls = woken if woken is not None else []
    with NotifyServer(CRYPTO, lambda: calls.append(1), limits=limits, clock=_clock) as server:
        yield server


def _connect(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT)
    conn.settimeout(CLIENT_TIMEOUT)
    return conn


def _response(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def _signed_request(timestamp: int = SENT_AT, xml: str = NOTIFY_XML) -> bytes:
    encrypt = CRYPTO.encrypt(xml)
    query = urlencode(
        {
            "msg_signature": CRYPTO.signature(str(timestamp), "n0nce", encrypt),
            "timestamp": str(timestamp),
            "nonce": "n0nce",
        }
    )
    body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
    head = f"POST /callback?{query} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _send(port: int, raw: bytes) -> int:
    with _connect(port) as conn:
        conn.sendall(raw)
        return _status(_response(conn))


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ("Content-Length: -1\r\n", 400),
        ("Content-Length: -300000000\r\n", 400),
        ("Content-Length: 12abc\r\n", 400),
        ("Content-Length: 10\r\nContent-Length: 20\r\n", 400),
        ("", 411),
        ("Transfer-Encoding: chunked\r\n", 411),
        ("Content-Length: 300000000\r\n", 413),
        ("Content-Length: 99999999999999999999999\r\n", 413),
    ],
)
def test_a_body_without_a_sane_length_is_refused_before_it_is_read(
    headers: str, status: int
) -> None:
    with _server(NotifyLimits(max_body=4096)) as server, _connect(server.port) as conn:
        # the client keeps its side open and keeps bytes coming: the server must answer
        # from the headers alone, not read until EOF
        conn.sendall(f"POST /callback HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        conn.sendall(b"<xml>" + b"A" * 65536)
        assert _status(conn.recv(65536)) == status


def test_idle_connections_never_grow_the_threads_past_the_pool() -> None:
    limits = NotifyLimits(workers=2, backlog=2, timeout=CLIENT_TIMEOUT)
    before = set(threading.enumerate())
    with _server(limits) as server:
        idle = [_connect(server.port) for _ in range(40)]  # connect and say nothing
        try:
            # the first workers + backlog are held; every other one is refused at once
            for conn in idle[4:]:
                assert _status(_response(conn)) == 503
            new = [t for t in threading.enumerate() if t not in before]
            assert sorted(t.name.rsplit("_", 1)[0] for t in new) == [
                "notify",
                "notify-worker",
                "notify-worker",
            ]
        finally:
            for conn in idle:
                conn.close()


def test_an_idle_connection_is_closed_by_the_socket_timeout_and_frees_its_worker() -> None:
    woken: list[int] = []
    limits = NotifyLimits(workers=1, backlog=1, timeout=0.2)
    with _server(limits, woken) as server, _connect(server.port) as idle:
        # the only worker holds the idle connection; a real callback queues behind it
        # and is answered once the server has given up on the idle one
        assert _send(server.port, _signed_request()) == 200
        assert _response(idle) == b""  # closed by the server, without a response
    assert woken == [1]


def test_a_replayed_or_stale_callback_is_refused() -> None:
    woken: list[int] = []
    with _server(NotifyLimits(max_age=300), woken) as server:
        request = _signed_request()
        assert _send(server.port, request) == 200
        assert _send(server.port, request) == 403  # the same bytes again: a replay
        assert _send(server.port, _signed_request(SENT_AT - 301)) == 403
        assert _send(server.port, _signed_request(SENT_AT + 301)) == 403
        assert _send(server.port, _signed_request(SENT_AT - 299)) == 200  # within the window
    assert woken == [1, 1]


LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "' + "ha" * 50 + '">'
    + "".join(f'<!ENTITY {n} "' + f"&{p};" * 10 + '">' for p, n in itertools.pairwise("abcdefgh"))
    + "]><xml><Encrypt>&h;</Encrypt></xml>"
)  # fmt: skip


def test_a_body_with_a_dtd_or_entities_is_refused_unexpanded() -> None:
    """The body arrives before anything is verified: defusedxml refuses a DTD outright (a
    billion-laughs body would expand to gigabytes), and the watcher is not woken."""
    woken: list[int] = []
    with _server(NotifyLimits(max_body=65536), woken) as server:
        body = LAUGHS.encode()
        head = f"POST /callback?msg_signature=x&timestamp={SENT_AT}&nonce=n HTTP/1.1\r\n"
        raw = (head + f"Host: x\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        assert _send(server.port, raw) == 403
        assert _send(server.port, _signed_request()) == 200  # and it goes on serving
    assert woken == [1]
    with pytest.raises(CallbackError, match="DTDForbidden"):
        event_of(LAUGHS)
