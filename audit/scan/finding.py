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

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``audit inspect``."""
        return {
            "category": self.category,
            "rule": self.rule,
            "severity": self.severity.value,
            "start": self.start,
            "end": self.end,
            "matched": self.matched,
            "score": self.score,
            "explanation": self.explanation,
        }


def after_normalization(steps: Iterable[str]) -> str:
    """The tail of an explanation: which normalization steps led to the match."""
    steps = list(steps)
    return f" after normalization: {', '.join(steps)}" if steps else ""
