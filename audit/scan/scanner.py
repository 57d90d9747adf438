"""The scanner: word-list terms and recognizers over one message.

Order of work, fixed:

1. Fast path. The message is folded and encoded in one ``str.translate`` (``automaton.py``)
   and the automaton is asked for a first match. No match, no run of five digits and no
   ``@``: nothing can be found, and the message is done. (Repeats that normalization would
   collapse, 微微微, are keys of the automaton, so they count as a match.) Most chat
   messages end here.
2. Normalize with the offset map (``normalize.py``), encode, and collect every match of a
   term, a variant, an allow phrase or a recognizer's context word (Aho-Corasick ``iter``).
3. Drop matches lying inside an allow phrase, matches that cut an ASCII word or number in two
   ("sb" in "usb", "12315" inside a longer number) and rules not for the speaker's role;
   keep the leftmost-longest of what is left (computed here: pyahocorasick's ``iter_long``
   is wrong in 2.3.x).
4. Downgrade a short match (up to ``STRADDLE_MAX_LEN`` characters) whose edge falls inside a
   word as jieba segments the message (口交 in 路口|交通): one severity lower and a lower
   score, and the explanation says so. It stays a finding: a supervisor can still see it.
5. Run the recognizers, keeping the longest of overlapping hits; map everything back to the
   original text.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, ClassVar

from audit.scan.automaton import (
    SLOW_MARK,
    SLOW_PATTERN,
    Compiled,
    cache_dir,
    cache_key,
    compile_keys,
    load_cached,
    store_cached,
)
from audit.scan.context import judge as judge_context
from audit.scan.finding import Finding, after_normalization
from audit.scan.normalize import DEFAULT_COLLAPSE, Normalized, fold_char, normalize
from audit.scan.recognizers import (
    EmailRecognizer,
    Hit,
    NumberRecognizer,
    Recognizer,
    TextView,
    WeChatIdRecognizer,
    default_recognizers,
)
from audit.scan.variants import generate_variants
from audit.scan.wordlist import Term, WordLists, load_wordlists
from audit.store.models import Severity

__all__ = ["SCANNER_VERSION", "Finding", "Scanner"]

# Bump when a change to normalization, matching or recognizers can change findings.
SCANNER_VERSION = "0.2"
ROLES = ("staff", "customer")
NUMBERS_OR_EMAIL = (NumberRecognizer, EmailRecognizer)
TERM_SCORE = 1.0
VARIANT_SCORE = 0.9
GENERATED_SCORE = 0.8
DOWNGRADE_FACTOR = 0.4  # score of a match that straddles a word boundary
# Only short matches are checked against word boundaries: 口交 in 路口|交通 is an accident
# of two words meeting, 加我微信 in 加|我|微|信号 is jieba not knowing 微信号.
STRADDLE_MAX_LEN = 3
STRADDLE_WINDOW = 6  # characters on each side of the match that jieba sees
_LOWER = {
    Severity.CRITICAL: Severity.HIGH,
    Severity.HIGH: Severity.MEDIUM,
    Severity.MEDIUM: Severity.LOW,
    Severity.LOW: Severity.LOW,
}
# payload flags
_ALLOW = 1
_TRIGGER = 2

# (term index, spelling as written or generated, kind: "" term, "variant", or a generator)
_Spelling = tuple[int, str, str]
# (normalized length, spellings, flags)
_Payload = tuple[int, tuple[_Spelling, ...], int]


@dataclass(frozen=True)
class _Candidate:
    start: int  # normalized offsets
    end: int
    spellings: tuple[_Spelling, ...]


class Scanner:
    version: ClassVar[str] = SCANNER_VERSION

    def __init__(
        self,
        lists: WordLists,
        recognizers: Sequence[Recognizer] | None = None,
        *,
        collapse: int = DEFAULT_COLLAPSE,
        use_cache: bool = True,
        cache_path: Path | None = None,
    ) -> None:
        """``collapse``: repeats of that many characters read as one (0: off). The compiled
        automaton is cached in ``cache_path`` (default ``automaton.cache_dir()``), keyed by
        the lists' hash, the scanner version and the options."""
        self.lists = lists
        self.recognizers = tuple(default_recognizers() if recognizers is None else recognizers)
        self.collapse = collapse
        directory = (cache_path or cache_dir()) if use_cache else None
        key = cache_key(
            lists.wordlist_hash, SCANNER_VERSION, str(collapse), ",".join(_TRIGGER_WORDS)
        )
        compiled = load_cached(directory, key)
        if not isinstance(compiled, Compiled):
            compiled = compile_keys(_keys(lists, collapse))
            store_cached(directory, key, compiled)
        self._compiled = compiled
        self._automaton = compiled.automaton
        self._payloads: tuple[_Payload, ...] = compiled.values
        self._table = compiled.alphabet.table
        self._empty = not len(compiled.automaton)

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
        codes = text.translate(self._table)
        # a run of 5+ digits or an @: the only texts the number and e-mail recognizers can
        # match (separators and numerals are folded into the codes already)
        numbers = SLOW_MARK in codes and SLOW_PATTERN.search(codes) is not None
        if not numbers and (self._empty or next(self._automaton.iter(codes), None) is None):
            return []
        norm = normalize(text, self.collapse)
        findings = self._terms_in(text, norm, role) + self._recognized(text, norm, role, numbers)
        findings = judge_context(text, norm, role, findings)  # negated, asked, quoted ...
        return sorted(findings, key=lambda f: (f.start, f.end, f.rule))

    # ------------------------------------------------------------------------- terms

    def _matches(self, norm: Normalized) -> list[tuple[int, _Payload]]:
        """(normalized end, payload) of every key found."""
        if self._empty:
            return []
        codes = self._compiled.alphabet.encode(norm.text)
        payloads = self._payloads
        return [(end // 2 + 1, payloads[value]) for end, value in self._automaton.iter(codes)]

    def _terms_in(self, text: str, norm: Normalized, role: str | None) -> list[Finding]:
        matches = self._matches(norm)
        allowed = [(end - n, end) for end, (n, _, flags) in matches if flags & _ALLOW]
        terms = self.lists.terms
        candidates: list[_Candidate] = []
        for end, (length, spellings, _) in matches:
            if not spellings:
                continue
            start = end - length
            if any(a <= start and end <= b for a, b in allowed):
                continue
            if not _whole_ascii_words(text, norm, start, end):
                continue
            fitting = tuple(s for s in spellings if terms[s[0]].applies_to(role))
            if fitting:
                candidates.append(_Candidate(start, end, fitting))
        candidates.sort(key=lambda c: (c.start, -c.end))
        findings: list[Finding] = []
        taken_until = 0
        for candidate in candidates:
            if candidate.start < taken_until:
                continue
            taken_until = candidate.end
            straddled = ""
            if candidate.end - candidate.start <= STRADDLE_MAX_LEN and _cjk_edge(
                norm.text, candidate.start, candidate.end
            ):
                straddled = _straddled(norm.text, candidate.start, candidate.end)
            findings.extend(self._term_findings(text, norm, candidate, straddled))
        return findings

    def _term_findings(
        self, text: str, norm: Normalized, candidate: _Candidate, straddled: str
    ) -> list[Finding]:
        o_start, o_end = norm.span(candidate.start, candidate.end)
        steps = after_normalization(norm.steps_between(o_start, o_end))
        out = []
        for index, written, kind in candidate.spellings:
            term: Term = self.lists.terms[index]
            score = {"": TERM_SCORE, "variant": VARIANT_SCORE}.get(kind, GENERATED_SCORE)
            severity = term.severity
            note = f" (variant {written})" if kind == "variant" else ""
            note = f" ({kind} variant {written})" if kind not in ("", "variant") else note
            tail = ""
            if straddled:
                severity, score = _LOWER[severity], round(score * DOWNGRADE_FACTOR, 3)
                tail = f"; downgraded: crosses a word boundary ({straddled})"
            out.append(
                Finding(
                    category=term.category,
                    rule=term.rule,
                    severity=severity,
                    score=score,
                    start=o_start,
                    end=o_end,
                    matched=text[o_start:o_end],
                    explanation=f"term {term.term}{note}{steps}{tail}",
                )
            )
        return out

    # ------------------------------------------------------------------- recognizers

    def _recognized(
        self, text: str, norm: Normalized, role: str | None, numbers: bool = True
    ) -> list[Finding]:
        view = TextView(text, norm)
        hits: list[tuple[Recognizer, Hit]] = [
            (recognizer, hit)
            for recognizer in self.recognizers
            if (role is None or role in recognizer.ROLES)
            and (numbers or not isinstance(recognizer, NUMBERS_OR_EMAIL))
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


# Words that send a message down the slow path although no rule is a match: the context
# words of recognizers that do not need digits (a WeChat id may have none, or only a few).
_TRIGGER_WORDS = WeChatIdRecognizer.TRIGGERS


def _keys(lists: WordLists, collapse: int) -> dict[str, _Payload]:
    """Every normalized spelling -> (length, spellings, flags); explicit spellings first."""
    homophones = {h.char: h for h in lists.homophones}
    spellings: dict[str, list[_Spelling]] = {}
    seen: set[tuple[str, str]] = set()  # (category, key): a generated duplicate is dropped

    def add(key: str, index: int, written: str, kind: str) -> None:
        category = lists.terms[index].category
        if key and (category, key) not in seen:
            seen.add((category, key))
            spellings.setdefault(key, []).append((index, written, kind))

    for index, term in enumerate(lists.terms):
        add(normalize(term.term, collapse).text, index, term.term, "")
        for variant in term.variants:
            add(normalize(variant, collapse).text, index, variant, "variant")
    for index, term in enumerate(lists.terms):
        for written in (term.term, *term.variants) if term.generate else ():
            base = normalize(written, collapse).text
            for generated in generate_variants(base, term.generate, homophones):
                add(normalize(generated, collapse).text, index, generated, "generated")
    flags: dict[str, int] = {}
    for phrase in lists.allow:
        key = normalize(phrase, collapse).text
        flags[key] = flags.get(key, 0) | _ALLOW
    for word in _TRIGGER_WORDS:
        key = normalize(word, collapse).text
        flags[key] = flags.get(key, 0) | _TRIGGER
    if collapse >= 2:  # a run normalization collapses sends the message to the full scan
        letters = {c for key in spellings for c in key if not c.isdigit()}
        for char in letters:
            flags[char * collapse] = flags.get(char * collapse, 0) | _TRIGGER
    keys = {k: (len(k), tuple(v), flags.pop(k, 0)) for k, v in spellings.items()}
    keys.update({k: (len(k), (), f) for k, f in flags.items()})
    return keys


@cache
def _jieba() -> Any:
    import jieba  # loading its dictionary takes a second: only when a match needs it

    jieba.setLogLevel(60)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


@lru_cache(maxsize=4096)
def word_boundaries(text: str) -> frozenset[int]:
    """Offsets in ``text`` where jieba starts or ends a word."""
    bounds = {0}
    position = 0
    for word in _jieba().cut(text, HMM=False):
        position += len(word)
        bounds.add(position)
    return frozenset(bounds)


def _is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff"


def _cjk_edge(text: str, start: int, end: int) -> bool:
    return _is_cjk(text[start]) or _is_cjk(text[end - 1])


def _straddled(text: str, start: int, end: int) -> str:
    """ "" when the match starts and ends on word boundaries, else the words it cuts.

    jieba sees only a window around the match: its cost grows with the text, and words
    further away do not move these two boundaries in practice.
    """
    left = max(0, start - STRADDLE_WINDOW)
    window = text[left : end + STRADDLE_WINDOW]
    boundaries = word_boundaries(window)
    start, end = start - left, end - left
    cut_start = _is_cjk(window[start]) and start not in boundaries
    cut_end = _is_cjk(window[end - 1]) and end not in boundaries
    if not (cut_start or cut_end):
        return ""
    ordered = sorted(boundaries | {len(window)})
    first = max(b for b in ordered if b <= start)
    last = min(b for b in ordered if b >= end)
    words = [window[a:b] for a, b in itertools.pairwise(ordered) if first <= a < last]
    return "|".join(words)


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
