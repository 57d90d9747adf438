"""The optional WeCom application channel against a local server speaking gettoken and
message/send."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from audit.archive.wecom_api import WeComClient
from audit.digest.channel import DeliveryError
from audit.digest.recipients import Recipient
from audit.digest.render import RenderedDigest
from audit.digest.wecom_app import WeComAppChannel


@contextmanager
def wecom(answers: list[dict[str, Any]], sent: list[dict[str, Any]]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._reply({"errcode": 0, "access_token": "tok", "expires_in": 7200})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert "access_token=tok" in self.path and self.path.startswith("/cgi-bin/message/send")
            sent.append(body)
            self._reply(answers.pop(0) if answers else {"errcode": 0, "invaliduser": ""})

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cgi-bin"
    finally:
        server.shutdown()
        server.server_close()


def _client(base: str) -> WeComClient:
    return WeComClient(base, "ww1", "secret", sleep=lambda s: None, max_retries=1, proxy="")


def test_when_long_then_split_at_2048_bytes_to_the_member() -> None:
    sent: list[dict[str, Any]] = []
    with wecom([], sent) as base:
        channel = WeComAppChannel(_client(base), agentid=1000002)
        digest = RenderedDigest("s", "t", "h", "\n".join("告警" * 100 for _ in range(10)), 3)
        parts = channel.send(Recipient("wecom_app", "zhangwei", "zhangwei"), digest)
    assert parts == len(sent) > 1
    assert all(b["touser"] == "zhangwei" and b["agentid"] == 1000002 for b in sent)
    assert all(len(b["markdown"]["content"].encode()) <= 2048 for b in sent)


def test_when_user_refused_then_delivery_error() -> None:
    with wecom([{"errcode": 0, "invaliduser": "ghost"}], []) as base:
        channel = WeComAppChannel(_client(base), agentid=1)
        with pytest.raises(DeliveryError, match="ghost"):
            channel.send(
                Recipient("wecom_app", "ghost", "ghost"), RenderedDigest("s", "t", "h", "# x", 0)
            )
