"""What the image stage has left to do and has done, for ``audit status`` (no OpenCV needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, not_, or_, select
from sqlalchemy.orm import Session

from audit.images import OCR_RULE, QR_RULE
from audit.images.refs import IMAGE_TYPES
from audit.store.models import Finding, ImageScan, Message, MessageImage


@dataclass
class ImageStats:
    """What a run of the image stage did (the sum of its tasks' when distributed)."""

    messages: int = 0  # messages looked at
    images: int = 0  # pictures read (from a new content or one read before)
    contents: int = 0  # distinct contents read this run
    qr_decoded: int = 0  # pictures with at least one QR code decoded
    ocr_read: int = 0  # pictures whose text was read
    findings: int = 0
    failed: int = 0  # downloads to retry
    skipped: int = 0  # pictures given up on (too large, unreadable, gone)
    waiting: int = 0  # pictures not downloaded yet (an archive file's: ``audit media``)
    backlog: int = 0  # messages still to read after this run
    error: str | None = None  # why nothing was read (the source cannot serve pictures now)


MAX_ATTEMPTS = 3  # downloads of a picture before it is given up on


def pending_images(max_attempts: int = MAX_ATTEMPTS) -> Any:
    """Image messages in conversations with a picture not read yet (or a download to retry,
    or one not downloaded yet)."""
    failed = MessageImage.state == "failed"
    done = exists().where(
        MessageImage.message_id == Message.id,
        or_(
            MessageImage.state.not_in(("failed", "waiting")),
            failed & (MessageImage.attempts >= max_attempts),
        ),
    )
    retry = exists().where(
        MessageImage.message_id == Message.id,
        or_(failed & (MessageImage.attempts < max_attempts), MessageImage.state == "waiting"),
    )
    return select(
        Message.id, Message.msgtype, Message.raw, Message.sender_kind, Message.conversation_id
    ).where(
        Message.msgtype.in_(IMAGE_TYPES),
        Message.conversation_id.is_not(None),
        Message.consent_withheld.is_(False),
        or_(not_(done), retry),
    )


def image_status(session: Session, max_attempts: int = MAX_ATTEMPTS) -> dict[str, int]:
    """``audit status``'s ``images``: pictures read, with QR codes, with text, findings,
    and the backlog (image messages in conversations not read yet)."""
    read = (
        select(MessageImage.id, ImageScan.qr, ImageScan.ocr_read)
        .join(ImageScan, ImageScan.sha256 == MessageImage.sha256)
        .where(MessageImage.state == "read")
    )
    total = qr = ocr = 0
    for _id, codes, ocr_read in session.execute(read):
        total += 1
        qr += bool(codes)
        ocr += bool(ocr_read)
    findings = session.scalar(
        select(func.count())
        .select_from(Finding)
        .where(or_(Finding.rule.startswith(QR_RULE), Finding.rule.startswith(OCR_RULE)))
    )
    return {
        "total": total,
        "qr_decoded": qr,
        "ocr_read": ocr,
        "findings": int(findings or 0),
        "backlog": image_backlog(session, max_attempts),
    }


def not_read(session: Session, reason: str, max_attempts: int = MAX_ATTEMPTS) -> ImageStats:
    """A run of the image stage that could not fetch pictures: why, and the backlog left."""
    return ImageStats(backlog=image_backlog(session, max_attempts), error=reason)


def image_backlog(session: Session, max_attempts: int = MAX_ATTEMPTS) -> int:
    """Image messages with a picture still to read (or a download to retry)."""
    pending = pending_images(max_attempts).subquery()
    return int(session.scalar(select(func.count()).select_from(pending)) or 0)
