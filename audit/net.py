"""The one network layer: an HTTP client and retries with exponential backoff.

- :class:`HttpClient` makes one HTTP exchange through httpx and turns every failure into a
  :class:`NetError` that says whether it is ``transient``: network errors and timeouts, HTTP
  429 and 5xx are (``retry_after`` from the server's ``Retry-After``, in seconds or as an HTTP
  date); other 4xx are not. Messages never hold the URL, whose query may carry a token or a
  key; the caller names what it was talking to.
- :func:`call_with_retries` runs an action under a :class:`RetryPolicy` with tenacity: it
  retries what ``retry_if`` calls transient, waits ``backoff * 2**n`` seconds capped at
  ``backoff_max`` (at least ``Retry-After`` when the error carries one, within the same cap),
  and sleeps through the injected ``sleep`` so tests record the waits instead of waiting.

The WeCom API client, the digest channels (robot webhook, WeCom application, SMTP) and the
archive SDK binding all retry through here. httpx is imported when a client is made: the SDK's
child processes, which only retry, load the native binary with as few libraries around it as
possible.
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import tenacity

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)
T = TypeVar("T")

_SECRET_QUERY = re.compile(r"((?:access_token|corpsecret|key)=)[^&\s'\"]*")


def redact(text: str) -> str:
    """Secret query values (``access_token``, ``corpsecret``, a robot's ``key``) as ``***``."""
    return _SECRET_QUERY.sub(r"\1***", text)


class _RedactUrls(logging.Filter):
    """httpx logs every request's full URL at INFO: the secrets in it are scrubbed first."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = redact(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


logging.getLogger("httpx").addFilter(_RedactUrls())


# --------------------------------------------------------------------------- retries


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; wait ``backoff * 2**(n-1)`` s after n failures, capped."""

    attempts: int = 4
    backoff: float = 2.0  # seconds
    backoff_max: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy: attempts is {self.attempts}, it must be at least 1")
        if self.backoff < 0 or self.backoff_max < 0:
            raise ValueError(
                f"RetryPolicy: backoff {self.backoff} and backoff_max {self.backoff_max} "
                "must not be negative"
            )

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """The wait after ``failures`` failed tries (1 for the first), honouring ``retry_after``."""
        wait = min(self.backoff_max, self.backoff * 2 ** (failures - 1))
        if retry_after is not None:
            wait = max(wait, min(self.backoff_max, retry_after))
        return float(wait)


class GaveUp(Exception):
    """Every try failed with a transient error; ``last`` is the final one."""

    def __init__(self, what: str, attempts: int, last: BaseException) -> None:
        self.what, self.attempts, self.last = what, attempts, last
        prefix = f"{what}: " if what else ""
        super().__init__(f"{prefix}{last} (gave up after {attempts} tries)")


def is_transient(exc: BaseException) -> bool:
    """The error's own ``transient`` flag (:class:`NetError`, the digest's and SDK's errors)."""
    return getattr(exc, "transient", False) is True


def retry_after_of(exc: BaseException) -> float | None:
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, int | float) else None


def call_with_retries(
    action: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    what: str = "",
    retry_if: Callable[[BaseException], bool] = is_transient,
    reraise: bool = False,
) -> T:
    """``action()``, tried again after errors ``retry_if`` accepts, per ``policy``.

    An error ``retry_if`` refuses propagates at once. When the tries run out, the last error
    is raised as it is with ``reraise``, else wrapped in :class:`GaveUp` (``what`` names the
    peer in its message).
    """

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return policy.delay(state.attempt_number, retry_after_of(exc) if exc else None)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        prefix = f"{what}: " if what else ""
        log.warning(
            "%s%s; retry %d/%d in %.1fs",
            prefix,
            exc,
            state.attempt_number,
            policy.attempts - 1,
            delay,
        )

    def give_up(state: tenacity.RetryCallState) -> T:
        exc = state.outcome.exception() if state.outcome else None
        assert exc is not None  # only called after a retried failure
        raise GaveUp(what, state.attempt_number, exc) from exc

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=wait,
        retry=tenacity.retry_if_exception(retry_if),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=reraise,
        retry_error_callback=None if reraise else give_up,
    )
    return retrying(action)


# --------------------------------------------------------------------------- HTTP


class NetError(Exception):
    """One HTTP exchange failed; ``transient`` says whether trying again later may succeed."""

    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


class HttpStatusError(NetError):
    """The server answered with an HTTP error status."""

    def __init__(self, status: int, reason: str, retry_after: float | None = None) -> None:
        self.status = status
        transient = status == 429 or status >= 500
        super().__init__(
            f"HTTP {status} {reason}".rstrip(),
            transient=transient,
            retry_after=retry_after if transient else None,
        )


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """``Retry-After`` in seconds: a number of seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # an HTTP date is always GMT
            return None
        return max(0.0, when.timestamp() - now())
    return seconds if seconds >= 0 else None


class HttpClient:
    """One connection pool; :meth:`request` is one exchange, no retries.

    ``proxy``: None uses the environment's (``http_proxy``, ``no_proxy``), "" none, else that
    URL. ``now`` (wall clock) turns an HTTP-date ``Retry-After`` into seconds.
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        proxy: str | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        import httpx

        self._now = now
        self._client: httpx.Client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            proxy=proxy or None,
            trust_env=proxy is None,
            follow_redirects=True,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """The body of a 2xx/3xx answer; :class:`NetError` otherwise."""
        import httpx

        try:
            response = self._client.request(method, url, content=content, headers=headers)
        except httpx.UnsupportedProtocol as exc:
            raise NetError(f"unsupported URL: {exc}", transient=False) from None
        except httpx.TransportError as exc:  # refused, reset, DNS, timeout, proxy
            raise NetError(
                f"network: {type(exc).__name__}: {exc or 'no detail'}", transient=True
            ) from None
        except httpx.HTTPError as exc:  # an invalid URL and the like: trying again cannot help
            raise NetError(f"request: {type(exc).__name__}: {exc}", transient=False) from None
        if response.status_code >= 400:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._now)
            raise HttpStatusError(response.status_code, response.reason_phrase, retry_after)
        return response.content
