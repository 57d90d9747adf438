"""Variants generated from a term: pinyin, initials and homophones (``gen=`` in a list).

People dodge a filter by writing part of a phrase in pinyin (加我wei xin), in initials
(加我wx, 转我zfb) or with a character that sounds the same (加我威信). Listing every such
spelling by hand is tedious and always incomplete, so a term marked ``gen=...`` gets them
generated, on the normalized term:

- ``pinyin``: each contiguous run of its Chinese characters written in tone-less pinyin
  (spaces are gone after normalization, so 加我wei xin is 加我weixin);
- ``initials``: each contiguous run of at least two characters written as initials, with
  the extra letters of ``homophones.txt`` (微 -> v, so 加我vx);
- ``homophones``: one character replaced by one of its homophones from ``homophones.txt``.

A variant must keep a Chinese character or have at least three letters: two bare letters
(sd for 刷单, hk for 黑卡) are too often something else. Pinyin is read for the whole term,
so a polyphonic character gets the reading it has there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pypinyin import Style, lazy_pinyin

from audit.scan.wordlist import Homophone

MAX_PER_TERM = 80


def _is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff"


def generate_variants(
    term: str, kinds: frozenset[str], homophones: Mapping[str, Homophone]
) -> list[str]:
    """Generated spellings of the normalized ``term``, in a stable order, without it."""
    if not kinds or not term:
        return []
    syllables = lazy_pinyin(term, errors=_one_per_char)
    initials = lazy_pinyin(term, style=Style.FIRST_LETTER, errors=_one_per_char)
    if len(syllables) != len(term) or len(initials) != len(term):
        return []  # pypinyin did not keep one item per character; generate nothing
    runs = _cjk_runs(term)
    found: dict[str, None] = {}
    if "pinyin" in kinds:
        for start, end in _spans(runs, 1):
            found[term[:start] + "".join(syllables[start:end]) + term[end:]] = None
    if "initials" in kinds:
        for start, end in _spans(runs, 2):
            options = [
                (initials[i], *(homophones[c].letters if c in homophones else ()))
                for i, c in enumerate(term[start:end], start)
            ]
            for letters in _product(options):
                found[term[:start] + letters + term[end:]] = None
    if "homophones" in kinds:
        for i, char in enumerate(term):
            for other in homophones[char].chars if char in homophones else ():
                found[term[:i] + other + term[i + 1 :]] = None
    found.pop(term, None)
    kept = [v for v in found if any(_is_cjk(c) for c in v) or sum(c.isalpha() for c in v) >= 3]
    return kept[:MAX_PER_TERM]


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
        out = [prefix + letter for prefix in out for letter in choice]
    return out
