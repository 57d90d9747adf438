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
   ("sb" in "usb", "12315" inside a longer number), a number that is an amount (12300 in
   「123.00元」 or 「一共12300元」, ``quantity.py``) and rules not for the speaker's role;
   keep the leftmost-longest of what is left (computed here: pyahocorasick's ``iter_long``
   is wrong in 2.3.x).
4. Downgrade a short match (up to ``STRADDLE_MAX_LEN`` characters) whose edge falls inside a
   word as jieba segments the message (口交 in 路口|交通): one severity lower and a lower
   score, and the explanation says so. It stays a finding: a supervisor can still see it.
5. Join the halves of a term that a few filler characters separate (保证**一定**收益: the
   automaton holds each term's halves too), when nothing in between negates it or ends a
   sentence and jieba sees the halves as whole words; the more it skips, the lower the score.
6. Run the recognizers, keeping the longest of overlapping hits; map everything back to the
   original text.

``scan`` is ``_collect`` (all of the above) and a sort: whatever judges the findings as a
whole (their context) goes between the two. ``scan_many`` gives each text of a batch what
``scan`` gives it, in less time: step 1 is taken for a block of texts joined at once (one
translation per text, one automaton pass, a few searches, at C level), and only the texts it
leaves take steps 2-6, with the codes and matches the block found.

A message longer than ``CHUNK`` characters is scanned in chunks that overlap by ``OVERLAP``
(longer than any match), so the work per character is bounded and a term across a chunk
edge is still found; a rule reports at most ``MAX_PER_RULE`` findings per message.

Every finding's ``technique`` says what led to it: the generator of the spelling
(``variants.py``), a gap, and the normalization steps that undid a disguise.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import operator
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any, ClassVar

import ahocorasick

from audit.domain import Severity
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
from audit.scan.finding import Finding, after_normalization, technique_of
from audit.scan.normalize import (
    DEFAULT_COLLAPSE,
    DIGIT_CHARS,
    EMOJI_SYMBOL,
    SPACING,
    SYMBOLS,
    FoldTable,
    Normalized,
    normalize,
)
from audit.scan.quantity import quantity_reason
from audit.scan.recognizers import (
    Hit,
    NumberRecognizer,
    Recognizer,
    TextView,
    WeChatIdRecognizer,
    default_recognizers,
    may_hold_contact,
)
from audit.scan.segment import tokenizer
from audit.scan.variants import GAP, SPLIT_CHAR, Tables, generate_variants, plausible
from audit.scan.wordlist import CATEGORIES, Term, WordLists, load_wordlists

__all__ = ["SCANNER_VERSION", "Finding", "Scanner"]

# Bump when a change to normalization, matching or recognizers can change findings.
SCANNER_VERSION = "0.7"
ROLES = ("staff", "customer")
NUMBERS = (NumberRecognizer,)
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
# Gap-tolerant matching: a term of at least GAP_MIN_TERM characters may have up to GAP_MAX
# filler characters between two halves of at least GAP_MIN_HALF characters each.
GAP_MIN_TERM = 4
GAP_MIN_HALF = 2
GAP_MAX = 3
GAP_SCORES = {1: 0.75, 2: 0.65, 3: 0.55}
# filler that turns the phrase around (保证不了收益) or ends a sentence is no filler
GAP_STOP = frozenset("不没别无未非莫勿甭")
_SENTENCE_END = re.compile(r"[，。！？；,.!?;\n…]")
# Long messages: scanned CHUNK characters at a time, each chunk overlapping the next by
# OVERLAP (more than any term, gap or number with its separators).
CHUNK = 4096
OVERLAP = 256
MAX_PER_RULE = 50
# findings of one message: past this many, a rule with none reported yet is still looked for
# until one is (every rule and category present is reported), the others no more
MAX_PER_MESSAGE = 1000
MAX_GAP_CANDIDATES = 64  # per chunk: each costs a look by jieba
# looks by jieba at gap candidates in one message: past them, terms are matched as spelled
# (a megabyte of 加我们微信, each 们 a gap jieba rejects, costs no more than a chat message)
MAX_GAP_LOOKS = 1000
# A long message in which most keys can no longer make a finding (their rules spent) is
# matched, from then on, against an automaton of the keys that still can: its matches are
# exactly those of the full automaton less the dead ones, so the findings are the same.
# Worth making (a few hundredths of a second) with this much text left and this few live.
REDUCE_MIN_REST = 64 * CHUNK
REDUCE_MAX_LIVE = 0.25
# scan_many: texts joined for one pass of the fast path's tests, and the longest text
# joined (a longer one seldom passes the fast path: it is scanned by itself, at no extra cost)
BATCH = 1024
BATCH_MAX_LEN = 512
# what may_hold_contact looks for first: a text with none of it holds no contact cue
_CONTACT_HINT = re.compile("[:：#＃圈鼠]|艾特|at|AT")
# payload flags
_ALLOW = 1
_TRIGGER = 2
_REPEATS = 4

# what a match must be checked for in the original, by the characters at its edges: an
# ASCII letter or digit may continue a word or number there (_whole_ascii_words), a digit
# may be part of an amount (_an_amount)
_EDGE_ASCII = 1
_EDGE_DIGIT = 2

# (term index, spelling as written or generated, kind: "" term, "variant", or a technique)
_Spelling = tuple[int, str, str]
# (normalized length, spellings, flags, half id: -1 when the key is no term's half)
_Payload = tuple[int, tuple[_Spelling, ...], int, int]
# a term split in two: (the whole key's spellings, left length, right length)
_Pair = tuple[tuple[_Spelling, ...], int, int]
# what the fast path found in a text: a run of digits or an @, the automaton's matches, and
# the halves they join (scan_many)
_Found = tuple[bool, list[tuple[int, int]], list[tuple[_Pair, int, int]]]


@dataclass(frozen=True)
class _Keys:
    """Everything the automaton is built from; ``values`` ids below ``half_only`` are keys
    that can make a finding by themselves."""

    values: tuple[_Payload, ...]
    keys: tuple[str, ...]
    pairs: dict[tuple[int, int], _Pair]  # (left half id, right half id) -> the term
    half_only: int


@dataclass(frozen=True)
class _Candidate:
    start: int  # normalized offsets
    end: int
    spellings: tuple[_Spelling, ...]
    skipped: tuple[int, int] | None = None  # a gap: the normalized span skipped


class _Derived:
    """The scanner's lookup tables by automaton value, worked out from the keys once and
    cached with the automaton (a start then only unpickles them)."""

    __slots__ = (
        "edges", "half_rules", "half_values", "halves_of_rule", "left_set", "left_values",
        "partners", "repeats", "right_less_one", "right_values", "rules", "trigger_values",
        "values_of_rule",
    )  # fmt: skip

    def __init__(self, payloads: tuple[_Payload, ...], built: _Keys, lists: WordLists) -> None:
        pairs_of: dict[int, dict[int, _Pair]] = {}  # left half id -> {right half id -> term}
        for (left, right), pair in built.pairs.items():
            pairs_of.setdefault(left, {})[right] = pair
        right_ids = {right for _, right in built.pairs}
        # by automaton value: the terms a left half starts, and a right half's (length, id)
        self.left_values = {v: pairs_of[p[3]] for v, p in enumerate(payloads) if p[3] in pairs_of}
        self.right_values = {v: (p[0], p[3]) for v, p in enumerate(payloads) if p[3] in right_ids}
        # a right half's length less one: its start is its code end // 2 less that
        self.right_less_one = {v: length - 1 for v, (length, _) in self.right_values.items()}
        # a left half's value -> the values of the right halves that complete one of its
        # terms: most texts with halves have no half and its partner at all
        value_of_half = {p[3]: v for v, p in enumerate(payloads) if p[3] >= 0}
        self.partners = {
            v: frozenset(value_of_half[right] for right in by_right)
            for v, by_right in self.left_values.items()
        }
        self.left_set = frozenset(self.partners)
        # by automaton value, 1 when it is some term's half (bytes, so that itertools.compress
        # picks those matches at C level)
        self.half_values = bytes(p[3] >= 0 for p in payloads)
        # the values of keys that only say "repeats here" (微微微): normalization collapses them
        self.repeats = frozenset(
            v for v, (_, spellings, flags, _) in enumerate(payloads) if flags & _REPEATS
        )
        # what a match of each value must be checked for in the original (_EDGE_* flags)
        self.edges = tuple(_edge_checks(key, 0, len(key)) for key in built.keys)
        # the rules each automaton value can report, to skip the matches of a capped rule
        term_rules = [term.rule for term in lists.terms]
        shared: dict[frozenset[str], frozenset[str]] = {}
        self.rules = tuple(
            shared.setdefault(rules, rules)
            for rules in (
                frozenset([term_rules[index] for index, _, _ in spellings])
                for _, spellings, _, _ in payloads
            )
        )
        # each rule's values (allow phrases are of none: they are looked at whatever is spent)
        self.values_of_rule: dict[str, list[int]] = {}
        for value, (rules, payload) in enumerate(zip(self.rules, payloads, strict=True)):
            if not payload[2] & _ALLOW:
                for rule in rules:
                    self.values_of_rule.setdefault(rule, []).append(value)
        # a half's value -> the rules of every term it is a half of: once all are spent in a
        # message, its matches join into nothing worth a look
        of_half: dict[int, set[str]] = {}
        for (left, right), (spellings, _, _) in built.pairs.items():
            of_pair = {term_rules[index] for index, _, _ in spellings}
            of_half.setdefault(left, set()).update(of_pair)
            of_half.setdefault(right, set()).update(of_pair)
        self.half_rules = {
            v: shared.setdefault(frozenset(of_half[p[3]]), frozenset(of_half[p[3]]))
            for v, p in enumerate(payloads)
            if p[3] in of_half
        }
        self.halves_of_rule: dict[str, list[int]] = {}
        for value, rules in self.half_rules.items():
            for rule in rules:
                self.halves_of_rule.setdefault(rule, []).append(value)
        # the values of the recognizers' context words (微信号: an id may follow)
        self.trigger_values = frozenset(v for v, p in enumerate(payloads) if p[2] & _TRIGGER)


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
        # (role, numbers) -> the recognizers to run: those for the role, and those of numbers
        # only when the text has a run of digits
        self._recognizers_for = {
            (role, numbers): tuple(
                r
                for r in self.recognizers
                if (role is None or role in r.ROLES) and (numbers or not isinstance(r, NUMBERS))
            )
            for role in (None, *ROLES)
            for numbers in (False, True)
        }
        self.collapse = collapse
        symbols = tuple((s.symbol, s.means) for s in lists.symbols)
        self.fold = FoldTable(dict(symbols))
        directory = (cache_path or cache_dir()) if use_cache else None
        key = cache_key(
            lists.wordlist_hash, SCANNER_VERSION, str(collapse), ",".join(_TRIGGER_WORDS)
        )
        cached = load_cached(directory, key)
        if not (isinstance(cached, tuple) and len(cached) == 3):
            built = _keys(lists, collapse)
            compiled = compile_keys(dict(zip(built.keys, built.values, strict=True)), symbols)
            cached = (compiled, built, _Derived(compiled.values, built, lists))
            store_cached(directory, key, cached)
        compiled, built, derived = cached
        self._compiled: Compiled = compiled
        self._automaton = compiled.automaton
        self._payloads: tuple[_Payload, ...] = compiled.values
        self._pairs = built.pairs
        self._keys = built.keys  # by automaton value: its normalized key
        self._half_only = built.half_only
        self._left_values = derived.left_values
        self._right_values = derived.right_values
        self._right_less_one = derived.right_less_one
        self._partners = derived.partners
        self._left_set = derived.left_set
        self._half_values = derived.half_values
        self._repeats = derived.repeats
        self._edges = derived.edges
        self._rules = derived.rules
        self._values_of_rule = derived.values_of_rule
        self._half_rules = derived.half_rules
        self._halves_of_rule = derived.halves_of_rule
        self._trigger_values = derived.trigger_values
        # per role (None: every rule applies), each value's spellings of the terms held to
        # that role, and 1 when the term pass looks at a match of the value (spellings of a
        # term for the role, or an allow phrase): a match of a term the speaker is not held
        # to makes no candidate at all (a customer's 加我微信 repeated a quarter of a million
        # times). Made when a role is first scanned: `audit inspect` pays for the roles it meets
        self._role_tables: dict[str | None, tuple[tuple[tuple[_Spelling, ...], ...], bytes]] = {}
        self._table = compiled.alphabet.table
        self._fold_list = compiled.alphabet.folded_table()
        # 1 where normalization keeps the character (picked at C level: 1.1M code points)
        kept = {"": "\x00"}
        self.fold.kept_list = list(map(kept.get, self._fold_list, itertools.repeat("\x01")))
        self._empty = not len(compiled.automaton)
        # between texts joined for one automaton pass (scan_many): the code of characters
        # in no key, which no key holds, and long enough that no gap joins halves across it
        self._separator = compiled.alphabet.other * (GAP_MAX + 1)

    @classmethod
    def from_directory(cls, path: Path, categories: Iterable[str] = CATEGORIES) -> Scanner:
        """A scanner for the lists in ``path``; each of ``categories`` must have its list."""
        return cls(load_wordlists(path, categories))

    @property
    def wordlist_hash(self) -> str:
        return self.lists.wordlist_hash

    def scan(self, text: str, role: str | None = None) -> list[Finding]:
        """Findings in ``text`` said by ``role`` (None: every rule applies), by start offset."""
        if role is not None and role not in ROLES:
            raise ValueError(f"unknown role {role!r} (expected staff, customer or None)")
        findings = self._collect(text, role)
        if len(findings) < 2:
            return findings
        return sorted(findings, key=lambda f: (f.start, f.end, f.rule))

    def scan_many(
        self, texts: Sequence[str], roles: Sequence[str | None] | None = None
    ) -> list[list[Finding]]:
        """``[scan(t, r) for t, r in zip(texts, roles)]`` (``roles`` None: None for every
        text): the same findings, in less time. Most messages have nothing to find: the
        fast path's test is made for a whole block of texts at once (``_block``), and
        only the texts it leaves are scanned, one by one, with the codes and matches the
        block found. A text repeated in the batch (好的, 收到, a notice) is tested once,
        and scanned once per role."""
        if roles is None:
            roles = [None] * len(texts)
        elif len(roles) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(roles)} roles")
        unknown = set(roles) - {None, *ROLES}
        if unknown:
            raise ValueError(f"unknown role {unknown.pop()!r} (expected staff, customer or None)")
        # the distinct texts, in order; each of those the fast path would not end ->
        # what it found (_Found) when short, None when long (scanned from the start)
        distinct = list(dict.fromkeys(texts))
        scanned: dict[str, _Found | None] = {}
        short = [t for t in distinct if len(t) <= BATCH_MAX_LEN]
        scanned.update(dict.fromkeys(t for t in distinct if len(t) > BATCH_MAX_LEN))
        for begin in range(0, len(short), BATCH):
            scanned.update(self._block(short[begin : begin + BATCH]))
        found: list[list[Finding]] = [[] for _ in texts]
        done: dict[tuple[str, str | None], list[Finding]] = {}
        for i in itertools.compress(range(len(texts)), map(scanned.__contains__, texts)):
            text, role = texts[i], roles[i]
            findings = done.get((text, role))
            if findings is None:
                pre = scanned[text]
                if pre is None:
                    findings = self.scan(text, role)
                else:
                    findings = self._scan_found(text, role, _Quota(), *pre)
                    if len(findings) > 1:
                        findings.sort(key=lambda f: (f.start, f.end, f.rule))
                done[text, role] = findings
            found[i] = list(findings)
        return found

    def _block(self, texts: list[str]) -> dict[str, _Found]:
        """Of ``texts`` (distinct, each one chunk at most), those that leave the fast path
        of ``_scan_chunk`` (a run of digits or an @, a key that can make a
        finding, two halves of a term close enough to be joined, a contact cue), each with
        whether it has a run of digits or an @, its automaton matches and the halves they
        join (``_joined``): what ``_scan_chunk`` finds, found for all of them at once.

        Their codes are joined by a separator no key holds (the code of characters in no
        key), so no match spans two texts, and GAP_MAX + 1 characters long, so no gap
        joins halves across it; a text's matches are those of its own codes, in the same
        order (the automaton is at its root after the separator). One search for digit runs
        and @, one automaton pass and one search for contact hints (in the original texts
        joined) find what the fast path's test would in each text, mapped back to texts
        by bisection."""
        codes = list(map(str.translate, texts, itertools.repeat(self._table)))
        separator = self._separator
        joined = separator.join(codes)
        step = len(separator)
        # where each text's codes start, and end with the separator after them, in ``joined``
        ends = list(
            map(
                operator.add,
                itertools.accumulate(map(len, codes)),
                range(step, step * len(codes) + 1, step),
            )
        )
        starts = [0, *ends[:-1]]
        of = functools.partial(bisect.bisect_right, ends)
        numbers: set[int] = set()
        if SLOW_MARK in joined:
            numbers.update(map(of, map(_start_of, SLOW_PATTERN.finditer(joined))))
        needing = set(numbers)
        matches: list[tuple[int, int]] = []
        gaps: dict[int, list[tuple[_Pair, int, int]]] = {}
        if not self._empty:
            matches = list(self._automaton.iter(joined))
            if matches:
                values = map(itemgetter(1), matches)
                whole = itertools.compress(matches, map(self._half_only.__gt__, values))
                needing.update(map(of, map(itemgetter(0), whole)))
                # halves joined, by text (a left half's end, normalized, is its last code's
                # position // 2 + 1): what _joined yields on the text's matches alone
                for pair, left_end, right_start in self._joined(matches):
                    i = of(2 * left_end - 1)
                    shift = starts[i] // 2
                    gaps.setdefault(i, []).append((pair, left_end - shift, right_start - shift))
                needing.update(gaps)
        originals = "\n".join(texts)
        if _CONTACT_HINT.search(originals):
            text_ends = list(
                map(operator.add, itertools.accumulate(map(len, texts)), range(1, len(texts) + 1))
            )
            hints = map(_start_of, _CONTACT_HINT.finditer(originals))
            hinted = set(map(functools.partial(bisect.bisect_right, text_ends), hints))
            needing.update(i for i in hinted - needing if may_hold_contact(texts[i]))
        ends_found = list(map(itemgetter(0), matches))
        out = {}
        for i in sorted(needing):
            start = starts[i]
            lo = bisect.bisect_left(ends_found, start)
            hi = bisect.bisect_left(ends_found, ends[i], lo)
            own = matches[lo:hi]
            if start and own:
                own = list(
                    zip(
                        map(operator.sub, ends_found[lo:hi], itertools.repeat(start)),
                        map(itemgetter(1), own),
                        strict=True,
                    )
                )
            out[texts[i]] = (i in numbers, own, gaps.get(i, []))
        return out

    def _collect(self, text: str, role: str | None) -> list[Finding]:
        """Every term and recognizer finding, in no particular order; a long text chunk by
        chunk."""
        per_rule = _Quota()  # findings so far: a rule stops at MAX_PER_RULE
        if len(text) <= CHUNK:
            return self._scan_chunk(text, role, per_rule)
        findings: list[Finding] = []
        reaching: list[Finding] = []  # the findings that may reach past this chunk's start
        for start in range(0, len(text), CHUNK - OVERLAP):
            last = start + CHUNK >= len(text)
            spent, weighed = len(per_rule.spent), per_rule.reduced_at
            if (
                per_rule.automaton is None
                and len(text) - start >= REDUCE_MIN_REST
                and spent >= weighed + max(8, weighed // 4)  # weighed again as more are spent
            ):
                self._reduce(per_rule, role)
            # a finding is kept by the chunk it starts in before the next chunk's start; the
            # previous chunk saw past this one's start, so what overlaps its findings is a
            # piece of them (我微信 of 加我微信 cut at the edge)
            cut = len(text) if last else start + CHUNK - OVERLAP
            before = [f for f in reaching if f.end > start]
            new = [
                shifted
                for f in self._scan_chunk(text[start : start + CHUNK], role, per_rule)
                if f.start + start < cut
                for shifted in (_shifted(f, start),)
                if not any(shifted.start < b.end and b.start < shifted.end for b in before)
            ]
            findings.extend(new)
            per_rule.report(new)
            # starts only grow: a finding ending at or before this start reaches no later one
            reaching = before + new
            if last:
                break
        return _capped(findings)

    def _scan_chunk(self, text: str, role: str | None, per_rule: _Quota) -> list[Finding]:
        codes = text.translate(self._table)
        # a run of 5+ digits or an @: the only texts the number and e-mail recognizers can
        # match (separators and numerals are folded into the codes already)
        numbers = SLOW_MARK in codes and SLOW_PATTERN.search(codes) is not None
        automaton = self._automaton if per_rule.automaton is None else per_rule.automaton
        found = automaton.iter(codes) if not self._empty else None
        matches = list(found) if found is not None else []
        if not (numbers or self._worth_a_look(matches, role, per_rule) or may_hold_contact(text)):
            return []
        return self._scan_found(text, role, per_rule, numbers, matches)

    def _scan_found(
        self,
        text: str,
        role: str | None,
        per_rule: _Quota,
        numbers: bool,
        matches: list[tuple[int, int]],
        joined: list[tuple[_Pair, int, int]] | None = None,
    ) -> list[Finding]:
        """``_scan_chunk`` past its fast path: ``numbers`` and ``matches`` are what it
        found in ``text``; ``joined``, when known, what ``_joined`` yields on ``matches``."""
        if numbers or not self._repeats.isdisjoint(map(itemgetter(1), matches)):
            # digit runs or repeats may change the text: normalize, and match it again unless
            # it is the folded text after all (no Chinese digits, letters for digits or
            # repeats; no @, which the codes hold and normalization drops)
            norm = normalize(text, self.collapse, self.fold, self._fold_list)
            if norm.context_events or "@" in text or "＠" in text:
                matches = self._matches(norm, per_rule.automaton)
                joined = None
        else:
            # the folded text is the normalized text, and the matches on the original's
            # codes are the matches on it (two code characters per kept character)
            norm = Normalized(text.translate(self._fold_list), text, fold=self.fold)
        findings = self._terms_in(text, norm, role, per_rule, matches, joined) + self._recognized(
            text, norm, role, per_rule, numbers
        )
        return judge_context(text, norm, role, findings)  # negated, asked, quoted ...

    def _worth_a_look(self, found: list[tuple[int, int]], role: str | None, quota: _Quota) -> bool:
        """Whether the automaton found a key that can make a finding, or two halves of a
        term close enough to be joined. Once rules are spent in a message, only the keys
        and halves of terms with room left count (and the recognizers' trigger words)."""
        if not found:
            return False
        values = list(map(itemgetter(1), found))
        if quota.spent:
            self._unspent(quota, self._tables_for(role)[1])  # the masks, up to date
        if min(values) < self._half_only and (
            not quota.spent or any(map(quota.live.__getitem__, values))
        ):
            return True
        if quota.gap_looks >= MAX_GAP_LOOKS:
            return False  # halves make no candidate any more
        halves = found
        if quota.spent:
            halves = list(itertools.compress(found, map(quota.halves.__getitem__, values)))
        return next(self._joined(halves), None) is not None

    def _joined(self, found: Sequence[tuple[int, int]]) -> Iterator[tuple[_Pair, int, int]]:
        """(term, left end, right start) for each half followed, 1..GAP_MAX characters
        later, by the other half of the same term, in the order of the left halves;
        ``found``: matches (end in the codes, value)."""
        if len(found) < 2:
            return  # one half alone is no term
        present = set(map(itemgetter(1), found))
        partners = self._partners
        # the left halves found with a partner found, and those partners: only their
        # matches are looked at, picked out at C level
        lefts = {v for v in present & self._left_set if not partners[v].isdisjoint(present)}
        if not lefts:
            return
        rights = set().union(*(partners[v] for v in lefts)) & present
        values = list(map(itemgetter(1), found))
        left_found = list(itertools.compress(found, map(lefts.__contains__, values)))
        # left ends less one (code end // 2), and the starts a right half needs to follow
        # one of them 1..GAP_MAX characters later: worked out at C level, so that Python
        # looks only at the right halves that close a gap
        halved = list(map(operator.floordiv, map(itemgetter(0), left_found), itertools.repeat(2)))
        wanted: set[int] = set()
        for gap in range(1, GAP_MAX + 1):
            wanted.update(map(operator.add, halved, itertools.repeat(gap + 1)))
        right_found = list(itertools.compress(found, map(rights.__contains__, values)))
        right_values = list(map(itemgetter(1), right_found))
        right_starts = list(
            map(
                operator.sub,
                map(operator.floordiv, map(itemgetter(0), right_found), itertools.repeat(2)),
                map(self._right_less_one.__getitem__, right_values),
            )
        )
        starting: dict[int, list[int]] = {}  # the right halves (ids) by start
        right_ids = self._right_values
        for start, value in itertools.compress(
            zip(right_starts, right_values, strict=True), map(wanted.__contains__, right_starts)
        ):
            starting.setdefault(start, []).append(right_ids[value][1])
        if not starting:
            return
        # a left half is looked at only when some right half starts 1..GAP_MAX characters
        # after it: its code end // 2 (its end less one) is in ``near``, tested at C level
        near: set[int] = set()
        for gap in range(1, GAP_MAX + 1):
            near.update(map(operator.sub, starting, itertools.repeat(gap + 1)))
        left_values = self._left_values
        for end, value in itertools.compress(left_found, map(near.__contains__, halved)):
            by_right = left_values[value]
            left_end = end // 2 + 1
            for gap in range(1, GAP_MAX + 1):
                for right in starting.get(left_end + gap, ()):
                    pair = by_right.get(right)
                    if pair is not None:
                        yield pair, left_end, left_end + gap

    # ------------------------------------------------------------------------- terms

    def _matches(self, norm: Normalized, automaton: Any = None) -> list[tuple[int, int]]:
        """(end in the encoded text, value) of every key found: two code characters per
        normalized one, so the normalized end is ``end // 2 + 1``. ``automaton``: a
        message's reduced one (``_reduce``)."""
        if self._empty:
            return []
        automaton = self._automaton if automaton is None else automaton
        return list(automaton.iter(self._compiled.alphabet.encode(norm.text)))

    def _reduce(self, quota: _Quota, role: str | None) -> None:
        """Give ``quota`` an automaton of the keys that can still make a finding in its
        message, when few can: a key of a rule with room left (or an allow phrase), a
        recognizer's trigger word, a half of a term with room left, a repeat. Every other
        key's matches are dropped by the masks anyway, so the findings do not change; the
        matching and the picking of matches cost what the live keys cost."""
        quota.reduced_at = len(quota.spent)
        if not quota.spent:
            return
        self._unspent(quota, self._tables_for(role)[1])  # the masks, up to date
        keep = bytearray(map(operator.or_, quota.live, quota.halves))
        for value in self._repeats:
            keep[value] = 1
        if keep.count(1) > REDUCE_MAX_LIVE * len(keep):
            return
        encode = self._compiled.alphabet.encode
        automaton = ahocorasick.Automaton()
        keys = self._keys
        for value in itertools.compress(range(len(keep)), keep):
            automaton.add_word(encode(keys[value]), value)
        if len(automaton):
            automaton.make_automaton()
        else:
            automaton.add_word("\x00\x00", 0)  # matches nothing the table encodes
            automaton.make_automaton()
        quota.automaton = automaton

    def _tables_for(self, role: str | None) -> tuple[tuple[tuple[_Spelling, ...], ...], bytes]:
        """The spellings for ``role`` and the looked-at flags of every automaton value."""
        tables = self._role_tables.get(role)
        if tables is None:
            payloads = self._payloads
            terms = self.lists.terms
            # most terms hold for every role: a value's spellings are kept as they are
            # unless one of its terms does not (a C-level test per value)
            other = {i for i, term in enumerate(terms) if not term.applies_to(role)}
            first = itemgetter(0)
            spellings = tuple(
                sp if other.isdisjoint(map(first, sp)) else _for_role(terms, sp, role)
                for sp in (p[1] for p in payloads)
            )
            looked_at = bytes(
                bool(sp or p[2] & _ALLOW) for sp, p in zip(spellings, payloads, strict=True)
            )
            tables = self._role_tables[role] = (spellings, looked_at)
        return tables

    def _unspent(self, quota: _Quota, looked_at: bytes) -> bytes | bytearray:
        """``looked_at`` less the values whose every rule is spent in this message: their
        matches make no candidate, and are not looked at one by one (a megabyte of terms).
        The quota's ``live`` and ``halves`` masks are brought up to date with it."""
        if not quota.spent:
            return looked_at
        if quota.mask is None:
            quota.mask = bytearray(looked_at)
            quota.live = bytearray(looked_at)
            for value in self._trigger_values:
                quota.live[value] = 1
            quota.halves = bytearray(self._half_values)
        mask, live, halves, spent = quota.mask, quota.live, quota.halves, quota.spent
        if spent - quota.masked:
            rules_of, half_rules, triggers = self._rules, self._half_rules, self._trigger_values
            for rule in spent - quota.masked:
                for value in self._values_of_rule.get(rule, ()):
                    if rules_of[value] <= spent:
                        mask[value] = 0
                        if value not in triggers:
                            live[value] = 0
                for value in self._halves_of_rule.get(rule, ()):
                    if half_rules[value] <= spent:
                        halves[value] = 0
            quota.masked |= spent
        return mask

    def _terms_in(
        self,
        text: str,
        norm: Normalized,
        role: str | None,
        per_rule: _Quota,
        matches: list[tuple[int, int]],
        joined: list[tuple[_Pair, int, int]] | None = None,
    ) -> list[Finding]:
        """``joined``: what ``_joined`` yields on ``matches``, when known."""
        payloads = self._payloads
        spellings_of, role_looked_at = self._tables_for(role)
        looked_at = self._unspent(per_rule, role_looked_at)
        # until a rule is spent (and the masks made) every half counts
        quota_halves = None if per_rule.mask is None else per_rule.halves
        edges = self._edges
        allowed = _Spans()
        capped = per_rule.spent
        rules_of = self._rules
        # (start, end, spellings for the role, _EDGE_* checks)
        found: list[tuple[int, int, tuple[_Spelling, ...], int]] = []
        # a long message of the same words has more than one match per character, most of
        # them halves of terms or terms for the other role: picked out at C level, and a
        # few lookups for each match the term pass looks at
        values = list(map(itemgetter(1), matches))
        for code_end, value in itertools.compress(matches, map(looked_at.__getitem__, values)):
            length, _, flags, _ = payloads[value]
            end = code_end // 2 + 1
            spellings = spellings_of[value]
            if spellings and not (capped and rules_of[value] <= capped):
                found.append((end - length, end, spellings, edges[value]))
            if flags & _ALLOW:
                allowed.add(end - length, end)
        candidates: list[_Candidate] = []
        for start, end, spellings, checks in found:
            self._add_candidate(candidates, text, norm, allowed, start, end, spellings, checks)
        terms = self.lists.terms
        if self._pairs and per_rule.gap_looks < MAX_GAP_LOOKS:
            if joined is None or quota_halves is not None:
                is_half = self._half_values if quota_halves is None else quota_halves
                halves = itertools.compress(matches, map(is_half.__getitem__, values))
                gaps: Iterable[tuple[_Pair, int, int]] = self._joined(list(halves))
            else:  # _joined on the halves alone yields what it does on every match
                gaps = joined
            for pair, left_end, right_start in itertools.islice(gaps, MAX_GAP_CANDIDATES):
                spellings, left, right = pair  # jieba looks at each that fits the role
                fitting = _for_role(terms, spellings, role)
                if capped:  # and whose rule has room left
                    fitting = tuple(s for s in fitting if terms[s[0]].rule not in capped)
                if not fitting:
                    continue
                if per_rule.gap_looks >= MAX_GAP_LOOKS:
                    break
                per_rule.gap_looks += 1
                if _fills_a_gap(text, norm, left_end, right_start):
                    start, end = left_end - left, right_start + right
                    self._add_candidate(
                        candidates, text, norm, allowed, start, end, fitting,
                        _edge_checks(norm.text, start, end), (left_end, right_start),
                    )  # fmt: skip
        # leftmost-longest among the terms as spelled, then the gap matches that overlap none
        candidates.sort(key=lambda c: (c.skipped is not None, c.start, -c.end))
        chosen: list[_Candidate] = []
        taken = _Spans()
        taken_until = 0
        for candidate in candidates:
            if candidate.skipped is None:
                if candidate.start < taken_until:
                    continue
                taken_until = candidate.end
            elif taken.overlaps(candidate.start, candidate.end):
                continue
            taken.add(candidate.start, candidate.end)
            rules = {terms[index].rule for index, _, _ in candidate.spellings}
            if rules <= capped:
                continue  # the same words over and over: enough is reported
            for rule in rules:
                per_rule.count(rule)
            chosen.append(candidate)
        findings: list[Finding] = []
        for candidate in chosen:
            straddled = ""
            if (
                candidate.end - candidate.start <= STRADDLE_MAX_LEN
                and _cjk_edge(norm.text, candidate.start, candidate.end)
                and not any(kind == SPLIT_CHAR for _, _, kind in candidate.spellings)
            ):  # a character written as its parts is no word of its own to cut
                straddled = _straddled(norm, candidate.start, candidate.end)
            findings.extend(self._term_findings(text, norm, candidate, straddled))
        return findings

    def _add_candidate(
        self,
        candidates: list[_Candidate],
        text: str,
        norm: Normalized,
        allowed: _Spans,
        start: int,
        end: int,
        spellings: tuple[_Spelling, ...],
        checks: int,
        skipped: tuple[int, int] | None = None,
    ) -> None:
        """``spellings``: those of terms for the speaker's role; ``checks``: _EDGE_* flags."""
        if allowed.covers(start, end):
            return
        if checks & _EDGE_ASCII and not _whole_ascii_words(text, norm, start, end, self.fold):
            return
        if checks & _EDGE_DIGIT and _an_amount(text, norm, start, end, self.fold):
            return  # 123.00元, 一共12300元: an amount, not the hotline 12300
        candidates.append(_Candidate(start, end, spellings, skipped))

    def _term_findings(
        self, text: str, norm: Normalized, candidate: _Candidate, straddled: str
    ) -> list[Finding]:
        o_start, o_end = norm.span(candidate.start, candidate.end)
        steps = norm.steps_between(o_start, o_end)
        gap = ""
        if candidate.skipped:
            left_end, right_start = candidate.skipped
            filler = text[norm.span(left_end, right_start)[0] : norm.offsets[right_start]]
            gap = f"; gap: {right_start - left_end} skipped ({filler})"
        out = []
        for index, written, kind in candidate.spellings:
            if kind == GAP and _SENTENCE_END.search(text[o_start:o_end]):
                continue  # a filler spelling (查一下机主) does not reach into the next sentence
            term: Term = self.lists.terms[index]
            score = {"": TERM_SCORE, "variant": VARIANT_SCORE}.get(kind, GENERATED_SCORE)
            severity = term.severity
            note = f" (variant {written})" if kind == "variant" else ""
            note = f" ({kind} variant {written})" if kind not in ("", "variant") else note
            technique = technique_of(kind or "exact", steps)
            if candidate.skipped:
                skipped = candidate.skipped[1] - candidate.skipped[0]
                score = min(score, GAP_SCORES[skipped])
                technique = "+".join(("gap", *(t for t in technique.split("+") if t != "exact")))
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
                    explanation=f"term {term.term}{note}{after_normalization(steps)}{gap}{tail}",
                    technique=technique,
                )
            )
        return out

    # ------------------------------------------------------------------- recognizers

    def _recognized(
        self,
        text: str,
        norm: Normalized,
        role: str | None,
        per_rule: _Quota,
        numbers: bool = True,
    ) -> list[Finding]:
        view = TextView(text, norm)
        hits: list[tuple[Recognizer, Hit]] = [
            (recognizer, hit)
            for recognizer in self._recognizers_for[role, numbers]
            if recognizer.RULE not in per_rule.spent  # its hits would all be dropped
            for hit in recognizer.analyze(view)
        ]
        if not hits:
            return []
        hits.sort(key=lambda rh: (rh[1].start - rh[1].end, -rh[0].PRIORITY, rh[1].start))
        kept: list[tuple[Recognizer, Hit]] = []
        taken = _Spans()
        for recognizer, hit in hits:
            if recognizer.RULE not in per_rule.spent and not taken.overlaps(hit.start, hit.end):
                taken.add(hit.start, hit.end)
                per_rule.count(recognizer.RULE)
                kept.append((recognizer, hit))
        findings = []
        for recognizer, hit in kept:
            steps = norm.steps_between(hit.start, hit.end)
            # a symbol read as a word (+ as 加) means nothing inside a number or address, and
            # the @ and dots of an address read in the original are no disguise
            ignored = (EMOJI_SYMBOL,) if recognizer.NORMALIZED else (EMOJI_SYMBOL, SPACING, SYMBOLS)
            steps = tuple(s for s in steps if s not in ignored)
            findings.append(
                Finding(
                    category=recognizer.CATEGORY,
                    rule=recognizer.RULE,
                    severity=recognizer.SEVERITY,
                    score=hit.score,
                    start=hit.start,
                    end=hit.end,
                    matched=text[hit.start : hit.end],
                    explanation=f"{recognizer.LABEL} ({hit.detail})" + after_normalization(steps),
                    technique=technique_of(hit.technique, steps),
                )
            )
        return findings


