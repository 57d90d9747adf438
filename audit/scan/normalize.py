"""Text normalization for matching, with a map back to the original text.

Every original character becomes at most one normalized character, so ``offsets[i]`` (the
index in the original of normalized character ``i``) is all it takes to report a match in
the original text: normalized ``[s, e)`` is original ``[offsets[s], offsets[e - 1] + 1)``.
``offsets`` ends with a sentinel, ``len(original)``.

The steps, per character (``fold_char``): full-width and other compatibility forms to their
plain form (NFKC, only when it yields exactly one character), lower case, traditional to
simplified (OpenCC ``t2s``, per character, which also undoes the ``s2t`` artefacts 髮 and 羣),
zero-width/format characters dropped, whitespace, punctuation, symbols and emoji dropped (so
微 信, 微.信 and 加*我*微*信 all read 微信), circled digits to digits, and a few symbols
that stand for a letter (傻× reads 傻x). Then, on the folded
text: Chinese and formal digits to ASCII inside a run of at least ``DIGIT_RUN_MIN`` digits
(一三八零零一三八零零零 is a phone number; 一下 stays as it is), and, when ``collapse`` is
set, a run of ``collapse`` or more of the same letter or character to one (微微微信 reads
微信). Digits never collapse: 13800000000 is a number.

The per-character steps are one ``str.translate`` over a lazily filled table, so the
common case costs no Python work per character. Which step changed which character is
worked out only when a finding asks for it (``steps_between``).
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from functools import cached_property, lru_cache

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
REPEATS = "repeats collapsed"
LOOKALIKE = "look-alike letter"
STEPS = (
    FULLWIDTH,
    COMPATIBILITY,
    CIRCLED_DIGITS,
    LOOKALIKE,
    LOWERCASE,
    TRADITIONAL,
    ZERO_WIDTH,
    SPACING,
    SYMBOLS,
    CHINESE_DIGITS,
    REPEATS,
)

# A run of at least this many (Chinese or ASCII) digits is read as a number.
DIGIT_RUN_MIN = 7
# Runs of this many identical characters collapse to one. Not 2: 妈妈的 must not read 妈的.
DEFAULT_COLLAPSE = 3

CHINESE_DIGIT_VALUES: dict[str, str] = {
    **{c: str(i) for i, c in enumerate("零一二三四五六七八九")},
    **{c: str(i) for i, c in enumerate("〇壹贰叁肆伍陆柒捌玖")},
    "幺": "1",  # read "yao" when people say phone numbers aloud
}
DIGIT_CHARS = "0123456789" + "".join(CHINESE_DIGIT_VALUES)
_DIGIT_RUN = re.compile(f"[{DIGIT_CHARS}]{{{DIGIT_RUN_MIN},}}")
_TO_ASCII_DIGITS = str.maketrans(CHINESE_DIGIT_VALUES)

# Circled digits NFKC leaves alone (dingbats, double circled); ① ⓪ etc. go through NFKC.
_CIRCLED: dict[str, str] = {
    **{chr(0x2776 + i): str(i + 1) for i in range(9)},  # ❶..❾
    **{chr(0x2780 + i): str(i + 1) for i in range(9)},  # ➀..➈
    **{chr(0x278A + i): str(i + 1) for i in range(9)},  # ➊..➒
    **{chr(0x24F5 + i): str(i + 1) for i in range(9)},  # ⓵..⓽
}


# Symbols written for a letter (傻×, 傻✗): without this they would be dropped as symbols.
_LOOKALIKES: dict[str, str] = {"×": "x", "✕": "x", "✖": "x", "✗": "x", "✘": "x", "╳": "x"}


@lru_cache(maxsize=1)
def _t2s() -> OpenCC:
    return OpenCC("t2s")


@lru_cache(maxsize=65536)
def _simplified(char: str) -> str:
    return str(_t2s().convert(char))


@lru_cache(maxsize=65536)
def fold_char(char: str) -> tuple[str, tuple[str, ...]]:
    """One character's normal form ("" when dropped) and the steps that changed it.

    Chinese digits and repeats are not handled here: they depend on the neighbours.
    """
    category = unicodedata.category(char)
    if category == "Cf":
        return "", (ZERO_WIDTH,)
    steps: list[str] = []
    if char in _CIRCLED:
        return _CIRCLED[char], (CIRCLED_DIGITS,)
    if char in _LOOKALIKES:
        return _LOOKALIKES[char], (LOOKALIKE,)
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
    if char.isspace() or category[0] in "ZC":
        return "", (*steps, SPACING)  # Z*, controls, and unassigned/private/surrogate noise
    if category[0] in "PSM":
        return "", (*steps, SYMBOLS)  # punctuation, symbols, emoji, combining marks
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


class FoldTable(dict[int, str]):
    """``str.translate`` table: code point -> folded character, "" for dropped ones.

    Filled on first sight of each character, so it costs nothing to create.
    """

    def __missing__(self, key: int) -> str:
        value = fold_char(chr(key))[0]
        self[key] = value
        return value


FOLD = FoldTable()
for _code in range(128):
    FOLD[_code]


class Normalized:
    """A message's normalized text, with the map back to the original.

    ``offsets`` is worked out on first use: many messages need only the text.
    """

    def __init__(
        self,
        text: str,
        original: str,
        origin: list[int] | None = None,
        context_events: tuple[tuple[int, str], ...] = (),
    ) -> None:
        self.text = text
        self.original = original
        self._origin = origin
        # (original index, step) for the steps that depend on neighbours (digits, repeats)
        self.context_events = context_events

    def __repr__(self) -> str:
        return f"Normalized({self.text!r}, original={self.original!r})"

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """Original index of each normalized character, then ``len(original)``."""
        if self._origin is None:
            self._origin = _origin(self.original, self.text)
        return (*self._origin, len(self.original))

    @cached_property
    def events(self) -> tuple[tuple[int, str], ...]:
        """(original index, step) for every change, by original index."""
        found = [(i, step) for i, char in enumerate(self.original) for step in fold_char(char)[1]]
        return tuple(sorted(found + list(self.context_events)))

    @property
    def applied(self) -> frozenset[str]:
        return frozenset(step for _, step in self.events)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of normalized ``[start, end)`` (non-empty)."""
        offsets = self.offsets
        return offsets[start], offsets[end - 1] + 1

    def steps_between(self, start: int, end: int) -> tuple[str, ...]:
        """The steps applied to original characters in ``[start, end)``, in STEPS order."""
        found = {step for char in self.original[start:end] for step in fold_char(char)[1]}
        lo = bisect.bisect_left(self.context_events, (start, ""))
        hi = bisect.bisect_left(self.context_events, (end, ""))
        found.update(step for _, step in self.context_events[lo:hi])
        return tuple(step for step in STEPS if step in found)


