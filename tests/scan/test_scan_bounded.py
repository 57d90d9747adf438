"""Hostile input: the work grows in step with the message, and long messages are chunked.

Work is counted, never timed: the number of Python lines the scanner executes (a trace
hook), for a message and for one four times as long. C-level work (regexes, translate,
the automaton) is bounded by construction: it only ever sees one chunk of at most CHUNK
characters, and every pattern is linear in what it sees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from linecount import lines_run as count_lines

from audit.scan import scanner as scanner_module
from audit.scan.scanner import (
    CHUNK,
    MAX_GAP_LOOKS,
    MAX_PER_MESSAGE,
    MAX_PER_RULE,
    OVERLAP,
    Scanner,
)

DEFAULT_LISTS = Path(__file__).resolve().parents[2] / "wordlists"
SCANNER = Scanner.from_directory(DEFAULT_LISTS)
# the shapes that made the old recognizers quadratic, and their relatives
UNITS = [
    "1-", "1\u200b", "1 ", "8", "1o", "@", "a@", "a.", "#", "at ", "艾特", "点", "v:", "微信号",
    "qq", "傻逼", "加我", "微信", "保证", "一定", "收益", "🐶", "，", "x", "订单",
]  # fmt: skip


def lines_run(text: str) -> int:
    """Python lines executed by one scan of ``text``."""
    return count_lines(lambda: SCANNER.scan(text))


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


@pytest.mark.parametrize(
    ("late", "expected"),
    [
        ("保证一定收益", [("promise.bao_zheng_shou_yi", 0, "gap")]),  # two halves, a gap
        ("微信tony_811", [("diversion.contact_id", 2, "pattern")]),  # a trigger word, no digit run
    ],
)
def test_once_rules_are_spent_a_later_chunk_still_finds_gaps_and_triggered_ids(
    late: str, expected: list[tuple[str, int, str]]
) -> None:
    """A later chunk with only spent rules' keys is passed over; one with the halves of a term
    with room left, or a recognizer's trigger word, is not."""
    text = "加我微信，" * 20_000 + late
    at = len(text) - len(late)

    found = SCANNER.scan(text, "staff")

    assert [f.rule for f in found].count("diversion.jia_wo_wei_xin") == MAX_PER_RULE
    assert [(f.rule, f.start - at, f.technique) for f in found if f.start >= at] == expected


def _terms_of_many_rules(count: int) -> dict[str, str]:
    """rule -> a listed term that is found as that rule alone, for ``count`` rules."""
    found: dict[str, str] = {}
    for term in SCANNER.lists.terms:
        if term.rule not in found and len(term.term) >= 2:
            hits = SCANNER.scan(term.term)
            if [f.rule for f in hits] == [term.rule]:
                found[term.rule] = term.term
        if len(found) == count:
            break
    return found


def test_a_message_reports_a_bounded_number_of_findings_and_every_rule_in_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terms = _terms_of_many_rules(40)  # 40 rules at 50 findings each would be 2,000
    late = "稳赚不赔" if "promise.wen_zhuan_bu_pei" not in terms else "我要投诉"
    late_rule = SCANNER.scan(late)[0].rule
    assert late_rule not in terms
    text = "。".join(terms.values()) * 80 + "。" + late

    found = SCANNER.scan(text)
    with monkeypatch.context() as unbounded:
        unbounded.setattr(scanner_module, "MAX_PER_MESSAGE", 10**9)
        everything = SCANNER.scan(text)
    rules = {f.rule for f in found}

    assert len(everything) > 1.5 * MAX_PER_MESSAGE
    assert MAX_PER_MESSAGE <= len(found) < MAX_PER_MESSAGE + len(terms) * MAX_PER_RULE // 10
    # every rule is reported, the one first met past the bound too
    assert rules == {f.rule for f in everything} and late_rule in rules
    assert found[: MAX_PER_MESSAGE // 2] == everything[: MAX_PER_MESSAGE // 2]


def test_past_the_bound_a_rule_is_looked_for_until_a_finding_of_it_is_kept() -> None:
    """Its first occurrences are negated (context judgement drops them): a later plain one
    is still reported."""
    terms = _terms_of_many_rules(30)
    assert "complaint.wo_yao_tou_su" not in terms or terms.pop("complaint.wo_yao_tou_su")
    filler = "。".join(terms.values()) * 60
    text = filler + "。我不是说我要投诉" * 3 + "。" + filler + "。后来我要投诉。"

    found = SCANNER.scan(text)
    complaints = [f for f in found if f.rule == "complaint.wo_yao_tou_su"]

    assert [text[f.start : f.end] for f in complaints] == ["我要投诉"]
    assert complaints[0].start == text.index("后来我要投诉") + 2


def test_when_a_megabyte_of_separated_digits_is_scanned_then_it_finishes_empty() -> None:
    assert SCANNER.scan("1-" * 500_000) == []
    assert SCANNER.scan("1\u200b" * 500_000) == []


def test_jieba_looks_at_a_bounded_number_of_gaps_in_a_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """加我们微信 over and over: each 们 is a gap between 加我 and 微信 that jieba rejects (我们
    is a word). Past MAX_GAP_LOOKS looks the rest is matched as spelled; an exact term
    after them is still found. (The looks are counted by a wrapper that calls the real
    function.)"""
    looks = 0
    real = scanner_module._fills_a_gap

    def counted(*args: Any) -> bool:
        nonlocal looks
        looks += 1
        return real(*args)

    monkeypatch.setattr(scanner_module, "_fills_a_gap", counted)
    text = "加我们微信，" * 40_000 + "加我微信"

    found = SCANNER.scan(text, "staff")

    assert [(f.rule, f.start) for f in found] == [("diversion.jia_wo_wei_xin", len(text) - 4)]
    assert looks == MAX_GAP_LOOKS
    looks = 0
    assert SCANNER.scan("加我们微信，" * 40, "staff") == []
    assert looks == 40  # a short message: every gap looked at


@pytest.mark.parametrize("role", [None, "staff", "customer"])
def test_a_long_message_matched_against_its_live_keys_has_the_same_findings(
    monkeypatch: pytest.MonkeyPatch, role: str | None
) -> None:
    """Once most keys are spent the rest of a long message is matched against an automaton of
    the keys that can still make a finding: always reducing and never reducing find the
    same, with rules first met late, gaps, ids and numbers after the reduction."""
    terms = _terms_of_many_rules(40)
    late = "。保证一定收益，微信tony_811，电话13800138000，稳赚不赔，我不是说我要投诉，我要投诉"
    text = "。".join(terms.values()) * 800 + late  # 30 chunks
    monkeypatch.setattr(scanner_module, "REDUCE_MIN_REST", 4 * CHUNK)

    def scanned(live_share: float) -> list[Any]:
        with monkeypatch.context() as patched:
            patched.setattr(scanner_module, "REDUCE_MAX_LIVE", live_share)
            return SCANNER.scan(text, role)

    always, never = scanned(1.0), scanned(0.0)
    assert always == never
    assert {f.rule for f in always if f.start >= len(text) - len(late)} >= {
        "diversion.contact_id", "privacy.phone",
    }  # fmt: skip
