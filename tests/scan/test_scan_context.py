"""Context judgement: negated, asked, past, hypothetical, quoted, self-directed and rights
notices are excused per category; each has a counterpart that must stay a finding."""

from __future__ import annotations

from pathlib import Path

import pytest
from wordlist_dirs import write_lists

from audit.scan.context import (
    LOWERED_SCORE,
    MODEL_RULES,
    RULES,
    CueListError,
    MessageCues,
    applied_cues,
    cue_spans,
    excuse,
    judge,
    parse_cues,
    reported_spans,
)
from audit.scan.finding import Finding
from audit.scan.normalize import normalize
from audit.scan.scanner import Scanner
from audit.store.models import Severity

# A list of its own, so that the cases do not move when the default lists are edited.
# Complaint terms apply to both roles here: a staff rights notice is then what excuses them.
LISTS = {
    "complaint.txt": "投诉 | medium | both\n我要投诉 | high | both\n工信部 | high | both\n"
    "12315 | high | both\n",
    "diversion.txt": "加我微信 | high | staff\n加你微信 | medium | both\n",
    "promise.txt": "打包票 | medium | staff\n不限速 | high | staff\n限速 | medium | staff\n"
    "保证收益 | critical | staff\n",
    "abuse.txt": "傻子 | medium | both\n笨蛋 | low | both\n废物 | medium | both\n",
    "fraud.txt": "收手机卡 | high | both\n",
    "privacy.txt": "验证码发我 | critical | staff\n",
    "illegal.txt": "仿真枪 | high | both\n出售枪支 | high | both\n",
}


@pytest.fixture(scope="module")
def scanner(tmp_path_factory: pytest.TempPathFactory) -> Scanner:
    return Scanner.from_directory(write_lists(tmp_path_factory.mktemp("lists"), LISTS))


def found(scanner: Scanner, text: str, role: str | None) -> list[tuple[str, str]]:
    return [(f.matched, f.context) for f in scanner.scan(text, role)]


# ------------------------------------------------------------------------ suppressed


@pytest.mark.parametrize(
    ("role", "text"),
    [
        ("customer", "我没说要投诉"),
        ("customer", "我从来没想过要投诉"),
        ("customer", "我 没 说 要 投 诉"),  # cues are read after normalization too
        ("customer", "我不会去工信部的"),
        ("customer", "投诉这事就算了，修好就行"),
        ("staff", "这个不敢打包票"),
        ("staff", "我们不能保证收益，要看市场"),
        ("customer", "旧手机可以拿来回收，不是废物"),
        ("staff", "公司规定不能加你微信"),
        ("staff", "我们不会让您把验证码发我，请放心"),
        ("customer", "我也没讲要投诉，就想问清楚"),
        ("customer", "我没提过工信部"),
        ("staff", "门店不销售任何仿真枪"),
        ("staff", "本店不出售枪支"),  # the negator shares 出售 with the term
        ("staff", "我们绝不会以任何理由和方式要求您加我微信"),  # a negator reaches its clause
        ("staff", "不方便加我微信哦，有事这里说就行"),
    ],
)
def test_when_a_hit_is_negated_then_it_is_suppressed(
    scanner: Scanner, role: str, text: str
) -> None:
    assert found(scanner, text, role) == []


@pytest.mark.parametrize(
    ("role", "text"),
    [
        ("customer", "能加你微信吗"),
        ("customer", "能不能加你微信"),
        ("customer", "可以加你微信？"),
        ("customer", "我可以投诉吗？"),
        ("customer", "12315是管什么的？"),
    ],
)
def test_when_a_customer_asks_then_diversion_and_complaint_are_suppressed(
    scanner: Scanner, role: str, text: str
) -> None:
    assert found(scanner, text, role) == []


@pytest.mark.parametrize(
    "text",
    [
        "上次那个投诉处理完了",
        "之前投诉的事，已经解决了",
        "上回工信部那个已经撤了",
        "昨天说要投诉是气话",
        "我说过要打12315，你们处理了就算了",
    ],
)
def test_when_a_complaint_is_past_or_resolved_then_it_is_suppressed(
    scanner: Scanner, text: str
) -> None:
    assert found(scanner, text, "customer") == []


