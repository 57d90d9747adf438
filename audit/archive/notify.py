"""The ``msgaudit_notify`` callback: WeCom tells us new archive messages are ready.

WeCom posts encrypted event XML to a URL the company registers (the "接收事件服务器"). The
envelope follows WeCom's callback encryption: the signature is
``sha1(sorted([token, timestamp, nonce, encrypt]))``; the payload is AES-256-CBC with the key
``base64(EncodingAESKey + "=")``, IV = the key's first 16 bytes, PKCS#7 padding to 32-byte
blocks, and plaintext ``random(16) || len(msg) (4 bytes, big-endian) || msg || receiveid``.

:class:`NotifyServer` verifies and decrypts each callback and, for ``msgaudit_notify``, wakes
the watcher so that it pulls at once instead of waiting for its next interval.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import struct
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

log = logging.getLogger(__name__)
_BLOCK = 32  # WeCom pads to 32-byte blocks, not AES's 16


class CallbackError(Exception):
    """A callback that is not from WeCom (bad signature) or cannot be read."""


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


def event_of(xml_text: str) -> str:
    """The ``Event`` (or ``MsgType``) of a decrypted callback message."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise CallbackError(f"decrypted callback is not XML: {exc}") from None
    return (root.findtext("Event") or root.findtext("MsgType") or "").strip()


def _encrypt_field(body: bytes) -> str:
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise CallbackError(f"callback body is not XML: {exc}") from None
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
    ) -> None:
        self.crypto = crypto
        self.on_notify = on_notify
        self.events: list[str] = []
        handler = self._handler()
        self.httpd = ThreadingHTTPServer((host, port), handler)
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

            def do_POST(self) -> None:
                p = self._params()
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    encrypt = _encrypt_field(self.rfile.read(min(length, 1 << 20)))
                    server.crypto.verify(
                        p.get("msg_signature", ""),
                        p.get("timestamp", ""),
                        p.get("nonce", ""),
                        encrypt,
                    )
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
