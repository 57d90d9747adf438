"""Generated variants (gen=) and the homophone table."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.scan.scanner import Scanner
from audit.scan.variants import generate_variants
from audit.scan.wordlist import Homophone, WordListError, load_wordlists

WEI = {"微": Homophone("微", ("威", "薇"), ("v",))}


def test_when_pinyin_is_asked_then_each_run_of_characters_is_spelled_out() -> None:
    variants = generate_variants("加我微信", frozenset({"pinyin"}), {})

    assert {"加我weixin", "jiawoweixin", "加我微xin"} <= set(variants)


def test_when_initials_are_asked_then_homophone_letters_join_them() -> None:
    variants = generate_variants("加我微信", frozenset({"initials"}), WEI)

    assert {"加我wx", "加我vx", "jwwx"} <= set(variants)


def test_when_homophones_are_asked_then_one_character_is_replaced_at_a_time() -> None:
    assert generate_variants("加我微信", frozenset({"homophones"}), WEI) == ["加我威信", "加我薇信"]


def test_when_a_variant_would_be_two_bare_letters_then_it_is_not_generated() -> None:
    assert "sd" not in generate_variants("刷单", frozenset({"initials"}), {})


def write(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")


def test_when_a_term_is_marked_gen_then_its_generated_spellings_are_found(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "diversion.txt": "加我微信 | high | staff | | gen=all\n",
            "homophones.txt": "微 | 威, 薇 | v\n",
        },
    )
    scanner = Scanner.from_directory(tmp_path)

    for text in ("加我vx", "加我威信", "加我wei xin", "加我weixin"):
        [finding] = scanner.scan(text, "staff")
        assert finding.rule == "diversion.jia_wo_wei_xin"
        assert "generated variant" in finding.explanation
        assert finding.score == 0.8


def test_when_gen_kind_is_unknown_then_loading_fails_with_the_line(tmp_path: Path) -> None:
    write(tmp_path, {"diversion.txt": "\n加我微信 | high | staff | | gen=morse\n"})

    with pytest.raises(WordListError) as error:
        load_wordlists(tmp_path)

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
        load_wordlists(tmp_path)

    assert error.value.errors[0].startswith(f"{tmp_path / 'homophones.txt'}:2: {reason}")


def test_when_the_homophone_table_changes_then_the_hash_changes(tmp_path: Path) -> None:
    write(tmp_path, {"abuse.txt": "傻逼\n", "homophones.txt": "傻 | 沙\n"})
    before = load_wordlists(tmp_path).wordlist_hash
    write(tmp_path, {"homophones.txt": "傻 | 沙, 煞\n"})

    assert load_wordlists(tmp_path).wordlist_hash != before


def test_when_repeats_collapse_then_the_explanation_says_so(tmp_path: Path) -> None:
    write(tmp_path, {"diversion.txt": "加我微信\n"})
    scanner = Scanner.from_directory(tmp_path)

    [finding] = scanner.scan("加我微微微信")

    assert finding.matched == "加我微微微信"
    assert "repeats collapsed" in finding.explanation


def test_when_collapse_is_off_then_repeats_are_kept(tmp_path: Path) -> None:
    write(tmp_path, {"diversion.txt": "加我微信\n"})

    assert Scanner(load_wordlists(tmp_path), collapse=0).scan("加我微微微信") == []


def test_when_a_word_is_doubled_then_it_does_not_collapse(tmp_path: Path) -> None:
    write(tmp_path, {"abuse.txt": "他妈的\n"})

    assert Scanner.from_directory(tmp_path).scan("他妈妈的手机") == []
