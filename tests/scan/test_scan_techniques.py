"""Each way of writing around the lists is caught, and the finding names the technique."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.scan.scanner import GAP_SCORES, Scanner

DEFAULT_LISTS = Path(__file__).resolve().parents[2] / "wordlists"
SCANNER = Scanner.from_directory(DEFAULT_LISTS)


def found(text: str, role: str | None = "staff") -> list[tuple[str, str, str]]:
    return [(f.rule, f.matched, f.technique) for f in SCANNER.scan(text, role) if f.score >= 0.5]


@pytest.mark.parametrize(
    ("text", "role", "expected"),
    [
        ("加我wei xin", "staff", ("diversion.jia_wo_wei_xin", "加我wei xin", "variant+separators")),
        (
            "jia wo wei xin",
            "staff",
            ("diversion.jia_wo_wei_xin", "jia wo wei xin", "pinyin+separators"),
        ),
        ("我要投su", "customer", ("complaint.wo_yao_tou_su", "我要投su", "pinyin")),
        ("保证sy", "staff", ("promise.bao_zheng_shou_yi", "保证sy", "initials")),
        ("加我绿泡泡", "staff", ("diversion.jia_wo_lv_pao_pao", "加我绿泡泡", "exact")),
        ("这个理财保証收益", "staff", ("promise.bao_zheng_shou_yi", "保証收益", "traditional")),
        ("包您满以，不满意退", "staff", ("promise.bao_ni_man_yi", "包您满以", "homophone")),
        ("我要打幺二三幺五", "customer", ("complaint.12315", "打幺二三幺五", "numerals")),
        ("l23OO申诉", "customer", ("complaint.da_dian_hua_dao_12300", "l23OO申诉", "numerals")),
        ("扌殳讠斥", "customer", ("complaint.tou_su", "扌殳讠斥", "split_char")),
        ("➕我微信", "staff", ("diversion.jia_wo_wei_xin", "➕我微信", "emoji_symbol")),
        ("稳贝兼不赔", "staff", ("promise.wen_zhuan_bu_pei", "稳贝兼不赔", "split_char")),
        ("GOlP设备出租", "staff", ("illegal.goip", "GOlP设备", "lookalike")),
        ("加我v\u0445", "staff", ("diversion.jia_wo_wei_xin", "加我v\u0445", "variant+lookalike")),
        ("贝者十尃网站", "staff", ("illegal.du_bo", "贝者十尃", "split_char")),
        ("冫水毒有货", "staff", ("illegal.bing_du", "冫水毒", "split_char")),
        ("亻尔女马的", "customer", ("abuse.ta_ma_de", "亻尔女马的", "split_char")),
        ("兼职刷单，一单返五块", "staff", ("fraud.shua_dan", "刷单", "exact")),
        ("6合彩今晚开", "staff", ("illegal.liu_he_cai", "6合彩", "numerals")),
        ("⑥合彩今晚开", "staff", ("illegal.liu_he_cai", "⑥合彩", "numerals")),
        ("这个是0风险的", "staff", ("promise.ling_feng_xian", "0风险", "numerals")),
        ("我打I23I5", "customer", ("complaint.12315", "打I23I5", "numerals")),
        ("我打一二三〇〇", "customer", ("complaint.da_12300", "打一二三〇〇", "numerals")),
        ("王八🥚", "customer", ("abuse.wang_ba_dan", "王八🥚", "emoji_symbol")),
        ("贝戋人", "customer", ("abuse.jian_ren", "贝戋人", "split_char")),
        ("王八旦", "customer", ("abuse.wang_ba_dan", "王八旦", "homophone")),
        ("再这样我就投个诉", "customer", ("complaint.tou_su", "投个诉", "gap")),
        ("可以帮你套个现", "staff", ("fraud.tao_xian", "套个现", "gap")),
    ],
)
def test_when_a_term_is_written_around_then_it_is_found_with_its_technique(
    text: str, role: str, expected: tuple[str, str, str]
) -> None:
    assert expected in found(text, role)


@pytest.mark.parametrize(
    ("text", "matched", "technique"),
    [
        ("电话138OO138OOO", "138OO138OOO", "letters_for_digits"),
        ("⑴⑶⑻⓪⓪①③⑧⓪⓪⓪", "⑴⑶⑻⓪⓪①③⑧⓪⓪⓪", "numerals"),
        ("打一三八零零一三八零零零", "一三八零零一三八零零零", "numerals"),
    ],
)
def test_when_a_phone_is_disguised_then_it_is_found_with_its_technique(
    text: str, matched: str, technique: str
) -> None:
    assert ("privacy.phone", matched, technique) in found(text, None)


@pytest.mark.parametrize(
    ("text", "matched", "technique"),
    [
        ("发到tony＠qq.com", "tony＠qq.com", "fullwidth"),
        ("tony艾特qq点com", "tony艾特qq点com", "spelled_out"),
        ("tony(at)qq dot com", "tony(at)qq dot com", "spelled_out"),
        ("邮箱zhao.min AT qq DOT com，别发错", "zhao.min AT qq DOT com", "spelled_out"),
        ("写错了，是tian.yu88 艾特 gmail 点 com", "tian.yu88 艾特 gmail 点 com", "spelled_out"),
        ("截图发yz2020 @ sohu . com", "yz2020 @ sohu . com", "spelled_out"),
        ("邮箱：zhangwei#126#com", "zhangwei#126#com", "spelled_out"),
        ("邮箱li.na88圈a 163点com", "li.na88圈a 163点com", "spelled_out"),
        ("发 chen-yu 圈 foxmail.com", "chen-yu 圈 foxmail.com", "spelled_out"),
        ("是wq2019小老鼠qq点com，谢谢", "wq2019小老鼠qq点com", "spelled_out"),
    ],
)
def test_when_an_email_is_written_out_then_it_is_found(
    text: str, matched: str, technique: str
) -> None:
    assert ("privacy.email", matched, technique) in found(text, None)


@pytest.mark.parametrize(
    "text",
    ["我在 at home", "see you at 5 dot", "#话题# 讨论", "a@b", "朋友圈 com", "5G圈子vip会员"],
)
def test_when_at_or_dot_is_ordinary_text_then_no_email_is_found(text: str) -> None:
    assert [f for f in found(text, None) if f[0] == "privacy.email"] == []


def test_when_a_wechat_id_follows_a_v_cue_then_it_is_diversion() -> None:
    assert found("V：tony-811，加了我给您发内部价") == [
        ("diversion.contact_id", "tony-811", "pattern"),
        ("promise.nei_bu_jia", "内部价", "exact"),
    ]


@pytest.mark.parametrize("text", ["v: abc_123", "薇：wang_88", "vx：zhang-2024"])
def test_when_other_short_cues_precede_an_id_then_it_is_found(text: str) -> None:
    assert "diversion.contact_id" in [f[0] for f in found(text)]


def test_when_a_qq_number_follows_a_bare_q_cue_then_it_is_diversion() -> None:
    assert found("有需要Q：2839105566") == [("diversion.contact_id", "2839105566", "pattern")]


# --------------------------------------------------------------------------------- gaps


@pytest.mark.parametrize(
    ("text", "rule", "matched", "skipped"),
    [
        ("保证一定收益", "promise.bao_zheng_shou_yi", "保证一定收益", 2),
        ("加一下我的微信", "diversion.jia_yi_xia_wei_xin", "加一下我的微信", 2),
        ("保证给您收益", "promise.bao_zheng_shou_yi", "保证给您收益", 2),
    ],
)
def test_when_filler_sits_inside_a_term_then_it_is_found_with_a_lower_score(
    text: str, rule: str, matched: str, skipped: int
) -> None:
    [finding] = SCANNER.scan(text, "staff")

    assert (finding.rule, finding.matched, finding.technique) == (rule, matched, "gap")
    assert finding.score == GAP_SCORES[skipped]
    assert f"gap: {skipped} skipped" in finding.explanation


@pytest.mark.parametrize(
    "text",
    [
        "保证不了收益",  # the filler negates it
        "参加我们的微信活动",  # 加我 is no word here: 参加|我们
        "保证。收益另算",  # a sentence ends in between
        "保证书上写的收益",  # more than three characters in between
    ],
)
def test_when_the_gap_is_no_filler_then_nothing_is_joined(text: str) -> None:
    assert [f for f in SCANNER.scan(text, "staff") if f.technique.startswith("gap")] == []


def test_when_a_term_is_whole_then_it_wins_over_a_gap_match() -> None:
    assert found("這是我的私人微信號") == [("diversion.si_ren_wei_xin", "私人微信", "exact")]


def test_when_a_filler_spelling_would_reach_into_the_next_sentence_then_it_is_not_found() -> None:
    assert ("privacy.cha_ji_zhu_xin_xi", "查一下机主", "gap") in found("我帮你查一下机主", "staff")
    assert not [
        f for f in found("好的我查一下。机主是您本人", "staff") if f[0].startswith("privacy.cha")
    ]
