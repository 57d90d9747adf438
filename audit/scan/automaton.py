"""The Aho-Corasick automaton over an encoded alphabet, and its on-disk cache.

pyahocorasick keeps a node's children in an array and searches it linearly. A list of
Chinese terms starts with hundreds of distinct characters (a 50,000-entry list with
thousands), so every character of a message that begins no term costs a scan of all the
root's children. Measured (bench/scan.py, results in bench/results/scan.json): on a
50,000-entry list plain ``iter`` manages a fifth of the speed it has on a short list.

So the automaton never sees characters, but two-character codes: each character that occurs
in a term is numbered, and number ``i`` is written as ``HIGH[i // base] + LOW[i % base]``
with ``base`` about the square root of the alphabet's size. Every node then has at most
``base`` children (tens, not thousands), at the price of twice the steps. HIGH and LOW come
from disjoint ranges of the private use area, so a code can only match on a character
boundary. Characters in no term share the code of index 0, which no term uses. Digits and
Chinese digits are numbered 1..31, ``@`` (which normalization drops; only the table for
original text has it) 32, and the letters written for digits (o, l, i, 丨) 33..36, so they
all share ``HIGH[0]``: ``SLOW_MARK in codes`` and ``SLOW_PATTERN`` find a run of digits (letters
for digits inside it) or an ``@`` in the encoded text without decoding it. Symbols a word
list says stand for a character (``symbols.txt``) get that character's code.

The encoding is applied by ``str.translate`` with a table from original characters straight
to codes (normalization folded in), so a message is encoded in one C-level pass.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import pickle
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import ahocorasick

from audit.scan.normalize import DIGIT_CHARS, LETTER_DIGIT_CHARS, NUMBER_MIN, fold_char

HIGH0 = 0xE000
LOW0 = 0xF000
# index 0 (other), the 31 digit characters, @ and the 4 letters for digits fit under HIGH[0]
MIN_BASE = 37
AT_INDEX = 32
_RESERVED = DIGIT_CHARS + "@" + LETTER_DIGIT_CHARS  # indices 1..36


HIGH_OTHER = HIGH0 + 0xFFF  # "other" gets a HIGH of its own, so HIGH[0] means digits or @
SLOW_MARK = chr(HIGH0)  # in encoded original text: a digit or an @ is there
# five digits in a row (letters for digits between the first and last), or an @
_D = f"[{chr(LOW0 + 1)}-{chr(LOW0 + 31)}]"
_DL = f"[{chr(LOW0 + 1)}-{chr(LOW0 + 31)}{chr(LOW0 + 33)}-{chr(LOW0 + 36)}]"
_AT_OR_DIGITS = (
    f"{chr(LOW0 + AT_INDEX)}|{_D}(?:{chr(HIGH0)}{_DL}){{{NUMBER_MIN - 2}}}{chr(HIGH0)}{_D}"
)
# starts with a literal, so the regex engine skips ahead to HIGH[0] quickly
SLOW_PATTERN = re.compile(f"{chr(HIGH0)}(?:{_AT_OR_DIGITS})")
CACHE_FORMAT = 3  # bump with any change to the encoding


class Alphabet:
    """Numbers the characters of the terms and writes text as two-character codes."""

    def __init__(
        self, chars: Iterable[str], base: int = 0, symbols: tuple[tuple[str, str], ...] = ()
    ) -> None:
        ordered = list(_RESERVED) + sorted(set(chars) - set(_RESERVED))
        self.chars = "".join(ordered)
        self.base = base or max(MIN_BASE, math.isqrt(len(ordered) + 1) + 1)
        self.codes: dict[str, str] = {c: self._code(i + 1) for i, c in enumerate(ordered)}
        self.other = chr(HIGH_OTHER) + chr(LOW0)
        self._at = self._code(AT_INDEX)
        self.symbols = symbols  # (symbol, the character it stands for)
        # for normalized text: characters are already folded
        self.norm_table = _NormTable(self.codes, self.other)

    def _code(self, index: int) -> str:
        return chr(HIGH0 + index // self.base) + chr(LOW0 + index % self.base)

    @cached_property
    def table(self) -> list[str]:
        """``str.translate`` table for original text: a list over every code point.

        A list, not a dict: ``translate`` indexes it without hashing, about twice as fast.
        """
        # a character normalization drops ("") has no code; every other one its own or
        # ``other`` (looked up at C level: a quarter of a million code points each start)
        codes = {**self.codes, "": ""}
        head = list(map(codes.get, fold_list()[:FOLDED_PLANES], itertools.repeat(self.other)))
        head[ord("@")] = head[ord("＠")] = self._at
        for symbol, means in self.symbols:
            if ord(symbol) < FOLDED_PLANES:  # emoji and signs all are
                head[ord(symbol)] = self.codes.get(means, self.other)
        return head + [""] * (0x110000 - FOLDED_PLANES)

    @cached_property
    def norm_list(self) -> list[str]:
        """``norm_table`` as a list over every code point (what normalized text holds)."""
        table = [self.other] * 0x110000
        for char, code in self.codes.items():
            table[ord(char)] = code
        return table

    def encode(self, normalized: str) -> str:
        return normalized.translate(self.norm_list)

    def folded_table(self) -> list[str]:
        """Normalization's per-character fold as a list over every code point, with the
        symbols that stand for a character."""
        head = list(fold_list())
        for symbol, means in self.symbols:
            if ord(symbol) < FOLDED_PLANES:
                head[ord(symbol)] = means
        return head + [""] * (0x110000 - FOLDED_PLANES)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Alphabet, (self.chars, self.base, self.symbols))


# Planes 0-3 hold every character normalization keeps; beyond them is unassigned, private
# use, tags and variation selectors, which it drops.
FOLDED_PLANES = 0x40000


def fold_list() -> list[str]:
    """``FOLD`` for every code point below FOLDED_PLANES (cached on disk: 0.5 s to make)."""
    global _FOLD_LIST
    if _FOLD_LIST is None:
        key = cache_key("fold", unicodedata.unidata_version, version("opencc"))
        directory = cache_dir()
        cached = load_cached(directory, key)
        if isinstance(cached, list) and len(cached) == FOLDED_PLANES:
            _FOLD_LIST = cached
        else:
            _FOLD_LIST = [fold_char(chr(c))[0] for c in range(FOLDED_PLANES)]
            store_cached(directory, key, _FOLD_LIST)
    return _FOLD_LIST


_FOLD_LIST: list[str] | None = None


class _NormTable(dict[int, str]):
    def __init__(self, codes: dict[str, str], other: str) -> None:
        super().__init__()
        self.codes = codes
        self.other = other

    def __missing__(self, key: int) -> str:
        value = self.codes.get(chr(key), self.other)
        self[key] = value
        return value


@dataclass(frozen=True)
class Compiled:
    """What the scanner matches with; ``values[i]`` is the payload of automaton value i."""

    alphabet: Alphabet
    automaton: Any
    values: tuple[Any, ...]


def compile_keys(keys: dict[str, Any], symbols: tuple[tuple[str, str], ...] = ()) -> Compiled:
    """An encoded automaton for normalized ``keys``, each key mapped to its payload;
    ``symbols``: (symbol, character) pairs the original text's table reads as that character."""
    alphabet = Alphabet((c for key in keys for c in key), symbols=symbols)
    automaton = ahocorasick.Automaton()
    values: list[Any] = []
    for key, payload in keys.items():
        automaton.add_word(alphabet.encode(key), len(values))
        values.append(payload)
    if values:
        automaton.make_automaton()
    return Compiled(alphabet, automaton, tuple(values))


