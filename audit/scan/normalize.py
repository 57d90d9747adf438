"""Text normalization for matching, with a map back to the original text.

Every original character becomes at most one normalized character, so ``offsets[i]`` (the
index in the original of normalized character ``i``) is all it takes to report a match in
the original text: normalized ``[s, e)`` is original ``[offsets[s], offsets[e - 1] + 1)``.
``offsets`` ends with a sentinel, ``len(original)``.

The steps, per character (``fold_char``): any character Unicode gives a numeric value 0-9
(⑴ ⒈ ㈠ ① ❶ Ⅴ ² ٣, by ``unicodedata.numeric``) to its ASCII digit, full-width and other
compatibility forms to their plain form (NFKC; ⒜ and other parenthesized or dotted forms
to what is inside), lower case, traditional to
simplified (OpenCC ``t2s``, per character, which also undoes the ``s2t`` artefacts 髮 and 羣),
zero-width/format characters dropped, whitespace, punctuation, symbols and emoji dropped (so
微 信, 微.信 and 加*我*微*信 all read 微信), and a few symbols and the Cyrillic and Greek
letters that stand for a Latin letter (傻× reads 傻x, a Cyrillic vх reads vx), Latin letters
with tone marks or accents to the plain letter (pinyin typed with tones: bǎo zhèng reads
baozheng, lǜ reads lv). A
``Folding`` may add symbols that stand for a character (``symbols.txt``
of the word lists: 🐶 reads 狗, ➕ reads 加); the default folding has none. Then, on the
folded text: Chinese and formal digits to ASCII inside a run of at least ``DIGIT_RUN_MIN``
digits (一三八零零一三八零零零 is a phone number; 一下 stays as it is), letters written for
digits (o for 0, l and i for 1) where they sit between digits of such a run
(138OO138OOO reads 13800138000; hello and iphone13 stay as they are), and, when ``collapse`` is
set, a run of ``collapse`` or more of the same letter or character to one (微微微信 reads
微信). Digits never collapse: 13800000000 is a number.

The per-character steps are one ``str.translate`` over a lazily filled table, so the
common case costs no Python work per character. Which step changed which character is
worked out only when a finding asks for it (``steps_between``).
"""

from __future__ import annotations

import bisect
import itertools
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property, lru_cache

from opencc import OpenCC

# Step names, in the order explanations list them.
FULLWIDTH = "fullwidth"
COMPATIBILITY = "compatibility form"
CIRCLED_DIGITS = "circled digits"
NUMERAL_FORM = "numeral form"
LOWERCASE = "lowercase"
TRADITIONAL = "traditional to simplified"
ZERO_WIDTH = "zero-width removed"
SPACING = "spacing removed"
SYMBOLS = "symbols removed"
CHINESE_DIGITS = "chinese digits"
LETTER_DIGITS = "letters for digits"
EMOJI_SYMBOL = "emoji or symbol for a word"
REPEATS = "repeats collapsed"
LOOKALIKE = "look-alike letter"
TONE_MARKS = "tone marks removed"
STEPS = (
    FULLWIDTH,
    COMPATIBILITY,
    CIRCLED_DIGITS,
    NUMERAL_FORM,
    EMOJI_SYMBOL,
    LOOKALIKE,
    TONE_MARKS,
    LOWERCASE,
    TRADITIONAL,
    ZERO_WIDTH,
    SPACING,
    SYMBOLS,
    CHINESE_DIGITS,
    LETTER_DIGITS,
    REPEATS,
)

# A run of at least this many (Chinese or ASCII) digits is read as a number.
DIGIT_RUN_MIN = 7
NUMBER_MIN = 5  # the shortest number a recognizer looks at (a QQ number)
# Runs of this many identical characters collapse to one. Not 2: 妈妈的 must not read 妈的.
DEFAULT_COLLAPSE = 3

