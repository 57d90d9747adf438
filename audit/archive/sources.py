"""Archive sources: where envelopes come from.

Every source answers one question with GetChatData's semantics: "the envelopes after ``seq``,
at most ``limit`` of them". The puller passes the largest seq it has stored, unchanged.

Items that cannot be read as an envelope (a line that is not JSON, an item without ``msgid``,
a value the database cannot hold: see :mod:`audit.archive.values`) are not dropped: they come
back as :class:`ChatData` with ``problem`` set and a synthetic, content-derived msgid, so they
are stored as failed envelopes and reported, with their bytes in base64 when they are not text.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from audit.archive.values import (
    BIGINT_MAX,
    INT_MAX,
    int_problem,
    json_problem,
    original_bytes,
    repair_text,
    storable,
    text_problem,
)

ARCHIVE_FILE = "archive.jsonl"


class SourceError(Exception):
    """The source as a whole cannot be read (missing file, server error page)."""


@dataclass(frozen=True)
class ChatData:
    """One chatdata item as delivered, or the remains of one that could not be read."""

    seq: int
    msgid: str
    publickey_ver: int
    encrypt_random_key: str
    encrypt_chat_msg: str
    raw: dict[str, Any] = field(repr=False)
    problem: str | None = None  # why this item is not a usable envelope


@dataclass(frozen=True)
class Page:
    items: tuple[ChatData, ...]

    @property
    def max_seq(self) -> int:
        return max((i.seq for i in self.items), default=0)


class ArchiveSource(Protocol):
    """``pages(seq, limit)`` yields the archive after ``seq`` in pages of at most ``limit``."""

    name: str

    def pages(self, after_seq: int, limit: int) -> Iterator[Page]: ...


def _synthetic_msgid(where: str, payload: str) -> str:
    digest = hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    # ``where`` names the file: any characters, any length, but the msgid must fit its column
    return f"!bad:{repair_text(where)[0][:200]}:{digest}"


def _canonical(item: Any) -> str:
    try:
        return json.dumps(item, sort_keys=True, ensure_ascii=False)
    except (ValueError, RecursionError):
        return repr(item)


def unreadable(
    fallback_seq: int, where: str, payload: str, raw: dict[str, Any], why: str
) -> ChatData:
    """What is left of an item that cannot be read: kept, with a content-derived msgid."""
    return ChatData(
        fallback_seq,
        _synthetic_msgid(where, payload),
        0,
        "",
        "",
        storable(raw),
        problem=f"{where}: {why}",
    )


# The columns an envelope keeps, with their limits (``envelopes.msgid`` is VARCHAR(255)).
MSGID_MAX = 255


def chatdata_from_item(item: Any, where: str, fallback_seq: int) -> ChatData:
    """Validate one chatdata item; never raises."""
    if not isinstance(item, dict):
        text = _canonical(item)
        return unreadable(
            fallback_seq, where, text, {"item": item}, "chatdata item is not an object"
        )
    problems = []
    seq: int = item.get("seq")  # type: ignore[assignment]  # checked just below
    if why := int_problem(seq, BIGINT_MAX):
        problems.append(f"seq {why}")
        seq = fallback_seq
    msgid = item.get("msgid")
    if not isinstance(msgid, str) or not msgid:
        problems.append("msgid missing")
        msgid = _synthetic_msgid(where, _canonical(item))
    elif why := text_problem(msgid, MSGID_MAX):
        problems.append(f"msgid {why}")
        msgid = _synthetic_msgid(where, _canonical(item))
    ver: int = item.get("publickey_ver", 0)
    if why := int_problem(ver, INT_MAX):
        problems.append(f"publickey_ver {why}")
        ver = 0
    erk = item.get("encrypt_random_key")
    ecm = item.get("encrypt_chat_msg")
    if not isinstance(erk, str) or not erk:
        problems.append("encrypt_random_key missing")
        erk = ""
    if not isinstance(ecm, str) or not ecm:
        problems.append("encrypt_chat_msg missing")
        ecm = ""
    raw = item
    if json_problem(item):
        # not storable as it is: kept as bytes, and no column may hold a part of it
        erk = ecm = ""
        raw = storable(item)
        if unsafe := json_problem({k: v for k, v in item.items() if k != "msgid"}):
            problems.append(f"item cannot be stored as JSON ({unsafe})")
    problem = f"{where}: " + "; ".join(problems) if problems else None
    return ChatData(seq, msgid, ver, erk, ecm, raw, problem)


def items_from_line(line: str, where: str, fallback_seq: int) -> list[ChatData]:
    """A JSON line holding a GetChatData response page or one chatdata item."""
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError) as exc:  # also: too deep, an integer of 5,000 digits
        # a line that is not text (undecodable bytes, NUL) is kept as its bytes
        raw = (
            {"line": line[:100_000]}
            if text_problem(line) is None
            else {"encoding": "base64", "line_base64": b64encode(original_bytes(line)).decode()}
        )
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc) or type(exc).__name__
        return [unreadable(fallback_seq, where, line, raw, f"not JSON ({why})")]
    if isinstance(doc, dict) and "chatdata" in doc:
        errcode = doc.get("errcode", 0)
        if errcode not in (0, None):
            why = f"page has errcode {errcode} ({doc.get('errmsg', '')})"
            return [unreadable(fallback_seq, where, line, doc, why)]
        chatdata = doc["chatdata"]
        if not isinstance(chatdata, list):
            return [unreadable(fallback_seq, where, line, doc, "chatdata is not a list")]
        out = []
        for i, item in enumerate(chatdata):
            cd = chatdata_from_item(item, f"{where} item {i}", fallback_seq)
            fallback_seq = cd.seq
            out.append(cd)
        return out
    return [chatdata_from_item(doc, where, fallback_seq)]


def file_source_name(path: Path) -> str:
    """The checkpoint key of an archive file: its name and a hash of its first line.

    Each file has a checkpoint of its own (seqs of two exports may overlap), and the key
    survives appending to the file or moving it. A file whose first line changed is another
    file: it is read again from its start, and msgids already stored are skipped.
    """
    with path.open("rb") as fh:
        head = fh.readline(1 << 20)
    digest = hashlib.sha256(head).hexdigest()[:12]
    label = repair_text(path.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))[0]
    return f"file:{label[:45]}:{digest}"  # checkpoints.source is VARCHAR(64)


class FileSource:
    """JSON lines of pages or items (ARCHITECTURE.md), in seq order as the archive gave them."""

    def __init__(self, path: Path, name: str | None = None) -> None:
        if not path.is_file():
            raise SourceError(f"archive file not found: {path}")
        self.path = path
        self.name = name or file_source_name(path)

    def iter_items(self) -> Iterator[ChatData]:
        last_seq = 0
        with self.path.open(encoding="utf-8", errors="surrogateescape") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                for item in items_from_line(
                    line.rstrip("\n"), f"{self.path.name}:{lineno}", last_seq
                ):
                    last_seq = max(last_seq, item.seq)
                    yield item

    def pages(self, after_seq: int, limit: int) -> Iterator[Page]:
        # Problem items carry the seq of their predecessor, so they are delivered right after it
        # and re-delivered (deduplicated by their content-derived msgid) when a pull resumes there.
        batch: list[ChatData] = []
        for item in self.iter_items():
            if item.seq > after_seq or (item.problem and item.seq == after_seq):
                batch.append(item)
                if len(batch) >= limit:
                    yield Page(tuple(batch))
                    batch = []
        if batch:
            yield Page(tuple(batch))


class SimulatedServer:
    """An in-process stand-in for GetChatData over an archive written by ``audit simulate``.

    The archive file holds one item per line in seq order; an offset index makes each fetch a
    seek, so a million-message archive is served without holding it in memory.
    """

    name = "simulator"

    def __init__(self, directory: Path) -> None:
        path = directory / ARCHIVE_FILE
        if not path.is_file():
            raise SourceError(f"no simulated archive at {path}: run `audit simulate` first")
        self.path = path
        self._seqs: list[int] = []
        self._offsets: list[int] = []
        with path.open("rb") as fh:
            offset = 0
            for line in fh:
                # the writer puts seq first: {"seq": 123, ...}
                head = line[:40]
                start = head.index(b":") + 1
                end = head.index(b",", start)
                self._seqs.append(int(head[start:end]))
                self._offsets.append(offset)
                offset += len(line)

    def __len__(self) -> int:
        return len(self._seqs)

    def pages(self, after_seq: int, limit: int) -> Iterator[Page]:
        """Page after page, each fetched with the previous page's largest seq, like a puller."""
        while True:
            page = self.fetch(after_seq, limit)
            if not page.items:
                return
            yield page
            after_seq = page.max_seq

    def fetch(self, after_seq: int, limit: int) -> Page:
        """One GetChatData call: items with seq > ``after_seq``."""
        if not 1 <= limit <= 1000:
            raise SourceError(f"limit {limit} out of range 1..1000 (GetChatData error 10000)")
        i = bisect.bisect_right(self._seqs, after_seq)
        items: list[ChatData] = []
        if i >= len(self._seqs):
            return Page(())
        with self.path.open("rb") as fh:
            fh.seek(self._offsets[i])
            for _ in range(min(limit, len(self._seqs) - i)):
                line = fh.readline().decode("utf-8")
                items.append(
                    chatdata_from_item(json.loads(line), f"{self.path.name} seq", after_seq)
                )
        return Page(tuple(items))
