"""E-mail through SMTP: plain, STARTTLS or implicit TLS, with optional login.

One connection per digest: a daily run sends dozens, and a fresh connection keeps one bad
message from poisoning the next. 4xx answers and dropped connections are retried; 5xx answers
and refused logins are not.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal

from pydantic import SecretStr

from audit.digest.channel import (
    DEFAULT_RETRY,
    DeliveryError,
    TransientError,
    deliver_with_retries,
)
from audit.digest.recipients import Recipient
from audit.digest.render import RenderedDigest
from audit.net import RetryPolicy

Security = Literal["none", "starttls", "tls"]


class SmtpChannel:
    name = "email"

    def __init__(
        self,
        host: str,
        port: int = 25,
        sender: str = "audit@localhost",
        *,
        user: str = "",
        password: SecretStr | str = "",
        security: Security = "none",
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.user = user
        self._password = password if isinstance(password, SecretStr) else SecretStr(password)
        self.security = security
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.timeout = timeout
        self.retry, self.sleep = retry, sleep

    def __repr__(self) -> str:
        return f"SmtpChannel({self.host}:{self.port}, security={self.security}, user={self.user!r})"

    def message(self, recipient: Recipient, digest: RenderedDigest) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = digest.subject
        msg["From"] = self.sender
        msg["To"] = recipient.address
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        msg.set_content(digest.text)
        msg.add_alternative(digest.html, subtype="html")
        return msg

    def send(self, recipient: Recipient, digest: RenderedDigest) -> int:
        msg = self.message(recipient, digest)
        deliver_with_retries(
            lambda: self._send_once(msg), self.retry, self.sleep, f"smtp {self.host}"
        )
        return 1

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self.ssl_context
            )
        client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.security == "starttls":
            client.ehlo()
            client.starttls(context=self.ssl_context)
            client.ehlo()
        return client

    def _send_once(self, msg: EmailMessage) -> None:
        try:
            with self._connect() as client:
                if self.user:
                    client.login(self.user, self._password.get_secret_value())
                refused = client.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"login refused for {self.user!r}: {exc.smtp_code}") from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(400 <= c < 500 for c in codes):
                raise TransientError(f"recipient deferred: {codes}") from None
            raise DeliveryError(f"recipient refused: {codes}") from None
        except smtplib.SMTPResponseException as exc:
            text = f"SMTP {exc.smtp_code} {exc.smtp_error!r}"
            if 400 <= exc.smtp_code < 500:
                raise TransientError(text) from None
            raise DeliveryError(text) from None
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as exc:
            raise TransientError(f"connection: {type(exc).__name__}: {exc}") from None
        except smtplib.SMTPException as exc:
            raise DeliveryError(f"SMTP: {type(exc).__name__}: {exc}") from None
        if refused:
            raise DeliveryError(f"recipient refused: {sorted(refused)}")
