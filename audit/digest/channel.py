"""One interface for every way a digest leaves: ``send(recipient, digest)``.

A channel raises :class:`DeliveryError` when a digest could not be delivered; the runner
records that and goes on with the other recipients and channels. Transient trouble (a busy
server, a rate limit, a dropped connection) raises :class:`TransientError` inside a channel
and is retried by :func:`deliver_with_retries` (the retries of :mod:`audit.net`) with
exponential backoff before it becomes a ``DeliveryError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from audit.digest.recipients import Recipient
from audit.digest.render import RenderedDigest
from audit.net import GaveUp, RetryPolicy, call_with_retries

T = TypeVar("T")


class DeliveryError(Exception):
    """A digest was not delivered; the message is what the operator needs to know."""

    transient = False


class TransientError(DeliveryError):
    """Worth another try, after ``retry_after`` seconds if the server said so."""

    transient = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Channel(Protocol):
    name: str  # email | webhook | wecom_app | file

    def send(self, recipient: Recipient, digest: RenderedDigest) -> int:
        """Deliver; returns how many messages it took (a long markdown digest is split)."""
        ...


DEFAULT_RETRY = RetryPolicy()  # 4 tries, waiting 2, 4 and 8 seconds


def deliver_with_retries(
    action: Callable[[], T],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    what: str = "delivery",
) -> T:
    """``action`` retried on :class:`TransientError`; a :class:`DeliveryError` when it gives up."""
    try:
        return call_with_retries(action, policy, sleep=sleep, what=what)
    except GaveUp as exc:
        raise DeliveryError(str(exc)) from exc.last