# Words that send a message down the slow path although no rule is a match: the context
# words of recognizers that do not need digits (a WeChat id may have none, or only a few).
_TRIGGER_WORDS = WeChatIdRecognizer.TRIGGERS


_INFINITY = 1 << 62
_start_of = operator.methodcaller("start")


class _Spans:
    """Spans added in any order, for "is this inside one" and "does this touch one" in
    logarithmic time (a long message has thousands of matches)."""

    def __init__(self) -> None:
        self._spans: list[tuple[int, int]] = []  # sorted by start
        self._longest = 0

    def add(self, start: int, end: int) -> None:
        bisect.insort(self._spans, (start, end))
        self._longest = max(self._longest, end - start)

    def covers(self, start: int, end: int) -> bool:
        """Whether one span holds all of [start, end)."""
        spans = self._spans
        i = bisect.bisect_right(spans, (start, _INFINITY))  # the spans starting by `start`
        # only those starting within `longest` before `end` can reach it
        while i > 0 and spans[i - 1][0] >= end - self._longest:
            i -= 1
            if spans[i][1] >= end:
                return True
        return False

    def overlaps(self, start: int, end: int) -> bool:
        """Whether a span shares a character with [start, end)."""
        spans = self._spans
        i = bisect.bisect_left(spans, (end, -1))  # the spans starting before `end`
        while i > 0 and spans[i - 1][0] >= start - self._longest:
            i -= 1
            if spans[i][1] > start:
                return True
        return False


