"""Attachments of flagged conversations, downloaded and stored by content hash.

Optional (``[media] enabled``): images, voice, video and files are fetched only for
conversations with findings, since that is where a reviewer needs them. Each file is checked
against the archive's md5sum, stored once under ``<dir>/<sha256[:2]>/<sha256>`` however many
messages carry it, and refused above the size cap. Failures are recorded per message and
retried on the next run, up to ``max_attempts``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, exists, or_, select

from audit.store.db import session_scope
from audit.store.models import Finding, MediaFile, Message
from audit.store.types import utcnow

MEDIA_TYPES = ("image", "voice", "video", "file", "emotion")
# messages whose items can be pictures downloaded on their own (audit.images.refs reads them)
ITEM_TYPES = ("mixed", "chatrecord")


class MediaError(Exception):
    """A download that failed; ``transient`` ones are worth retrying."""

    def __init__(self, reason: str, transient: bool = True) -> None:
        super().__init__(reason)
        self.transient = transient


class MediaNotDownloaded(MediaError):
    """Not fetched yet: the file is to come (``audit media``), nothing has failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, transient=True)


class MediaFetcher(Protocol):
    def fetch(self, sdkfileid: str, md5sum: str | None, max_bytes: int) -> bytes:
        """The whole file (checked against ``md5sum`` when given), or MediaError."""
        ...


@dataclass(frozen=True)
class MediaRef:
    message_id: int
    sdkfileid: str
    md5sum: str
    declared_size: int


def media_ref(message_id: int, msgtype: str, raw: dict[str, Any]) -> MediaRef | None:
    payload = raw.get(msgtype)
    if not isinstance(payload, dict):
        return None
    fileid = payload.get("sdkfileid")
    if not isinstance(fileid, str) or not fileid:
        return None
    size = payload.get("filesize") or payload.get("voice_size") or payload.get("imagesize") or 0
    md5 = payload.get("md5sum")
    return MediaRef(
        message_id,
        fileid,
        md5 if isinstance(md5, str) else "",
        size if isinstance(size, int) else 0,
    )


@dataclass
class MediaStats:
    stored: int = 0
    deduplicated: int = 0
    skipped: int = 0
    failed: int = 0


_SHA256_HEX = frozenset("0123456789abcdef")


def blob_path(directory: Path, sha256: str) -> Path:
    """Where the content of hash ``sha256`` is stored under ``directory``; ValueError for
    anything but a lower-case hex digest (the name is read back from the database)."""
    if len(sha256) != 64 or not set(sha256) <= _SHA256_HEX:
        raise ValueError(f"not a sha256 hex digest: {sha256[:80]!r}")
    return directory / sha256[:2] / sha256


