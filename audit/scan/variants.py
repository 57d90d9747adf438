"""Spellings generated from every term: how people write a phrase to slip past a filter.

Listing every spelling by hand is tedious and always incomplete, so for each term and each
listed variant (normalized) the scanner generates, and tags each spelling with the
technique that made it (the finding's explanation names it):

- ``pinyin``: each contiguous part of a run of Chinese characters in tone-less pinyin
  (spaces are gone after normalization, so 加我wei xin is 加我weixin);
- ``initials``: each contiguous part of at least two characters as initials, with the
  extra letters of ``homophones.txt`` (微 -> v, so 加我vx);
- ``homophone``: one character replaced by one of its homophones from ``homophones.txt``;
- ``polite``: 你 and 您 swapped (加您微信 for 加你微信), 我 as 俺, one at a time and, in a
  term that says it twice, both (您妈没教您);
- ``numerals``: a number of three or more digits (two beside a Chinese character: 加拿大28)
  in Chinese digits, each 1 as 一 or 幺 and each 0 as 零 or 〇 (12315: 一二三一五, 幺二三幺五;
  12300: 一二三〇〇), some digits in Chinese and the others not (1231五, 12三15), formal
  digits (壹贰叁), or with letters for some or all of its 0s and 1s
  (l23l5, I23I5, l2300, 123oo); and the other way round, a Chinese digit of a term's word as
  an ASCII digit, each alone and all at once (六合彩: 6合彩, 零风险: 0风险, 一分快三: 1分快3),
  kept only when a Chinese character is left (二b is no 2b, a pencil); the other numeral
  forms (⑴ ① ⑥ Ⅰ ...) are normalization's work;
- ``lookalikes``: in a word of three or more ASCII letters, letters and digits people type
  for one another (golp and g0ip for goip: i, l and 1; o and 0), one at a time or all;
- ``split_char``: one or two characters written as their parts from ``split_chars.txt``
  (弓长 for 张, 亻尔女马的 for 你妈的), or every such character of the term at once;
- ``wording``: one of the small words of a term said another way (``WORDINGS``: 没 and 没有,
  不用, 不需要 and 无需, 可以 and 能, 一定 and 肯定, 发我 and 发给我 ...), so 没身份证也能办
  also reads 没有身份证也能办 and 没身份证也可以办;
- ``gap`` (kind ``fillers``): a term of two or three Chinese characters with a measure word,
  an aspect particle or 一下 between two of them, as people split a verb and its object
  (投个诉, 套个现, 刷了几单, 代个实名, 查一下机主); not across a sentence end (the scanner
  checks: 查一下。机主 is two sentences); longer terms get their gaps from the scanner.

A homophone may also replace a character of a polite spelling (包您满以 for 包你满意).

Precision guards, because a spelling that reads as ordinary talk is a false alarm:
a spelling must keep a Chinese character or have at least three letters (two bare letters,
sd for 刷单, are too often something else); a spelling of only initials needs four letters
unless the term is one a supervisor would always want caught; a short generated spelling
that is itself a common word (jieba's dictionary) is dropped. Pinyin is read for the whole
term, so a polyphonic character gets the reading it has there.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from audit.scan.wordlist import Homophone

MAX_PER_TERM = 160
GENERATORS = (
    "pinyin", "initials", "homophones", "polite", "numerals", "lookalikes", "split_chars",
    "fillers", "wording",
)  # fmt: skip
# technique names, as findings report them
PINYIN = "pinyin"
INITIALS = "initials"
HOMOPHONE = "homophone"
POLITE = "polite"
NUMERALS = "numerals"
SPLIT_CHAR = "split_char"
LOOKALIKE = "lookalike"
GAP = "gap"
WORDING = "wording"
# words people say the same thing with, swapped one place at a time (没身份证也能办 is also
# 没有身份证也可以办): negation, ability, need, degree, and the small verbs of handing over
WORDINGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("没有", ("没",)),
    ("没(?!有)", ("没有",)),
    ("不用", ("不需要", "无需", "不必")),
    ("不需要", ("不用", "无需")),
    ("无需", ("不用", "不需要")),
    ("可以", ("能",)),
    ("(?<!可)能(?!力)", ("可以",)),
    ("一定", ("肯定",)),
    ("肯定", ("一定",)),
    ("发给我", ("发我",)),
    ("(?<!打)发我", ("发给我",)),
    ("帮你", ("给你", "替你")),
    ("转给我", ("转我",)),
    ("转我", ("转给我",)),
    ("我的", ("我",)),
    ("手机号", ("号码", "电话")),
)
_WORDINGS = tuple((re.compile(pattern), others) for pattern, others in WORDINGS)
MIN_REWORDED = 4
# what people put between a verb and its object (投个诉, 刷了几单, 代个实名): inside a
# two-character term, and (fewer) at either place inside a three-character one
FILLERS = ("个", "了", "过", "几", "点", "一下", "了个", "了几", "几个")
FILLERS_IN_THREE = ("个", "了", "一下")
# polite and plain forms people swap; one character at a time
POLITE_SWAPS: Mapping[str, tuple[str, ...]] = {"你": ("您",), "您": ("你",), "我": ("俺",)}
# Chinese digits people write a number in, per digit (1 is also said yao, 0 also written 〇),
# and the formal ones of cheques
_CHINESE_DIGITS: Mapping[str, tuple[str, ...]] = {
    **{d: (c,) for d, c in zip("23456789", "二三四五六七八九", strict=True)},
    "0": ("零", "〇"),
    "1": ("一", "幺"),
}
_FORMAL_DIGITS = dict(zip("0123456789", "零壹贰叁肆伍陆柒捌玖", strict=True))
# letters typed for digits inside a number (after lower-casing: I is i)
_LETTERS_FOR_DIGITS: Mapping[str, tuple[str, ...]] = {"0": ("o",), "1": ("l", "i")}
# a Chinese digit inside a word, written as its ASCII digit (六合彩: 6合彩)
_ASCII_FOR_CHINESE = {c: str(i) for i, c in enumerate("零一二三四五六七八九")}
MAX_NUMERAL_FORMS = 32  # per number and kind: mixed forms of a long one are not all worth a key
# inside an ASCII word: what is typed for each letter (GOlP, g0ip)
_LOOKALIKE_LETTERS: Mapping[str, tuple[str, ...]] = {
    "i": ("l", "1"),
    "l": ("i", "1"),
    "o": ("0",),
}
LOOKALIKE_MIN_LETTERS = 3  # vx, qq: too short to tell a look-alike from another word
MIN_INITIALS_ONLY = 4  # a spelling of nothing but initials: shorter ones are words (wtf, cnm)


@dataclass(frozen=True)
class Tables:
    """The word lists' tables the generators draw on."""

    homophones: Mapping[str, Homophone] = field(default_factory=dict)
    split_chars: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # char -> parts
    # True for a common word: a generated spelling that is one is ordinary talk
    common_word: Callable[[str], bool] = field(default=lambda key: False)