CHINESE_DIGIT_VALUES: dict[str, str] = {
    **{c: str(i) for i, c in enumerate("零一二三四五六七八九")},
    **{c: str(i) for i, c in enumerate("〇壹贰叁肆伍陆柒捌玖")},
    "幺": "1",  # read "yao" when people say phone numbers aloud
}
DIGIT_CHARS = "0123456789" + "".join(CHINESE_DIGIT_VALUES)
# Letters written for digits inside a number (after lower-casing): 138OO138OOO, 1З8...
LETTER_DIGIT_VALUES: dict[str, str] = {"o": "0", "l": "1", "i": "1", "丨": "1"}
LETTER_DIGIT_CHARS = "".join(LETTER_DIGIT_VALUES)
# A digit run: starts with a digit (or an l for 1); letters for digits may sit between
# digits, and up to three o at its end when no letter follows (138OO138OOO). ``[..]*[D]``
# backtracks only to the last digit of the run it has eaten, and the next search starts
# after it: linear in the text.
_DIGIT_RUN = re.compile(
    f"(?:(?<![a-z])[li丨](?=[0-9]))?[{DIGIT_CHARS}](?:[{DIGIT_CHARS}{LETTER_DIGIT_CHARS}]*[{DIGIT_CHARS}])?"
    "(?:o{1,3}(?![a-z]))?"
)
# the cheap test whether a text may hold a digit run at all
_LONG_RUN = re.compile(f"[{DIGIT_CHARS}{LETTER_DIGIT_CHARS}]{{{DIGIT_RUN_MIN},}}")
_TO_ASCII_DIGITS = str.maketrans({**CHINESE_DIGIT_VALUES, **LETTER_DIGIT_VALUES})
# over the characters of a digit run: "\x01" where it is a Chinese digit (a letter), else "\x00"
_CHINESE_MASK = str.maketrans(
    {c: "\x01" if c in CHINESE_DIGIT_VALUES else "\x00" for c in DIGIT_CHARS + LETTER_DIGIT_CHARS}
)
_LETTER_MASK = str.maketrans(
    {c: "\x01" if c in LETTER_DIGIT_VALUES else "\x00" for c in DIGIT_CHARS + LETTER_DIGIT_CHARS}
)


# Symbols written for a letter (傻×, 傻✗): without this they would be dropped as symbols.
# And Cyrillic and Greek letters that look like Latin ones (vх with a Cyrillic х, QQ
# spelled with Greek Ο for O): nothing but their look tells them apart in a chat.
_LOOKALIKES: dict[str, str] = {
    "×": "x", "✕": "x", "✖": "x", "✗": "x", "✘": "x", "╳": "x",
    **dict(zip("АВЕКМНОРСТУХаеорсухкмтвнійѕԁԛԝ", "abekmhopctyxaeopcyxkmtbhijsdqw", strict=True)),
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧαεικνορτυχ", "abezhikmnoptyxaeiknoptux", strict=True)),
}  # fmt: skip


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
    if char in _LOOKALIKES:
        return _LOOKALIKES[char], (LOOKALIKE,)
    digit = _numeral(char, category)
    if digit is not None:
        if "0" <= char <= "9":
            return char, ()
        if 0xFF10 <= ord(char) <= 0xFF19:
            return digit, (FULLWIDTH,)
        return digit, (CIRCLED_DIGITS if "CIRCLED" in unicodedata.name(char, "") else NUMERAL_FORM,)
    compat = unicodedata.normalize("NFKC", char)
    if len(compat) > 1:  # ⒜ -> (a): keep what is inside the brackets or before the dot
        inner = compat.strip("().［］ ")
        compat = inner if len(inner) == 1 and inner.isalnum() else compat
    if len(compat) == 1 and compat != char:
        if 0xFF01 <= ord(char) <= 0xFF5E or char == "\u3000":
            steps.append(FULLWIDTH)
        elif "CIRCLED" in unicodedata.name(char, ""):
            steps.append(CIRCLED_DIGITS)
        else:
            steps.append(COMPATIBILITY)
        char = compat
        category = unicodedata.category(char)
    toneless = _toneless(char, category)
    if toneless is not None:
        steps.append(TONE_MARKS)
        char, category = toneless, "Ll"
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


def _toneless(char: str, category: str) -> str | None:
    """A Latin letter with a tone mark or other accent as the plain lower-case letter
    (pinyin typed with tones: bǎo zhèng reads bao zheng; ü as v, the way pinyin is typed), or
    None for any other character."""
    if category not in ("Ll", "Lu") or char.isascii() or not "\u00c0" <= char <= "\u024f":
        return None
    base = unicodedata.normalize("NFD", char.lower())
    if base[0] == "u" and "\u0308" in base:
        return "v"
    return base[0] if base[0].isascii() and base[0].isalpha() else None