@pytest.mark.parametrize(
    ("role", "text"),
    [
        ("staff", "流量用超以后会限速"),
        ("customer", "如果要投诉的话找谁"),
        ("customer", "投诉的话要多久"),
        ("customer", "万一投诉了会怎样"),
        # a diversion or a fraud inside the condition is a warning or a hypothesis
        ("staff", "若对方要求加我微信领红包，请直接拒绝"),
        ("staff", "如遇有人收手机卡，请直接报警"),
        ("customer", "万一有人上门收手机卡怎么办"),
    ],
)
def test_when_a_hit_is_the_condition_then_it_is_suppressed(
    scanner: Scanner, role: str, text: str
) -> None:
    assert found(scanner, text, role) == []


@pytest.mark.parametrize(
    ("role", "text"),
    [
        ("staff", "客户问「打包票」是什么意思"),
        ("staff", "他说什么打包票，我没听懂"),
        ("customer", "他说要投诉你们"),
        ("customer", "朋友说“找工信部”有用"),
        ("customer", "她说“你们都是傻子”，我替她道个歉"),
        ("customer", "短信说“加你微信”就能退款，是你们发的吗"),
        ("customer", "群里看到有人发帖收手机卡，是你们的人吗"),
    ],
)
def test_when_someone_else_is_quoted_then_the_hit_is_suppressed(
    scanner: Scanner, role: str, text: str
) -> None:
    assert found(scanner, text, role) == []


@pytest.mark.parametrize(
    "text",
    [
        "我真是个傻子",
        "我就是笨蛋，又输错了",
        "我自己太笨蛋了",
        "我今天简直是个傻子",
        "笨蛋如我，又忘带身份证了",
    ],
)
def test_when_an_insult_is_said_of_oneself_then_it_is_suppressed(
    scanner: Scanner, text: str
) -> None:
    assert found(scanner, text, "customer") == []


@pytest.mark.parametrize("role", ["staff", None])
@pytest.mark.parametrize(
    "text", ["如需投诉可拨打10080", "您可以向工信部申诉", "对结果不满意的，您有权拨打12315"]
)
def test_when_staff_tell_a_customer_their_rights_then_it_is_suppressed(
    scanner: Scanner, text: str, role: str | None
) -> None:
    assert found(scanner, text, role) == []


# ------------------------------------------------------------------------------ lowered


@pytest.mark.parametrize(
    ("text", "matched", "context", "severity"),
    [
        ("您是问保证收益吗？", "保证收益", "question (吗)", Severity.HIGH),  # listed critical
        ("客户说想加你微信", "加你微信", "quoted (客户说)", Severity.LOW),  # listed medium
    ],
)
def test_when_staff_ask_or_report_then_the_hit_is_lowered_with_the_reason(
    scanner: Scanner, text: str, matched: str, context: str, severity: Severity
) -> None:
    [finding] = scanner.scan(text, "staff")

    assert (finding.matched, finding.context, finding.score) == (matched, context, LOWERED_SCORE)
    assert finding.severity == severity
    assert finding.explanation == f"term {matched}; context: {context}, lowered"
    assert finding.as_dict()["context"] == context


# ------------------------------------------------------------------------ stays a finding