def _is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff"


def generate_variants(
    term: str, kinds: frozenset[str] | tuple[str, ...], tables: Tables
) -> list[tuple[str, str]]:
    """(spelling, technique) generated from the normalized ``term``, stable order, without it."""
    if not kinds or not term:
        return []
    homophones = tables.homophones
    found: dict[str, str] = {}

    def add(spelling: str, technique: str) -> None:
        found.setdefault(spelling, technique)

    polite = _swaps(term, POLITE_SWAPS) if "polite" in kinds else []
    for char, (other, *_) in POLITE_SWAPS.items():
        if "polite" in kinds and term.count(char) > 1:  # 您妈没教您: every one swapped
            polite.append(term.replace(char, other))
    for spelling in polite:
        add(spelling, POLITE)
    if "homophones" in kinds:
        chars = {c: h.chars for c, h in homophones.items()}
        for base in (term, *polite):  # 包您满以: polite, then a homophone
            for spelling in _swaps(base, chars):
                add(spelling, HOMOPHONE)
    if "split_chars" in kinds:
        for spelling in _swaps(term, tables.split_chars):
            add(spelling, SPLIT_CHAR)
        splittable = [i for i, c in enumerate(term) if c in tables.split_chars]
        if len(splittable) > 1:  # 亻尔女马白勺: every one split
            add("".join(tables.split_chars.get(c, (c,))[0] for c in term), SPLIT_CHAR)
    if "numerals" in kinds:
        for spelling in _numerals(term):
            add(spelling, NUMERALS)
    if "lookalikes" in kinds:
        for spelling in _lookalikes(term):
            add(spelling, LOOKALIKE)
    if "wording" in kinds:
        for spelling in _rewordings(term):
            add(spelling, WORDING)
    if "fillers" in kinds and len(term) in (2, 3) and all(map(_is_cjk, term)):
        for cut in range(1, len(term)):
            for filler in FILLERS if len(term) == 2 else FILLERS_IN_THREE:
                add(term[:cut] + filler + term[cut:], GAP)
    from pypinyin import Style, lazy_pinyin  # a second to load: only when generating

    syllables = lazy_pinyin(term, errors=_one_per_char)
    initials = lazy_pinyin(term, style=Style.FIRST_LETTER, errors=_one_per_char)
    if len(syllables) == len(term) and len(initials) == len(term):
        runs = _cjk_runs(term)
        if "pinyin" in kinds:
            for start, end in _spans(runs, 1):
                add(term[:start] + "".join(syllables[start:end]) + term[end:], PINYIN)
        if "initials" in kinds:
            for start, end in _spans(runs, 2):
                options = [
                    (initials[i], *(homophones[c].letters if c in homophones else ()))
                    for i, c in enumerate(term[start:end], start)
                ]
                for letters in _product(options):
                    add(term[:start] + letters + term[end:], INITIALS)
    if "split_chars" in kinds:  # 亻尔女马的: two split, after the rest (the first dropped)
        for i, j in itertools.combinations(splittable, 2):
            for left in tables.split_chars[term[i]]:
                for right in tables.split_chars[term[j]]:
                    spelling = term[:i] + left + term[i + 1 : j] + right + term[j + 1 :]
                    add(spelling, SPLIT_CHAR)
    found.pop(term, None)
    kept = [(s, t) for s, t in found.items() if plausible(s, t, tables)]
    return kept[:MAX_PER_TERM]