class _Quota:
    """The findings of each rule so far in one message: a rule is ``spent`` at
    MAX_PER_RULE (a long message of the same words), and every reported rule once the
    message has MAX_PER_MESSAGE (a rule first reported after that is spent by it).
    ``mask``: the looked-at flags of the automaton values less those of spent rules
    (``Scanner._unspent``), made on the first; ``live`` and ``halves`` likewise for what
    may still make a finding."""

    __slots__ = (
        "automaton", "counts", "gap_looks", "halves", "live", "mask", "masked", "reduced_at",
        "reported", "spent", "total",
    )  # fmt: skip

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.total = 0  # findings counted, of every rule
        self.gap_looks = 0  # gap candidates looked at by jieba (MAX_GAP_LOOKS)
        self.automaton: Any = None  # the message's reduced automaton (Scanner._reduce)
        self.reduced_at = 0  # the number of spent rules when a reduction was last weighed
        self.reported: set[str] = set()  # the rules with a finding kept after context judgement
        self.spent: set[str] = set()
        self.mask: bytearray | None = None
        # ``mask`` with the recognizers' trigger words kept: a match that may still matter
        self.live = bytearray()
        # by value, 1 for a half of a term whose rule has room left (made with ``mask``)
        self.halves = bytearray()
        self.masked: set[str] = set()  # the spent rules the masks have left out

    def count(self, rule: str) -> None:
        self.counts[rule] = count = self.counts.get(rule, 0) + 1
        self.total += 1
        if count >= MAX_PER_RULE:
            self.spent.add(rule)
        if self.total == MAX_PER_MESSAGE:
            # every rule reported so far has enough; one reported later is spent by ``report``
            self.spent |= self.reported

    def report(self, findings: Iterable[Finding]) -> None:
        """``findings`` are kept (context judgement left them, and no other chunk has them)."""
        self.reported.update(f.rule for f in findings)
        if self.total >= MAX_PER_MESSAGE:
            self.spent |= self.reported


