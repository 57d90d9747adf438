"""The officers' edits laid over the word-list files (``audit/scan/overlay.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from wordlist_dirs import write_lists

from audit.domain import Severity
from audit.scan.overlay import AddedTerm, Overlay, apply_overlay
from audit.scan.scanner import Scanner
from audit.scan.wordlist import WordLists, load_wordlists

DIVERSION = "加我微信 | high | staff | 加我vx\n私下转账 | critical | both\n"
PROMISE = "保证收益 | critical | staff\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> WordLists:
    directory = tmp_path_factory.mktemp("lists")
    write_lists(directory, {"diversion.txt": DIVERSION, "promise.txt": PROMISE})
    return load_wordlists(Path(directory))


def rules(lists: WordLists, text: str, role: str = "staff") -> list[str]:
    return [f.rule for f in Scanner(lists, use_cache=False).scan(text, role)]


def test_when_there_are_no_edits_then_the_lists_are_the_files(files: WordLists) -> None:
    applied = apply_overlay(files, Overlay())
    assert applied.lists is files and applied.problems == {}
    assert Overlay().key == ""


def test_when_a_term_is_added_then_it_is_found_and_the_hash_changes(files: WordLists) -> None:
    text = "扫我的私聊转账码就行"
    assert rules(files, text) == []
    added = AddedTerm("diversion", "私聊转账码", Severity.HIGH, "staff", ("私聊付款码",), "#1")
    applied = apply_overlay(files, Overlay(added=(added,)))
    assert applied.problems == {}
    assert rules(applied.lists, text) == ["diversion.si_liao_zhuan_zhang_ma"]
    assert rules(applied.lists, "私聊付款码发你") == ["diversion.si_liao_zhuan_zhang_ma"]
    assert rules(applied.lists, text, "customer") == []  # staff only, as entered
    assert applied.lists.wordlist_hash != files.wordlist_hash
    assert applied.lists.overlay_key == Overlay(added=(added,)).key != ""
    [finding] = Scanner(applied.lists, use_cache=False).scan(text, "staff")
    assert finding.severity is Severity.HIGH and finding.matched == "私聊转账码"


def test_when_a_file_term_is_disabled_then_it_is_not_found(files: WordLists) -> None:
    assert rules(files, "加我微信聊") == ["diversion.jia_wo_wei_xin"]
    # named as the officer wrote it: compared after normalization, like the lists do
    applied = apply_overlay(files, Overlay(disabled=(("diversion", "加我 微信"),)))
    assert rules(applied.lists, "加我微信聊") == []
    assert rules(applied.lists, "加我vx聊") == []  # its variants go with it
    assert rules(applied.lists, "私下转账吧") == ["diversion.si_xia_zhuan_zhang"]
    assert applied.lists.wordlist_hash != files.wordlist_hash
    assert len(applied.lists.terms) == len(files.terms) - 1


def test_disabling_a_term_of_another_category_changes_nothing(files: WordLists) -> None:
    applied = apply_overlay(files, Overlay(disabled=(("promise", "加我微信"),)))
    assert applied.lists.terms == files.terms
    assert applied.lists.wordlist_hash == files.wordlist_hash


def test_when_an_added_term_clashes_with_the_files_then_it_is_left_out_and_named(
    files: WordLists,
) -> None:
    """A file edited after the term was added: the scan goes on with the files' term."""
    clash = AddedTerm("promise", "保证 收益", ref="词表编辑 #7")
    fine = AddedTerm("promise", "稳赚不赔", ref="词表编辑 #8")
    applied = apply_overlay(files, Overlay(added=(clash, fine)))
    assert list(applied.problems) == ["词表编辑 #7"]
    assert "duplicate term '保证 收益' in promise" in applied.problems["词表编辑 #7"]
    assert sorted(rules(applied.lists, "保证收益，稳赚不赔")) == [
        "promise.bao_zheng_shou_yi",
        "promise.wen_zhuan_bu_pei",
    ]


def test_an_added_homophone_gets_a_rule_id_of_its_own(files: WordLists) -> None:
    """加我威信 has the pinyin of 加我微信: the added term's id gets a suffix, not an error."""
    applied = apply_overlay(files, Overlay(added=(AddedTerm("diversion", "加我威信", ref="#1"),)))
    assert applied.problems == {}
    [added] = [t for t in applied.lists.terms if t.term == "加我威信"]
    assert added.rule == "diversion.jia_wo_wei_xin_2"
    assert "diversion.jia_wo_wei_xin_2" in rules(applied.lists, "加我威信")


def test_equal_edits_give_equal_keys_and_hashes_whatever_their_order(files: WordLists) -> None:
    a = AddedTerm("diversion", "私聊转账码", ref="#1")
    b = AddedTerm("promise", "稳赚不赔", ref="#2")
    one = Overlay(added=(a, b), disabled=(("diversion", "私下转账"),))
    two = Overlay(added=(b, a), disabled=(("diversion", "私下 转账"),))
    assert one.key == two.key
    assert apply_overlay(files, one).lists.wordlist_hash == (
        apply_overlay(files, two).lists.wordlist_hash
    )
    other = Overlay(added=(AddedTerm("diversion", "私聊转账码", Severity.HIGH, ref="#1"), b))
    assert other.key != one.key