def store_blob(directory: Path, data: bytes) -> tuple[str, Path]:
    digest = hashlib.sha256(data).hexdigest()
    path = blob_path(directory, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # atomic: a crash never leaves half a file under the hash
    return digest, path


class DownloadedMedia:
    """:class:`MediaFetcher` over what :func:`download_media` stored (an exported archive
    file has no media service to ask): the file of the ``sdkfileid``'s stored row, read from
    ``directory``; :class:`MediaNotDownloaded` when there is none yet."""

    def __init__(self, engine: Engine, directory: Path) -> None:
        self.engine, self.directory = engine, directory

    def fetch(self, sdkfileid: str, md5sum: str | None, max_bytes: int) -> bytes:
        with session_scope(self.engine) as session:
            sha = session.scalars(
                select(MediaFile.sha256)
                .where(MediaFile.sdkfileid == sdkfileid, MediaFile.state == "stored")
                .limit(1)
            ).first()
        if sha is None:
            raise MediaNotDownloaded("not downloaded yet (audit media)")
        path = blob_path(self.directory, sha)
        if not path.is_file():
            raise MediaNotDownloaded(f"downloaded, but not in {self.directory}")
        if path.stat().st_size > max_bytes:
            raise MediaError(f"larger than the cap of {max_bytes} bytes", transient=False)
        return path.read_bytes()


def download_media(
    engine: Engine,
    fetcher: MediaFetcher,
    directory: Path,
    max_bytes: int,
    max_attempts: int = 3,
    only_flagged: bool = True,
    progress: Callable[[int], None] | None = None,
) -> MediaStats:
    """Download the attachments not stored yet (or failed fewer than ``max_attempts`` times):
    each message's own, and each picture item of its ``mixed`` messages and forwarded chat
    records; by default only in conversations with findings."""
    from audit.images.refs import image_refs  # the picture items (images imports this module)

    stats = MediaStats()
    with session_scope(engine) as session:
        query = (
            select(Message.id, Message.msgtype, Message.raw)
            .outerjoin(MediaFile, (MediaFile.message_id == Message.id) & (MediaFile.item == 0))
            .where(
                Message.msgtype.in_(MEDIA_TYPES),
                Message.consent_withheld.is_(False),
                or_(
                    MediaFile.id.is_(None),
                    (MediaFile.state == "failed") & (MediaFile.attempts < max_attempts),
                ),
            )
            .order_by(Message.id)
        )
        carriers = (
            select(Message.id, Message.msgtype, Message.raw)
            .where(Message.msgtype.in_(ITEM_TYPES), Message.consent_withheld.is_(False))
            .order_by(Message.id)
        )
        if only_flagged:
            flagged = exists().where(
                Finding.conversation_id == Message.conversation_id,
                Message.conversation_id.is_not(None),
            )
            query, carriers = query.where(flagged), carriers.where(flagged)
        refs = [(0, r) for r in (media_ref(i, t, raw) for i, t, raw in session.execute(query)) if r]
        items = [ref for i, t, raw in session.execute(carriers) for ref in image_refs(i, t, raw)]
        if items:
            m = MediaFile
            known = select(m.message_id, m.item, m.state, m.attempts)
            done = {
                (message_id, item)
                for message_id, item, state, attempts in session.execute(
                    known.where(MediaFile.message_id.in_({ref.message_id for _, ref in items}))
                )
                if state != "failed" or attempts >= max_attempts
            }
            refs += [(i, ref) for i, ref in items if (ref.message_id, i) not in done]
    for item, ref in refs:
        state, sha, path, size, error = fetch_one(fetcher, ref, directory, max_bytes)
        with session_scope(engine) as session:
            row = session.scalars(
                select(MediaFile).where(
                    MediaFile.message_id == ref.message_id, MediaFile.item == item
                )
            ).first()
            if row is None:
                row = MediaFile(
                    message_id=ref.message_id, item=item, sdkfileid=ref.sdkfileid, attempts=0
                )
                session.add(row)
            if state == "stored" and sha is not None:
                seen = session.scalar(
                    select(exists().where(MediaFile.sha256 == sha, MediaFile.state == "stored"))
                )
                stats.deduplicated += int(bool(seen))
            row.state, row.sha256, row.size, row.error = state, sha, size, error
            row.path = str(path) if path else None
            row.md5sum = ref.md5sum
            row.attempts += 1
            row.fetched_at = utcnow()
        stats.stored += state == "stored"
        stats.skipped += state == "skipped"
        stats.failed += state == "failed"
        if progress:
            progress(1)
    return stats


def fetch_one(
    fetcher: MediaFetcher, ref: MediaRef, directory: Path, max_bytes: int
) -> tuple[str, str | None, Path | None, int, str | None]:
    """``(state, sha256, path, size, error)``: ``stored``, ``failed`` (to retry), ``skipped``
    (given up), or ``waiting`` (not downloaded yet, :class:`MediaNotDownloaded`)."""
    if ref.declared_size > max_bytes:
        return "skipped", None, None, ref.declared_size, f"larger than the cap of {max_bytes} bytes"
    try:
        data = fetcher.fetch(ref.sdkfileid, ref.md5sum or None, max_bytes)
    except MediaNotDownloaded as exc:
        return "waiting", None, None, 0, str(exc)
    except MediaError as exc:
        return ("failed" if exc.transient else "skipped"), None, None, 0, str(exc)
    if len(data) > max_bytes:
        return "skipped", None, None, len(data), f"larger than the cap of {max_bytes} bytes"
    if ref.md5sum and hashlib.md5(data, usedforsecurity=False).hexdigest() != ref.md5sum.lower():
        return "failed", None, None, len(data), "md5 mismatch after download"
    sha, path = store_blob(directory, data)
    return "stored", sha, path, len(data), None