def cache_dir() -> Path:
    """``$AUDIT_SCAN_CACHE``, else ``$XDG_CACHE_HOME/wecom-audit/scan`` (~/.cache/...)."""
    explicit = os.environ.get("AUDIT_SCAN_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wecom-audit" / "scan"


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of the modules that shape the automaton: editing them invalidates the cache,
    whether or not someone remembered to bump a version."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in ("automaton.py", "normalize.py", "variants.py", "scanner.py", "wordlist.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


def cache_key(*parts: str) -> str:
    """A file name for the cached automaton of these inputs (lists' hash, versions...)."""
    material = "|".join((str(CACHE_FORMAT), version("pyahocorasick"), code_fingerprint(), *parts))
    return hashlib.sha256(material.encode()).hexdigest()[:32] + ".pickle"


def load_cached(directory: Path | None, key: str) -> Any | None:
    """The object cached under ``key``, or None (no cache, unreadable, or stale)."""
    if directory is None:
        return None
    try:
        with (directory / key).open("rb") as handle:
            return pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError):
        return None


def store_cached(directory: Path | None, key: str, value: Any) -> None:
    """Write atomically; a cache that cannot be written is only a slower next start."""
    if directory is None:
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
        partial = directory / f"{key}.{os.getpid()}.tmp"
        with partial.open("wb") as handle:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(directory / key)
    except OSError:
        return