@pytest.mark.parametrize(
    ("role", "text", "matched"),
    [
        ("customer", "我要投诉你们", "我要投诉"),
        ("customer", "不行，我要投诉", "我要投诉"),  # the negation is in another clause
        ("customer", "如果不解决我就投诉", "投诉"),  # the threat is the consequence
        ("customer", "再不退钱我投诉", "投诉"),  # 不 negates 退钱
        ("customer", "我不得不投诉了", "投诉"),
        ("customer", "非常想投诉", "投诉"),
        ("customer", "我已经打了12315", "12315"),  # an escalation, not a resolved past
        ("customer", "我之前投诉过，到现在还没解决", "投诉"),
        ("customer", "我不是说了要投诉吗", "投诉"),  # 不是…吗 affirms
        ("staff", "加我微信", "加我微信"),
        ("staff", "加我微信好吗", "加我微信"),  # a question does not excuse an offer
        ("staff", "要不要加我微信？", "加我微信"),
        ("staff", "这个我打包票", "打包票"),
        ("staff", "放心，不限速", "不限速"),
        ("staff", "只要办了就保证收益", "保证收益"),
        ("staff", "如果您需要，可以加我微信", "加我微信"),  # the condition is another clause
        ("customer", "你真是个傻子", "傻子"),
        ("customer", "你不是傻子吗", "傻子"),
        ("customer", "我觉得你是笨蛋", "笨蛋"),
        ("customer", "你们收手机卡吗", "收手机卡"),  # a customer soliciting a fraud
        ("customer", "你信不信我投诉你们", "投诉"),  # a threat put as a question
        ("customer", "别逼我去工信部", "工信部"),
        ("customer", "您可以向工信部申诉", "工信部"),  # rights notices are staff's
        ("staff", "您可以通过短信把验证码发我", "验证码发我"),  # no rights notice excuses it
        ("staff", "需要仿真枪的话可以给您留一把", "仿真枪"),  # an offer put as a condition
        ("staff", "要是想便宜点，加我微信", "加我微信"),  # the condition is another clause
        # a condition that names no one else is the offer's own
        ("staff", "如有需要请加我微信", "加我微信"),
        ("staff", "万一有问题您直接加我微信", "加我微信"),
        ("customer", "要是你们收手机卡，我这有十张", "收手机卡"),
        ("staff", "不用在这边排队了，加我微信", "加我微信"),  # the negation is another clause
        ("customer", "你这个傻子如我所料又搞错了", "傻子"),  # 如我 after an insult of 你
    ],
)
def test_when_no_cue_excuses_a_hit_then_it_stays_a_finding(
    scanner: Scanner, role: str, text: str, matched: str
) -> None:
    assert found(scanner, text, role) == [(matched, "")]


def test_when_a_hit_is_far_from_a_cue_then_the_cue_does_not_reach_it() -> None:
    assert cue_kinds("投诉" + "好" * 10 + "吗", "投诉") == [("question", "吗")]
    assert cue_kinds("投诉" + "好" * 50 + "吗", "投诉") == []  # past the window


def test_when_the_hit_ends_a_long_message_then_its_own_context_is_judged(
    scanner: Scanner,
) -> None:
    assert found(scanner, "您好，" * 300 + "我没说要投诉", "customer") == []
    assert found(scanner, "我没说，" * 300 + "我要投诉", "customer") == [("我要投诉", "")]


@pytest.mark.parametrize(
    "text", ["我没有给你13800138000这个号码吗？", "如果要打13800138000的话", "他说13800138000"]
)
def test_when_personal_data_is_shown_then_no_context_excuses_it(
    scanner: Scanner, text: str
) -> None:
    assert [f.category for f in scanner.scan(text, "customer")] == ["privacy"]


# ----------------------------------------------------------------------- the cue scopes


def cue_kinds(text: str, term: str, role: str | None = "customer") -> list[tuple[str, str]]:
    start = text.index(term)
    finding = Finding(
        "complaint", "complaint.x", Severity.HIGH, 1.0, start, start + len(term), term, "term"
    )
    cues = MessageCues(text, normalize(text))
    return [(a.kind, a.word) for a in applied_cues(cues, finding, role)]


