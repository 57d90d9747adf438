"""Decrypted archive messages: a typed value and the text the scanner should read.

The plaintext of a message is a JSON object (``wecom-archive-format.md`` §4). The common fields
decide whether it is a message at all: a wrong key still "decrypts" (AES-CBC has no MAC), so
bytes that are not UTF-8 JSON objects with the fields of their ``action`` raise
:class:`MessageFormatError`. The payload, on the other hand, is read leniently: the vendor adds
fields and types, so a missing or oddly typed payload field only gives less text, and an unknown
``msgtype`` is kept (``known_type=False``) with no text.

Forwarded chat records (``chatrecord``) and mixed messages (``mixed``) hold their items as JSON
*strings*; their text is extracted recursively by item type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from audit.store.models import SenderKind

ACTIONS = ("send", "recall", "switch")

# Nested JSON-string items are parsed at most this deep; deeper content is scanned as it is,
# so that nesting can never hide text from the scanner.
_MAX_DEPTH = 8

_DIGITS = re.compile(r"[0-9]+")


class MessageFormatError(ValueError):
    """The plaintext is not a valid WeCom message; ``field`` names the offending field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ParsedMessage:
    """One archive record, with ``text`` being what the scanner reads ("" when none)."""

    msgid: str
    action: str  # "send" | "recall" | "switch"
    msgtype: str  # "switch" for switch records; "revoke" for recalls
    sender: str  # "from"; "user" for switch records
    tolist: tuple[str, ...]
    roomid: str  # "" for one-to-one chats
    msgtime_ms: int  # "time" for switch records
    text: str
    recall_of: str | None  # revoke.pre_msgid
    known_type: bool  # False for msgtypes not in the format table: stored, no text extracted
    raw: dict[str, Any] = field(compare=False, repr=False)


# --- payload readers -----------------------------------------------------------------------
# Each takes the payload object (the dict under the msgtype's key, or an item's parsed
# content) and yields text parts; they never raise on missing or wrongly typed fields.

Extractor = Callable[[dict[str, Any], int], Iterator[str]]


def _str(value: Any) -> str | None:
    # Numbers are scanned too: a phone number sent as a JSON number is still a phone number.
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _fields(payload: dict[str, Any], *names: str) -> Iterator[str]:
    for name in names:
        value = _str(payload.get(name))
        if value is not None:
            yield value


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def _none(payload: dict[str, Any], depth: int) -> Iterator[str]:
    return iter(())


def _reader(*names: str) -> Extractor:
    def read(payload: dict[str, Any], depth: int) -> Iterator[str]:
        return _fields(payload, *names)

    return read


def _vote(payload: dict[str, Any], depth: int) -> Iterator[str]:
    yield from _fields(payload, "votetitle")
    items = payload.get("voteitem")
    if isinstance(items, list):
        yield from (text for text in map(_str, items) if text is not None)


def _collect(payload: dict[str, Any], depth: int) -> Iterator[str]:
    yield from _fields(payload, "room_name", "title")
    for detail in _dicts(payload.get("details")):
        yield from _fields(detail, "ques")


def _news(payload: dict[str, Any], depth: int) -> Iterator[str]:
    for item in _dicts(payload.get("item")):
        yield from _fields(item, "title", "description")


def _chatrecord(payload: dict[str, Any], depth: int) -> Iterator[str]:
    yield from _fields(payload, "title")
    for item in _dicts(payload.get("item")):
        yield from _item_text(item, depth)


def _mixed(payload: dict[str, Any], depth: int) -> Iterator[str]:
    for item in _dicts(payload.get("item")):
        yield from _item_text(item, depth)


def _item_text(item: dict[str, Any], depth: int) -> Iterator[str]:
    """Text of one chatrecord/mixed item: ``content`` is a JSON string of a payload."""
    content = item.get("content")
    payload: Any = content
    if isinstance(content, str):
        if depth >= _MAX_DEPTH:
            yield content
            return
        try:
            payload = json.loads(content, strict=False)
        except (ValueError, RecursionError):
            yield content  # not JSON: the item is plain text
            return
    if not isinstance(payload, dict):
        text = _str(content)
        if text is not None:
            yield text
        return
    msgtype = item_msgtype(item.get("type"))
    extractor = _EXTRACTORS.get(msgtype)
    if extractor is not None:
        yield from extractor(payload, depth + 1)


def item_msgtype(value: Any) -> str:
    """``ChatRecordText`` -> ``text``; ``image`` -> ``image``; ``chatrecord`` stays."""
    if not isinstance(value, str):
        return ""
    name = value.strip().lower()
    if name.startswith("chatrecord") and len(name) > len("chatrecord"):
        name = name[len("chatrecord") :]
    return name