def _shifted(finding: Finding, by: int) -> Finding:
    # dataclasses.replace, without its per-call field checks (a megabyte has thousands)
    return Finding(**{**finding.__dict__, "start": finding.start + by, "end": finding.end + by})


def _capped(findings: list[Finding]) -> list[Finding]:
    """At most MAX_PER_RULE findings of a rule (a message of the same word repeated)."""
    counts: dict[str, int] = {}
    kept = []
    for finding in sorted(findings, key=lambda f: f.start):
        counts[finding.rule] = counts.get(finding.rule, 0) + 1
        if counts[finding.rule] <= MAX_PER_RULE:
            kept.append(finding)
    return kept


def _fills_a_gap(text: str, norm: Normalized, left_end: int, right_start: int) -> bool:
    """Whether the characters between two halves are filler: no negation, no sentence end
    in the original, and the halves are whole words for jieba (参加|我们|的|微信 is not
    加我…微信)."""
    if GAP_STOP.intersection(norm.text[left_end:right_start]):
        return False
    between = text[norm.offsets[left_end - 1] + 1 : norm.offsets[right_start]]
    if _SENTENCE_END.search(between):
        return False
    left = max(0, left_end - GAP_MAX - STRADDLE_WINDOW)
    window = norm.text[left : right_start + GAP_MAX + STRADDLE_WINDOW]
    boundaries = word_boundaries(window)
    return left_end - left in boundaries and right_start - left in boundaries