def plausible(spelling: str, technique: str, tables: Tables) -> bool:
    """Whether a generated (normalized) spelling is safe to look for: see the module doc."""
    cjk = sum(map(_is_cjk, spelling))
    letters = sum(c.isascii() and c.isalpha() for c in spelling)
    if technique == NUMERALS:
        return True  # a number spelled another way: whole-number matching keeps it apart
    if not cjk:
        if letters < 3:
            return False  # two bare letters: sd for 刷单
        if technique == INITIALS and letters < MIN_INITIALS_ONLY:
            return False
    return not (cjk == len(spelling) and len(spelling) <= 4 and tables.common_word(spelling))


def _swaps(term: str, table: Mapping[str, tuple[str, ...]]) -> list[str]:
    """The term with one character replaced by each of its entries in ``table``."""
    return [
        term[:i] + other + term[i + 1 :]
        for i, char in enumerate(term)
        for other in table.get(char, ())
    ]


def _rewordings(term: str) -> list[str]:
    """The term with one of its words (WORDINGS) said another way, one place at a time;
    only for a term of MIN_REWORDED characters and more, and none shorter (绝对可以 as 绝对能
    is too little left to tell)."""
    out: list[str] = []
    if len(term) < MIN_REWORDED:
        return out
    for pattern, others in _WORDINGS:
        for found in pattern.finditer(term):
            start, end = found.span()
            out.extend(term[:start] + other + term[end:] for other in others)
    return [spelling for spelling in out if len(spelling) >= MIN_REWORDED]


