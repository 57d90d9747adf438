"""Hostile input: the work grows in step with the message, and long messages are chunked.

Work is counted, never timed: the number of Python lines the scanner executes (a trace
hook), for a message and for one four times as long. C-level work (regexes, translate,
the automaton) is bounded by construction: it only ever sees one chunk of at most CHUNK
characters, and every pattern is linear in what it sees.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from audit.scan.scanner import CHUNK, MAX_PER_RULE, OVERLAP, Scanner

DEFAULT_LISTS = Path(__file__).resolve().parents[2] / "wordlists"
SCANNER = Scanner.from_directory(DEFAULT_LISTS)
# the shapes that made the old recognizers quadratic, and their relatives
UNITS = [
    "1-", "1\u200b", "1 ", "8", "1o", "@", "a@", "a.", "#", "at ", "艾特", "点", "v:", "微信号",
    "qq", "傻逼", "加我", "微信", "保证", "一定", "收益", "🐶", "，", "x", "订单",
]  # fmt: skip


def lines_run(text: str) -> int:
    """Python lines executed by one scan of ``text``."""
    count = 0

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        SCANNER.scan(text)
    finally:
        sys.settrace(None)
    return count


@settings(max_examples=12, deadline=None)
@given(st.lists(st.sampled_from(UNITS), min_size=1, max_size=3))
def test_the_work_grows_linearly_with_the_message(units: list[str]) -> None:
    unit = "".join(units)
    short = unit * (CHUNK // len(unit) + 1)
    long = unit * (4 * CHUNK // len(unit) + 4)
    SCANNER.scan(short)  # steady state: one-time work (lazy imports, caches) is not counted
    SCANNER.scan(long)

    ratio = lines_run(long) / max(1, lines_run(short))

    assert ratio <= 5.0, (unit, ratio)


def test_when_a_term_crosses_a_chunk_edge_then_it_is_found_once() -> None:
    for at in (CHUNK - 2, CHUNK - OVERLAP + 1, 2 * (CHUNK - OVERLAP) - 1):
        text = "嗯" * at + "加我微信" + "嗯" * (CHUNK + 10)

        found = [(f.rule, f.start, f.end) for f in SCANNER.scan(text, "staff")]

        assert found == [("diversion.jia_wo_wei_xin", at, at + 4)], at


def test_when_the_next_chunk_starts_inside_a_term_then_its_piece_is_not_reported() -> None:
    at = CHUNK - OVERLAP - 1  # the second chunk starts at 我微信号, a term of its own
    text = "嗯" * at + "加我微信号" + "嗯" * CHUNK

    found = [(f.rule, f.start, f.end) for f in SCANNER.scan(text, "staff")]

    assert found == [("diversion.jia_wo_wei_xin", at, at + 4)]


def test_when_a_phone_crosses_a_chunk_edge_then_it_is_found_once() -> None:
    at = CHUNK - 5
    text = "嗯" * at + "138 0013 8000" + "嗯" * CHUNK

    assert [(f.rule, f.start) for f in SCANNER.scan(text)] == [("privacy.phone", at)]


def test_when_a_word_is_repeated_without_end_then_a_rule_reports_a_bounded_number() -> None:
    findings = SCANNER.scan("傻逼" * 100_000, "customer")

    assert len(findings) == MAX_PER_RULE
    assert [f.start for f in findings] == list(range(0, 2 * MAX_PER_RULE, 2))


def test_a_spent_rule_hides_no_other_rule_later_in_the_message() -> None:
    """Once a rule has its findings, its matches are not looked at again; every other rule's,
    and the recognizers', still are, in every later chunk."""
    late = "稳赚不赔，电话13800138000"
    text = "加我微信，" * 20_000 + late
    at = len(text) - len(late)
    found = SCANNER.scan(text, "staff")
    rules = [f.rule for f in found]

    assert rules.count("diversion.jia_wo_wei_xin") == MAX_PER_RULE
    assert [(f.rule, f.start - at, f.technique) for f in found if f.start >= at] == [
        ("promise.wen_zhuan_bu_pei", 0, "exact"),
        ("privacy.phone", 7, "pattern"),
    ]


def test_when_a_megabyte_of_separated_digits_is_scanned_then_it_finishes_empty() -> None:
    assert SCANNER.scan("1-" * 500_000) == []
    assert SCANNER.scan("1\u200b" * 500_000) == []