def _keys(lists: WordLists, collapse: int) -> _Keys:
    """Every normalized spelling -> (length, spellings, flags, halves); explicit first."""
    tables = Tables(
        homophones={h.char: h for h in lists.homophones},
        split_chars=_split_table(lists),
        common_word=_common_word,
    )
    # the lists' spellings are read as the chat text is, emoji included (加我🐧 is 加我鹅)
    fold = FoldTable({s.symbol: s.means for s in lists.symbols})
    spellings: dict[str, list[_Spelling]] = {}
    seen: set[tuple[str, str]] = set()  # (category, key): a generated duplicate is dropped

    def add(key: str, index: int, written: str, kind: str) -> None:
        category = lists.terms[index].category
        if key and (category, key) not in seen:
            seen.add((category, key))
            spellings.setdefault(key, []).append((index, written, kind))

    for index, term in enumerate(lists.terms):
        add(normalize(term.term, collapse, fold).text, index, term.term, "")
        for variant in term.variants:
            add(normalize(variant, collapse, fold).text, index, variant, "variant")
    listed = dict(spellings)
    for index, term in enumerate(lists.terms):
        for written in (term.term, *term.variants) if term.generate else ():
            base = normalize(written, collapse, fold).text
            for generated, technique in generate_variants(base, term.generate, tables):
                key = normalize(generated, collapse, fold).text  # abbb collapses to ab
                if plausible(key, technique, tables):
                    add(key, index, generated, technique)
    flags: dict[str, int] = {}
    for phrase in lists.allow:
        key = normalize(phrase, collapse, fold).text
        flags[key] = flags.get(key, 0) | _ALLOW
    for word in _TRIGGER_WORDS:
        key = normalize(word, collapse).text
        flags[key] = flags.get(key, 0) | _TRIGGER
    if collapse >= 2:  # a run normalization collapses sends the message to the full scan
        letters = {c for key in spellings for c in key if not c.isdigit()}
        for char in letters:
            flags[char * collapse] = flags.get(char * collapse, 0) | _TRIGGER | _REPEATS
    # halves of the listed spellings, for gap-tolerant matching
    half_ids: dict[str, int] = {}
    pairs: dict[tuple[int, int], _Pair] = {}
    for key, found in listed.items():
        if len(key) < GAP_MIN_TERM or not all(map(_is_cjk, key)):
            continue
        for cut in range(GAP_MIN_HALF, len(key) - GAP_MIN_HALF + 1):
            left = half_ids.setdefault(key[:cut], len(half_ids))
            right = half_ids.setdefault(key[cut:], len(half_ids))
            pairs.setdefault((left, right), (tuple(found), cut, len(key) - cut))
    whole = {
        k: (len(k), tuple(v), flags.get(k, 0), half_ids.get(k, -1)) for k, v in spellings.items()
    }
    whole.update(
        {k: (len(k), (), f, half_ids.get(k, -1)) for k, f in flags.items() if k not in whole}
    )
    half_only = {k: (len(k), (), 0, h) for k, h in half_ids.items() if k not in whole}
    ordered = [*whole.items(), *half_only.items()]
    return _Keys(
        values=tuple(v for _, v in ordered),
        keys=tuple(k for k, _ in ordered),
        pairs=pairs,
        half_only=len(whole),
    )


