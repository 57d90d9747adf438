"""Real servers in-process: SMTP (aiosmtpd, optional STARTTLS and AUTH) and a stand-in for
the WeCom group robot webhook that speaks its JSON and can be scripted to fail."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER, PASSWORD = "digest", "s3cret-pass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 OK"

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        if ok:
            self.logins.append(USER)
        return AuthResult(success=ok, handled=False)  # failed: the server answers 535


def self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def smtp_server(tls_dir: Path | None = None) -> Iterator[tuple[Inbox, int, ssl.SSLContext | None]]:
    """An SMTP server on a free port; with ``tls_dir``: STARTTLS required, then AUTH.

    Yields the inbox, the port and, with TLS, the client context that trusts the server.
    """
    inbox = Inbox()
    kwargs: dict[str, Any] = {}
    client_context = None
    if tls_dir is not None:
        cert, key = self_signed(tls_dir)
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(cert, key)
        client_context = ssl.create_default_context(cafile=str(cert))
        kwargs = {
            "tls_context": server_context,
            "require_starttls": True,
            "authenticator": inbox,
            "auth_require_tls": True,
        }
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield inbox, port, client_context
    finally:
        controller.stop()


class FakeTime:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Robot:
    """The group robot. ``script`` queues answers: a dict (JSON) or an int (HTTP status)."""

    url: str = ""
    script: list[Any] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)  # accepted messages
    attempts: int = 0
    times: list[float] = field(default_factory=list)  # FakeTime.now of accepted messages
    time: FakeTime | None = None

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.attempts += 1
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, int):
                return step, {}
            return 200, step
        content = body.get("markdown", {}).get("content", "")
        if body.get("msgtype") != "markdown" or not content:
            return 200, {"errcode": 40008, "errmsg": "invalid message type"}
        if len(content.encode("utf-8")) > 4096:
            return 200, {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}
        self.received.append(body)
        if self.time is not None:
            self.times.append(self.time.now)
        return 200, {"errcode": 0, "errmsg": "ok"}


@contextmanager
def robot_server() -> Iterator[Robot]:
    robot = Robot()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if "key=" not in self.path:
                status, payload = 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
            else:
                length = int(self.headers.get("Content-Length", 0))
                status, payload = robot.answer(json.loads(self.rfile.read(length)))
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "3")
            data = json.dumps(payload).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    robot.url = (
        f"http://127.0.0.1:{server.server_address[1]}/cgi-bin/webhook/send?key=robot-key-123"
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield robot
    finally:
        server.shutdown()
        server.server_close()