@pytest.mark.parametrize(
    ("text", "term", "kinds"),
    [
        ("我没说要投诉", "投诉", [("negation", "没说")]),
        ("没投诉", "投诉", [("negation", "没")]),
        ("没退钱我投诉", "投诉", []),  # a bare 不/没 does not reach past a pronoun
        ("我不想，以后再投诉", "投诉", []),  # nor past a comma
        ("我不想以后再就投诉", "投诉", []),  # nor past 就
        ("特别想投诉", "投诉", []),  # 别 inside 特别 is no negation
        ("投诉吗", "投诉", [("question", "吗")]),
        ("投诉？好的", "投诉", [("question", "？")]),
        ("要投诉什么", "投诉", []),  # 么 inside 什么 is no particle
        ("有没有投诉渠道", "投诉", [("question", "有没有")]),
        ("怎么投诉", "投诉", [("question", "怎么")]),
        ("找记者看看你们怎么骗人", "找记者", []),  # a how after the hit asks nothing
        ("怎么又要投诉", "投诉", []),  # how come: a reproach, no question
        ("投诉你们处理了没有", "投诉", []),  # still asking whether it is over
        ("你们怎么回事，要投诉", "投诉", []),
        ("谁说要投诉了", "投诉", [("negation", "谁说要")]),
        ("我没讲要投诉", "投诉", [("negation", "没讲")]),
        ("昨天说要投诉", "投诉", [("past", "昨天")]),
        ("投诉的事你们处理了", "投诉", [("past", "处理了")]),
        ("投诉的事我不追究了", "投诉", [("past", "不追究了")]),
        ("上次投诉", "投诉", [("past", "上次")]),
        ("投诉处理完了", "投诉", [("past", "处理完")]),
        ("如果投诉", "投诉", [("conditional", "如果")]),
        ("如果不改就投诉", "投诉", []),
        ("就算投诉也没用", "投诉", [("conditional", "就算")]),
        ("就算亏了也不限速", "不限速", []),  # even so, it holds: a promise
        ("他说投诉", "投诉", [("quotation", "他说")]),
        ("「投诉」", "投诉", [("quotation", "「」")]),
        ("「好」投诉「好」", "投诉", []),  # between two quotations, not inside one
    ],
)
def test_when_a_cue_is_in_or_out_of_scope_then_it_applies_or_not(
    text: str, term: str, kinds: list[tuple[str, str]]
) -> None:
    assert cue_kinds(text, term) == kinds


def test_when_a_customer_writes_a_rights_word_then_it_is_not_a_rights_notice() -> None:
    assert cue_kinds("可拨打投诉", "投诉", "customer") == []
    assert cue_kinds("可拨打投诉", "投诉", "staff") == [("rights_notice", "可拨打")]


def test_when_findings_have_no_context_then_the_inspect_shape_is_unchanged() -> None:
    finding = Finding("abuse", "abuse.x", Severity.HIGH, 1.0, 0, 2, "傻子", "term 傻子")

    assert "context" not in finding.as_dict()
    assert judge("傻子", normalize("傻子"), "customer", [finding]) == [finding]


def test_when_there_are_no_findings_then_judge_returns_them_untouched() -> None:
    findings: list[Finding] = []

    assert judge("我没说", normalize("我没说"), None, findings) is findings


def test_when_the_default_lists_scan_the_issue_examples_then_only_the_threat_stays() -> None:
    default = Scanner.from_directory(Path(__file__).resolve().parents[2] / "wordlists")

    assert default.scan("我没说要投诉", "customer") == []
    assert default.scan("上次那个投诉处理完了", "customer") == []
    assert [f.matched for f in default.scan("我要投诉你们", "customer")] == ["我要投诉"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("negator 没说", "cues.txt:1: expected '<kind>: words'"),
        ("# c\nnegation: 没说", "cues.txt:2: expected '<kind>: words'"),
        ("negator: 没说\nbare: 没说", "cues.txt:2: '没说' is already a negation cue"),
    ],
)
def test_when_the_cue_list_has_a_bad_line_then_the_error_names_it(text: str, error: str) -> None:
    with pytest.raises(CueListError, match=error):
        parse_cues(text, "cues.txt")


def test_when_the_cue_list_is_read_then_kinds_map_to_cues() -> None:
    assert parse_cues("negator: 没说 # why\nrights: 可拨打\ndecoy: 特别") == {
        "没说": "negation",
        "可拨打": "rights_notice",
        "特别": "decoy",
    }


