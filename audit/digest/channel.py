"""One interface for every way a digest leaves: ``send(recipient, digest)``.

A channel raises :class:`DeliveryError` when a digest could not be delivered; the runner
records that and goes on with the other recipients and channels. Transient trouble (a busy
server, a rate limit, a dropped connection) raises :class:`TransientError` inside a channel
and is retried by :func:`with_retries` with exponential backoff before it becomes a
``DeliveryError``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from audit.digest.recipients import Recipient
from audit.digest.render import RenderedDigest

log = logging.getLogger(__name__)
T = TypeVar("T")


class DeliveryError(Exception):
    """A digest was not delivered; the message is what the operator needs to know."""


class TransientError(DeliveryError):
    """Worth another try, after ``retry_after`` seconds if the server said so."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Channel(Protocol):
    name: str  # email | webhook | wecom_app | file

    def send(self, recipient: Recipient, digest: RenderedDigest) -> int:
        """Deliver; returns how many messages it took (a long markdown digest is split)."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    backoff: float = 2.0  # seconds, doubled each time
    backoff_max: float = 60.0


DEFAULT_RETRY = RetryPolicy()


def with_retries(
    action: Callable[[], T],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    what: str = "delivery",
) -> T:
    for attempt in range(policy.attempts):
        try:
            return action()
        except TransientError as exc:
            if attempt + 1 >= policy.attempts:
                raise DeliveryError(
                    f"{what}: {exc} (gave up after {policy.attempts} tries)"
                ) from exc
            delay = min(policy.backoff_max, policy.backoff * 2**attempt)
            if exc.retry_after is not None:
                delay = max(delay, min(policy.backoff_max, exc.retry_after))
            log.warning("%s: %s; retry %d in %.1fs", what, exc, attempt + 1, delay)
            sleep(delay)
    raise DeliveryError(f"{what}: no attempts allowed")  # attempts == 0
