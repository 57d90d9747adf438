"""The shortcuts the scanner takes for speed give what the long way gives.

Each shortcut is a necessary condition checked first; these tests hold the conditions to
what they stand for.
"""

from __future__ import annotations

import importlib
import re

import pytest

from audit.scan.recognizers import NumberRecognizer, default_recognizers

NUMBER_RECOGNIZERS = [r for r in default_recognizers() if isinstance(r, NumberRecognizer)]


def _width(pattern: re.Pattern[str]) -> tuple[int, int]:
    parser = importlib.import_module("re._parser")  # the widths a pattern can match
    low, high = parser.parse(pattern.pattern).getwidth()
    return int(low), int(high)


@pytest.mark.parametrize("recognizer", NUMBER_RECOGNIZERS, ids=lambda r: r.NAME)
def test_a_number_recognizer_lengths_are_those_of_its_patterns(
    recognizer: NumberRecognizer,
) -> None:
    widths = [_width(p.regex) for p in recognizer.PATTERNS]

    assert (min(w[0] for w in widths), max(w[1] for w in widths)) == recognizer.LENGTHS
