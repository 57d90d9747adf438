"""The scorecard: validation with line numbers, and evaluation with caps and fatal items."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from audit.quality.metrics import BusinessClock, Msg, compute_metrics
from audit.quality.scorecard import (
    FindingRef,
    Scorecard,
    ScorecardError,
    evaluate,
    load_scorecard,
    parse_scorecard,
)
from audit.store.models import Severity

CN = dt.timezone(dt.timedelta(hours=8))
CLOCK = BusinessClock.parse("09:00-21:00")


def at(hhmm: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"2026-11-16 {hhmm}").replace(tzinfo=CN)


def cust(hhmm: str, text: str = "在吗", **kw: object) -> Msg:
    return Msg(at=at(hhmm), kind="customer", sender="wmA", text=text, **kw)  # type: ignore[arg-type]


def staff(hhmm: str, text: str, **kw: object) -> Msg:
    return Msg(at=at(hhmm), kind="staff", sender="zhangwei", text=text, **kw)  # type: ignore[arg-type]


GOOD = [
    cust("10:00", "宽带多少钱"),
    staff("10:01", "您好，100M每月50元"),
    cust("10:02", "好的"),
    staff("10:03", "还有问题随时找我，祝您生活愉快"),
]


def card(yaml_text: str) -> Scorecard:
    return parse_scorecard(textwrap.dedent(yaml_text), "card.yaml")


def errors_of(yaml_text: str) -> tuple[str, ...]:
    with pytest.raises(ScorecardError) as info:
        card(yaml_text)
    return info.value.errors


# --------------------------------------------------------------------------- the default card


def test_when_no_path_is_given_then_the_shipped_card_loads() -> None:
    default = load_scorecard()
    assert 10 <= len(default.items) <= 20
    assert default.version.startswith("telecom-store-2026.2@")
    assert len(default.version) <= 64  # Score.scorecard_version
    assert {"id_number_leak", "private_payment"} <= {i.id for i in default.items if i.fatal}
    assert all(i.label for i in default.items)


def test_when_a_model_conversation_is_scored_by_the_default_card_then_it_gets_100() -> None:
    result = evaluate(load_scorecard(), compute_metrics(GOOD, CLOCK, 5), [], {})
    assert result.score == 100
    assert result.deductions == ()
    assert not result.fatal


def test_when_a_poor_conversation_is_scored_by_the_default_card_then_each_point_says_why() -> None:
    convo = [
        cust("10:00", "宽带多少钱", scores={"customer_negative": 0.1}),
        staff("10:10", "100M每月50元", scores={"staff_discourtesy": 0.8}),  # 600 s: over SLA
        cust("10:11", "太贵了，我要投诉", scores={"customer_negative": 0.9}),
    ]
    metrics = compute_metrics(convo, CLOCK, 5)
    findings = [FindingRef("promise", "promise.bao_zheng", Severity.LOW, "staff")]
    result = evaluate(load_scorecard(), metrics, findings, metrics.scores_max)
    by_item = {d.item: d.points for d in result.deductions}
    assert by_item == {
        "overpromise": 5,
        "discourteous": 10,
        "negative_unanswered": 10,
        "slow_first_response": 5,
        "replies_over_sla": 2,
        "unanswered_at_end": 10,
        "no_greeting": 3,
    }
    assert result.score == 100 - 45
    reasons = {d.item: d.reason for d in result.deductions}
    assert reasons["slow_first_response"] == "first_response_business_seconds = 600 > 300"
    assert reasons["discourteous"] == "max staff_discourtesy = 0.8 >= 0.7"
    assert reasons["overpromise"].startswith("1 finding: promise.bao_zheng (staff)")


def test_when_staff_sends_an_id_number_then_the_default_card_gives_0() -> None:
    metrics = compute_metrics(GOOD, CLOCK, 5)
    leak = FindingRef("privacy", "privacy.resident_id", "high", "staff")
    result = evaluate(load_scorecard(), metrics, [leak], {})
    assert result.fatal
    assert result.score == 0
    fatal = [d for d in result.deductions if d.fatal]
    assert [d.item for d in fatal] == ["id_number_leak"]
    assert "fatal" in fatal[0].reason
    # personal_data_exposed also fires (privacy, high): listed, though the score is 0 anyway
    assert {d.item for d in result.deductions} == {"id_number_leak", "personal_data_exposed"}
    # the customer sending their own ID number is not the staff member's leak
    own = FindingRef("privacy", "privacy.resident_id", "high", "customer")
    assert evaluate(load_scorecard(), metrics, [own], {}).score == 100


def test_when_a_deduction_is_stored_then_it_is_plain_json() -> None:
    metrics = compute_metrics([cust("10:00")], CLOCK, 5)
    result = evaluate(load_scorecard(), metrics, [], {})
    assert result.deductions_json() == [
        {
            "item": "unanswered_at_end",
            "label": "客户最后的问题未回复",
            "points": 10.0,
            "reason": "unanswered_at_end = true",
            "fatal": False,
        }
    ]


def test_when_a_finding_clause_matches_then_the_deduction_names_the_stored_findings() -> None:
    metrics = compute_metrics(GOOD, CLOCK, 5)
    leak = FindingRef("privacy", "privacy.resident_id", "high", "staff", id=41)
    phone = FindingRef("privacy", "privacy.phone", "medium", "staff", id=7)
    result = evaluate(load_scorecard(), metrics, [leak, phone], {})
    by_item = {d["item"]: d for d in result.deductions_json()}
    assert by_item["id_number_leak"]["findings"] == [41]  # its alert carries the fatal cause
    assert by_item["personal_data_exposed"]["findings"] == [7, 41]


@pytest.mark.parametrize(
    ("first", "greets"),
    [
        ("在的何女士，我是人民路店的小司马", True),
        ("在呢，您说", True),
        ("我是人民路店的小王，请讲", True),
        ("很高兴为您服务", True),
        ("何女士好，我是小司马，您说。", True),
        ("您好～", True),
        ("存在的问题我记下了", False),  # 在的 only opens a message
        ("我是说这个套餐不划算", False),
        ("100M每月50元", False),
    ],
)
def test_when_staff_greet_in_their_own_words_then_the_default_card_sees_it(
    first: str, greets: bool
) -> None:
    sc = load_scorecard()
    convo = [cust("10:00", "在吗"), staff("10:01", first), cust("10:02", "好的")]
    metrics = compute_metrics(convo, CLOCK, 5, greeting_words=sc.greetings)
    assert metrics.greeting is greets
    items = {d.item for d in evaluate(sc, metrics, [], {}).deductions}
    assert ("no_greeting" in items) is not greets


def test_when_a_card_lists_greetings_then_they_replace_the_built_in_ones() -> None:
    sc = card(
        """\
        version: t1
        greetings:
          - ^早
          - 我是…号
        items:
          - id: no_greeting
            label: 无问候
            when: not greeting
            points: 3
        """
    )
    assert sc.greetings == ("^早", "我是…号")
    for text, greets in (("早，请讲", True), ("我是3号客服", True), ("您好", False)):
        metrics = compute_metrics([staff("10:01", text)], CLOCK, 5, greeting_words=sc.greetings)
        assert metrics.greeting is greets, text


def test_when_a_greeting_phrase_is_wrong_then_its_line_is_named() -> None:
    errors = errors_of(
        """\
        version: t1
        greetings:
          - 您好
          - 在^的
          - "…店"
          - 7
        items:
          - id: no_greeting
            label: 无问候
            when: not greeting
            points: 3
        """
    )
    assert errors == (
        "card.yaml:4: greetings: '在^的': '^' may only begin a phrase",
        "card.yaml:5: greetings: '…店': nothing to match around '…'",
        "card.yaml:6: greetings: 7 is not a phrase",
    )


# --------------------------------------------------------------------------- evaluation


PER_FINDING = """\
    version: t1
    items:
      - id: diversion
        label: 导流
        when: finding category == diversion, role == staff
        points: 10
        per: finding
        cap: 25
      - id: over_sla
        label: 超时
        when: sla_breaches > 0
        points: 2
        per: sla_breaches
        cap: 3
      - id: leak
        label: 泄露
        when: finding rule == privacy.*, severity >= high
        fatal: true
      - id: no_greeting
        label: 无问候
        when: not greeting
        points: 3
        kinds: [single]
