"""Text normalization for matching, with a map back to the original text.

Every original character becomes at most one normalized character, so ``offsets[i]`` (the
index in the original of normalized character ``i``) is all it takes to report a match in
the original text: normalized ``[s, e)`` is original ``[offsets[s], offsets[e - 1] + 1)``.
``offsets`` ends with a sentinel, ``len(original)``.

The steps, per character: full-width and other compatibility forms to their plain form
(NFKC, only when it yields exactly one character), lower case, traditional to simplified
(OpenCC ``t2s``, per character), zero-width/format characters dropped, whitespace,
punctuation and symbols dropped (so 微 信, 微.信 and 加*我*微*信 all read 微信), circled
digits to digits, and Chinese digits to ASCII digits inside a run of at least
``DIGIT_RUN_MIN`` digits (一三八零零一三八零零零 is a phone number; 一下 stays as it is).

Each change is recorded as an event ``(original index, step)`` so a finding can say which
normalization led to it. Heavier evasion handling (homophones, pinyin, split radicals) is
meant to come in as further steps here, keeping the one-to-at-most-one shape.
"""

from __future__ import annotations

import bisect
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from opencc import OpenCC

# Step names, in the order explanations list them.
FULLWIDTH = "fullwidth"
COMPATIBILITY = "compatibility form"
CIRCLED_DIGITS = "circled digits"
LOWERCASE = "lowercase"
TRADITIONAL = "traditional to simplified"
ZERO_WIDTH = "zero-width removed"
SPACING = "spacing removed"
SYMBOLS = "symbols removed"
CHINESE_DIGITS = "chinese digits"
STEPS = (
    FULLWIDTH,
    COMPATIBILITY,
    CIRCLED_DIGITS,
    LOWERCASE,
    TRADITIONAL,
    ZERO_WIDTH,
    SPACING,
    SYMBOLS,
    CHINESE_DIGITS,
)

# A run of at least this many (Chinese or ASCII) digits is read as a number.
DIGIT_RUN_MIN = 7

CHINESE_DIGIT_VALUES: dict[str, str] = {
    **{c: str(i) for i, c in enumerate("零一二三四五六七八九")},
    **{c: str(i) for i, c in enumerate("〇壹贰叁肆伍陆柒捌玖")},
    "幺": "1",  # read "yao" when people say phone numbers aloud
}

# Circled digits NFKC leaves alone (dingbats, double circled); ① ⓪ etc. go through NFKC.
_CIRCLED: dict[str, str] = {
    **{chr(0x2776 + i): str(i + 1) for i in range(9)},  # ❶..❾
    **{chr(0x2780 + i): str(i + 1) for i in range(9)},  # ➀..➈
    **{chr(0x278A + i): str(i + 1) for i in range(9)},  # ➊..➒
    **{chr(0x24F5 + i): str(i + 1) for i in range(9)},  # ⓵..⓽
}


@dataclass(frozen=True)
class Normalized:
    text: str
    offsets: tuple[int, ...]  # len(text) + 1 entries, the last one len(original)
    events: tuple[tuple[int, str], ...]  # (original index, step), by original index

    @property
    def applied(self) -> frozenset[str]:
        return frozenset(step for _, step in self.events)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of normalized ``[start, end)`` (non-empty)."""
        return self.offsets[start], self.offsets[end - 1] + 1

    def steps_between(self, start: int, end: int) -> tuple[str, ...]:
        """The steps applied to original characters in ``[start, end)``, in STEPS order."""
        lo = bisect.bisect_left(self.events, (start, ""))
        hi = bisect.bisect_left(self.events, (end, ""))
        found = {step for _, step in self.events[lo:hi]}
        return tuple(step for step in STEPS if step in found)


@lru_cache(maxsize=1)
def _t2s() -> OpenCC:
    return OpenCC("t2s")


@lru_cache(maxsize=65536)
def _simplified(char: str) -> str:
    return str(_t2s().convert(char))


@lru_cache(maxsize=65536)
def fold_char(char: str) -> tuple[str, tuple[str, ...]]:
    """One character's normal form ("" when dropped) and the steps that changed it.

    Chinese digits are not folded here: that depends on the surrounding run.
    """
    category = unicodedata.category(char)
    if category == "Cf":
        return "", (ZERO_WIDTH,)
    steps: list[str] = []
    if char in _CIRCLED:
        return _CIRCLED[char], (CIRCLED_DIGITS,)
    compat = unicodedata.normalize("NFKC", char)
    if len(compat) == 1 and compat != char:
        if 0xFF01 <= ord(char) <= 0xFF5E or char == "\u3000":
            steps.append(FULLWIDTH)
        elif "CIRCLED" in unicodedata.name(char, ""):
            steps.append(CIRCLED_DIGITS)
        else:
            steps.append(COMPATIBILITY)
        char = compat
        category = unicodedata.category(char)
    if char.isspace() or category[0] == "Z" or category == "Cc":
        return "", (*steps, SPACING)
    if category[0] in "PS":
        return "", (*steps, SYMBOLS)
    lower = char.lower()
    if len(lower) == 1 and lower != char:
        steps.append(LOWERCASE)
        char = lower
    if ord(char) >= 0x2E80:
        simple = _simplified(char)
        if len(simple) == 1 and simple != char:
            steps.append(TRADITIONAL)
            char = simple
    return char, tuple(steps)


def normalize(text: str) -> Normalized:
    chars: list[str] = []
    origin: list[int] = []
    events: list[tuple[int, str]] = []
    for index, char in enumerate(text):
        folded, steps = fold_char(char)
        events.extend((index, step) for step in steps)
        if folded:
            chars.append(folded)
            origin.append(index)
    _convert_digit_runs(chars, origin, events)
    events.sort()
    return Normalized("".join(chars), (*origin, len(text)), tuple(events))


def _convert_digit_runs(chars: list[str], origin: list[int], events: list[tuple[int, str]]) -> None:
    """Chinese digits to ASCII, in place, where they are part of a long enough digit run."""
    i = 0
    while i < len(chars):
        if not _digitlike(chars[i]):
            i += 1
            continue
        j = i
        while j < len(chars) and _digitlike(chars[j]):
            j += 1
        if j - i >= DIGIT_RUN_MIN:
            for k in range(i, j):
                if chars[k] in CHINESE_DIGIT_VALUES:
                    chars[k] = CHINESE_DIGIT_VALUES[chars[k]]
                    events.append((origin[k], CHINESE_DIGITS))
        i = j


def _digitlike(char: str) -> bool:
    return "0" <= char <= "9" or char in CHINESE_DIGIT_VALUES
