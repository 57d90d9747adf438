"""The shortcuts the scanner takes for speed give what the long way gives.

Each shortcut is a necessary condition checked first; these tests hold the conditions to
what they stand for.
"""

from __future__ import annotations

import importlib
import random
import re
from pathlib import Path

import pytest

from audit.scan import context
from audit.scan.normalize import (
    _DIGIT_RUN,
    DIGIT_RUN_MIN,
    _has_repeats,
    _long_digit_runs,
    _repeat_pattern,
    normalize,
)
from audit.scan.recognizers import NumberRecognizer, WeChatIdRecognizer, default_recognizers
from audit.scan.scanner import GAP_MAX, Scanner, _Quota

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


# Seeded texts: simulated chats (about one in seven holds a number or a term) and random
# mixes of digits, letters for digits, Chinese digits, repeats, separators and terms.
def _texts() -> list[str]:
    from audit.archive.simulator.chats import generate_messages
    from audit.archive.simulator.world import build_world
    from audit.config import SimulatorConfig

    cfg = SimulatorConfig(messages=3000)
    rng = random.Random(cfg.seed)
    world = build_world(cfg, rng)
    chats = [
        m.plain["text"]["content"]
        for m in generate_messages(world, cfg, rng)
        if m.plain.get("msgtype") == "text"
    ]
    rng = random.Random(20261207)
    alphabet = "0123456789一二三四五六七八九零幺oli丨 -@＠.qQ：微信加我号码哈x收益保证"
    mixes = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 200))) for _ in range(3000)]
    return chats + mixes


TEXTS = _texts()
SCANNER = Scanner.from_directory(Path(__file__).resolve().parents[2] / "wordlists")


def test_a_repeat_is_seen_where_the_collapsing_pattern_sees_one() -> None:
    for collapse in (2, 3, 4):
        pattern = _repeat_pattern(collapse)
        for text in TEXTS:
            folded = text.translate(SCANNER._fold_list)
            assert _has_repeats(folded, collapse) == (pattern.search(folded) is not None), text


def test_the_long_digit_runs_are_those_of_the_whole_search() -> None:
    for text in TEXTS:
        folded = text.translate(SCANNER._fold_list)
        everything = [r.span() for r in _DIGIT_RUN.finditer(folded)]
        long = [span for span in everything if span[1] - span[0] >= DIGIT_RUN_MIN]
        assert [r.span() for r in _long_digit_runs(folded)] == long, text


def test_the_matches_on_the_codes_are_those_on_the_normalized_text_when_nothing_changed() -> None:
    compared = 0
    for text in TEXTS:
        norm = normalize(text, SCANNER.collapse, SCANNER.fold, SCANNER._fold_list)
        if norm.context_events or "@" in text or "＠" in text:
            continue  # the scanner matches the normalized text again
        compared += 1
        codes = text.translate(SCANNER._table)
        assert list(SCANNER._automaton.iter(codes)) == SCANNER._matches(norm), text
    assert compared > len(TEXTS) // 3


def test_the_halves_joined_are_every_pair_of_a_term_a_short_gap_apart() -> None:
    payloads = SCANNER._payloads
    looked = 0
    for text in TEXTS:
        found = list(SCANNER._automaton.iter(text.translate(SCANNER._table)))
        # every (left match, right match) of the same term, the long way
        halves = [
            (end // 2 + 1, payloads[v][0], payloads[v][3])
            for end, v in found
            if payloads[v][3] >= 0
        ]
        expected = sorted(
            (SCANNER._pairs[left, right], left_end, right_end - length)
            for left_end, _, left in halves
            for right_end, length, right in halves
            if (left, right) in SCANNER._pairs and 1 <= right_end - length - left_end <= GAP_MAX
        )
        assert sorted(SCANNER._joined(found)) == expected, text
        if found and min(v for _, v in found) >= SCANNER._half_only:
            looked += 1  # no whole term: the fast look is the joining
            assert SCANNER._worth_a_look(found, None, _Quota()) == bool(expected), text
    assert looked > 100


def test_a_text_the_cue_shortcut_passes_over_has_no_cue_in_any_window() -> None:
    rng = random.Random(11)
    # cue words cut anywhere (decoys too: 非常 holds the cue 非) among text without cues
    words = "".join(context._cue_words()[0])
    pieces = [words[i : i + rng.randint(1, 6)] for i in range(0, len(words), 3)]
    texts = TEXTS + ["".join(rng.sample(pieces, 4)) for _ in range(2000)]
    passed = 0
    for text in texts:
        norm = normalize(text)
        if context._cue_starts().search(norm.text) or context._QUOTES.search(text):
            continue  # judged the long way
        passed += 1
        for _ in range(3):
            lo = rng.randint(0, len(text))
            window = context.MessageCues(text, norm, lo, rng.randint(lo, len(text)))
            assert window.empty and not window.cues, text
    assert passed > 300


# the patterns as plainly written, beside the ones written so the regex engine skips ahead
@pytest.mark.parametrize(
    ("fast", "plain"),
    [
        (context._CLAUSE_END, r"[，。！？；\n!?;…～~]+|,(?!\d)|\.(?![\w])"),
        (context._SENTENCE_END, r"[。！？\n!?]+|\.(?![\w])"),
        (
            WeChatIdRecognizer.CUE,
            r"(?<![A-Za-z0-9])(?:[vV][xX]?|[wW][xX]|[Ｖｖ]|薇|微|威|卫|维)\s{0,2}[:：=＝]",
        ),
    ],
    ids=["clause", "sentence", "wechat_cue"],
)
def test_a_pattern_written_for_speed_matches_what_it_plainly_says(
    fast: re.Pattern[str], plain: str
) -> None:
    slow = re.compile(plain)
    rng = random.Random(13)
    alphabet = "，。！？；\n!?;…～~,.a1 _vVxXwWＶｖ薇微威卫维:：=＝好"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(5000)]
    for text in [*TEXTS, *texts]:
        lo = rng.randint(0, len(text))
        for window in ((0, len(text)), (lo, rng.randint(lo, len(text)))):
            expected = [m.span() for m in slow.finditer(text, *window)]
            assert [m.span() for m in fast.finditer(text, *window)] == expected, (text, window)
