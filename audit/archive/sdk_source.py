"""The live archive: GetChatData paging through the official SDK (source ``sdk``).

:class:`SdkSource` speaks to any client with ``get_chat_data(seq, limit) -> dict`` (the
:class:`~audit.archive.sdk.WeWorkFinanceSdk` binding in production; tests drive it with a
stand-in for the WeCom service). It passes the checkpoint's seq unchanged (messages come back
from seq+1), pages until an empty page, halves the limit on errcode 301058 ("response too
large"), retries transient failures with backoff, and turns every other failure into a
:class:`SdkSourceError` naming the code, so that ``pull`` stops with the checkpoint at the last
stored page.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from audit.archive.sdk import (
    ERRCODE_TOO_LARGE,
    MAX_LIMIT,
    SDK_RETRY,
    SdkError,
    WeWorkFinanceSdk,
    check_response,
)
from audit.archive.sources import ChatData, Page, SourceError, chatdata_from_item
from audit.net import RetryPolicy, call_with_retries

log = logging.getLogger(__name__)


class ChatDataClient(Protocol):
    def get_chat_data(self, seq: int, limit: int) -> dict[str, Any]: ...


class SdkSourceError(SourceError):
    """GetChatData failed for good; ``code`` is the SDK return code or the JSON errcode."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class SdkSource:
    """The ``ArchiveSource`` over GetChatData."""

    def __init__(
        self,
        client: ChatDataClient,
        *,
        retry: RetryPolicy = SDK_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        name: str = "sdk",
    ) -> None:
        self.client = client
        self.retry, self.sleep = retry, sleep
        self.name = name
        self.limit = MAX_LIMIT  # the limit in use; lowered by errcode 301058

    def __enter__(self) -> SdkSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if callable(close):
            close()

    def fetch(self, seq: int) -> dict[str, Any]:
        """One page after ``seq`` (a checked response object), with retries and halving."""
        tries = 0

        def once() -> dict[str, Any]:
            nonlocal tries
            tries += 1
            while True:
                try:
                    return check_response(self.client.get_chat_data(seq, self.limit), "GetChatData")
                except SdkError as exc:  # halving the page is not a failed try
                    if exc.in_json and exc.code == ERRCODE_TOO_LARGE and self.limit > 1:
                        self.limit = max(1, self.limit // 2)
                        log.warning(
                            "GetChatData after seq %d: %s; limit now %d", seq, exc, self.limit
                        )
                        continue
                    raise

        try:
            return call_with_retries(
                once,
                self.retry,
                sleep=self.sleep,
                what=f"GetChatData after seq {seq}",
                reraise=True,
            )
        except SdkError as exc:
            tried = f" (after {tries} attempts)" if tries > 1 else ""
            raise SdkSourceError(
                f"archive pull stopped after seq {seq}{tried}: {exc}", exc.code
            ) from exc

    def pages(self, after_seq: int, limit: int) -> Iterator[Page]:
        """Pages after ``after_seq`` until the archive returns an empty page."""
        if limit < 1:
            raise ValueError(f"limit {limit} must be at least 1")
        self.limit = min(limit, MAX_LIMIT)
        seq = after_seq
        while True:
            doc = self.fetch(seq)
            chatdata = doc.get("chatdata")
            if chatdata is None:
                chatdata = []
            if not isinstance(chatdata, list):
                raise SdkSourceError(
                    f"GetChatData after seq {seq}: chatdata is a {type(chatdata).__name__}"
                )
            if not chatdata:
                return
            items: list[ChatData] = []
            fallback = seq
            for i, raw in enumerate(chatdata):
                item = chatdata_from_item(raw, f"GetChatData(seq={seq}) item {i}", fallback)
                fallback = item.seq
                items.append(item)
            page = Page(tuple(items))
            yield page
            if page.max_seq <= seq:
                raise SdkSourceError(
                    f"GetChatData after seq {seq} returned no larger seq "
                    f"(page max {page.max_seq}): stopping rather than looping"
                )
            seq = page.max_seq


def open_sdk_source(
    corpid: str,
    secret: str,
    lib_path: Path | None = None,
    *,
    proxy: str = "",
    passwd: str = "",
    timeout: int = 10,
    retry: RetryPolicy = SDK_RETRY,
) -> SdkSource:
    """An initialised SDK instance (owned by the calling thread) wrapped as the ``sdk`` source.

    Retries happen in the source, so the binding itself is told to try once.
    """
    if not corpid or not secret:
        raise SourceError("the sdk source needs archive.corpid and archive.secret")
    sdk = WeWorkFinanceSdk(
        lib_path, proxy=proxy, passwd=passwd, timeout=timeout, retry=RetryPolicy(attempts=1)
    )
    try:
        sdk.init(corpid, secret)
    except SdkError as exc:
        sdk.close()
        raise SdkSourceError(f"cannot initialise the WeCom archive SDK: {exc}", exc.code) from exc
    return SdkSource(sdk, retry=retry)