def _origin(original: str, folded: str) -> list[int]:
    if len(folded) == len(original):
        return list(range(len(original)))
    fold = FOLD
    return [i for i, char in enumerate(original) if fold[ord(char)]]


@lru_cache(maxsize=8)
def _repeat_pattern(collapse: int) -> re.Pattern[str]:
    return re.compile(rf"([^0-9])\1{{{collapse - 1},}}")


def normalize(text: str, collapse: int = DEFAULT_COLLAPSE) -> Normalized:
    """``text`` normalized; ``collapse`` 0 keeps repeated characters as they are."""
    folded = text.translate(FOLD)
    origin: list[int] | None = None
    events: list[tuple[int, str]] = []
    if _DIGIT_RUN.search(folded):
        origin = _origin(text, folded)
        folded = _convert_digit_runs(folded, origin, events)
    if collapse >= 2 and _repeat_pattern(collapse).search(folded):
        origin = _origin(text, folded) if origin is None else origin
        folded, origin = _collapse(folded, origin, events, _repeat_pattern(collapse))
    events.sort()
    return Normalized(folded, text, origin, tuple(events))


def _convert_digit_runs(folded: str, origin: list[int], events: list[tuple[int, str]]) -> str:
    """Chinese digits to ASCII where they are part of a long enough digit run."""
    parts: list[str] = []
    last = 0
    for run in _DIGIT_RUN.finditer(folded):
        start, end = run.span()
        parts.append(folded[last:start])
        parts.append(run.group().translate(_TO_ASCII_DIGITS))
        events.extend(
            (origin[k], CHINESE_DIGITS)
            for k in range(start, end)
            if folded[k] in CHINESE_DIGIT_VALUES
        )
        last = end
    parts.append(folded[last:])
    return "".join(parts)


def _collapse(
    folded: str, origin: list[int], events: list[tuple[int, str]], pattern: re.Pattern[str]
) -> tuple[str, list[int]]:
    drop: set[int] = set()
    for run in pattern.finditer(folded):
        start, end = run.span()
        drop.update(range(start + 1, end))
        events.extend((origin[k], REPEATS) for k in range(start, end))
    text = "".join(c for i, c in enumerate(folded) if i not in drop)
    return text, [o for i, o in enumerate(origin) if i not in drop]
