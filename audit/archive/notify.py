"""The ``msgaudit_notify`` callback: WeCom tells us new archive messages are ready.

WeCom posts encrypted event XML to a URL the company registers (the "接收事件服务器"). The
envelope follows WeCom's callback encryption: the signature is
``sha1(sorted([token, timestamp, nonce, encrypt]))``; the payload is AES-256-CBC with the key
``base64(EncodingAESKey + "=")``, IV = the key's first 16 bytes, PKCS#7 padding to 32-byte
blocks, and plaintext ``random(16) || len(msg) (4 bytes, big-endian) || msg || receiveid``.

:class:`NotifyServer` verifies and decrypts each callback and, for ``msgaudit_notify``, wakes
the watcher so that it pulls at once instead of waiting for its next interval.

The endpoint faces the internet, so its work is bounded (:class:`NotifyLimits`): a body needs a
``Content-Length`` no larger than ``max_body`` (missing: 411, malformed or negative: 400,
too large: 413, never read); every socket has a timeout; a fixed pool of ``workers`` threads
handles requests, ``backlog`` more connections may wait for one, and any beyond that get 503
at once. A callback whose ``timestamp`` is more than ``max_age`` seconds off, or whose
signature was already seen (a replay), is refused.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import socket
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse
from xml.etree.ElementTree import ParseError

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

log = logging.getLogger(__name__)
_BLOCK = 32  # WeCom pads to 32-byte blocks, not AES's 16


class CallbackError(Exception):
    """A callback that is not from WeCom (bad signature) or cannot be read."""


@dataclass(frozen=True)
class NotifyLimits:
    """How much an untrusted client can make the endpoint hold (see the module doc)."""

    max_body: int = 64 * 1024  # a real callback is well under 2 KB
    timeout: float = 10.0  # seconds a socket may wait for the client's next bytes
    workers: int = 8  # requests handled at once (threads)
    backlog: int = 16  # accepted connections waiting for a worker; beyond: 503
    max_age: int = 300  # seconds a callback's timestamp may differ from our clock
    remembered: int = 10_000  # signatures kept for replay detection (within max_age)


class ReplayGuard:
    """Refuses a callback whose timestamp is out of the window or whose signature was seen.

    Only verified callbacks are remembered, so a forger cannot fill the memory; entries expire
    with the window (a replay after that fails the timestamp check) and the oldest go first
    when ``remembered`` is reached.
    """

    def __init__(self, max_age: int, remembered: int, clock: Callable[[], float]) -> None:
        self.max_age = max_age
        self.remembered = remembered
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, timestamp: str, signature: str) -> None:
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
            raise CallbackError("timestamp is not a number of seconds")
        now = self.clock()
        if abs(now - int(timestamp)) > self.max_age:
            raise CallbackError(f"timestamp {timestamp} is more than {self.max_age}s off")
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now:
                self._seen.popitem(last=False)
            if signature in self._seen:
                raise CallbackError("replayed callback (signature already seen)")
            self._seen[signature] = int(timestamp) + self.max_age
            while len(self._seen) > self.remembered:
                self._seen.popitem(last=False)


_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class _BoundedHTTPServer(HTTPServer):
    """An HTTP server with a fixed thread pool and a bounded queue of waiting connections."""

    request_queue_size = 64  # the listen backlog: connections the kernel holds before accept

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        limits: NotifyLimits,
    ) -> None:
        super().__init__(address, handler)
        self.limits = limits
        self._pool = ThreadPoolExecutor(limits.workers, thread_name_prefix="notify-worker")
        self._admitted = threading.BoundedSemaphore(limits.workers + limits.backlog)
        self._active: set[Any] = set()  # sockets being handled, cut off on close
        self._active_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._admitted.acquire(blocking=False):
            try:  # a tiny write to a fresh socket does not block
                request.settimeout(self.limits.timeout)
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        self._pool.submit(self._work, request, client_address)

    def _work(self, request: Any, client_address: Any) -> None:
        with self._active_lock:
            self._active.add(request)
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            with self._active_lock:
                self._active.discard(request)
            self.shutdown_request(request)
            self._admitted.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("callback connection from %s failed", client_address, exc_info=True)

    def server_close(self) -> None:
        super().server_close()
        with self._active_lock:
            for request in self._active:  # a worker blocked on an idle client returns now
                with contextlib.suppress(OSError):
                    request.shutdown(socket.SHUT_RDWR)
        self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class CallbackCrypto:
    token: str
    encoding_aes_key: str
    receiveid: str  # the corpid

    @property
    def key(self) -> bytes:
        try:
            key = base64.b64decode(self.encoding_aes_key + "=")
        except (binascii.Error, ValueError):
            raise CallbackError("EncodingAESKey is not valid base64") from None
        if len(key) != 32:
            raise CallbackError("EncodingAESKey must be 43 characters (32 bytes)")
        return key

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return hashlib.sha1(
            "".join(sorted([self.token, timestamp, nonce, encrypt])).encode()
        ).hexdigest()

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = self.signature(timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected, msg_signature):
            raise CallbackError("signature mismatch: not a callback from WeCom, or wrong token")

    def decrypt(self, encrypt: str) -> str:
        key = self.key
        try:
            data = base64.b64decode(encrypt)
        except (binascii.Error, ValueError):
            raise CallbackError("Encrypt is not base64") from None
        if not data or len(data) % 16:
            raise CallbackError("Encrypt has a bad length")
        dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
        plain = dec.update(data) + dec.finalize()
        pad = plain[-1]
        if not 1 <= pad <= _BLOCK:
            raise CallbackError("bad padding")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise CallbackError("payload too short")
        (length,) = struct.unpack(">I", plain[16:20])
        msg, receiveid = plain[20 : 20 + length], plain[20 + length :]
        if receiveid.decode("utf-8", "replace") != self.receiveid:
            raise CallbackError("callback is for another corp (receiveid mismatch)")
        return msg.decode("utf-8")

    def encrypt(self, msg: str, random16: bytes | None = None) -> str:
        """What WeCom does; used by tests and by anyone simulating callbacks."""
        key = self.key
        body = (random16 or os.urandom(16)) + struct.pack(">I", len(msg.encode())) + msg.encode()
        body += self.receiveid.encode()
        pad = _BLOCK - len(body) % _BLOCK
        body += bytes([pad]) * pad
        enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        return base64.b64encode(enc.update(body) + enc.finalize()).decode()


def _xml(text: str | bytes, what: str) -> Any:
    """Parsed with defusedxml: no DTD, entity or external reference is ever expanded (the
    outer body arrives before anything is verified)."""
    try:
        return fromstring(text, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as exc:
        raise CallbackError(f"{what} is not plain XML: {type(exc).__name__}: {exc}") from None


def event_of(xml_text: str) -> str:
    """The ``Event`` (or ``MsgType``) of a decrypted callback message (its signature checked)."""
    root = _xml(xml_text, "decrypted callback")
    return (root.findtext("Event") or root.findtext("MsgType") or "").strip()


def _encrypt_field(body: bytes) -> str:
    root = _xml(body, "callback body")
    encrypt = root.findtext("Encrypt")
    if not encrypt:
        raise CallbackError("callback body has no Encrypt element")
    return encrypt


class NotifyServer:
    """A small HTTP endpoint for WeCom callbacks; ``on_notify`` runs for msgaudit_notify."""

    def __init__(
        self,
        crypto: CallbackCrypto,
        on_notify: Callable[[], None],
        host: str = "127.0.0.1",
        port: int = 0,
        limits: NotifyLimits = NotifyLimits(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.crypto = crypto
        self.on_notify = on_notify
        self.limits = limits
        self.replays = ReplayGuard(limits.max_age, limits.remembered, clock)
        self.events: list[str] = []
        handler = self._handler()
        self.httpd = _BoundedHTTPServer((host, port), handler, limits)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def check(self, params: dict[str, str], encrypt: str) -> None:
        self.crypto.verify(
            params.get("msg_signature", ""),
            params.get("timestamp", ""),
            params.get("nonce", ""),
            encrypt,
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = server.limits.timeout  # applied to the socket before the request line
            server_version = "audit-notify"  # not the Python version, to a stranger
            sys_version = ""

            def log_message(self, format: str, *args: Any) -> None:  # quiet; we log ourselves
                return

            def _params(self) -> dict[str, str]:
                return {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}

            def _reply(self, code: int, body: str) -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # URL verification when the callback is registered
                p = self._params()
                try:
                    echostr = p.get("echostr", "")
                    server.crypto.verify(
                        p.get("msg_signature", ""),
                        p.get("timestamp", ""),
                        p.get("nonce", ""),
                        echostr,
                    )
                    self._reply(200, server.crypto.decrypt(echostr))
                except CallbackError as exc:
                    log.warning("callback verification refused: %s", exc)
                    self._reply(403, "forbidden")

            def _body(self) -> bytes | None:
                """The body, or ``None`` after replying with why it is refused (unread)."""
                self.close_connection = True
                if self.headers.get("Transfer-Encoding"):
                    self._reply(411, "length required (no chunked bodies)")
                    return None
                lengths = self.headers.get_all("Content-Length") or []
                if not lengths:
                    self._reply(411, "length required")
                    return None
                raw = lengths[0].strip()
                if len(set(lengths)) > 1 or not (raw.isascii() and raw.isdigit()):
                    self._reply(400, "bad Content-Length")
                    return None
                if len(raw) > 12 or int(raw) > server.limits.max_body:
                    self._reply(413, "body too large")
                    return None
                body = self.rfile.read(int(raw))
                if len(body) < int(raw):
                    self._reply(400, "body shorter than Content-Length")
                    return None
                return body

            def do_POST(self) -> None:
                p = self._params()
                try:
                    body = self._body()
                except OSError as exc:  # a timeout in the middle of the body
                    log.warning("callback body not received: %s", exc)
                    return
                if body is None:
                    return
                try:
                    encrypt = _encrypt_field(body)
                    server.crypto.verify(
                        p.get("msg_signature", ""),
                        p.get("timestamp", ""),
                        p.get("nonce", ""),
                        encrypt,
                    )
                    server.replays.check(p.get("timestamp", ""), p.get("msg_signature", ""))
                    event = event_of(server.crypto.decrypt(encrypt))
                except CallbackError as exc:
                    log.warning("callback refused: %s", exc)
                    self._reply(403, "forbidden")
                    return
                server.events.append(event)
                if event == "msgaudit_notify":
                    server.on_notify()
                self._reply(200, "success")

        return Handler

    def start(self) -> NotifyServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="notify", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> NotifyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