def _split_table(lists: WordLists) -> dict[str, tuple[str, ...]]:
    table: dict[str, list[str]] = {}
    for split in lists.split_chars:
        table.setdefault(split.char, []).append(split.parts)
    return {char: tuple(parts) for char, parts in table.items()}


# a generated spelling that jieba's dictionary knows this well is an ordinary word
COMMON_WORD_FREQ = 100


def _common_word(key: str) -> bool:
    return tokenizer().FREQ.get(key, 0) >= COMMON_WORD_FREQ


@lru_cache(maxsize=4096)
def word_boundaries(text: str) -> frozenset[int]:
    """Offsets in ``text`` where jieba starts or ends a word."""
    bounds = {0}
    position = 0
    for word in tokenizer().cut(text, HMM=False):
        position += len(word)
        bounds.add(position)
    return frozenset(bounds)


def _is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff"


def _cjk_edge(text: str, start: int, end: int) -> bool:
    return _is_cjk(text[start]) or _is_cjk(text[end - 1])


def _straddled(norm: Normalized, start: int, end: int) -> str:
    """ "" when the match starts and ends on word boundaries, else the words it cuts.

    jieba sees only a window around the match, which stops where the original had a space or
    punctuation (兼职刷单，一单 is not 刷|单一): its cost grows with the text, and words
    further away do not move these two boundaries in practice. A word cuts an edge when one
    of its characters is inside the match (路口|交通 for 口交) or it holds the whole match;
    a word with two or more characters inside is part of a compound (伪|基站设备 for 伪基站).
    """
    text, offsets = norm.text, norm.offsets
    left = max(0, start - STRADDLE_WINDOW)
    for at in range(start, left, -1):
        if offsets[at] - offsets[at - 1] > 1:  # something dropped: a space or punctuation
            left = at
            break
    right = min(len(text), end + STRADDLE_WINDOW)
    for at in range(end, right):
        if offsets[at] - offsets[at - 1] > 1:
            right = at
            break
    window = text[left:right]
    boundaries = word_boundaries(window)
    start, end = start - left, end - left
    ordered = sorted(boundaries | {len(window)})
    first = max(b for b in ordered if b <= start)
    last = min(b for b in ordered if b >= end)
    cut_start = cut_end = False
    if _is_cjk(window[start]) and start not in boundaries:
        word_end = min(b for b in ordered if b > start)
        cut_start = word_end > end or word_end - start == 1
    if _is_cjk(window[end - 1]) and end not in boundaries:
        word_start = max(b for b in ordered if b < end)
        cut_end = word_start < start or end - word_start == 1
    if not (cut_start or cut_end):
        return ""
    words = [window[a:b] for a, b in itertools.pairwise(ordered) if first <= a < last]
    return "|".join(words)


