"""Word-list files: format, defaults, validation with file:line, and the hash."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from audit.scan.wordlist import (
    CATEGORIES,
    Term,
    WordListError,
    WordLists,
    load_wordlists,
    slugify,
)
from audit.store.models import Severity

DEFAULT_LISTS = Path(__file__).resolve().parents[2] / "wordlists"


def write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def load_errors(directory: Path) -> tuple[str, ...]:
    with pytest.raises(WordListError) as info:
        load_wordlists(directory, categories=())
    return info.value.errors


def test_when_entry_has_all_fields_then_term_holds_them(tmp_path: Path) -> None:
    write(tmp_path, {"diversion.txt": "加我微信 | high | staff | 加我v信, 加我wei xin\n"})

    lists = load_wordlists(tmp_path, categories=())

    assert lists.terms == (
        Term(
            category="diversion",
            slug="jia_wo_wei_xin",
            term="加我微信",
            severity=Severity.HIGH,
            roles=frozenset({"staff"}),
            variants=("加我v信", "加我wei xin"),
            source=f"{tmp_path / 'diversion.txt'}:1",
        ),
    )
    assert lists.terms[0].rule == "diversion.jia_wo_wei_xin"
    assert lists.allow == ()


def test_when_fields_are_left_out_then_defaults_apply(tmp_path: Path) -> None:
    write(tmp_path, {"abuse.txt": "废物\n神经病 | | | 蛇精病\n白痴 | low\n"})

    terms = load_wordlists(tmp_path, categories=()).terms

    assert [(t.term, t.severity, t.roles, t.variants) for t in terms] == [
        ("废物", Severity.MEDIUM, frozenset({"staff", "customer"}), ()),
        ("神经病", Severity.MEDIUM, frozenset({"staff", "customer"}), ("蛇精病",)),
        ("白痴", Severity.LOW, frozenset({"staff", "customer"}), ()),
    ]


def test_when_file_has_comments_blank_lines_and_directive_then_they_are_not_entries(
    tmp_path: Path,
) -> None:
    text = (
        "# 导流\n"
        "\n"
        "@category diversion\n"
        "   \n"
        "私下转账 | critical | both   # money goes around the till\n"
        "# 私人微信 | high\n"
    )
    write(tmp_path, {"private.txt": text})

    terms = load_wordlists(tmp_path, categories=()).terms

    assert [(t.rule, t.source) for t in terms] == [
        ("diversion.si_xia_zhuan_zhang", f"{tmp_path / 'private.txt'}:5")
    ]


def test_when_id_is_given_then_it_is_the_slug(tmp_path: Path) -> None:
    write(tmp_path, {"fraud.txt": "不用实名 | critical | staff | 免实名 | id=no_real_name\n"})

    assert load_wordlists(tmp_path, categories=()).terms[0].rule == "fraud.no_real_name"


def test_when_id_comes_before_other_fields_then_they_still_count(tmp_path: Path) -> None:
    write(tmp_path, {"fraud.txt": "不用实名 | id=no_real_name | critical | staff\n"})

    term = load_wordlists(tmp_path, categories=()).terms[0]

    assert (term.slug, term.severity, term.roles) == (
        "no_real_name",
        Severity.CRITICAL,
        frozenset({"staff"}),
    )


@pytest.mark.parametrize(
    ("term", "slug"),
    [
        ("加我微信", "jia_wo_wei_xin"),
        ("12315", "12315"),
        ("傻Ｘ", "sha_x"),
        ("私人 微信", "si_ren_wei_xin"),
        ("k粉", "k_fen"),
        ("無限流量", "wu_xian_liu_liang"),
    ],
)
def test_when_no_id_then_slug_is_pinyin_of_normalized_term(term: str, slug: str) -> None:
    assert slugify(term) == slug


def test_when_variants_use_fullwidth_comma_then_they_split(tmp_path: Path) -> None:
    write(tmp_path, {"abuse.txt": "傻逼 | high | both | 傻b，煞笔, sb\n"})

    assert load_wordlists(tmp_path, categories=()).terms[0].variants == ("傻b", "煞笔", "sb")


def test_when_allow_list_present_then_phrases_load(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"abuse.txt": "傻瓜\n", "allow.txt": "# innocent\n傻瓜相机\n\n企业微信  # WeCom\n"},
    )

    assert load_wordlists(tmp_path, categories=()).allow == ("傻瓜相机", "企业微信")


def test_when_values_are_loaded_then_they_are_frozen(tmp_path: Path) -> None:
    write(tmp_path, {"abuse.txt": "傻瓜\n"})
    lists = load_wordlists(tmp_path, categories=())

    with pytest.raises(dataclasses.FrozenInstanceError):
        lists.terms[0].term = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        lists.wordlist_hash = "x"  # type: ignore[misc]


# ------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("加我微信 | urgent", "unknown severity 'urgent' (expected low, medium, high or critical)"),
        ("加我微信 | high | boss", "unknown role 'boss' (expected staff, customer or both)"),
        (" | high | staff", "empty term"),
        ("！！ | high", "'！！' is empty after normalization"),
        ("加我微信 | high | staff | 加我vx | extra", "too many fields (expected term | severity | "
         "roles | variants)"),
        ("加我微信 | id=Jia-Wo", "bad id 'Jia-Wo' (use a-z, 0-9 and _)"),
        ("@categroy diversion", "bad directive '@categroy diversion' (only '@category <id>' is "
         "known)"),
        ("@category", "bad directive '@category' (expected '@category <id>')"),
        ("@category a b", "bad directive '@category a b' (expected '@category <id>')"),
        ("@category chat", "bad directive '@category chat': unknown category 'chat' (expected "
         "one of privacy, diversion, promise, abuse, complaint, fraud, illegal)"),
    ],
)  # fmt: skip
def test_when_line_is_bad_then_error_names_file_and_line(
    tmp_path: Path, line: str, reason: str
) -> None:
    write(tmp_path, {"diversion.txt": f"# header\n私人微信 | high\n{line}\n"})

    assert load_errors(tmp_path) == (f"{tmp_path / 'diversion.txt'}:3: {reason}",)


def test_when_term_repeats_in_category_then_duplicate_is_reported(tmp_path: Path) -> None:
    write(tmp_path, {"diversion.txt": "加我微信 | high\n私人微信\n加我微 信 | low\n"})
    path = tmp_path / "diversion.txt"

    assert load_errors(tmp_path) == (
        f"{path}:3: duplicate term '加我微 信' in diversion (also {path}:1)",
    )


def test_when_variant_repeats_a_term_then_duplicate_is_reported(tmp_path: Path) -> None:
    write(tmp_path, {"abuse.txt": "傻逼 | high | both | sb\n二逼 | high | both | SB\n"})
    path = tmp_path / "abuse.txt"

    assert load_errors(tmp_path) == (f"{path}:2: duplicate term 'SB' in abuse (also {path}:1)",)


def test_when_same_term_is_in_two_categories_then_both_load(tmp_path: Path) -> None:
    write(tmp_path, {"abuse.txt": "骗子\n", "complaint.txt": "骗子 | low | customer\n"})

    assert [t.rule for t in load_wordlists(tmp_path, categories=()).terms] == [
        "abuse.pian_zi",
        "complaint.pian_zi",
    ]


def test_when_homophones_share_a_slug_then_duplicate_rule_id_is_reported(tmp_path: Path) -> None:
    write(tmp_path, {"diversion.txt": "加我微信\n加我威信\n"})
    path = tmp_path / "diversion.txt"

    assert load_errors(tmp_path) == (
        f"{path}:2: duplicate rule id 'diversion.jia_wo_wei_xin' (also {path}:1); "
        "give one of them a distinct id=",
    )


def test_when_directive_comes_after_entries_then_it_is_reported(tmp_path: Path) -> None:
    write(tmp_path, {"diversion.txt": "私人微信\n@category fraud\n"})

    assert load_errors(tmp_path) == (
        f"{tmp_path / 'diversion.txt'}:2: bad directive '@category fraud': "
        "it must come before the entries",
    )


def test_when_directive_repeats_then_it_is_reported(tmp_path: Path) -> None:
    write(tmp_path, {"x.txt": "@category fraud\n@category abuse\n"})

    assert load_errors(tmp_path) == (
        f"{tmp_path / 'x.txt'}:2: bad directive '@category abuse': category already declared",
    )


def test_when_file_name_is_no_category_and_no_directive_then_it_is_reported(
    tmp_path: Path,
) -> None:
    write(tmp_path, {"spam.txt": "# list\n加我微信\n私人微信\n"})

    assert load_errors(tmp_path) == (
        f"{tmp_path / 'spam.txt'}:2: unknown category 'spam' from the file name; "
        "add '@category <id>' at the top or rename the file",
    )


def test_when_file_has_several_bad_lines_then_all_are_reported_together(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "abuse.txt": "傻逼 | hgih\n白痴\n废物 | low | all\n",
            "promise.txt": "@categori promise\n绝对不会 | high | staff\n",
        },
    )
    abuse, promise = tmp_path / "abuse.txt", tmp_path / "promise.txt"

    with pytest.raises(WordListError) as info:
        load_wordlists(tmp_path, categories=())

    assert str(info.value) == (
        f"{abuse}:1: unknown severity 'hgih' (expected low, medium, high or critical)\n"
        f"{abuse}:3: unknown role 'all' (expected staff, customer or both)\n"
        f"{promise}:1: bad directive '@categori promise' (only '@category <id>' is known)"
    )


def test_when_allow_list_has_bad_lines_then_they_are_reported(tmp_path: Path) -> None:
    write(tmp_path, {"abuse.txt": "傻瓜\n", "allow.txt": "傻瓜相机\n@category abuse\n傻瓜 相机\n"})
    path = tmp_path / "allow.txt"

    assert load_errors(tmp_path) == (
        f"{path}:2: directives are not allowed in allow.txt",
        f"{path}:3: duplicate allow phrase '傻瓜 相机' (also {path}:1)",
    )


def test_when_directory_is_missing_or_empty_then_it_is_reported(tmp_path: Path) -> None:
    assert load_errors(tmp_path / "nope") == (
        f"{tmp_path / 'nope'}: word-list directory not found",
    )
    assert load_errors(tmp_path) == (f"{tmp_path}: no word lists (*.txt) found",)


def test_when_file_uses_crlf_and_bom_then_lines_number_the_same(tmp_path: Path) -> None:
    (tmp_path / "abuse.txt").write_bytes("\ufeff傻瓜\r\n\r\n白痴 | nope\r\n".encode())

    assert load_errors(tmp_path) == (
        f"{tmp_path / 'abuse.txt'}:3: unknown severity 'nope' (expected low, medium, high or "
        "critical)",
    )


# ------------------------------------------------------------------------------- hash


def lists_from(tmp_path: Path, name: str, files: dict[str, str]) -> WordLists:
    directory = tmp_path / name
    directory.mkdir()
    return load_wordlists(write(directory, files), categories=())


def test_when_only_comments_spacing_or_spelled_defaults_change_then_hash_is_stable(
    tmp_path: Path,
) -> None:
    plain = lists_from(
        tmp_path, "a", {"abuse.txt": "傻瓜\n白痴 | high\n", "allow.txt": "傻瓜相机\n"}
    )
    noisy = lists_from(
        tmp_path,
        "b",
        {
            "abuse.txt": "# insults\n@category abuse\n\n傻瓜 | medium | both\n白痴|high # !\n",
            "allow.txt": "# ok\n傻瓜相机\n",
        },
    )

    assert plain.wordlist_hash == noisy.wordlist_hash
    assert len(plain.wordlist_hash) == 64


def test_when_meaning_changes_then_hash_changes(tmp_path: Path) -> None:
    base = {"abuse.txt": "傻瓜\n白痴 | high\n", "allow.txt": "傻瓜相机\n"}
    changes = {
        "severity": {**base, "abuse.txt": "傻瓜\n白痴 | critical\n"},
        "role": {**base, "abuse.txt": "傻瓜\n白痴 | high | staff\n"},
        "variant": {**base, "abuse.txt": "傻瓜\n白痴 | high | both | 白吃\n"},
        "id": {**base, "abuse.txt": "傻瓜\n白痴 | high | id=idiot\n"},
        "term": {**base, "abuse.txt": "傻瓜\n白痴 | high\n废物\n"},
        "allow": {**base, "allow.txt": "傻瓜相机\n傻瓜式\n"},
    }
    hashes = {lists_from(tmp_path, "base", base).wordlist_hash} | {
        lists_from(tmp_path, name, files).wordlist_hash for name, files in changes.items()
    }

    assert len(hashes) == 1 + len(changes)


def test_when_loaded_twice_then_hash_is_the_same(tmp_path: Path) -> None:
    assert (
        load_wordlists(DEFAULT_LISTS).wordlist_hash == load_wordlists(DEFAULT_LISTS).wordlist_hash
    )


# ---------------------------------------------------------------------- default lists


def test_when_default_lists_load_then_every_category_has_entries() -> None:
    lists = load_wordlists(DEFAULT_LISTS)

    assert {t.category for t in lists.terms} == set(CATEGORIES)
    assert all(t.rule.isascii() for t in lists.terms)
    assert len({t.rule for t in lists.terms}) == len(lists.terms)
    assert "企业微信" in lists.allow


# ------------------------------------------------------------- missing and unreadable files


def test_when_a_category_has_no_list_file_then_loading_names_the_missing_file(
    tmp_path: Path,
) -> None:
    write(tmp_path, {"diversion.txt": "加我微信\n", "allow.txt": "企业微信\n"})

    with pytest.raises(WordListError) as error:
        load_wordlists(tmp_path)

    missing = [e.split(":")[0] for e in error.value.errors]
    assert missing == [str(tmp_path / f"{c}.txt") for c in CATEGORIES if c != "diversion"]
    assert "word-list file not found: category privacy would be off" in error.value.errors[0]


def test_when_a_category_file_is_empty_then_the_category_is_off_on_purpose(
    tmp_path: Path,
) -> None:
    write(tmp_path, {f"{c}.txt": "# nothing here yet\n" for c in CATEGORIES})
    write(tmp_path, {"abuse.txt": "傻逼\n"})

    assert [t.rule for t in load_wordlists(tmp_path).terms] == ["abuse.sha_bi"]


def test_when_a_category_is_declared_in_another_file_then_it_is_not_missing(
    tmp_path: Path,
) -> None:
    write(tmp_path, {f"{c}.txt": "" for c in CATEGORIES if c != "fraud"})
    write(tmp_path, {"cards.txt": "@category fraud\n养卡\n"})

    assert [t.rule for t in load_wordlists(tmp_path).terms] == ["fraud.yang_ka"]


def test_when_a_list_file_cannot_be_read_then_loading_names_it(tmp_path: Path) -> None:
    write(tmp_path, {"abuse.txt": "傻逼\n"})
    (tmp_path / "fraud.txt").mkdir()  # a directory where the file should be

    errors = load_errors(tmp_path)

    assert len(errors) == 1
    assert errors[0].startswith(f"{tmp_path / 'fraud.txt'}: cannot read word-list file: ")


def test_when_a_list_is_not_utf8_then_loading_names_the_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, {"abuse.txt": "傻逼\n"})
    (tmp_path / "fraud.txt").write_bytes("刷单\n养卡\n".encode() + "黑卡\n".encode("gbk"))

    assert load_errors(tmp_path) == (
        f"{tmp_path / 'fraud.txt'}:3: invalid UTF-8 (byte 0xba at column 1); save the file "
        "as UTF-8",
    )


# ------------------------------------------------------------- symbols and split characters


def test_when_symbols_and_split_characters_are_listed_then_they_are_loaded(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        {
            "abuse.txt": "狗东西\n",
            "symbols.txt": "# emoji\n🐶 | 狗\n➕\ufe0f | 加\n",
            "split_chars.txt": "弓长 | 张\n亻尔 | 你\n",
        },
    )

    lists = load_wordlists(tmp_path, categories=())

    assert [(s.symbol, s.means) for s in lists.symbols] == [("🐶", "狗"), ("➕", "加")]
    assert [(s.parts, s.char) for s in lists.split_chars] == [("弓长", "张"), ("亻尔", "你")]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("🐶", "expected 'symbol | character'"),
        ("🐶🐷 | 狗", "'🐶🐷' must be one symbol or emoji"),
        ("a | 加", "'a' is a letter, digit or character"),
        ("狗 | 犬", "'狗' is a letter, digit or character"),
        ("🐶 | 狗东西", "'狗东西' must be one character"),
    ],
)
def test_when_a_symbol_line_is_bad_then_loading_names_the_line(
    tmp_path: Path, line: str, reason: str
) -> None:
    write(tmp_path, {"abuse.txt": "傻逼\n", "symbols.txt": f"# header\n{line}\n"})

    errors = load_errors(tmp_path)

    assert errors[0].startswith(f"{tmp_path / 'symbols.txt'}:2: {reason}")


def test_when_a_symbol_is_listed_twice_then_loading_names_both_lines(tmp_path: Path) -> None:
    write(tmp_path, {"abuse.txt": "傻逼\n", "symbols.txt": "🐶 | 狗\n🐶 | 犬\n"})

    assert load_errors(tmp_path) == (
        f"{tmp_path / 'symbols.txt'}:2: duplicate symbol '🐶' (also {tmp_path / 'symbols.txt'}:1)",
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("弓长", "expected 'parts | character'"),
        ("弓 | 张", "parts '弓' must be two or three characters"),
        ("ab | 张", "parts 'ab' must be two or three characters"),
        ("弓长 | 张三", "'张三' must be one Chinese character"),
    ],
)
def test_when_a_split_character_line_is_bad_then_loading_names_the_line(
    tmp_path: Path, line: str, reason: str
) -> None:
    write(tmp_path, {"abuse.txt": "傻逼\n", "split_chars.txt": f"{line}\n"})

    errors = load_errors(tmp_path)

    assert errors[0].startswith(f"{tmp_path / 'split_chars.txt'}:1: {reason}")


def test_when_symbols_change_then_the_hash_changes(tmp_path: Path) -> None:
    before = lists_from(tmp_path, "a", {"abuse.txt": "傻逼\n", "symbols.txt": "🐶 | 狗\n"})
    after = lists_from(tmp_path, "b", {"abuse.txt": "傻逼\n", "symbols.txt": "🐶 | 猪\n"})

    assert before.wordlist_hash != after.wordlist_hash
