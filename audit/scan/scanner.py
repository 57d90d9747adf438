"""The scanner: word-list terms and recognizers over one message.

Order of work, fixed: normalize; find every term and variant (Aho-Corasick over the
normalized text); drop matches lying inside an allow-list phrase, matches that cut an ASCII
word or number in two ("sb" in "usb", "12315" inside a longer number) and rules not for the
speaker's role; keep the leftmost-longest of what is left; run the recognizers, keeping the
longest of overlapping hits; map everything back to the original text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import ahocorasick

from audit.scan.finding import Finding, after_normalization
from audit.scan.normalize import Normalized, fold_char, normalize
from audit.scan.recognizers import Hit, Recognizer, TextView, default_recognizers
from audit.scan.wordlist import Term, WordLists, load_wordlists

__all__ = ["SCANNER_VERSION", "Finding", "Scanner"]

# Bump when a change to normalization, matching or recognizers can change findings.
SCANNER_VERSION = "0.1"
ROLES = ("staff", "customer")
TERM_SCORE = 1.0
VARIANT_SCORE = 0.9


@dataclass(frozen=True)
class _Spelling:
    term: Term
    written: str  # the spelling as the list has it
    variant: bool


class Scanner:
    version: ClassVar[str] = SCANNER_VERSION

    def __init__(self, lists: WordLists, recognizers: Sequence[Recognizer] | None = None) -> None:
        self.lists = lists
        self.recognizers = tuple(default_recognizers() if recognizers is None else recognizers)
        spellings: dict[str, list[_Spelling]] = {}
        for term in lists.terms:
            for written, variant in [(term.term, False)] + [(v, True) for v in term.variants]:
                key = normalize(written).text
                spellings.setdefault(key, []).append(_Spelling(term, written, variant))
        self._terms = _automaton({key: (len(key), tuple(s)) for key, s in spellings.items()})
        self._allow = _automaton(
            {key: len(key) for key in (normalize(p).text for p in lists.allow)}
        )

    @classmethod
    def from_directory(cls, path: Path) -> Scanner:
        return cls(load_wordlists(path))

    @property
    def wordlist_hash(self) -> str:
        return self.lists.wordlist_hash

    def scan(self, text: str, role: str | None = None) -> list[Finding]:
        """Findings in ``text`` said by ``role`` (None: every rule applies), by start offset."""
        if role is not None and role not in ROLES:
            raise ValueError(f"unknown role {role!r} (expected staff, customer or None)")
        norm = normalize(text)
        findings = self._terms_in(text, norm, role) + self._recognized(text, norm, role)
        return sorted(findings, key=lambda f: (f.start, f.end, f.rule))

    def _terms_in(self, text: str, norm: Normalized, role: str | None) -> list[Finding]:
        allowed = [(end + 1 - n, end + 1) for end, n in _iter(self._allow, norm.text)]
        candidates: list[tuple[int, int, list[_Spelling]]] = []
        for last, (length, spellings) in _iter(self._terms, norm.text):
            start, end = last + 1 - length, last + 1
            if any(a <= start and end <= b for a, b in allowed):
                continue
            if not _whole_ascii_words(text, norm, start, end):
                continue
            fitting = [s for s in spellings if s.term.applies_to(role)]
            if fitting:
                candidates.append((start, end, fitting))
        # leftmost-longest, done here: pyahocorasick's iter_long is unreliable in 2.3.x
        candidates.sort(key=lambda c: (c[0], -c[1]))
        findings: list[Finding] = []
        taken_until = 0
        for start, end, fitting in candidates:
            if start < taken_until:
                continue
            taken_until = end
            o_start, o_end = norm.span(start, end)
            steps = after_normalization(norm.steps_between(o_start, o_end))
            for spelling in fitting:
                term = spelling.term
                variant = f" (variant {spelling.written})" if spelling.variant else ""
                findings.append(
                    Finding(
                        category=term.category,
                        rule=term.rule,
                        severity=term.severity,
                        score=VARIANT_SCORE if spelling.variant else TERM_SCORE,
                        start=o_start,
                        end=o_end,
                        matched=text[o_start:o_end],
                        explanation=f"term {term.term}{variant}{steps}",
                    )
                )
        return findings

    def _recognized(self, text: str, norm: Normalized, role: str | None) -> list[Finding]:
        view = TextView(text, norm)
        hits: list[tuple[Recognizer, Hit]] = [
            (recognizer, hit)
            for recognizer in self.recognizers
            if role is None or role in recognizer.ROLES
            for hit in recognizer.analyze(view)
        ]
        hits.sort(key=lambda rh: (rh[1].start - rh[1].end, -rh[0].PRIORITY, rh[1].start))
        kept: list[tuple[Recognizer, Hit]] = []
        for recognizer, hit in hits:
            if all(hit.end <= other.start or other.end <= hit.start for _, other in kept):
                kept.append((recognizer, hit))
        return [
            Finding(
                category=recognizer.CATEGORY,
                rule=recognizer.RULE,
                severity=recognizer.SEVERITY,
                score=hit.score,
                start=hit.start,
                end=hit.end,
                matched=text[hit.start : hit.end],
                explanation=f"{recognizer.LABEL} ({hit.detail})"
                + (
                    after_normalization(norm.steps_between(hit.start, hit.end))
                    if recognizer.NORMALIZED
                    else ""
                ),
            )
            for recognizer, hit in kept
        ]


def _automaton(words: dict[str, Any]) -> Any:
    automaton = ahocorasick.Automaton()
    for key, value in words.items():
        automaton.add_word(key, value)
    if words:
        automaton.make_automaton()
    return automaton


def _iter(automaton: Any, text: str) -> list[tuple[int, Any]]:
    # an automaton without words cannot be iterated at all
    return list(automaton.iter(text)) if len(automaton) else []


def _kind(char: str) -> str | None:
    if char.isascii() and char.isalpha():
        return "letter"
    if char.isascii() and char.isdigit():
        return "digit"
    return None


def _whole_ascii_words(text: str, norm: Normalized, start: int, end: int) -> bool:
    """False when an ASCII edge of the match continues, in the original, with the same kind."""
    o_start, o_end = norm.span(start, end)
    first, last = _kind(norm.text[start]), _kind(norm.text[end - 1])
    if first and o_start > 0 and _kind(fold_char(text[o_start - 1])[0]) == first:
        return False
    return not (last and o_end < len(text) and _kind(fold_char(text[o_end])[0]) == last)
