"""Every example of issue 4, as the issue describes it, with the default lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.scan.scanner import Scanner
from audit.scan.wordlist import WordLists, load_wordlists
from audit.store.models import Severity

DEFAULT_LISTS = Path(__file__).resolve().parents[2] / "wordlists"
SCANNER = Scanner.from_directory(DEFAULT_LISTS)


def diversion(text: str) -> list[str]:
    return [f.matched for f in SCANNER.scan(text, "staff") if f.category == "diversion"]


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("有事加我微 信", "加我微 信"),
        ("加我V信吧", "加我V信"),
        ("加我vx", "加我vx"),
        ("你加我威信", "加我威信"),
        ("那你加我ｖｘ", "加我ｖｘ"),
        ("加我wei xin，下班也能回", "加我wei xin"),
        ("我的微.信.号发你", "我的微.信.号"),
    ],
)
def test_when_staff_spells_wechat_in_disguise_then_diversion_is_found(
    text: str, matched: str
) -> None:
    assert diversion(text) == [matched]


@pytest.mark.parametrize("text", ["V信", "vx", "威信", "ｖｘ", "wei xin"])
def test_when_staff_writes_a_bare_wechat_evasion_then_it_is_found(text: str) -> None:
    findings = SCANNER.scan(f"好的，{text}", "staff")

    assert [(f.rule, f.matched) for f in findings] == [("diversion.wechat_evasion", text)]


@pytest.mark.parametrize(
    "text", ["138 0013 8000", "１３８００１３８０００", "一三八零零一三八零零零"]
)
def test_when_customer_gives_a_phone_number_in_any_spelling_then_it_is_found(text: str) -> None:
    findings = SCANNER.scan(f"我电话{text}，谢谢", "customer")

    assert [(f.rule, f.matched) for f in findings] == [("privacy.phone", text)]


@pytest.mark.parametrize(
    "text", ["这是傻瓜相机", "我是处女座的", "人民路路口交通银行旁边", "您可以通过企业微信联系我"]
)
def test_when_an_innocent_look_alike_is_said_then_nothing_is_found(text: str) -> None:
    assert SCANNER.scan(text) == []


def test_when_the_allow_list_is_gone_then_a_straddling_hit_is_downgraded_not_dropped() -> None:
    lists = load_wordlists(DEFAULT_LISTS)
    bare = Scanner(WordLists(lists.terms, (), "no-allow-list", lists.homophones), use_cache=False)

    [finding] = bare.scan("路口交通", "customer")

    assert (finding.rule, finding.matched) == ("illegal.kou_jiao", "口交")
    assert finding.severity == Severity.MEDIUM  # listed as high
    assert finding.score < 0.5
    assert "downgraded: crosses a word boundary (路口|交通)" in finding.explanation


def test_when_a_whole_word_matches_then_it_is_not_downgraded() -> None:
    [finding] = SCANNER.scan("别口交", "customer")

    assert finding.severity == Severity.HIGH
    assert "downgraded" not in finding.explanation


def test_when_staff_explains_how_to_complain_then_it_is_not_a_complaint() -> None:
    assert SCANNER.scan("您可以拨打12315或者向工信部反映", "staff") == []
    assert {f.category for f in SCANNER.scan("我要打12315，还要去工信部", "customer")} == {
        "complaint"
    }


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("卡不用实名也能开", "fraud.bu_yong_shi_ming"),
        ("收到的验证码是多少", "privacy.yan_zheng_ma_shi_duo_shao"),
        ("扫我个人收款码", "diversion.sao_wo_ge_ren_shou_kuan_ma"),
        ("这个理财保证收益", "promise.bao_zheng_shou_yi"),
        ("无限流量不限速", "promise.wu_xian_liu_liang_bu_xian_su"),
        ("開假髮票也行", "fraud.dai_kai_fa_piao"),
    ],
)
def test_when_staff_says_a_telecom_violation_then_its_rule_fires(text: str, rule: str) -> None:
    assert rule in [f.rule for f in SCANNER.scan(text, "staff")]


def test_when_customer_escalates_in_traditional_group_chars_then_it_is_found() -> None:
    assert "complaint" in {
        f.category for f in SCANNER.scan("我要去工信部投訴，羣裏都知道", "customer")
    }