# ------------------------------------------------------- hits located by someone else


def span(text: str, words: str) -> tuple[int, int]:
    start = text.index(words)
    return start, start + len(words)


@pytest.mark.parametrize(
    ("role", "category", "text", "words", "reason"),
    [
        ("staff", "promise", "我们不存在稳赚不赔的产品", "稳赚不赔", "negated by 不存在"),
        ("staff", "promise", "这个能保证收益吗？", "保证收益", "question (吗)"),
        ("staff", "promise", "之前有同事说过包赚，已经处理了", "包赚", "past (之前)"),
        ("staff", "fraud", "如果有人让您帮忙刷单，那是诈骗", "帮忙刷单", "conditional (如果)"),
        ("customer", "abuse", "她说“你们都是骗子”，我替她道歉", "骗子", "quoted (她说)"),
        ("customer", "abuse", "我真是个傻子", "傻子", "self-directed (我)"),
        ("staff", "fraud", "收到收卡的短信，您可以向12321举报", "收卡", "rights notice (您可以向)"),
        ("customer", "privacy", "验证码要发给你吗？", "验证码", "question (吗)"),
        ("staff", "privacy", "我们不会让您把密码发过来", "密码发过来", "negated by 不会"),
        ("staff", "illegal", "以前有人在群里开局赌钱，已经报警了", "开局赌钱", "past (以前)"),
        ("staff", "illegal", "收到上分广告可以向12321举报", "上分", "rights notice (可以向)"),
    ],
)
def test_when_a_model_finding_is_in_context_then_it_is_excused(
    role: str, category: str, text: str, words: str, reason: str
) -> None:
    cue = excuse(text, role, category, *span(text, words))
    assert cue is not None and cue.reason == reason


@pytest.mark.parametrize(
    ("role", "category", "text", "words"),
    [
        ("staff", "promise", "稳赚不赔，您放心买", "稳赚不赔"),
        ("staff", "diversion", "加我私人号好吗", "私人号"),  # a staff offer put as a question
        ("staff", "fraud", "你先用我同事的身份证办着", "同事的身份证"),
        ("customer", "abuse", "你真是个傻子", "傻子"),
        ("customer", "complaint", "不解决我就去找电视台", "找电视台"),
        ("staff", "privacy", "验证码能发我一下吗", "验证码"),  # a staff request put as a question
        ("customer", "illegal", "有没有叶子，给我来点", "叶子"),  # asked for, it is solicited
    ],
)
def test_when_a_model_finding_has_no_excusing_cue_then_it_stands(
    role: str, category: str, text: str, words: str
) -> None:
    assert excuse(text, role, category, *span(text, words)) is None


def test_model_rules_drop_whatever_the_list_rules_lower() -> None:
    assert set(MODEL_RULES) == set(RULES)  # every category has a detector
    for category, effects in RULES.items():
        model = MODEL_RULES[category]
        for kind, effect in effects.items():
            assert model.get(kind) == "suppress", (category, kind, effect)


def test_cue_spans_are_the_function_words_in_original_offsets() -> None:
    text = "我 不會 加 您 的 私人號，如果 需要 嗎"
    words = [text[a:b].replace(" ", "") for a, b in cue_spans(text)]
    assert words == ["不會", "如果", "嗎"]  # 我 (the speaker) is no cue to leave out


@pytest.mark.parametrize(
    ("text", "reported"),
    [
        ("邻居说“打12315”最快，我先问问你们", ["“打12315”", "“打12315”最快"]),
        ("她说你们都是骗子，我替她道歉", ["你们都是骗子"]),
        ("网上说不用身份证就能开卡", ["不用身份证就能开卡"]),
        ("你们就是骗子", []),
    ],
)
def test_reported_spans_are_quoted_or_after_a_reporting_verb(
    text: str, reported: list[str]
) -> None:
    assert [text[a:b] for a, b in reported_spans(text)] == reported
