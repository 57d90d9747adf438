"""One image into findings: QR codes first (cheap), then OCR text through the scanner.

:func:`read_image` depends on the picture only, so its result is computed once per content
hash (in worker processes); :func:`image_findings` adds what depends on the message (the
sender's role) and the configuration (allow list), and runs the scanner on the text read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from audit.images import OCR_RULE, QR_RULE, ImageUnreadable
from audit.images.ocr import TextLine, read_lines
from audit.images.qr import Box, QrCode, classify, decode
from audit.scan.finding import Finding
from audit.scan.scanner import Scanner


@dataclass(frozen=True)
class ImageReading:
    """What is in a picture: its QR codes, and its text lines when OCR ran (else None)."""

    qr: tuple[QrCode, ...]
    lines: tuple[TextLine, ...] | None

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines or ())

    def as_json(self) -> dict[str, Any]:
        return {
            "qr": [{"payload": q.payload, "box": list(q.box)} for q in self.qr],
            "lines": None
            if self.lines is None
            else [{"text": t.text, "box": list(t.box), "score": t.score} for t in self.lines],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageReading:
        lines = data.get("lines")
        return cls(
            tuple(QrCode(q["payload"], _box(q["box"])) for q in data.get("qr", ())),
            None
            if lines is None
            else tuple(TextLine(t["text"], _box(t["box"]), t["score"]) for t in lines),
        )


@dataclass(frozen=True)
class ImageFinding:
    """A scanner-shaped finding on an image, with where it is and what was read there."""

    finding: Finding
    detail: dict[str, Any]  # {"source": "qr"|"ocr", "box": [l, t, r, b], "payload"|"text"}

    def as_dict(self) -> dict[str, Any]:
        return {**self.finding.as_dict(), **self.detail}


def read_image(data: bytes, ocr: bool = True) -> ImageReading:
    """Decode the picture's QR codes and, when ``ocr``, read its text."""
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise ImageUnreadable(f"not a decodable image ({len(data)} bytes)")
    image = np.asarray(decoded, dtype=np.uint8)
    codes = tuple(decode(image))
    return ImageReading(codes, tuple(read_lines(image)) if ocr else None)


def image_findings(
    reading: ImageReading, scanner: Scanner, role: str | None, allow: Sequence[str] = ()
) -> list[ImageFinding]:
    """The findings of a read image for a sender of ``role`` (None: every rule applies).

    QR findings are for staff (a customer showing their own contact card is no diversion);
    OCR text goes through the scanner like a message, offsets indexing :attr:`ImageReading.text`.
    """
    out: list[ImageFinding] = []
    if role != "customer":
        for code in reading.qr:
            kind = classify(code.payload, allow)
            if kind.severity is None:
                continue
            finding = Finding(
                category="diversion",
                rule=QR_RULE + kind.kind,
                severity=kind.severity,
                score=1.0,
                start=0,
                end=len(code.payload),
                matched=code.payload[:255],
                explanation=f"QR code in an image: {kind.label} ({code.payload[:80]})",
            )
            detail = {"source": "qr", "box": list(code.box), "payload": code.payload}
            out.append(ImageFinding(finding, detail))
    if reading.lines:
        text = reading.text
        starts = _line_starts(reading.lines)
        for found in scanner.scan(text, role):
            spanned = [
                line
                for line, at in zip(reading.lines, starts, strict=True)
                if at < found.end and found.start < at + len(line.text)
            ]
            finding = Finding(
                category=found.category,
                rule=OCR_RULE + found.rule,
                severity=found.severity,
                score=found.score,
                start=found.start,
                end=found.end,
                matched=found.matched,
                explanation=f"text read in an image: {found.explanation}",
            )
            detail = {
                "source": "ocr",
                "box": list(_union([line.box for line in spanned])),
                "text": " ".join(line.text for line in spanned),
            }
            out.append(ImageFinding(finding, detail))
    return out


def inspect_image(
    path: str, role: str | None, scanner: Scanner, allow: Sequence[str] = ()
) -> dict[str, Any]:
    """``audit inspect`` for an ``{"image": PATH}`` line: findings in the text shape, plus
    the text read (which OCR findings' offsets index) and the QR codes decoded."""
    with open(path, "rb") as fh:
        reading = read_image(fh.read(), ocr=True)
    return {
        "findings": [f.as_dict() for f in image_findings(reading, scanner, role, allow)],
        "scores": {},
        "text": reading.text,
        "qr": [
            {"payload": q.payload, "kind": classify(q.payload, allow).kind, "box": list(q.box)}
            for q in reading.qr
        ],
    }


def _line_starts(lines: Sequence[TextLine]) -> list[int]:
    starts, at = [], 0
    for line in lines:
        starts.append(at)
        at += len(line.text) + 1  # the "\n" joining them
    return starts


def _union(boxes: Sequence[Box]) -> Box:
    if not boxes:
        return (0, 0, 0, 0)
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _box(values: Sequence[int]) -> Box:
    left, top, right, bottom = (int(v) for v in values)
    return left, top, right, bottom
