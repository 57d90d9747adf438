"""Which pictures a message carries, and what identifies their content before download.

An ``image`` message is one picture (item 0); a ``mixed`` message and a forwarded chat record
(``chatrecord``) list items, some of them pictures (``image`` / ``ChatRecordImage``), each with
its index as ``item``. Nothing here needs OpenCV: the distributed coordinator plans the image
tasks with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from audit.archive.media import MediaRef, media_ref
from audit.archive.messages import item_msgtype

IMAGE_TYPES = ("image", "mixed", "chatrecord")  # the msgtypes that can carry a picture


def image_refs(message_id: int, msgtype: str, raw: dict[str, Any]) -> list[tuple[int, MediaRef]]:
    """The pictures of a message: (item index, reference); a bad item is left out."""
    if msgtype == "image":
        ref = media_ref(message_id, "image", raw)
        return [(0, ref)] if ref else []
    if msgtype not in IMAGE_TYPES:
        return []
    payload = raw.get(msgtype)
    items = payload.get("item") if isinstance(payload, dict) else None
    out = []
    for index, item in enumerate(items if isinstance(items, list) else ()):
        if not isinstance(item, dict) or item_msgtype(item.get("type")) != "image":
            continue
        try:
            content = json.loads(item.get("content") or "")
        except (TypeError, ValueError):
            continue
        ref = media_ref(message_id, "image", {"image": content})
        if ref:
            out.append((index, ref))
    return out


def content_key(ref: MediaRef) -> str:
    """What stands for a picture's content before it is downloaded: its md5 when the message
    gives one (the same picture forwarded twice has the same), else its file id."""
    return f"md5:{ref.md5sum.lower()}" if ref.md5sum else f"id:{ref.sdkfileid}"


def batches_by_content(rows: Iterable[Any], size: int) -> list[list[int]]:
    """The ids of image messages (rows with ``id``, ``msgtype``, ``raw``) in batches of about
    ``size``, in id order, every picture content in one batch only: messages sharing a
    content (a forwarded picture) go together, and so do the contents of one message, so two
    batches read in parallel never read the same picture."""
    parent: dict[int, int] = {}

    def root(mid: int) -> int:
        while parent[mid] != mid:
            parent[mid] = parent[parent[mid]]
            mid = parent[mid]
        return mid

    holder: dict[str, int] = {}  # content -> a message carrying it
    for row in rows:
        mid = int(row.id)
        parent.setdefault(mid, mid)
        for _item, ref in image_refs(mid, row.msgtype, row.raw or {}):
            other = holder.setdefault(content_key(ref), mid)
            a, b = root(mid), root(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for mid in sorted(parent):
        groups.setdefault(root(mid), []).append(mid)
    out: list[list[int]] = []
    for group in sorted(groups.values()):
        if not out or len(out[-1]) >= size:
            out.append([])
        out[-1].extend(group)
    return out