"""


def diversion(n: int, role: str = "staff") -> list[FindingRef]:
    return [FindingRef("diversion", "diversion.jia_wo_wei_xin", "high", role)] * n


def test_when_findings_repeat_then_points_add_up_to_the_cap() -> None:
    metrics = compute_metrics(GOOD, CLOCK, 5)
    sc = card(PER_FINDING)
    assert evaluate(sc, metrics, diversion(2), {}).score == 80
    three = evaluate(sc, metrics, diversion(3), {})
    assert three.score == 75
    assert three.deductions[0].reason == (
        "3 findings: diversion.jia_wo_wei_xin (staff) ×3; 3 × 10; capped at 25"
    )
    assert evaluate(sc, metrics, diversion(3, role="customer"), {}).score == 100


def test_when_a_metric_counts_occurrences_then_it_is_multiplied_and_capped() -> None:
    slow = [cust("10:00"), staff("10:06", "您好"), cust("10:07"), staff("10:20", "您好")]
    result = evaluate(card(PER_FINDING), compute_metrics(slow, CLOCK, 5), [], {})
    assert [(d.item, d.points) for d in result.deductions] == [("over_sla", 3)]
    assert result.deductions[0].reason == "sla_breaches = 2 > 0; 2 × 2; capped at 3"


def test_when_a_fatal_item_fires_then_the_score_is_0_and_other_deductions_stay() -> None:
    metrics = compute_metrics(GOOD, CLOCK, 5)
    findings = [*diversion(1), FindingRef("privacy", "privacy.bank_card", "high", "staff")]
    result = evaluate(card(PER_FINDING), metrics, findings, {})
    assert result.score == 0 and result.fatal
    assert [(d.item, d.points, d.fatal) for d in result.deductions] == [
        ("diversion", 10, False),
        ("leak", 0, True),
    ]
    # below the severity the fatal item asks for, nothing fatal happens
    low = [FindingRef("privacy", "privacy.phone", "medium", "staff")]
    assert evaluate(card(PER_FINDING), metrics, low, {}).score == 100


def test_when_an_item_is_limited_to_kinds_then_other_kinds_are_not_scored() -> None:
    convo = [cust("10:00"), staff("10:01", "有的")]
    single = evaluate(card(PER_FINDING), compute_metrics(convo, CLOCK, 5, kind="single"), [], {})
    room = evaluate(card(PER_FINDING), compute_metrics(convo, CLOCK, 5, kind="room"), [], {})
    assert (single.score, room.score) == (97, 100)


def test_when_a_value_was_not_measured_then_nothing_is_deducted() -> None:
    sc = card(
        """\
        version: t2
        items:
          - {id: slow, label: 慢, when: first_response_seconds > 60, points: 5}
          - {id: low, label: 低, when: sla_rate < 0.8, points: 5}
          - {id: rude, label: 粗鲁, when: max staff_discourtesy >= 0.7, points: 5}
          - {id: neg, label: 不满, when: negative_unanswered == true, points: 5}
        """
    )
    only_staff = compute_metrics([staff("10:00", "门店活动通知")], CLOCK, 5)
    assert evaluate(sc, only_staff, [], {}).score == 100


def test_when_deductions_exceed_100_then_the_score_stops_at_0() -> None:
    sc = card(
        """\
        version: t3
        items:
          - {id: a, label: A, when: effective, points: 60}
          - {id: b, label: B, when: messages > 1, points: 60}
        """
    )
    result = evaluate(sc, compute_metrics(GOOD, CLOCK, 5), [], {})
    assert result.score == 0
    assert not result.fatal


def test_when_conditions_are_joined_by_and_then_all_must_hold() -> None:
    sc = card(
        """\
        version: t4
        items:
          - id: slow_and_rude
            label: 慢且粗鲁
            when: first_response_seconds > 30 and max staff_discourtesy >= 0.5
            points: 7
        """
    )
    metrics = compute_metrics(GOOD, CLOCK, 5)
    assert evaluate(sc, metrics, [], {"staff_discourtesy": 0.6}).score == 93
    assert evaluate(sc, metrics, [], {"staff_discourtesy": 0.4}).score == 100


# --------------------------------------------------------------------------- validation


def test_when_the_card_has_many_mistakes_then_each_is_named_with_its_line() -> None:
    errors = errors_of(
        """\
        version: t5
        items:
          - id: a
            label: 首响
            when: first_respons_seconds > 300
            points: 5
          - id: b
            label: 时效
            when: sla_rate = 0.8
            points: 5
          - id: c
            label: 负分
            when: unanswered_at_end
            points: -5
          - id: d
            label: 类别
            when: finding category == privasy
            points: 5
          - id: a
            label: 重复
            when: greeting == false
            points: 1
          - id: f
            label: 封顶
            when: finding category == abuse
            points: 10
            per: finding
            cap: 5
          - id: g
            label: 未知键
            when: greeting == false
            point: 3
        """
    )
    assert errors == (
        "card.yaml:5: when: unknown metric 'first_respons_seconds'"
        " (did you mean first_response_seconds?)",
        "card.yaml:9: when: bad operator '=' in 'sla_rate = 0.8': use ==",
        "card.yaml:14: points -5 is negative: give the points to deduct",
        "card.yaml:17: when: unknown finding category 'privasy' (did you mean privacy?)",
        "card.yaml:19: item id 'a' repeats the one on line 3",
        "card.yaml:28: cap 5 is less than points 10",
        "card.yaml:32: item: unknown key 'point' (did you mean points?)",
        "card.yaml:29: item: missing 'points' (or 'fatal: true')",
    )


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        ("greeting > 1", "greeting is true or false: write greeting == false"),
        ("sla_rate", "sla_rate is a number: compare it, e.g. sla_rate > 0"),
        ("sla_rate < fast", "'fast' is not a number"),
        ("max rudeness >= 0.7", "unknown classifier score 'rudeness'"),
        ("max staff_discourtesy >= 7", "a score is a number from 0 to 1"),
        ("finding severity >= huge", "unknown severity 'huge'"),
        ("finding role == boss", "unknown role 'boss'"),
        ("finding category > privacy", "compares with == or != only"),
        ("finding colour == red", "finding has no field 'colour'"),
        ("finding rule == resident_id", "rule 'resident_id' is not <category>.<slug>"),
        ("finding", "'finding' needs filters"),
        ("sla_rate ~ 0.8", "cannot read 'sla_rate ~ 0.8'"),
    ],
)
def test_when_a_condition_is_wrong_then_the_reason_is_given(when: str, reason: str) -> None:
    errors = errors_of(
        f"""\
        version: t6
        items:
          - id: x
            label: X
            when: {when}
            points: 1
        """
    )
    assert len(errors) == 1
    assert errors[0].startswith("card.yaml:5: ")
    assert reason in errors[0]


@pytest.mark.parametrize(
    ("extra", "line", "reason"),
    [
        ("fatal: true", 7, "points: a fatal item sets the score to 0; remove it"),
        ("points: 0", 6, "points is 0"),
        ("points: 150", 6, "exceeds 100"),
        ("points: many", 6, "points must be a number"),
        ("cap: 3", 6, "cap: only meaningful with per"),
        ("per: finding", 6, "'when' has no finding clause"),
        ("per: effective", 6, "a yes/no metric cannot be counted"),
        ("per: sla_breach", 6, "did you mean sla_breaches?"),
        ("kinds: [single, group]", 6, "kinds: unknown group"),
        ("fatal: yes please", 6, "fatal must be true or false"),
    ],
)
def test_when_an_item_field_is_wrong_then_its_line_is_named(
    extra: str, line: int, reason: str
) -> None:
    points = "" if extra.startswith("points") else "points: 1"
    errors = errors_of(
        f"""\
        version: t7
        items:
          - id: x
            label: X
            when: effective
            {extra}
            {points}
        """
    )
    assert any(e.startswith(f"card.yaml:{line}: ") and reason in e for e in errors), errors


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "card.yaml: empty file"),
        ("version: t8\n", "card.yaml:1: scorecard: missing 'items'"),
        ("items: []\nversion: t8\n", "card.yaml:1: items must be a non-empty list"),
        ("version: 'has space'\nitems: [{}]\n", "card.yaml:1: version must be"),
        ("version: t8\nitems:\n  - id: x\n    label: [unclosed\n", "card.yaml:5: not valid YAML"),
        ("version: t8\nversion: t9\nitems: []\n", "card.yaml:2: scorecard: 'version' given twice"),
        ("- just\n- a list\n", "card.yaml:1: scorecard must be a mapping"),
    ],
)
def test_when_the_file_shape_is_wrong_then_loading_fails_with_the_line(
    text: str, expected: str
) -> None:
    with pytest.raises(ScorecardError) as info:
        parse_scorecard(text, "card.yaml")
    assert any(e.startswith(expected) for e in info.value.errors), info.value.errors


def test_when_a_file_is_loaded_then_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "qa.yaml"
    path.write_text("version: t9\nitems:\n  - {id: x, label: X, when: greting, points: 1}\n")
    with pytest.raises(ScorecardError, match=rf"{path}:3: when: unknown metric 'greting'"):
        load_scorecard(path)
    with pytest.raises(ScorecardError, match="cannot read"):
        load_scorecard(tmp_path / "missing.yaml")


def test_when_the_content_changes_then_the_version_changes(tmp_path: Path) -> None:
    text = "version: t10\nitems:\n  - {id: x, label: X, when: effective, points: 1}\n"
    first = parse_scorecard(text)
    assert first.version == parse_scorecard(text).version
    assert first.version.startswith("t10@")
    assert parse_scorecard(text.replace("points: 1", "points: 2")).version != first.version