def _numeral(char: str, category: str) -> str | None:
    """The ASCII digit of a character Unicode gives the value 0-9 (not 一..九: they are
    words as often as numbers, see the digit runs)."""
    if category[0] != "N" and category != "So":
        return None
    value = unicodedata.numeric(char, None)
    if value is None or value != int(value) or not 0 <= value <= 9:
        return None
    if char in CHINESE_DIGIT_VALUES:
        return None
    return str(int(value))


class FoldTable(dict[int, str]):
    """``str.translate`` table: code point -> folded character, "" for dropped ones.

    Filled on first sight of each character, so it costs nothing to create. ``overrides``
    (symbol -> one character) come first: the symbols a word list says stand for a word.
    """

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.overrides = dict(overrides or {})
        # ``kept`` as a list over every code point, when a caller has built one (faster)
        self.kept_list: Sequence[str] | None = None

    def __missing__(self, key: int) -> str:
        char = chr(key)
        value = self.overrides[char] if char in self.overrides else fold_char(char)[0]
        self[key] = value
        return value

    def steps(self, char: str) -> tuple[str, ...]:
        """The steps that changed ``char``."""
        return (EMOJI_SYMBOL,) if char in self.overrides else fold_char(char)[1]

    @cached_property
    def steps_table(self) -> _StepsTable:
        """``steps`` by character, filled on first sight (looked up at C level)."""
        return _StepsTable(self)

    @cached_property
    def kept(self) -> _KeptTable:
        """``str.translate`` table: "\x01" for a character folding keeps, "\x00" if not."""
        return _KeptTable(self)


class _StepsTable(dict[str, tuple[str, ...]]):
    def __init__(self, fold: FoldTable) -> None:
        super().__init__()
        self.fold = fold

    def __missing__(self, char: str) -> tuple[str, ...]:
        value = self[char] = self.fold.steps(char)
        return value


class _KeptTable(dict[int, str]):
    def __init__(self, fold: FoldTable) -> None:
        super().__init__()
        self.fold = fold

    def __missing__(self, key: int) -> str:
        value = "\x01" if self.fold[key] else "\x00"
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
        fold: FoldTable = FOLD,
    ) -> None:
        self.text = text
        self.original = original
        self.fold = fold
        self._origin = origin
        self._offsets: tuple[int, ...] | None = None
        # (original index, step) for the steps that depend on neighbours (digits, repeats)
        self.context_events = context_events

    def __repr__(self) -> str:
        return f"Normalized({self.text!r}, original={self.original!r})"

    @property
    def offsets(self) -> tuple[int, ...]:
        """Original index of each normalized character, then ``len(original)``."""
        # worked out once, by hand: functools.cached_property takes a lock on every call
        if self._offsets is None:
            if self._origin is None:
                self._origin = _origin(self.original, self.text, self.fold)
            self._offsets = (*self._origin, len(self.original))
        return self._offsets

    @cached_property
    def events(self) -> tuple[tuple[int, str], ...]:
        """(original index, step) for every change, by original index."""
        steps = self.fold.steps
        found = [(i, step) for i, char in enumerate(self.original) for step in steps(char)]
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
        table = self.fold.steps_table
        found = set(itertools.chain.from_iterable(map(table.__getitem__, self.original[start:end])))
        lo = bisect.bisect_left(self.context_events, (start, ""))
        hi = bisect.bisect_left(self.context_events, (end, ""))
        found.update(step for _, step in self.context_events[lo:hi])
        return tuple(step for step in STEPS if step in found)


def _origin(original: str, folded: str, fold: FoldTable = FOLD) -> list[int]:
    if len(folded) == len(original):
        return list(range(len(original)))
    # C-level: the indices whose folded character is not empty
    table = fold.kept if fold.kept_list is None else fold.kept_list
    kept = original.translate(table).encode("latin-1")
    return list(itertools.compress(range(len(original)), kept))


@lru_cache(maxsize=8)
def _repeat_pattern(collapse: int) -> re.Pattern[str]:
    return re.compile(rf"([^0-9])\1{{{collapse - 1},}}")


