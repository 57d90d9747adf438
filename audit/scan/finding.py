"""What the scanner reports: a rule that fired on a span of the original text."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from audit.domain import Severity


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
    # how the text got past the plain list, "+"-joined: exact, variant, pinyin, initials,
    # homophone, polite, numerals, split_char, gap, traditional, fullwidth,
    # letters_for_digits, emoji_symbol, separators, repeats, lookalike, pattern, spelled_out
    technique: str = "exact"

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
            "technique": self.technique,
        }
        if self.context:
            shape["context"] = self.context
        return shape


# A listed hit scoring under this (downgraded by context or by a word boundary, 稳|赚钱) is
# under the default reporting cut: it does not keep a paraphrase detector from its category.
LISTED_SCORE = 0.5


def listed_categories(findings: Iterable[Finding]) -> set[str]:
    """The categories the word lists found in a message, of the findings scoring at least
    ``LISTED_SCORE``: where the paraphrase detectors add nothing of their own."""
    return {f.category for f in findings if f.score >= LISTED_SCORE}


def finding_row(
    f: Finding, message_id: int, conversation_id: int | None, run_id: int
) -> dict[str, Any]:
    """The ``findings`` row of ``f`` found in a message by scan run ``run_id`` (the stage
    that found it adds what else it knows: an image's box and payload in ``detail``)."""
    return {
        "message_id": message_id,
        "conversation_id": conversation_id,
        "scan_run_id": run_id,
        "category": f.category,
        "rule": f.rule,
        "severity": f.severity,
        "score": f.score,
        "start": f.start,
        "end": f.end,
        "matched": f.matched[:255],  # the column's width
        "explanation": f.explanation,
    }


def after_normalization(steps: Iterable[str]) -> str:
    """The tail of an explanation: which normalization steps led to the match."""
    steps = list(steps)
    return f" after normalization: {', '.join(steps)}" if steps else ""


# normalization steps that are a way of dodging a filter, by the technique they undo
_STEP_TECHNIQUES = {
    "traditional to simplified": "traditional",
    "fullwidth": "fullwidth",
    "circled digits": "numerals",
    "numeral form": "numerals",
    "chinese digits": "numerals",
    "letters for digits": "letters_for_digits",
    "emoji or symbol for a word": "emoji_symbol",
    "look-alike letter": "lookalike",
    "spacing removed": "separators",
    "symbols removed": "separators",
    "zero-width removed": "separators",
    "repeats collapsed": "repeats",
}


def technique_of(first: str, steps: Iterable[str]) -> str:
    """``first`` (the generator, or "exact"/"variant"/"pattern") and the techniques the
    normalization ``steps`` undid, "+"-joined without repeats."""
    found = [first] if first else []
    for step in steps:
        name = _STEP_TECHNIQUES.get(step)
        if name and name not in found:
            found.append(name)
    if len(found) > 1 and found[0] in ("exact", "pattern"):
        found.pop(0)  # a listed term spelled with separators is "separators"
    return "+".join(found) or "exact"
