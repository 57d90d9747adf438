"""The scanner over word-list terms: evasions, allow list, roles, leftmost-longest."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.scan.scanner import SCANNER_VERSION, Finding, Scanner
from audit.scan.wordlist import load_wordlists
from audit.store.models import Severity

DEFAULT_LISTS = Path(__file__).resolve().parents[2] / "wordlists"
SCANNER = Scanner.from_directory(DEFAULT_LISTS)


def rules(text: str, role: str | None = None) -> list[tuple[str, int, int, str]]:
    return [(f.rule, f.start, f.end, f.matched) for f in SCANNER.scan(text, role)]


def scanner_for(tmp_path: Path, files: dict[str, str]) -> Scanner:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return Scanner.from_directory(tmp_path, categories=())


# ------------------------------------------------------------------------- evasions


@pytest.mark.parametrize(
    ("text", "matched", "explanation", "technique"),
    [
        (
            "加我微 信吧",
            "加我微 信",
            "term 加我微信 after normalization: spacing removed",
            "separators",
        ),
        (
            "加我V信",
            "加我V信",
            "term 加我微信 (variant 加我v信) after normalization: lowercase",
            "variant",
        ),
        ("加我vx", "加我vx", "term 加我微信 (variant 加我vx)", "variant"),
        (
            "那你加我ｖｘ",
            "加我ｖｘ",
            "term 加我微信 (variant 加我vx) after normalization: fullwidth",
            "variant+fullwidth",
        ),
        ("加我威信", "加我威信", "term 加我微信 (variant 加我威信)", "variant"),
        (
            "加我wei xin",
            "加我wei xin",
            "term 加我微信 (variant 加我weixin) after normalization: spacing removed",
            "variant+separators",
        ),
        (
            "加我微.信.号",
            "加我微.信",
            "term 加我微信 after normalization: symbols removed",
            "separators",
        ),
        (
            "加*我*微*信",
            "加*我*微*信",
            "term 加我微信 after normalization: symbols removed",
            "separators",
        ),
        (
            "加我\u200b微信",
            "加我\u200b微信",
            "term 加我微信 after normalization: zero-width removed",
            "separators",
        ),
    ],
)
def test_when_staff_asks_to_add_wechat_in_disguise_then_diversion_is_found(
    text: str, matched: str, explanation: str, technique: str
) -> None:
    start = text.index(matched)

    assert SCANNER.scan(text, "staff") == [
        Finding(
            category="diversion",
            rule="diversion.jia_wo_wei_xin",
            severity=Severity.HIGH,
            score=1.0 if "variant" not in explanation else 0.9,
            start=start,
            end=start + len(matched),
            matched=matched,
            explanation=explanation,
            technique=technique,
        )
    ]


@pytest.mark.parametrize(
    ("text", "rule", "matched"),
    [
        ("這是我的私人微信號", "diversion.si_ren_wei_xin", "私人微信"),
        ("私人 V 信 发你了", "diversion.si_ren_wei_xin", "私人 V 信"),
        ("转我个人微信就行", "diversion.zhuan_wo_ge_ren_wei_xin", "转我个人微信"),
        ("扫我个人收款码", "diversion.sao_wo_ge_ren_shou_kuan_ma", "扫我个人收款码"),
        ("我们私下交易吧", "diversion.si_xia_jiao_yi", "私下交易"),
        ("您直接转到我个人账户", "diversion.zhuan_dao_wo_ge_ren_zhang_hu", "转到我个人账户"),
        ("把验证码发我一下", "privacy.ba_yan_zheng_ma_fa_wo", "把验证码发我"),
        ("这卡不用实名的", "fraud.bu_yong_shi_ming", "不用实名"),
        ("可以借身份证办卡", "fraud.jie_shen_fen_zheng_ban_ka", "借身份证办卡"),
        ("我们可以代办实名", "fraud.dai_ban_shi_ming", "代办实名"),
        ("这个理财保证收益", "promise.bao_zheng_shou_yi", "保证收益"),
        ("绝对不会扣费", "promise.jue_dui_bu_hui", "绝对不会"),
        ("無限流量不限速", "promise.wu_xian_liu_liang_bu_xian_su", "無限流量不限速"),
    ],
)
def test_when_staff_says_a_listed_phrase_then_it_is_found(
    text: str, rule: str, matched: str
) -> None:
    start = text.index(matched)

    assert rules(text, "staff") == [(rule, start, start + len(matched), matched)]


@pytest.mark.parametrize(
    ("text", "rule", "matched"),
    [
        ("你个傻逼", "abuse.sha_bi", "傻逼"),
        ("傻Ｘ客服", "abuse.sha_bi", "傻Ｘ"),
        ("你这个 S B", "abuse.sha_bi", "S B"),
        ("神经病啊", "abuse.shen_jing_bing", "神经病"),
        ("滚蛋吧你", "abuse.gun_dan", "滚蛋"),
        ("你就是个废物", "abuse.fei_wu", "废物"),
        ("上菠菜网站", "illegal.bo_cai", "菠菜网站"),
    ],
)
def test_when_anyone_says_an_insult_or_illegal_term_then_it_is_found(
    text: str, rule: str, matched: str
) -> None:
    start = text.index(matched)

    assert rules(text, "customer") == [(rule, start, start + len(matched), matched)]
    assert rules(text, "staff") == [(rule, start, start + len(matched), matched)]


# ----------------------------------------------------------------------- allow list


@pytest.mark.parametrize(
    "text",
    [
        "您可以通过企业微信联系我",
        "这是傻瓜相机",
        "傻瓜式操作，老人也会用",
        "我是处女座的",
        "人民路路口交通银行旁边",
        "在窗口交费就可以",
        "这个大麻烦您了",
        "请不要出租出借手机卡",
        "家里的usb线坏了",
        "这台手机安兔兔跑分很高",
    ],
)
def test_when_term_is_inside_an_innocent_phrase_then_nothing_is_found(text: str) -> None:
    assert rules(text) == []


def test_when_allow_phrase_only_overlaps_a_match_then_the_match_stays(tmp_path: Path) -> None:
    scanner = scanner_for(tmp_path, {"abuse.txt": "傻瓜相\n", "allow.txt": "瓜相机\n"})

    assert [(f.start, f.end) for f in scanner.scan("傻瓜相机")] == [(0, 3)]


def test_when_there_is_no_allow_list_then_scanning_works(tmp_path: Path) -> None:
    scanner = scanner_for(tmp_path, {"abuse.txt": "傻瓜\n"})

    assert [f.matched for f in scanner.scan("傻瓜相机")] == ["傻瓜"]


# ---------------------------------------------------------------------------- roles


def test_when_staff_mentions_12315_then_it_is_not_a_complaint() -> None:
    assert rules("您可以拨打12315反映", "staff") == []


def test_when_customer_threatens_12315_then_it_is_a_complaint() -> None:
    assert rules("我要打12315投诉", "customer") == [
        ("complaint.12315", 2, 8, "打12315"),
        ("complaint.tou_su", 8, 10, "投诉"),
    ]


def test_when_role_is_unknown_then_every_rule_applies() -> None:
    assert rules("加我vx，不然我要投诉") == [
        ("diversion.jia_wo_wei_xin", 0, 4, "加我vx"),
        ("complaint.wo_yao_tou_su", 7, 11, "我要投诉"),
    ]


def test_when_customer_says_staff_only_phrase_then_it_is_not_found() -> None:
    # a customer's own WeChat offered (加我vx) is diversion too; a payment code is not
    assert rules("扫我个人收款码", "customer") == []
    assert rules("扫我个人收款码", "staff") != []


def test_when_role_is_not_staff_or_customer_then_scan_refuses() -> None:
    with pytest.raises(ValueError, match="unknown role 'robot'"):
        SCANNER.scan("你好", "robot")


def test_when_longer_term_is_for_another_role_then_shorter_one_still_matches(
    tmp_path: Path,
) -> None:
    scanner = scanner_for(
        tmp_path, {"complaint.txt": "投诉 | medium | customer\n投诉你们 | high | staff\n"}
    )

    assert [f.rule for f in scanner.scan("我投诉你们", "customer")] == ["complaint.tou_su"]
    assert [f.rule for f in scanner.scan("我投诉你们", "staff")] == ["complaint.tou_su_ni_men"]


# -------------------------------------------------------------------- leftmost-longest


def test_when_matches_nest_then_the_longest_wins(tmp_path: Path) -> None:
    scanner = scanner_for(tmp_path, {"complaint.txt": "投诉\n我要投诉\n投诉你们\n"})

    assert [(f.rule, f.start, f.end) for f in scanner.scan("我要投诉你们")] == [
        ("complaint.wo_yao_tou_su", 0, 4)
    ]


def test_when_matches_overlap_then_the_leftmost_wins_and_the_rest_resumes_after(
    tmp_path: Path,
) -> None:
    scanner = scanner_for(tmp_path, {"abuse.txt": "abc\nbcdef\nef\nfg\n"})

    assert [f.matched for f in scanner.scan("abcdefg")] == []  # ASCII words are whole words
    assert [f.matched for f in scanner.scan("a b c d e f g")] == ["a b c", "e f"]


def test_when_chinese_matches_overlap_then_leftmost_longest_chooses(tmp_path: Path) -> None:
    scanner = scanner_for(tmp_path, {"abuse.txt": "甲乙\n乙丙丁戊\n丁戊\n戊己\n"})

    assert [(f.matched, f.start) for f in scanner.scan("甲乙丙丁戊己")] == [
        ("甲乙", 0),
        ("丁戊", 3),
    ]


def test_when_same_spelling_is_in_two_categories_then_both_are_found(tmp_path: Path) -> None:
    scanner = scanner_for(tmp_path, {"abuse.txt": "骗子\n", "complaint.txt": "骗子\n"})

    assert [f.rule for f in scanner.scan("你们是骗子")] == ["abuse.pian_zi", "complaint.pian_zi"]


# ------------------------------------------------------------------ ASCII word edges


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("sb", ["sb"]),
        ("你是sb吗", ["sb"]),
        ("ok sb", ["sb"]),
        ("usb", []),
        ("sbs", []),
        ("ＵＳＢ", []),
    ],
)
def test_when_ascii_term_is_inside_a_longer_word_then_it_is_not_found(
    text: str, found: list[str]
) -> None:
    assert [f.matched for f in SCANNER.scan(text)] == found


def test_when_number_term_is_inside_a_longer_number_then_it_is_not_found() -> None:
    assert rules("打1231500", "customer") == []


# ---------------------------------------------------------------------- the scanner


def test_when_built_then_version_and_hash_are_recorded() -> None:
    assert SCANNER.version == SCANNER_VERSION == "0.7"
    assert SCANNER.wordlist_hash == load_wordlists(DEFAULT_LISTS).wordlist_hash


def test_when_text_has_several_findings_then_they_are_sorted_by_start() -> None:
    text = "傻逼，电话13800138000，加我vx"

    assert rules(text) == [
        ("abuse.sha_bi", 0, 2, "傻逼"),
        ("privacy.phone", 5, 16, "13800138000"),
        ("diversion.jia_wo_wei_xin", 17, 21, "加我vx"),
    ]


FRAGMENTS = [
    "加我微 信",
    "加我ｖｘ",
    "私人V信",
    "傻逼",
    "企业微信",
    "１３８ ００１３ ８０００",
    "一三八零零一三八零零零",
    "+86 138-0013-8000",
    "11010519491231002X",
    "6222 0212 3456 7890 128",
    "a@b.cn",
    "QQ 123456",
    "微信号: abc_123",
    "我要投诉",
    "12315",
    "你好",
    " ",
    "，",
    "\u200b",
    "號",
    "x",
    "7",
]


@given(
    st.lists(st.sampled_from(FRAGMENTS), max_size=12), st.sampled_from([None, "staff", "customer"])
)
def test_every_finding_span_is_its_matched_original_text(
    parts: list[str], role: str | None
) -> None:
    text = "".join(parts)

    findings = SCANNER.scan(text, role)

    for finding in findings:
        assert 0 <= finding.start < finding.end <= len(text)
        assert finding.matched == text[finding.start : finding.end]
        assert finding.matched == finding.matched.strip()
    assert [f.start for f in findings] == sorted(f.start for f in findings)