@lru_cache(maxsize=8)
def _any_run(collapse: int) -> re.Pattern[str]:
    # several times faster than _repeat_pattern's search: no class, no counted repeat
    return re.compile("(.)" + r"\1" * (collapse - 1), re.DOTALL)


def _has_repeats(folded: str, collapse: int) -> bool:
    """Whether ``_repeat_pattern(collapse)`` has a match: a run of a character that is no
    digit (a run of digits cannot share a character with it, so none is skipped)."""
    return any(not "0" <= run.group(1) <= "9" for run in _any_run(collapse).finditer(folded))


def normalize(
    text: str,
    collapse: int = DEFAULT_COLLAPSE,
    fold: FoldTable = FOLD,
    table: Sequence[str] | None = None,
) -> Normalized:
    """``text`` normalized; ``collapse`` 0 keeps repeated characters as they are. ``table``:
    ``fold`` as a list over every code point, when the caller has one (translate indexes a
    list without hashing: several times faster on long text)."""
    folded = text.translate(fold if table is None else table)
    origin: list[int] | None = None
    events: list[tuple[int, str]] = []
    if _LONG_RUN.search(folded):
        origin = _origin(text, folded, fold)
        folded = _convert_digit_runs(folded, origin, events)
    if collapse >= 2 and _has_repeats(folded, collapse):
        origin = _origin(text, folded, fold) if origin is None else origin
        folded, origin = _collapse(folded, origin, events, _repeat_pattern(collapse))
    events.sort()
    return Normalized(folded, text, origin, tuple(events), fold)


def _is_number(run: str) -> bool:
    """Long enough, and at least a third of it real digits."""
    letters = sum(map(run.count, LETTER_DIGIT_CHARS))
    return len(run) >= DIGIT_RUN_MIN and letters * 3 <= len(run) * 2


def _convert_digit_runs(folded: str, origin: list[int], events: list[tuple[int, str]]) -> str:
    """Chinese digits to ASCII where they are part of a long enough digit run."""
    parts: list[str] = []
    last = 0
    for run in _long_digit_runs(folded):
        start, end = run.span()
        if not _is_number(run.group()):
            continue
        parts.append(folded[last:start])
        parts.append(run.group().translate(_TO_ASCII_DIGITS))
        last = end
        if run.group().isascii() and run.group().isdigit():
            continue  # nothing converted
        # an event for each Chinese digit and each letter, picked at C level (events are
        # sorted at the end)
        kept = origin[start:end]
        for mask, step in ((_CHINESE_MASK, CHINESE_DIGITS), (_LETTER_MASK, LETTER_DIGITS)):
            chosen = itertools.compress(kept, run.group().translate(mask).encode("latin-1"))
            events.extend(zip(chosen, itertools.repeat(step)))
    parts.append(folded[last:])
    return "".join(parts)


def _long_digit_runs(folded: str) -> Iterator[re.Match[str]]:
    """The matches of ``_DIGIT_RUN`` at least ``DIGIT_RUN_MIN`` long, as ``finditer`` finds
    them, with no Python step for the short ones (a megabyte of 1a2b3... has 300,000).

    A match is made of digits and letters for digits only, so each lies within a stretch
    of them found by ``_LONG_RUN``; ``finditer`` reaches a stretch's start with nothing
    pending (no match crosses into it), and a match starting inside a short match is a
    piece of it, no longer. The stretch's next character is searched too, as what follows
    a match (``(?![a-z])``); no match can start on it."""
    for stretch in _LONG_RUN.finditer(folded):
        for run in _DIGIT_RUN.finditer(folded, stretch.start(), stretch.end() + 1):
            if run.end() - run.start() >= DIGIT_RUN_MIN:
                yield run


def _collapse(
    folded: str, origin: list[int], events: list[tuple[int, str]], pattern: re.Pattern[str]
) -> tuple[str, list[int]]:
    """Each run to its first character; work per run, not per character."""
    parts: list[str] = []
    kept: list[int] = []
    last = 0
    for run in pattern.finditer(folded):
        start, end = run.span()
        parts.append(folded[last : start + 1])
        kept.extend(origin[last : start + 1])
        # the kept character is the run's first: a finding holding it starts there or before
        events.append((origin[start], REPEATS))
        last = end
    parts.append(folded[last:])
    kept.extend(origin[last:])
    return "".join(parts), kept