# msgtype -> (keys where the payload may be, reader). ``None`` as a key means the message
# itself (vote's top-level form).
_TABLE: dict[str, tuple[tuple[str | None, ...], Extractor]] = {
    "text": (("text",), _reader("content")),
    "markdown": (("info",), _reader("content")),
    "link": (("link",), _reader("title", "description", "link_url")),
    "weapp": (("weapp",), _reader("title", "description", "displayname")),
    "card": (("card",), _reader("corpname", "userid")),
    "location": (("location",), _reader("title", "address")),
    "file": (("file",), _reader("filename")),
    "image": (("image",), _none),
    "voice": (("voice",), _none),
    "video": (("video",), _none),
    "emotion": (("emotion",), _none),
    "revoke": (("revoke",), _none),
    "agree": (("agree",), _none),
    "disagree": (("disagree",), _none),
    "chatrecord": (("chatrecord",), _chatrecord),
    "mixed": (("mixed",), _mixed),
    "todo": (("todo",), _reader("title", "content")),
    "vote": (("vote", None), _vote),
    "collect": (("collect",), _collect),
    "redpacket": (("redpacket", "external_redpacket"), _reader("wish")),
    "external_redpacket": (("external_redpacket", "redpacket"), _reader("wish")),
    "meeting": (("meeting",), _reader("topic", "remarks", "address")),
    "docmsg": (("doc",), _reader("title")),
    "news": (("info",), _news),
    "calendar": (("calendar",), _reader("title", "place", "remarks")),
    "meeting_voice_call": (("meeting_voice_call",), _none),
    "voip_doc_share": (("voip_doc_share",), _reader("filename")),
    "sphfeed": (("sphfeed",), _reader("sph_name", "feed_desc")),
    "voiptext": (("info",), _none),
    "qydiskfile": (("info",), _reader("filename")),
}

_EXTRACTORS: dict[str, Extractor] = {name: reader for name, (_, reader) in _TABLE.items()}

KNOWN_MSGTYPES: frozenset[str] = frozenset(_TABLE)


def _message_text(plain: dict[str, Any], msgtype: str) -> str:
    keys, extractor = _TABLE[msgtype]
    for key in keys:
        payload = plain if key is None else plain.get(key)
        if isinstance(payload, dict):
            parts = extractor(payload, 0)
            return "\n".join(part for part in parts if part.strip())
    return ""


# --- common fields -------------------------------------------------------------------------


def _required_str(plain: dict[str, Any], name: str, *, nonempty: bool = False) -> str:
    if name not in plain:
        raise MessageFormatError(f"missing field {name!r}", name)
    value = plain[name]
    if not isinstance(value, str):
        raise MessageFormatError(
            f"field {name!r} must be a string, not {type(value).__name__}", name
        )
    if nonempty and not value:
        raise MessageFormatError(f"field {name!r} is empty", name)
    return value


def _required_ms(plain: dict[str, Any], name: str) -> int:
    if name not in plain:
        raise MessageFormatError(f"missing field {name!r}", name)
    value = plain[name]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    raise MessageFormatError(
        f"field {name!r} must be a non-negative integer (ms), not {value!r}", name
    )


def _tolist(value: Any) -> tuple[str, ...]:
    # Not required by the format; kept lenient like payload fields (raw keeps the original).
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str))
    return ()


def parse_message(plain: dict[str, Any]) -> ParsedMessage:
    """Read a decrypted message object; raise :class:`MessageFormatError` on bad common fields."""
    if not isinstance(plain, dict):
        raise MessageFormatError(f"message must be a JSON object, not {type(plain).__name__}")
    msgid = _required_str(plain, "msgid", nonempty=True)
    action = _required_str(plain, "action")
    if action not in ACTIONS:
        raise MessageFormatError(f"field 'action' has unknown value {action!r}", "action")
    if action == "switch":
        return ParsedMessage(
            msgid=msgid,
            action=action,
            msgtype="switch",
            sender=_required_str(plain, "user"),
            tolist=(),
            roomid="",
            msgtime_ms=_required_ms(plain, "time"),
            text="",
            recall_of=None,
            known_type=True,
            raw=plain,
        )
    sender = _required_str(plain, "from")
    msgtime_ms = _required_ms(plain, "msgtime")
    msgtype = _required_str(plain, "msgtype")
    known = msgtype in KNOWN_MSGTYPES
    recall_of = None
    if action == "recall" or msgtype == "revoke":
        revoke = plain.get("revoke")
        if isinstance(revoke, dict) and isinstance(revoke.get("pre_msgid"), str):
            recall_of = revoke["pre_msgid"]
    roomid = plain.get("roomid")
    return ParsedMessage(
        msgid=msgid,
        action=action,
        msgtype=msgtype,
        sender=sender,
        tolist=_tolist(plain.get("tolist")),
        roomid=roomid if isinstance(roomid, str) else "",
        msgtime_ms=msgtime_ms,
        text=_message_text(plain, msgtype) if known else "",
        recall_of=recall_of,
        known_type=known,
        raw=plain,
    )


def parse_plaintext(data: bytes | str) -> ParsedMessage:
    """Parse decrypted plaintext; garbage (e.g. from a wrong key) raises MessageFormatError."""
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MessageFormatError(f"plaintext is not valid UTF-8: {exc}") from exc
    try:
        # strict=False: decrypted JSON may carry raw control characters inside strings.
        plain = json.loads(data, strict=False)
    except (ValueError, RecursionError) as exc:
        raise MessageFormatError(f"plaintext is not JSON: {exc}") from exc
    if not isinstance(plain, dict):
        raise MessageFormatError(f"plaintext must be a JSON object, not {type(plain).__name__}")
    return parse_message(plain)


def sender_kind(userid: str) -> SenderKind:
    """Who sent it, from the id's prefix (internal userids are chosen by the company)."""
    if not userid:
        return SenderKind.SYSTEM
    if userid.startswith(("wo", "wm")):
        return SenderKind.CUSTOMER
    if userid.startswith("wb"):
        return SenderKind.ROBOT
    return SenderKind.STAFF
