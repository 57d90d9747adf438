"""Generated spellings of every term, the homophone table and its validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pypinyin import Style, pinyin

from audit.scan.scanner import Scanner
from audit.scan.variants import (
    GAP,
    HOMOPHONE,
    INITIALS,
    LOOKALIKE,
    NUMERALS,
    PINYIN,
    POLITE,
    SPLIT_CHAR,
    WORDING,
    Tables,
    generate_variants,
)
from audit.scan.wordlist import GENERATORS, Homophone, WordListError, load_wordlists

WEI = Tables(homophones={"微": Homophone("微", ("威", "薇"), ("v",))})
EVERY = frozenset(GENERATORS)


def spellings(term: str, kinds: frozenset[str] = EVERY, tables: Tables = WEI) -> dict[str, str]:
    return dict(generate_variants(term, kinds, tables))


def test_when_pinyin_is_asked_then_each_run_of_characters_is_spelled_out() -> None:
    variants = spellings("加我微信", frozenset({"pinyin"}), Tables())

    assert {"加我weixin", "jiawoweixin", "加我微xin"} <= set(variants)
    assert set(variants.values()) == {PINYIN}


def test_when_initials_are_asked_then_homophone_letters_join_them() -> None:
    variants = spellings("加我微信", frozenset({"initials"}))

    assert {"加我wx", "加我vx", "jwwx", "jwvx"} <= set(variants)
    assert set(variants.values()) == {INITIALS}


def test_when_homophones_are_asked_then_one_character_is_replaced_at_a_time() -> None:
    assert generate_variants("加我微信", frozenset({"homophones"}), WEI) == [
        ("加我威信", HOMOPHONE),
        ("加我薇信", HOMOPHONE),
    ]


def test_when_a_term_says_you_then_the_polite_form_is_generated_and_a_homophone_on_it() -> None:
    tables = Tables(homophones={"意": Homophone("意", ("以",), ())})

    variants = spellings("包你满意", frozenset({"polite", "homophones"}), tables)

    assert variants == {
        "包您满意": POLITE,
        "包你满以": HOMOPHONE,
        "包您满以": HOMOPHONE,
    }


def test_when_wording_is_asked_then_one_small_word_is_said_another_way() -> None:
    variants = spellings("没身份证也能办", frozenset({"wording"}), Tables())

    assert variants == {"没有身份证也能办": WORDING, "没身份证也可以办": WORDING}
    assert set(spellings("不用实名", frozenset({"wording"}), Tables())) == {
        "不需要实名",
        "无需实名",
        "不必实名",
    }


def test_when_rewording_would_leave_a_short_spelling_then_there_is_none() -> None:
    assert spellings("绝对可以", frozenset({"wording"}), Tables()) == {}  # 绝对能: too short
    assert spellings("低能", frozenset({"wording"}), Tables()) == {}


def test_when_a_term_says_you_twice_then_both_are_swapped_too() -> None:
    variants = spellings("你妈没教你", frozenset({"polite"}), Tables())

    assert variants == {"您妈没教你": POLITE, "你妈没教您": POLITE, "您妈没教您": POLITE}


def test_when_a_term_holds_a_number_then_chinese_digits_and_letters_for_digits_are_generated() -> (
    None
):
    variants = spellings("打12300", frozenset({"numerals"}), Tables())

    # each 1 as 一 or 幺, each 0 as 零 or 〇, in any mix; and the formal digits
    assert {"打一二三零零", "打幺二三〇〇", "打一二三〇〇", "打幺二三零〇", "打壹贰叁零零"} <= set(
        variants
    )
    # letters for some or all of the 0s and 1s (l or i for 1, o for 0)
    assert {"打l23oo", "打i23oo", "打l2300", "打123oo", "打1230o"} <= set(variants)
    assert set(variants.values()) == {NUMERALS}
    # and some digits in Chinese, the others not
    assert {"打12三00", "打1230零", "打一2300"} <= set(variants)
    assert "打12300" not in variants


def test_when_a_short_number_stands_by_a_character_then_it_is_spelled_too() -> None:
    assert "加拿大二八" in spellings("加拿大28", frozenset({"numerals"}), Tables())
    assert spellings("pc28", frozenset({"numerals"}), Tables()) == {}  # two digits alone


def test_when_a_word_holds_chinese_digits_then_they_are_written_as_ascii_digits() -> None:
    assert spellings("六合彩", frozenset({"numerals"}), Tables()) == {"6合彩": NUMERALS}
    assert spellings("一分快三", frozenset({"numerals"}), Tables()) == {
        "1分快三": NUMERALS,
        "一分快3": NUMERALS,
        "1分快3": NUMERALS,
    }
    assert {"0风险", "〇风险"} <= set(spellings("零风险", frozenset({"numerals"}), Tables()))


def test_when_nothing_chinese_would_be_left_then_no_ascii_digit_is_generated() -> None:
    assert "2b" not in spellings("二b", frozenset({"numerals"}), Tables())  # a pencil
    assert spellings("一二", frozenset({"numerals"}), Tables()) == {}


def test_when_fillers_are_asked_then_a_short_term_is_split_like_a_verb_and_its_object() -> None:
    variants = spellings("投诉", frozenset({"fillers"}), Tables())

    assert {"投个诉", "投了诉", "投过诉", "投一下诉"} <= set(variants)
    assert set(variants.values()) == {GAP}
    three = spellings("代实名", frozenset({"fillers"}), Tables())
    assert {"代个实名", "代实了名", "代一下实名"} <= set(three)
    assert "代几实名" not in three  # the longer list is for two-character terms
    assert spellings("加我微信", frozenset({"fillers"}), Tables()) == {}  # the scanner's gaps


def test_when_characters_have_parts_then_each_and_all_of_them_are_split() -> None:
    tables = Tables(split_chars={"你": ("亻尔",), "妈": ("女马",)})

    variants = spellings("你妈的", frozenset({"split_chars"}), tables)

    assert variants == {"亻尔妈的": SPLIT_CHAR, "你女马的": SPLIT_CHAR, "亻尔女马的": SPLIT_CHAR}


def test_when_three_characters_have_parts_then_any_two_of_them_are_split_too() -> None:
    tables = Tables(split_chars={"你": ("亻尔", "人尔"), "妈": ("女马",), "的": ("白勺",)})

    variants = spellings("你妈的", frozenset({"split_chars"}), tables)

    assert {"亻尔女马的", "人尔女马的", "亻尔妈白勺", "你女马白勺", "亻尔女马白勺"} <= set(variants)
    assert "人尔妈白勺" in variants and len(variants) == 10  # 4 single, 5 pairs, 1 all


def test_when_an_ascii_word_has_look_alike_letters_then_each_and_all_are_swapped() -> None:
    variants = spellings("goip猫池", frozenset({"lookalikes"}), Tables())

    assert variants == {
        "g0ip猫池": LOOKALIKE,
        "golp猫池": LOOKALIKE,
        "go1p猫池": LOOKALIKE,
    }
    assert spellings("lili", frozenset({"lookalikes"}), Tables())["iiii"] == LOOKALIKE


def test_when_an_ascii_word_is_short_then_no_look_alike_is_generated() -> None:
    assert spellings("加我vx", frozenset({"lookalikes"}), Tables()) == {}
    assert spellings("qq号", frozenset({"lookalikes"}), Tables()) == {}
    assert spellings("oi群", frozenset({"lookalikes"}), Tables()) == {}


def test_when_a_variant_would_be_two_bare_letters_then_it_is_not_generated() -> None:
    assert "sd" not in spellings("刷单", tables=Tables())


def test_when_a_variant_is_only_three_initials_then_it_is_not_generated() -> None:
    variants = spellings("保证收益", tables=Tables())

    assert "bzsy" in variants  # four initials: unlikely to be anything else
    assert not [v for v in spellings("加微信", tables=Tables()) if v.isascii() and len(v) < 4]


def test_when_a_generated_spelling_is_a_common_word_then_it_is_dropped() -> None:
    tables = Tables(
        homophones={"妈": Homophone("妈", ("马",), ())}, common_word=lambda key: key == "马的"
    )

    assert "马的" not in spellings("妈的", frozenset({"homophones"}), tables)
    assert "马的" in spellings("妈的", frozenset({"homophones"}), Tables(tables.homophones))


def write(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")


def test_every_term_gets_its_generated_spellings_without_asking(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "diversion.txt": "加我微信 | high | staff\n",
            "homophones.txt": "微 | 威, 薇 | v\n",
        },
    )
    scanner = Scanner.from_directory(tmp_path, categories=())

    for text, technique in (
        ("加我vx", "initials"),
        ("加我威信", "homophone"),
        ("加我wei xin", "pinyin+separators"),
        ("加我weixin", "pinyin"),
    ):
        [finding] = scanner.scan(text, "staff")
        assert finding.rule == "diversion.jia_wo_wei_xin"
        assert f"{technique.split('+')[0]} variant" in finding.explanation
        assert finding.technique == technique
        assert finding.score == 0.8


def test_when_a_term_says_gen_none_then_only_its_listed_spellings_match(tmp_path: Path) -> None:
    write(tmp_path, {"diversion.txt": "加我微信 | high | staff | 加我vx | gen=none\n"})
    scanner = Scanner.from_directory(tmp_path, categories=())

    assert [f.matched for f in scanner.scan("加我vx", "staff")] == ["加我vx"]
    assert scanner.scan("加我weixin", "staff") == []


def test_when_gen_kind_is_unknown_then_loading_fails_with_the_line(tmp_path: Path) -> None:
    write(tmp_path, {"diversion.txt": "\n加我微信 | high | staff | | gen=morse\n"})

    with pytest.raises(WordListError) as error:
        load_wordlists(tmp_path, categories=())

    assert error.value.errors[0].startswith(f"{tmp_path / 'diversion.txt'}:2: bad gen= 'morse'")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("微信 | 威", "'微信' must be one character"),
        ("微 | 威威", "bad replacement '威威'"),
        ("微 | 威 | v1", "bad replacement 'v1'"),
        ("微", "no replacements for '微'"),
    ],
)
def test_when_a_homophone_line_is_bad_then_loading_fails_with_the_line(
    tmp_path: Path, line: str, reason: str
) -> None:
    write(tmp_path, {"abuse.txt": "傻逼\n", "homophones.txt": f"# header\n{line}\n"})

    with pytest.raises(WordListError) as error:
        load_wordlists(tmp_path, categories=())

    assert error.value.errors[0].startswith(f"{tmp_path / 'homophones.txt'}:2: {reason}")


def test_when_the_homophone_table_changes_then_the_hash_changes(tmp_path: Path) -> None:
    write(tmp_path, {"abuse.txt": "傻逼\n", "homophones.txt": "傻 | 沙\n"})
    before = load_wordlists(tmp_path, categories=()).wordlist_hash
    write(tmp_path, {"homophones.txt": "傻 | 沙, 煞\n"})

    assert load_wordlists(tmp_path, categories=()).wordlist_hash != before


def test_when_repeats_collapse_then_the_explanation_says_so(tmp_path: Path) -> None:
    write(tmp_path, {"diversion.txt": "加我微信\n"})
    scanner = Scanner.from_directory(tmp_path, categories=())

    [finding] = scanner.scan("加我微微微信")

    assert finding.matched == "加我微微微信"
    assert "repeats collapsed" in finding.explanation


def test_when_collapse_is_off_then_repeats_are_kept(tmp_path: Path) -> None:
    write(tmp_path, {"diversion.txt": "加我微信\n"})

    [finding] = Scanner(load_wordlists(tmp_path, categories=()), collapse=0).scan("加我微微微信")

    # the repeats are not read as one 微: only the gap between the halves lets it through
    assert finding.technique == "gap"
    assert finding.explanation == "term 加我微信; gap: 2 skipped (微微)"


def test_when_a_word_is_doubled_then_it_does_not_collapse(tmp_path: Path) -> None:
    write(tmp_path, {"abuse.txt": "他妈的\n"})

    assert Scanner.from_directory(tmp_path, categories=()).scan("他妈妈的手机") == []


# ------------------------------------------------------------------ the shipped tables

SHIPPED = load_wordlists(Path(__file__).resolve().parents[2] / "wordlists")
# replacements written for how a character looks, not how it sounds
LOOK_ALIKES = {("微", "徽")}


def _readings(char: str) -> set[str]:
    """Tone-less readings, with the sounds people do not tell apart merged."""
    out = set()
    for reading in pinyin(char, style=Style.NORMAL, heteronym=True)[0]:
        for retroflex, plain in (("zh", "z"), ("ch", "c"), ("sh", "s")):
            if reading.startswith(retroflex):
                reading = plain + reading[2:]
        if reading.startswith("l"):
            reading = "n" + reading[1:]
        for nasal, short in (("ing", "in"), ("eng", "en"), ("ang", "an")):
            if reading.endswith(nasal):
                reading = reading[: -len(nasal)] + short
        out.add(reading)
    return out


def test_the_shipped_homophone_table_is_large_and_every_replacement_sounds_alike() -> None:
    assert len(SHIPPED.homophones) >= 100
    wrong = [
        (h.char, other)
        for h in SHIPPED.homophones
        for other in h.chars
        if (h.char, other) not in LOOK_ALIKES and not _readings(h.char) & _readings(other)
    ]

    assert wrong == []


def test_the_shipped_split_characters_and_symbols_are_loaded() -> None:
    splits = {s.parts: s.char for s in SHIPPED.split_chars}
    symbols = {s.symbol: s.means for s in SHIPPED.symbols}

    assert splits["弓长"] == "张" and splits["亻尔"] == "你" and splits["口十"] == "叶"
    assert symbols["🐶"] == "狗" and symbols["➕"] == "加" and symbols["💰"] == "钱"
    assert splits["贝戋"] == "贱" and splits["扌艮"] == "报" and splits["扌戈"] == "找"
    assert symbols["🥚"] == "蛋" and symbols["🏠"] == "家" and symbols["💣"] == "炸"


def test_when_a_listed_spelling_holds_an_emoji_then_it_is_read_like_the_chat_text(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        {
            "diversion.txt": "加我qq | high | staff | 加我🐧, 加个🐧\n",
            "symbols.txt": "🐧 | 鹅\n",
        },
    )
    scanner = Scanner.from_directory(tmp_path, categories=())

    assert [f.matched for f in scanner.scan("有事加我🐧", "staff")] == ["加我🐧"]
    assert [f.matched for f in scanner.scan("加我鹅", "staff")] == ["加我鹅"]  # what 🐧 reads
    assert scanner.scan("加我吧", "staff") == []  # the emoji is part of the spelling


def test_when_spellings_differ_in_an_emoji_then_they_are_no_duplicates_if_it_means_a_word(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        {"diversion.txt": "加我qq | high | staff | 加我🐧, 加我💬\n", "symbols.txt": "🐧 | 鹅\n"},
    )
    with pytest.raises(WordListError, match=r"'加我💬' .* holds '💬'"):
        load_wordlists(tmp_path, categories=())  # 💬 has no meaning: it would read 加我

    write(tmp_path, {"symbols.txt": "🐧 | 鹅\n💬 | 聊\n"})
    assert len(load_wordlists(tmp_path, categories=()).terms) == 1