def _numerals(term: str) -> list[str]:
    """A term with 3+ ASCII digits (2+ beside a Chinese character) written in Chinese
    digits, and with letters for some or all of its 0s and 1s (12300: l23oo, l2300); a
    short number is too short a run for normalization to undo. And the Chinese digits of a
    term's words as ASCII digits (六合彩: 6合彩)."""
    out: list[str] = []
    digits = sum("0" <= c <= "9" for c in term)
    if digits >= 3 or (digits == 2 and any(map(_is_cjk, term))):
        chinese = [_CHINESE_DIGITS.get(c, (c,)) for c in term]
        out.extend(_product(chinese)[:MAX_NUMERAL_FORMS])
        # some digits as they are, the others in Chinese (1231五, 12三15)
        mixed = [(c, *_CHINESE_DIGITS[c][:1]) if c in _CHINESE_DIGITS else (c,) for c in term]
        out.extend(_product(mixed)[1 : MAX_NUMERAL_FORMS + 1])
        out.append("".join(_FORMAL_DIGITS.get(c, c) for c in term))
        letters = [(c, *_LETTERS_FOR_DIGITS.get(c, ())) for c in term]
        out.extend(_product(letters)[1 : MAX_NUMERAL_FORMS + 1])  # the first is the term
    places = [i for i, c in enumerate(term) if c in _ASCII_FOR_CHINESE]
    if places and len(places) < sum(map(_is_cjk, term)):  # a Chinese character is left
        for i in places:
            out.append(term[:i] + _ASCII_FOR_CHINESE[term[i]] + term[i + 1 :])
            if term[i] == "零":  # 〇, the circle people write for a zero
                out.append(term[:i] + "〇" + term[i + 1 :])
        if len(places) > 1:
            out.append("".join(_ASCII_FOR_CHINESE.get(c, c) for c in term))
    return out


def _lookalikes(term: str) -> list[str]:
    """The term with look-alikes typed in its ASCII words of LOOKALIKE_MIN_LETTERS or more
    letters: each letter swapped alone, and every letter of a kind swapped at once."""
    out: list[str] = []
    for word in re.finditer(r"[a-z][a-z0-9]*", term):
        if sum(c.isalpha() for c in word.group()) < LOOKALIKE_MIN_LETTERS:
            continue
        start, end = word.span()
        for i in range(start, end):
            for other in _LOOKALIKE_LETTERS.get(term[i], ()):
                out.append(term[:i] + other + term[i + 1 :])
        for letter, others in _LOOKALIKE_LETTERS.items():
            if word.group().count(letter) > 1:
                for other in others:
                    out.append(term[:start] + word.group().replace(letter, other) + term[end:])
    return out


def _one_per_char(text: str) -> Any:
    """pypinyin's ``errors`` hook: keep non-Chinese text, one item per character."""
    return list(text)


def _cjk_runs(term: str) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    start = None
    for i, char in enumerate(term + "\0"):
        if _is_cjk(char) and start is None:
            start = i
        elif not _is_cjk(char) and start is not None:
            runs.append((start, i))
            start = None
    return runs


def _spans(runs: list[tuple[int, int]], shortest: int) -> list[tuple[int, int]]:
    return [
        (s, e)
        for run_start, run_end in runs
        for s in range(run_start, run_end)
        for e in range(s + shortest, run_end + 1)
    ]


def _product(options: list[tuple[str, ...]]) -> list[str]:
    out = [""]
    for choice in options:
        out = [prefix + letter for prefix in out for letter in choice][:MAX_PER_TERM]
    return out
