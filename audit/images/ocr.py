"""Text in an image, read by RapidOCR (PP-OCRv4 Chinese detection and recognition on ONNX).

The models ship inside the ``rapidocr-onnxruntime`` wheel; nothing is downloaded. One engine
per process, loaded on first use, on one thread: the stage scales by processes instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audit.images.qr import Box


class OcrUnavailable(RuntimeError):
    """The OCR package is not installed (the optional ``images`` extra)."""


@dataclass(frozen=True)
class TextLine:
    text: str
    box: Box
    score: float


@lru_cache(maxsize=1)
def _engine() -> Any:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise OcrUnavailable(
            "OCR needs rapidocr-onnxruntime: pip install 'wecom-audit[images]'"
        ) from exc
    # Detection on the image scaled so its LONG side is at most 960 px (the package default
    # scales the short side UP to 736, twice the work on phone screenshots for the same text).
    return RapidOCR(
        intra_op_num_threads=1,
        inter_op_num_threads=1,
        det_limit_type="max",
        det_limit_side_len=960,
    )


def read_lines(image: NDArray[np.uint8], min_score: float = 0.5) -> list[TextLine]:
    """The text lines in a BGR image, top to bottom, each with its box and confidence."""
    # no angle classifier: chat screenshots and cards are upright, and it costs a model pass
    result, _elapsed = _engine()(image, use_cls=False)
    lines = []
    for quad, text, score in result or ():
        if float(score) < min_score or not str(text).strip():
            continue
        xs = [p[0] for p in quad]
        ys = [p[1] for p in quad]
        box = (int(min(xs)), int(min(ys)), int(np.ceil(max(xs))), int(np.ceil(max(ys))))
        lines.append(TextLine(str(text), box, round(float(score), 4)))
    return sorted(lines, key=lambda line: (line.box[1], line.box[0]))