def _kind(char: str) -> str | None:
    if char.isascii() and char.isalpha():
        return "letter"
    if char.isascii() and char.isdigit():
        return "digit"
    return None


def _an_amount(text: str, norm: Normalized, start: int, end: int, fold: FoldTable) -> bool:
    """Whether the number a match is (12300) or ends or starts with (打12300) is an amount or
    part of a longer number in the original (``quantity.py``)."""
    key = norm.text[start:end]
    if not (key[0] in DIGIT_CHARS or key[-1] in DIGIT_CHARS):
        return False
    body = key.strip(DIGIT_CHARS)
    if not body:  # a bare number: its format and both sides
        return bool(quantity_reason(text, *norm.span(start, end), fold))
    if key[-1] in DIGIT_CHARS:  # 打12300: what follows the number
        number = len(key) - len(key.rstrip(DIGIT_CHARS))
        o_start, o_end = norm.span(end - number, end)
        if quantity_reason(text, o_start, o_end, fold, before=False):
            return True
    if key[0] in DIGIT_CHARS:  # 12300投诉: what precedes it
        number = len(key) - len(key.lstrip(DIGIT_CHARS))
        o_start, o_end = norm.span(start, start + number)
        if quantity_reason(text, o_start, o_end, fold, after=False):
            return True
    return False


