"""The image stage: after the pull, read the pictures of conversations and record findings.

For each ``image`` message and each image item of a ``mixed`` message or of a forwarded chat
record (``chatrecord``; :mod:`audit.images.refs`) in a conversation (not withheld by consent):
download it (the media code: md5-checked, size-capped, stored by content hash), decode its QR
codes, OCR it when the policy says so, and record findings, on the message that carries the
picture, with their box and payload or text in ``Finding.detail``. Each content hash is read
once (``image_scans``), however many messages carry it; reading runs in worker processes,
since OCR costs a second or so a picture. Distributed, each ``images`` task takes messages
whose pictures no other task carries, so no two tasks read the same content; should two
writers race all the same, the content's row is written once and the other's is dropped.
What is left to read is the backlog, in ``audit status``: pictures to retry, and pictures not
downloaded yet (``waiting``: an exported archive file's pictures come from ``audit media``).

OCR policy: ``all`` (default) reads every picture, because a screenshot of an ID card is the
violation itself and often the only message that shows it; ``flagged`` reads only pictures in
conversations that already have a finding (text, or a QR code in the same picture), for
archives where OCR of everything does not fit the budget; ``off`` decodes QR codes only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from audit.archive.media import MediaFetcher, fetch_one
from audit.domain import SenderKind
from audit.images import ImageUnreadable
from audit.images.qr import classify
from audit.images.read import ImageReading, image_findings, read_image
from audit.images.refs import image_refs
from audit.images.status import MAX_ATTEMPTS, ImageStats, image_backlog, pending_images
from audit.scan.finding import finding_row
from audit.scan.scanner import Scanner
from audit.store.db import insert_ignore, session_scope
from audit.store.models import Finding, ImageScan, Message, MessageImage, ScanRun
from audit.store.types import utcnow

OCR_MODES = ("all", "flagged", "off")
READER_VERSION = "qr-opencv+ocr-ppocrv4/1"


@dataclass(frozen=True)
class ImagePolicy:
    directory: Path  # where downloaded pictures are stored by content hash
    ocr: str = "all"  # all | flagged | off
    allow: tuple[str, ...] = ()  # QR payload prefixes that are never findings
    max_bytes: int = 10 * 1024 * 1024
    max_attempts: int = MAX_ATTEMPTS
    workers: int = 1
    batch_size: int = 200

    def __post_init__(self) -> None:
        if self.ocr not in OCR_MODES:
            raise ValueError(f"images.ocr: {self.ocr!r} is not one of {', '.join(OCR_MODES)}")


def read_images(
    engine: Engine,
    fetcher: MediaFetcher,
    scanner: Scanner,
    policy: ImagePolicy,
    progress: Callable[[int], None] | None = None,
    limit: int | None = None,
    message_ids: Sequence[int] | None = None,
) -> ImageStats:
    """Read the pictures not read yet (at most ``limit`` messages; only those of
    ``message_ids`` when given); findings are recorded under a scan run of mode ``images``."""
    stats = ImageStats()
    with session_scope(engine) as session:
        run = ScanRun(
            mode="images",
            wordlist_hash=scanner.wordlist_hash,
            scanner_version=scanner.version,
            model_versions={"images": READER_VERSION},
        )
        session.add(run)
        session.flush()
        run_id = run.id
    last_id = 0
    with _pool(policy.workers) as pool:
        while limit is None or stats.messages < limit:
            size = (
                policy.batch_size
                if limit is None
                else min(policy.batch_size, limit - stats.messages)
            )
            query = pending_images(policy.max_attempts).where(Message.id > last_id)
            if message_ids is not None:
                query = query.where(Message.id.in_(list(message_ids)))
            with session_scope(engine) as session:
                rows = session.execute(query.order_by(Message.id).limit(size)).all()
            if not rows:
                break
            last_id = rows[-1].id
            _batch(engine, fetcher, scanner, policy, pool, rows, run_id, stats)
            stats.messages += len(rows)
            if progress:
                progress(len(rows))
    with session_scope(engine) as session:
        stats.backlog = image_backlog(session, policy.max_attempts)
        found = session.get(ScanRun, run_id)
        assert found is not None
        found.finished_at = utcnow()
        found.messages_scanned = stats.messages
        found.findings_count = stats.findings
    return stats


@contextmanager
def _pool(workers: int) -> Iterator[Executor | None]:
    if workers <= 1:
        yield None
        return
    with ProcessPoolExecutor(workers) as pool:
        yield pool


def _read_file(
    path: str, ocr: str, allow: tuple[str, ...]
) -> tuple[dict[str, Any] | None, str | None]:
    """Worker side: a picture's reading as JSON, or why it could not be read. ``ocr``: "yes",
    "no", or "if_qr" (only when the QR pass found a code that is a finding)."""
    try:
        data = Path(path).read_bytes()
        reading = read_image(data, ocr == "yes")
        if ocr == "if_qr" and any(classify(q.payload, allow).severity for q in reading.qr):
            reading = read_image(data, True)
        return reading.as_json(), None
    except (ImageUnreadable, OSError) as exc:
        return None, str(exc)


def _stored_reading(scan: ImageScan) -> ImageReading | None:
    if scan.error is not None:
        return None
    return ImageReading.from_json(
        {"qr": scan.qr, "lines": scan.ocr_lines if scan.ocr_read else None}
    )


def _batch(
    engine: Engine,
    fetcher: MediaFetcher,
    scanner: Scanner,
    policy: ImagePolicy,
    pool: Executor | None,
    rows: Sequence[Any],
    run_id: int,
    stats: ImageStats,
) -> None:
    # 1. download what the batch carries (retries only the items that failed before)
    ids = [r.id for r in rows]
    with session_scope(engine) as session:
        previous = {
            (m.message_id, m.item): m.state
            for m in session.scalars(select(MessageImage).where(MessageImage.message_id.in_(ids)))
        }
        flagged = _flagged(session, {r.conversation_id for r in rows})
    got: list[tuple[Any, int, str, str | None, str | None]] = []  # row, item, state, sha, error
    paths: dict[str, Path] = {}
    ocr: dict[str, str] = {}
    for row in rows:
        refs = image_refs(row.id, row.msgtype, row.raw)
        if not refs and (row.id, 0) not in previous:
            got.append((row, 0, "none", None, None))
        for item, ref in refs:
            if previous.get((row.id, item), "failed") not in ("failed", "waiting"):
                continue
            state, sha, path, _size, error = fetch_one(
                fetcher, ref, policy.directory, policy.max_bytes
            )
            if sha is not None and path is not None:
                paths[sha] = path
                mode = {"all": "yes", "off": "no"}.get(policy.ocr)
                if mode is None:  # flagged: the conversation's findings, or the picture's own
                    mode = "yes" if row.conversation_id in flagged else "if_qr"
                if ocr.get(sha) != "yes":
                    ocr[sha] = mode
            got.append((row, item, state, sha, error))
    # 2. read each content not read before (or read without OCR when OCR is now wanted)
    with session_scope(engine) as session:
        known = {
            s.sha256: _stored_reading(s)
            for s in session.scalars(select(ImageScan).where(ImageScan.sha256.in_(list(paths))))
        }
    todo = [
        sha
        for sha in paths
        if sha not in known
        or (ocr[sha] == "yes" and known[sha] is not None and known[sha].lines is None)  # type: ignore[union-attr]
    ]
    args = [(str(paths[sha]), ocr[sha], policy.allow) for sha in todo]
    if pool is not None and args:
        results = list(pool.map(_read_file, *zip(*args, strict=True)))
    else:
        results = [_read_file(*a) for a in args]
    readings = dict(known)
    with session_scope(engine) as session:
        for sha, (data, error) in zip(todo, results, strict=True):
            reading = ImageReading.from_json(data) if data is not None else None
            readings[sha] = reading
            store_reading(session, sha, paths[sha].stat().st_size, reading, error)
            stats.contents += 1
    # 3. findings, and the per-message record
    finding_rows: list[dict[str, Any]] = []
    with session_scope(engine) as session:
        for row, item, state, sha, error in got:
            reading = readings.get(sha) if sha else None
            if state == "stored" and reading is None:
                state, error = "skipped", "not a readable image"
            elif state == "stored" and reading is not None:
                state = "read"
                stats.images += 1
                stats.qr_decoded += bool(reading.qr)
                stats.ocr_read += reading.lines is not None
                finding_rows += _finding_rows(reading, scanner, policy, row, item, sha, run_id)
            stats.failed += state == "failed"
            stats.skipped += state == "skipped"
            stats.waiting += state == "waiting"
            record = session.scalars(
                select(MessageImage).where(
                    MessageImage.message_id == row.id, MessageImage.item == item
                )
            ).first()
            if record is None:
                record = MessageImage(message_id=row.id, item=item, attempts=0)
                session.add(record)
            record.state, record.sha256, record.error = state, sha, error
            record.attempts += state != "waiting"  # waiting for a download is no attempt
            record.updated_at = utcnow()
        insert_ignore(session, Finding, finding_rows)
    stats.findings += len(finding_rows)


def store_reading(
    session: Session, sha: str, size: int, reading: ImageReading | None, error: str | None
) -> None:
    """A content's reading, written once: inserted unless a row is there (another writer
    got there first: the same picture gives the same reading), or, when the row has no text
    and this reading has, its text added (unless another writer added it already)."""
    as_json = reading.as_json() if reading else {"qr": [], "lines": None}
    values = {
        "qr": as_json["qr"],
        "ocr_read": as_json["lines"] is not None,
        "ocr_lines": as_json["lines"] or [],
        "error": error,
    }
    insert_ignore(session, ImageScan, [{"sha256": sha, "size": size, **values}])
    if values["ocr_read"]:
        session.execute(
            update(ImageScan)
            .where(ImageScan.sha256 == sha, ImageScan.ocr_read.is_(False))
            .values(**values)
        )


def _finding_rows(
    reading: ImageReading,
    scanner: Scanner,
    policy: ImagePolicy,
    row: Any,
    item: int,
    sha: str | None,
    run_id: int,
) -> list[dict[str, Any]]:
    kind = SenderKind(row.sender_kind)
    role = kind.value if kind in (SenderKind.STAFF, SenderKind.CUSTOMER) else None
    out = []
    for found in image_findings(reading, scanner, role, policy.allow):
        # the finding's offsets are into the picture's recognized text (or its payload)
        detail = {**found.detail, "item": item, "sha256": sha}
        row_of = finding_row(found.finding, row.id, row.conversation_id, run_id)
        out.append({**row_of, "detail": detail})
    return out


def _flagged(session: Session, conversations: set[int]) -> set[int]:
    return set(
        session.scalars(
            select(Finding.conversation_id)
            .where(Finding.conversation_id.in_(conversations))
            .distinct()
        )
    )
