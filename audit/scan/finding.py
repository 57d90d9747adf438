"""What the scanner reports: a rule that fired on a span of the original text."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from audit.store.models import Severity


@dataclass(frozen=True)
class Finding:
    category: str
    rule: str
    severity: Severity
    score: float
    start: int  # offsets into the ORIGINAL text, end exclusive
    end: int
    matched: str  # original[start:end]
    explanation: str
    # why the words around the hit lowered it ("negated by 没", "question (吗)"), see context.py
    context: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``audit inspect``; ``context`` only when there is one."""
        shape: dict[str, Any] = {
            "category": self.category,
            "rule": self.rule,
            "severity": self.severity.value,
            "start": self.start,
            "end": self.end,
            "matched": self.matched,
            "score": self.score,
            "explanation": self.explanation,
        }
        if self.context:
            shape["context"] = self.context
        return shape


def after_normalization(steps: Iterable[str]) -> str:
    """The tail of an explanation: which normalization steps led to the match."""
    steps = list(steps)
    return f" after normalization: {', '.join(steps)}" if steps else ""
