"""Normalization: each step, and the offset map back to the original text."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from audit.scan.normalize import (
    CHINESE_DIGIT_VALUES,
    CHINESE_DIGITS,
    CIRCLED_DIGITS,
    COMPATIBILITY,
    EMOJI_SYMBOL,
    FULLWIDTH,
    LETTER_DIGIT_VALUES,
    LETTER_DIGITS,
    LOOKALIKE,
    LOWERCASE,
    NUMERAL_FORM,
    REPEATS,
    SPACING,
    SYMBOLS,
    TONE_MARKS,
    TRADITIONAL,
    ZERO_WIDTH,
    FoldTable,
    fold_char,
    normalize,
)


@pytest.mark.parametrize(
    ("original", "text", "offsets", "applied"),
    [
        ("加我微信", "加我微信", (0, 1, 2, 3, 4), set()),
        ("微 信", "微信", (0, 2, 3), {SPACING}),
        ("微.信", "微信", (0, 2, 3), {SYMBOLS}),
        ("加*我*微*信", "加我微信", (0, 2, 4, 6, 7), {SYMBOLS}),
        ("ｖｘ", "vx", (0, 1, 2), {FULLWIDTH}),
        ("V信", "v信", (0, 1, 2), {LOWERCASE}),
        ("Ｖ信", "v信", (0, 1, 2), {FULLWIDTH, LOWERCASE}),
        ("微信號", "微信号", (0, 1, 2, 3), {TRADITIONAL}),
        ("微\u200b信", "微信", (0, 2, 3), {ZERO_WIDTH}),
        ("微\u3000信", "微信", (0, 2, 3), {FULLWIDTH, SPACING}),
        ("①③⑧", "138", (0, 1, 2, 3), {CIRCLED_DIGITS}),
        ("❶➂", "13", (0, 1, 2), {CIRCLED_DIGITS}),
        ("\t\n", "", (2,), {SPACING}),
        ("", "", (0,), set()),
    ],
)
def test_when_text_is_normalized_then_text_offsets_and_steps_match(
    original: str, text: str, offsets: tuple[int, ...], applied: set[str]
) -> None:
    norm = normalize(original)

    assert (norm.text, norm.offsets, norm.applied) == (text, offsets, applied)


def test_when_chinese_digits_form_a_long_run_then_they_become_ascii() -> None:
    norm = normalize("电话一三八零零一三八零零零")

    assert norm.text == "电话13800138000"
    assert norm.applied == {CHINESE_DIGITS}


def test_when_chinese_digit_run_is_split_by_spaces_then_it_still_counts() -> None:
    assert normalize("一三八 零零一三 八零零零").text == "13800138000"


def test_when_chinese_and_ascii_digits_mix_then_the_run_converts() -> None:
    assert normalize("138零零13八000").text == "13800138000"


def test_when_capital_and_traditional_digits_form_a_run_then_they_convert() -> None:
    assert normalize("壹叁捌〇〇貳叁肆伍陸柒").text == "13800234567"


@pytest.mark.parametrize("original", ["等一下", "一二三四五六", "三五个人", "第一二三名"])
def test_when_chinese_digits_are_words_then_they_stay(original: str) -> None:
    assert normalize(original).text == original


def test_when_span_is_mapped_then_it_covers_the_original_chars() -> None:
    original = "加 我 ｖ.Ｘ"
    norm = normalize(original)

    start, end = norm.span(0, 4)

    assert norm.text == "加我vx"
    assert original[start:end] == "加 我 ｖ.Ｘ"
    assert norm.span(1, 3) == (2, 5)


def test_when_steps_are_asked_for_a_span_then_only_its_steps_are_listed() -> None:
    norm = normalize("Ａ 微信號")

    assert norm.steps_between(0, 1) == (FULLWIDTH, LOWERCASE)
    assert norm.steps_between(2, 4) == ()
    assert norm.steps_between(2, 5) == (TRADITIONAL,)
    assert norm.steps_between(0, 5) == (FULLWIDTH, LOWERCASE, TRADITIONAL, SPACING)


# ------------------------------------------------------------------ offset invariant

ALPHABET = (
    "加我微信號轉賬一二三四五六七八九零〇壹贰幺傻瓜企业"  # CJK, traditional, Chinese digits
    "abcXYZ0123456789"
    "ｖｘＶＸ１３８０　"  # full-width, ideographic space
    " \t\n.,*-_@+，。！？、…"
    "\u200b\u200d\ufeff"  # zero-width
    "①⑧❶İß"  # circled digits; characters whose case mapping is longer than one
)


@given(st.text(alphabet=ALPHABET, max_size=60))
@example("00000İ0")
def test_offset_map_points_every_normalized_char_at_its_original(original: str) -> None:
    norm = normalize(original)

    assert len(norm.offsets) == len(norm.text) + 1
    assert norm.offsets[-1] == len(original)
    assert list(norm.offsets) == sorted(set(norm.offsets))
    kept = set(norm.offsets[:-1])
    for index, char in enumerate(original):
        folded = fold_char(char)[0]
        if index not in kept:
            assert folded == "" or REPEATS in norm.applied
    for i, char in enumerate(norm.text):
        folded = fold_char(original[norm.offsets[i]])[0]
        assert (
            char == folded
            or (folded in CHINESE_DIGIT_VALUES and char.isdigit())
            # İ folds to i, which inside a digit run stands for 1 (00000İ0)
            or (LETTER_DIGITS in norm.applied and char == LETTER_DIGIT_VALUES.get(folded))
        )


@given(st.text(alphabet=ALPHABET, min_size=1, max_size=40), st.data())
def test_span_of_any_normalized_slice_renormalizes_to_it(
    original: str, data: st.DataObject
) -> None:
    norm = normalize(original)
    if not norm.text or CHINESE_DIGITS in norm.applied or REPEATS in norm.applied:
        return  # a slice can cut a digit run or a repeat short; covered by the invariant above
    start = data.draw(st.integers(0, len(norm.text) - 1))
    end = data.draw(st.integers(start + 1, len(norm.text)))

    o_start, o_end = norm.span(start, end)

    assert normalize(original[o_start:o_end]).text == norm.text[start:end]


@pytest.mark.parametrize(
    ("original", "text", "collapse"),
    [
        ("微微微信", "微信", 3),
        ("微微信", "微微信", 3),
        ("妈妈的", "妈妈的", 3),
        ("微微信", "微信", 2),
        ("微微微信", "微微微信", 0),
        ("13800000000", "13800000000", 3),
        ("vvvx", "vx", 3),
    ],
)
def test_when_characters_repeat_then_runs_collapse_as_configured(
    original: str, text: str, collapse: int
) -> None:
    assert normalize(original, collapse).text == text


def test_when_repeats_collapse_then_offsets_skip_the_dropped_ones() -> None:
    norm = normalize("加我微微微信")

    assert norm.offsets == (0, 1, 2, 5, 6)
    assert REPEATS in norm.steps_between(2, 6)


@pytest.mark.parametrize(
    ("original", "text"),
    [
        ("傻×", "傻x"),
        ("傻✘", "傻x"),
        ("加我v\u0445", "加我vx"),  # Cyrillic х
        ("\u0421\u0422\u041e\u0420", "ctop"),  # Cyrillic СТОР
        ("\u039f\u039f\u53f7", "oo号"),  # Greek ΟΟ
    ],
)
def test_when_a_symbol_stands_for_a_letter_then_it_becomes_the_letter(
    original: str, text: str
) -> None:
    norm = normalize(original)

    assert norm.text == text
    assert LOOKALIKE in norm.applied


@pytest.mark.parametrize(
    ("original", "text"),
    [("bǎo zhèng", "baozheng"), ("加我WĒI XÌN", "加我weixin"), ("lǜ pào pào", "lvpaopao")],
)
def test_when_pinyin_carries_tone_marks_then_they_are_dropped(original: str, text: str) -> None:
    norm = normalize(original)

    assert norm.text == text
    assert TONE_MARKS in norm.applied


@pytest.mark.parametrize(("original", "text"), [("開假髮票", "开假发票"), ("羣裏", "群里")])
def test_when_text_has_s2t_artefacts_then_it_still_simplifies(original: str, text: str) -> None:
    assert normalize(original).text == text


def test_when_emoji_and_variation_selectors_are_inserted_then_they_are_dropped() -> None:
    assert normalize("微😀信\ufe0f号").text == "微信号"


@pytest.mark.parametrize(
    ("original", "text", "applied"),
    [
        ("⑴⑶⑻", "138", {NUMERAL_FORM}),
        ("⒈⒊⒏", "138", {NUMERAL_FORM}),
        ("㈠㈢㈧", "138", {NUMERAL_FORM}),
        ("ⅠⅢⅧ", "138", {NUMERAL_FORM}),
        ("¹³⁸", "138", {NUMERAL_FORM}),
        ("١٣٨", "138", {NUMERAL_FORM}),
        ("①③⑧", "138", {CIRCLED_DIGITS}),
        ("⒜⒝", "ab", {COMPATIBILITY}),
    ],
)
def test_when_a_numeral_is_written_in_another_unicode_form_then_it_reads_as_a_digit(
    original: str, text: str, applied: set[str]
) -> None:
    norm = normalize(original)

    assert (norm.text, norm.applied) == (text, applied)


def test_every_unicode_character_with_a_digit_value_folds_to_that_digit() -> None:
    import sys
    import unicodedata

    for code in range(sys.maxunicode + 1):
        char = chr(code)
        value = unicodedata.numeric(char, None)
        numeral = unicodedata.category(char)[0] == "N"  # not 五 (Lo): a word as often
        if (
            value is not None
            and value in range(10)
            and numeral
            and char not in CHINESE_DIGIT_VALUES
        ):
            assert fold_char(char)[0] == str(int(value)), (hex(code), unicodedata.name(char))


@pytest.mark.parametrize(
    ("original", "text"),
    [
        ("电话138OO138OOO", "电话13800138000"),
        ("l38 OOl3 8OOO", "13800138000"),
        ("1380O13800O吧", "13800138000吧"),
    ],
)
def test_when_letters_stand_for_digits_inside_a_number_then_they_read_as_digits(
    original: str, text: str
) -> None:
    norm = normalize(original)

    assert norm.text == text
    assert LETTER_DIGITS in norm.applied


@pytest.mark.parametrize(
    "original", ["hello1234567", "iphone13pro", "google", "2021lol", "1381234567lol", "x1o2"]
)
def test_when_letters_are_words_then_they_stay_letters(original: str) -> None:
    assert normalize(original).text == original.lower()


def test_when_a_folding_has_symbols_for_words_then_they_read_as_those_characters() -> None:
    fold = FoldTable({"🐶": "狗", "➕": "加"})

    norm = normalize("你个🐶，➕我", fold=fold)

    assert norm.text == "你个狗加我"
    assert norm.offsets == (0, 1, 2, 4, 5, 6)
    assert norm.steps_between(2, 3) == (EMOJI_SYMBOL,)
    assert normalize("你个🐶").text == "你个"  # the default folding drops emoji
