"""Whether a number in a message is an amount or a quantity rather than a number on its own.

A term that is a bare number (the hotline 12300, 110) is a complaint when someone names it,
not when a price or a data allowance happens to hold the same digits: 「价格123.00元」
normalizes to 12300 (a dot between digits is dropped like any separator), and 「一共12300元」,
「¥12300」, 「12300M流量」 are amounts. So a bare-number match is dropped when, in the original
text,

- the number has a decimal point (123.00) or thousands grouping (12,300) inside it;
- digits continue it on either side, directly or after a decimal point (12300.5, 0.12300);
- a currency sign or word stands before it (¥ ￥ $ 人民币 rmb), or a unit after it (元 块 角
  毛 分 万 千 百 亿 % G M 兆 分钟 小时 积分 ...), spaces allowed in between.

Separators typed to dodge a list (1-2-3-0-0, 1 2 3 0 0, 1.2.3.0.0, zero-width characters)
are no decimal point: the number still stands alone. A unit character that starts an ordinary
word (分别, 万一, 千万, 百度) is no unit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

DECIMAL_POINTS = frozenset(".．")
THOUSANDS_SEPARATOR = ","
CURRENCY_BEFORE = re.compile(r"(?:[¥￥$＄€£]|人民币|rmb|usd|hkd)\s*$", re.IGNORECASE)
# What may follow an amount or a quantity. ASCII units must end there (12300mb, not 12300more);
# a unit character that begins an ordinary word is no unit (12300分别, 12300万一).
UNIT_AFTER = re.compile(
    r"\s*(?:"
    r"[元块角毛%％‰兆亿]|美元|港币|欧元|刀"
    r"|分(?![别开享析期散配手明辨类])|万(?!一)|千(?!万)|百(?!度|分百)"
    r"|个月|小时|秒|积分|倍"
    r"|(?:[kmgt]b?|w|rmb|yuan|min|mins)(?![a-z])"
    r")",
    re.IGNORECASE,
)
# Units after folding (full-width Ｍ, 萬 -> 万): the next few characters are folded first.
_LOOK_AHEAD = 4
_LOOK_BEHIND = 4


def quantity_reason(
    text: str,
    start: int,
    end: int,
    fold: Mapping[int, str],
    *,
    before: bool = True,
    after: bool = True,
) -> str:
    """Why the number at original ``[start, end)`` is an amount or part of another number
    ("" when it stands alone). ``fold`` maps a code point to its normalized form (a digit is
    any character folding to an ASCII digit: full-width, circled ...). ``before``/``after``:
    whether the text on that side is what follows or precedes the number (False for the side
    where the rest of a term sits: 打|12300), and the number's own format is looked at only
    when both are."""

    def is_digit(at: int) -> bool:
        return 0 <= at < len(text) and "0" <= fold[ord(text[at])][:1] <= "9"

    if before and after:
        reason = _format_reason(text, start, end, is_digit)
        if reason:
            return reason
    if before:
        if is_digit(start - 1):
            return "part of a longer number"
        if text[start - 1 : start] in DECIMAL_POINTS and is_digit(start - 2):
            return "part of a decimal number"
        if CURRENCY_BEFORE.search(_folded(text[max(0, start - _LOOK_BEHIND) : start], fold)):
            return "an amount of money"
    if after:
        if is_digit(end):
            return "part of a longer number"
        if text[end : end + 1] in DECIMAL_POINTS and is_digit(end + 1):
            return "part of a decimal number"
        if UNIT_AFTER.match(_folded(text[end : end + _LOOK_AHEAD], fold)):
            return "an amount or a quantity"
    return ""


def _format_reason(text: str, start: int, end: int, is_digit: Callable[[int], bool]) -> str:
    """A decimal point or a thousands separator inside the number (one separator only:
    1.2.3.0.0 is a number spelled out to dodge a list)."""
    groups = _groups([i for i in range(start, end) if not is_digit(i)])
    if len(groups) != 1 or groups[0][0] != groups[0][1]:
        return ""
    at = groups[0][0]
    if text[at] in DECIMAL_POINTS:
        return "a decimal number"
    if text[at] == THOUSANDS_SEPARATOR and sum(map(is_digit, range(at + 1, end))) == 3:
        return "a number grouped in thousands"
    return ""


def _groups(indices: list[int]) -> list[tuple[int, int]]:
    """Consecutive indices as (first, last) runs."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def _folded(text: str, fold: Mapping[int, str]) -> str:
    """``text`` with full-width and traditional forms folded, keeping spaces and signs (a
    currency sign or a % is what is looked for, and a comma ends a unit's look)."""
    return "".join(fold[ord(c)] or c for c in text)
