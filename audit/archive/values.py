"""What a value from the archive may be before it reaches the database.

The archive is outside input: envelopes come from a file or a server, and the message text is
typed by customers. SQLite and PostgreSQL refuse some values with an exception that would stop
a whole page or batch: integers beyond their column (``BIGINT``, ``INTEGER``), strings longer
than their ``VARCHAR``, NUL characters (PostgreSQL), lone surrogates (no UTF-8 encoding at
all), ``NaN`` in JSON (PostgreSQL ``jsonb``), and timestamps beyond what ``datetime`` holds.
These checks run at the boundary, so such an item is quarantined with its reason instead.

Message text is kept whatever it holds: NUL and lone surrogates are replaced by U+FFFD (one
code point for one, so every finding offset still points at the same place of the original),
and the message records how many were replaced. The original stays in the envelope.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
from typing import Any

BIGINT_MAX = 2**63 - 1  # seq columns
INT_MAX = 2**31 - 1  # publickey_ver column
REPLACEMENT = "\ufffd"
# Deeper JSON is no message WeCom sends; the limit keeps the walks below far from recursion limits.
MAX_JSON_DEPTH = 64
# msgtime must give a datetime with room to spare: stages add idle gaps and time zones to it.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(3000, 1, 1, tzinfo=dt.UTC)

_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str, limit: int | None = None) -> str | None:
    """Why ``value`` cannot be stored as text (None when it can)."""
    if limit is not None and len(value) > limit:
        return f"is {len(value)} characters long (at most {limit})"
    found = _UNSAFE.search(value)
    if found is None:
        return None
    at = found.start()
    if found.group() == "\x00":
        return f"contains NUL at offset {at}"
    return f"contains a lone surrogate U+{ord(found.group()):04X} at offset {at}"


def int_problem(value: Any, maximum: int) -> str | None:
    """Why ``value`` is not an integer in ``0..maximum`` (None when it is)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return f"{_short(value)} is not an integer"
    if not 0 <= value <= maximum:
        return f"{_short(value)} is out of range 0..{maximum}"
    return None


def json_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` (parsed JSON) cannot be stored as JSON on both backends."""
    if depth > MAX_JSON_DEPTH:
        return f"nests deeper than {MAX_JSON_DEPTH} levels"
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, float) and not math.isfinite(value):
        return f"holds the number {value!r}"
    if isinstance(value, dict):
        for key, item in value.items():
            why = text_problem(key) or json_problem(item, depth + 1)
            if why:
                return f"{_short(key)}: {why}"
    elif isinstance(value, list):
        for i, item in enumerate(value):
            why = json_problem(item, depth + 1)
            if why:
                return f"[{i}]: {why}"
    return None


def _short(value: Any) -> str:
    text = repr(value)  # repr escapes NUL and surrogates, so the reason itself is storable
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def repair_text(text: str) -> tuple[str, int]:
    """``text`` with NUL and lone surrogates replaced by U+FFFD, and how many were."""
    repaired, n = _UNSAFE.subn(REPLACEMENT, text)
    return repaired, n


def repair_json(value: Any, depth: int = 0) -> tuple[Any, int]:
    """Parsed JSON made storable: strings (and keys) repaired, NaN/Infinity as strings.

    Raises ValueError beyond :data:`MAX_JSON_DEPTH`.
    """
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nests deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        return repair_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value), 1
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        total = 0
        for key, item in value.items():
            k, n = repair_text(key)
            v, m = repair_json(item, depth + 1)
            out[k] = v
            total += n + m
        return out, total
    if isinstance(value, list):
        items = []
        total = 0
        for item in value:
            v, m = repair_json(item, depth + 1)
            items.append(v)
            total += m
        return items, total
    return value, 0


def storable(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` if it can be stored as JSON, else its bytes in base64 (nothing is lost).

    Text read from a file keeps undecodable bytes as surrogates (``surrogateescape``), which
    turn back into the very bytes that arrived.
    """
    if json_problem(raw) is None:
        return raw
    try:
        text = json.dumps(raw, ensure_ascii=False, allow_nan=True)
    except (ValueError, RecursionError):
        text = repr(raw)
    return {"encoding": "base64", "base64": base64.b64encode(original_bytes(text)).decode("ascii")}


def original_bytes(text: str) -> bytes:
    """The bytes ``text`` was decoded from (``surrogateescape``), or its closest encoding."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that came from JSON escapes, not from bytes
        return text.encode("utf-8", "surrogatepass")


def timestamp(ms: int) -> dt.datetime:
    """A message time in ms as a UTC datetime; ValueError outside 1970..3000."""
    if not 0 <= ms < int(LATEST.timestamp() * 1000):
        raise ValueError(f"time {ms} ms is outside {EARLIEST:%Y}..{LATEST:%Y}")
    return EARLIEST + dt.timedelta(milliseconds=ms)