def _edge_checks(text: str, start: int, end: int) -> int:
    """The _EDGE_* checks a match on normalized ``[start, end)`` of ``text`` needs."""
    first, last = text[start], text[end - 1]
    checks = _EDGE_ASCII if _kind(first) or _kind(last) else 0
    if first in DIGIT_CHARS or last in DIGIT_CHARS:
        checks |= _EDGE_DIGIT
    return checks


def _for_role(
    terms: Sequence[Term], spellings: tuple[_Spelling, ...], role: str | None
) -> tuple[_Spelling, ...]:
    """The spellings of terms that apply to ``role`` (the same tuple when all do)."""
    fitting = tuple(s for s in spellings if terms[s[0]].applies_to(role))
    return spellings if len(fitting) == len(spellings) else fitting


def _whole_ascii_words(text: str, norm: Normalized, start: int, end: int, fold: FoldTable) -> bool:
    """False when an ASCII edge of the match continues, in the original, with the same kind."""
    first, last = _kind(norm.text[start]), _kind(norm.text[end - 1])
    if not (first or last):
        return True  # neither edge is ASCII: nothing to look at in the original
    o_start, o_end = norm.span(start, end)
    if first and o_start > 0 and _kind(fold[ord(text[o_start - 1])]) == first:
        return False
    return not (last and o_end < len(text) and _kind(fold[ord(text[o_end])]) == last)
