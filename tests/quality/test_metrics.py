"""Conversation metrics on hand-built conversations whose answers are worked out by hand.

Times are China time (Asia/Shanghai, no DST). 2026-11-16 is a Monday, 2026-11-20 a Friday.
"""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from audit.quality.metrics import (
    METRIC_NAMES,
    BusinessClock,
    Msg,
    compute_metrics,
    is_closing_only,
    metrics_from_json,
    percentile,
)

CN = dt.timezone(dt.timedelta(hours=8))
EVERY_DAY = BusinessClock.parse("09:00-21:00")
WEEKDAYS = BusinessClock.parse("09:00-21:00", days=[1, 2, 3, 4, 5])
H = 3600


def t(stamp: str) -> dt.datetime:
    """``"11-16 20:58"`` or ``"11-16 20:58:30"`` in 2026, China time."""
    return dt.datetime.fromisoformat(f"2026-{stamp}").replace(tzinfo=CN)


def cust(stamp: str, text: str = "在吗", who: str = "wmA", **kw: object) -> Msg:
    return Msg(at=t(stamp), kind="customer", sender=who, text=text, **kw)  # type: ignore[arg-type]


def staff(stamp: str, text: str = "您好，请讲", who: str = "zhangwei", **kw: object) -> Msg:
    return Msg(at=t(stamp), kind="staff", sender=who, text=text, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- business clock


@pytest.mark.parametrize(
    ("clock", "a", "b", "expected"),
    [
        # inside the hours
        (EVERY_DAY, "11-16 10:00", "11-16 10:05", 300),
        # 20:58 -> 21:00 (2 min) and 09:00 -> 09:02 next day (2 min): the night does not count
        (EVERY_DAY, "11-16 20:58", "11-17 09:02", 2 * 60 + 2 * 60),
        # both ends outside the hours, on either side of midnight
        (EVERY_DAY, "11-16 22:00", "11-17 08:00", 0),
        (EVERY_DAY, "11-16 06:00", "11-16 09:30", 30 * 60),
        # Friday 20:58 -> Monday 09:02: weekdays only skips the weekend ...
        (WEEKDAYS, "11-20 20:58", "11-23 09:02", 4 * 60),
        # ... every day counts Saturday and Sunday, 12 hours each
        (EVERY_DAY, "11-20 20:58", "11-23 09:02", 4 * 60 + 2 * 12 * H),
        # written on Saturday, answered on Monday: the clock starts Monday 09:00
        (WEEKDAYS, "11-21 10:00", "11-23 09:10", 10 * 60),
        # Monday 10:00 -> Wednesday 10:00: 11 h + 12 h + 1 h
        (EVERY_DAY, "11-16 10:00", "11-18 10:00", 24 * H),
        # backwards or empty
        (EVERY_DAY, "11-16 10:05", "11-16 10:00", 0),
        (EVERY_DAY, "11-16 10:00", "11-16 10:00", 0),
    ],
)
def test_when_interval_crosses_closed_hours_then_only_business_seconds_count(
    clock: BusinessClock, a: str, b: str, expected: float
) -> None:
    assert clock.business_seconds(t(a), t(b)) == expected


def test_when_hours_run_overnight_then_the_window_belongs_to_its_opening_day() -> None:
    night = BusinessClock.parse("22:00-06:00", days=[1, 2, 3, 4, 5])
    # Monday 21:00 -> Tuesday 07:00: 22:00-06:00 = 8 h
    assert night.business_seconds(t("11-16 21:00"), t("11-17 07:00")) == 8 * H
    # Friday night opens on a business day and runs into Saturday morning
    assert night.business_seconds(t("11-20 23:00"), t("11-21 05:00")) == 6 * H
    # Saturday night does not open at all
    assert night.business_seconds(t("11-21 23:00"), t("11-22 01:00")) == 0
    # a start inside a window opened the day before (Tuesday 02:00, Monday's night)
    assert night.business_seconds(t("11-17 02:00"), t("11-17 03:00")) == H


@pytest.mark.parametrize(
    "clock",
    [
        EVERY_DAY,
        WEEKDAYS,
        BusinessClock.parse("22:00-06:00", days=[1, 2, 3, 4, 5]),
        BusinessClock.parse("00:00-24:00"),
        BusinessClock.parse("08:00-08:00"),
        BusinessClock.parse("09:30-18:00", days=[1, 3, 5], tz="America/New_York"),  # DST
    ],
)
def test_when_many_waits_end_now_then_each_is_its_business_seconds(clock: BusinessClock) -> None:
    """The waiting list's batch: the walk's seconds for each start (both exact to the
    microsecond; the walk adds floats, so the last bit may differ), zero from "now" on."""
    rng = random.Random(7)
    now = dt.datetime(2026, 11, 8, 7, 30, 0, 250_001, tzinfo=dt.UTC)  # after New York's DST end
    starts = [
        now - dt.timedelta(seconds=rng.randrange(0, 40 * 86400), microseconds=rng.randrange(10**6))
        for _ in range(400)
    ]
    starts += [now, now + dt.timedelta(hours=1), now - dt.timedelta(microseconds=1)]
    got = clock.business_seconds_until(starts, now)
    assert got == pytest.approx([clock.business_seconds(a, now) for a in starts], rel=1e-12)
    assert got[-3:-1] == [0.0, 0.0]
    assert clock.business_seconds_until([], now) == []
    assert sum(1 for g in got if g > 0) > 200  # not a list of zeros


def test_when_hours_are_round_the_clock_then_every_second_counts() -> None:
    always = BusinessClock.parse("00:00-24:00")
    assert always.business_seconds(t("11-16 23:00"), t("11-17 01:00")) == 2 * H


def test_when_zone_has_dst_then_the_short_day_has_23_hours() -> None:
    berlin = BusinessClock.parse("00:00-24:00", tz="Europe/Berlin")
    tz = berlin.tz
    a = dt.datetime(2026, 3, 28, 12, tzinfo=tz)
    b = dt.datetime(2026, 3, 29, 12, tzinfo=tz)
    assert berlin.business_seconds(a, b) == 23 * H


@pytest.mark.parametrize(
    ("hours", "days"), [("9-21", [1]), ("09:00", [1]), ("24:00-21:00", [1]), ("09:00-21:00", [0])]
)
def test_when_hours_or_days_are_malformed_then_parse_says_so(hours: str, days: list[int]) -> None:
    with pytest.raises(ValueError, match="business"):
        BusinessClock.parse(hours, days)


def test_when_message_time_is_naive_then_it_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        Msg(at=dt.datetime(2026, 11, 16, 10), kind="staff", sender="x")


# --------------------------------------------------------------------------- response times


def test_when_customer_writes_a_burst_then_the_reply_is_timed_from_its_first_message() -> None:
    convo = [
        cust("11-16 10:00"),
        cust("11-16 10:01", "想问下套餐"),
        cust("11-16 10:02", "流量不够用"),
        staff("11-16 10:04", "您好，可以看看这个套餐"),  # 240 s after 10:00
        cust("11-16 10:10", "多少钱"),
        staff("11-16 10:20", "每月59元"),  # 600 s
    ]
    m = compute_metrics(convo, EVERY_DAY, sla_minutes=5)
    assert m.response_seconds == (240, 600)
    assert m.response_business_seconds == (240, 600)
    assert m.first_response_seconds == 240
    assert m.response_median_seconds == 420
    assert m.response_p90_seconds == pytest.approx(240 + 0.9 * 360)
    assert (m.within_sla, m.sla_breaches, m.sla_rate) == (1, 1, 0.5)
    assert m.responses == 2
    assert not m.unanswered_at_end
    assert m.effective


def test_when_staff_sends_several_messages_then_only_the_first_answers() -> None:
    convo = [
        cust("11-16 10:00"),
        staff("11-16 10:01", "您好"),
        staff("11-16 10:09", "还在吗"),
        cust("11-16 10:10", "在"),
        staff("11-16 10:12", "好的"),
    ]
    m = compute_metrics(convo, EVERY_DAY, sla_minutes=5)
    assert m.response_seconds == (60, 120)


def test_when_question_comes_before_closing_time_then_the_night_is_not_counted() -> None:
    convo = [cust("11-16 20:58", "宽带坏了"), staff("11-17 09:02", "您好，马上为您报修")]
    m = compute_metrics(convo, EVERY_DAY, sla_minutes=5)
    assert m.first_response_seconds == 12 * H + 4 * 60
    assert m.first_response_business_seconds == 4 * 60
    assert m.within_sla == 1
    assert m.sla_rate == 1.0


def test_when_weekend_is_closed_then_a_friday_evening_question_is_in_sla_on_monday() -> None:
    convo = [cust("11-20 20:58", "宽带坏了"), staff("11-23 09:02", "您好")]
    assert compute_metrics(convo, WEEKDAYS, sla_minutes=5).sla_rate == 1.0
    # open every day, the same reply waited through 24 business hours
    every = compute_metrics(convo, EVERY_DAY, sla_minutes=5)
    assert every.first_response_business_seconds == 4 * 60 + 24 * H
    assert every.sla_rate == 0.0


def test_when_messages_arrive_out_of_order_then_they_are_sorted_by_time() -> None:
    convo = [staff("11-16 10:03"), cust("11-16 10:00")]
    assert compute_metrics(convo, EVERY_DAY, 5).first_response_seconds == 180


def test_when_nobody_answers_then_there_are_no_response_times() -> None:
    m = compute_metrics([cust("11-16 10:00", "能办宽带吗")], EVERY_DAY, 5)
    assert m.first_response_seconds is None
    assert m.response_median_seconds is None
    assert m.sla_rate is None
    assert m.unanswered_at_end
    assert m.unanswered_messages == 1
    assert m.unanswered_since == t("11-16 10:00")
    assert not m.effective


def test_when_percentile_is_asked_then_it_interpolates_like_numpy() -> None:
    assert percentile([], 90) is None
    assert percentile([7.0], 90) == 7.0
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == pytest.approx(9.1)
    assert percentile([10, 20], 50) == 15


# --------------------------------------------------------------------------- who counts


def test_when_a_robot_auto_replies_then_the_clock_keeps_running_until_staff() -> None:
    convo = [
        cust("11-16 10:00"),
        Msg(at=t("11-16 10:00:05"), kind="robot", sender="wbbot", text="您好，客服稍后回复"),
        Msg(at=t("11-16 10:01"), kind="system", sender="", text="客户已添加"),
        Msg(at=t("11-16 10:01:30"), kind="staff", sender="zhangwei", action="switch"),
        staff("11-16 10:03"),
    ]
    m = compute_metrics(convo, EVERY_DAY, 5)
    assert m.first_response_seconds == 180
    assert m.messages == 2


def test_when_staff_recalls_a_message_then_the_recall_record_answers_nothing() -> None:
    convo = [
        cust("11-16 10:00"),
        Msg(
            at=t("11-16 10:01"), kind="staff", sender="zhangwei", msgtype="revoke", action="recall"
        ),
        staff("11-16 10:06"),
    ]
    assert compute_metrics(convo, EVERY_DAY, 5).first_response_seconds == 360


def test_when_another_staff_member_answers_in_a_group_then_the_burst_is_answered() -> None:
    convo = [
        staff("11-16 10:00", "欢迎加入南京路店客户群", who="zhangwei"),
        cust("11-16 10:05", "请问5G套餐有优惠吗", who="wmA"),
        cust("11-16 10:06", "我也想问", who="wmB"),
        staff("11-16 10:08", "有的，本月办理送流量", who="lina"),  # not the group owner
    ]
    m = compute_metrics(convo, EVERY_DAY, 5, kind="room")
    assert m.response_seconds == (180,)
    assert not m.unanswered_at_end
    assert (m.staff_senders, m.customer_senders) == (2, 2)
    assert m.kind == "room"


def test_when_two_staff_members_talk_then_an_internal_chat_is_effective() -> None:
    convo = [staff("11-16 10:00", "库存还有吗", who="a"), staff("11-16 10:01", "有", who="b")]
    m = compute_metrics(convo, EVERY_DAY, 5, kind="internal")
    assert m.effective
    assert m.responses == 0
    assert not compute_metrics(convo, EVERY_DAY, 5, kind="single").effective


def test_when_only_staff_writes_then_the_conversation_is_not_effective() -> None:
    m = compute_metrics([staff("11-16 10:00", "本周五门店有活动")], EVERY_DAY, 5)
    assert not m.effective
    assert not m.unanswered_at_end
    assert m.first_response_seconds is None


# --------------------------------------------------------------------------- closing words


@pytest.mark.parametrize(
    "text",
    [
        "谢谢", "好的，谢谢！", "OK👌", "ok", "嗯嗯", "谢谢啦~", "收到", "拜拜", "👍🏻", "👍️",
        "[抱拳]", "好的呀", "好吧", "Thank you!", "行，谢谢您", "知道了，辛苦了",
    ],
)  # fmt: skip
def test_when_text_is_only_closing_words_then_it_needs_no_reply(text: str) -> None:
    assert is_closing_only(text)


@pytest.mark.parametrize(
    "text",
    ["好贵", "可以吗", "好的，那我明天去店里办？", "", "谢谢，但是网速还是很慢", "okk吗", "行吗"],
)
def test_when_text_says_more_than_closing_words_then_it_needs_a_reply(text: str) -> None:
    assert not is_closing_only(text)


def test_when_customer_ends_with_thanks_then_the_conversation_is_not_unanswered() -> None:
    convo = [
        cust("11-16 10:00", "怎么查话费"),
        staff("11-16 10:01", "发送CXHF到10086即可"),
        cust("11-16 10:02", "好的"),
        cust("11-16 10:02:10", "谢谢！"),
    ]
    m = compute_metrics(convo, EVERY_DAY, 5)
    assert not m.unanswered_at_end
    assert m.closing_only_end
    assert m.unanswered_messages == 0
    assert m.responses == 1  # the closing burst is no response to time


def test_when_thanks_come_with_a_new_question_then_the_end_is_unanswered() -> None:
    convo = [
        cust("11-16 10:00", "怎么查话费"),
        staff("11-16 10:01", "发送CXHF到10086即可"),
        cust("11-16 10:02", "好的谢谢"),
        cust("11-16 10:03", "那流量怎么查？"),
    ]
    m = compute_metrics(convo, EVERY_DAY, 5)
    assert m.unanswered_at_end
    assert not m.closing_only_end
    assert m.unanswered_messages == 2
    assert m.unanswered_since == t("11-16 10:02")


def test_when_customer_ends_with_a_sticker_then_it_needs_no_reply() -> None:
    convo = [cust("11-16 10:00"), staff("11-16 10:01"), cust("11-16 10:02", "", msgtype="emotion")]
    assert not compute_metrics(convo, EVERY_DAY, 5).unanswered_at_end


def test_when_customer_ends_with_an_image_then_it_needs_a_reply() -> None:
    convo = [cust("11-16 10:00"), staff("11-16 10:01"), cust("11-16 10:02", "", msgtype="image")]
    assert compute_metrics(convo, EVERY_DAY, 5).unanswered_at_end


def test_when_closing_words_are_configured_then_they_replace_the_defaults() -> None:
    convo = [cust("11-16 10:00"), staff("11-16 10:01"), cust("11-16 10:02", "妥了")]
    assert compute_metrics(convo, EVERY_DAY, 5).unanswered_at_end
    assert not compute_metrics(convo, EVERY_DAY, 5, closing_words=["妥了"]).unanswered_at_end


# --------------------------------------------------------------------------- greeting, closing


def test_when_staff_greets_and_closes_then_both_are_present() -> None:
    convo = [
        cust("11-16 10:00"),
        staff("11-16 10:01", "您好，很高兴为您服务"),
        cust("11-16 10:02", "宽带多少钱"),
        staff("11-16 10:03", "100M每月50元"),
        staff("11-16 10:04", "还有其他问题随时找我，祝您生活愉快"),
    ]
    m = compute_metrics(convo, EVERY_DAY, 5)
    assert m.greeting and m.closing


def test_when_staff_only_thanks_at_the_start_then_there_is_no_closing() -> None:
    convo = [
        cust("11-16 10:00"),
        staff("11-16 10:01", "谢谢您的耐心等待"),
        *[staff(f"11-16 10:0{i}", f"第{i}步操作") for i in range(2, 6)],
    ]
    m = compute_metrics(convo, EVERY_DAY, 5)
    assert not m.greeting
    assert not m.closing


def test_when_an_ascii_greeting_is_inside_a_word_then_it_is_not_a_greeting() -> None:
    convo = [cust("11-16 10:00"), staff("11-16 10:01", "发送OTHELLO到10086")]
    assert not compute_metrics(convo, EVERY_DAY, 5, greeting_words=["hello"]).greeting
    convo = [cust("11-16 10:00"), staff("11-16 10:01", "Hello! 在的")]
    assert compute_metrics(convo, EVERY_DAY, 5, greeting_words=["hello"]).greeting


# --------------------------------------------------------------------------- classifier scores


def test_when_no_message_has_scores_then_negative_unanswered_is_unknown() -> None:
    m = compute_metrics([cust("11-16 10:00", "太差了")], EVERY_DAY, 5)
    assert m.negative_unanswered is None
    assert dict(m.scores_max) == {}


def test_when_the_last_negative_message_gets_no_reply_then_it_is_flagged() -> None:
    neg = {"customer_negative": 0.92}
    calm = {"customer_negative": 0.1}
    convo = [
        cust("11-16 10:00", "网速太慢了，我要投诉", scores=neg),
        staff("11-16 10:01", "非常抱歉，马上处理", scores={"staff_discourtesy": 0.05}),
        cust("11-16 10:30", "还是不行，我要销户", scores=neg),
        cust("11-16 10:31", "你们什么服务", scores=calm),
    ]
    m = compute_metrics(convo, EVERY_DAY, 5)
    assert m.negative_unanswered is True
    assert dict(m.scores_max) == {"customer_negative": 0.92, "staff_discourtesy": 0.05}

    answered = [*convo, staff("11-16 10:35", "已为您升级处理")]
    assert compute_metrics(answered, EVERY_DAY, 5).negative_unanswered is False
    all_calm = [cust("11-16 10:00", "你好", scores=calm)]
    assert compute_metrics(all_calm, EVERY_DAY, 5).negative_unanswered is False


def test_when_a_score_is_about_the_other_role_then_it_is_not_counted_in_the_max() -> None:
    convo = [
        cust("11-16 10:00", scores={"staff_discourtesy": 0.99, "customer_negative": 0.2}),
        staff("11-16 10:01", scores={"customer_negative": 0.99, "staff_discourtesy": 0.3}),
    ]
    m = compute_metrics(convo, EVERY_DAY, 5)
    assert dict(m.scores_max) == {"customer_negative": 0.2, "staff_discourtesy": 0.3}


# --------------------------------------------------------------------------- storage


def test_when_metrics_are_stored_then_json_round_trips() -> None:
    convo = [
        cust("11-16 20:58", scores={"customer_negative": 0.7}),
        staff("11-17 09:02"),
        cust("11-17 09:03", "还有个问题"),
    ]
    m = compute_metrics(convo, EVERY_DAY, 5)
    data = json.loads(json.dumps(m.to_json()))
    assert data["responses"] == 1
    assert data["first_response_business_seconds"] == 240
    assert data["unanswered_since"] == "2026-11-17T01:03:00+00:00"
    assert metrics_from_json(data) == m
    for name in METRIC_NAMES:
        assert name in data


def test_folding_drops_exactly_punctuation_spaces_controls_marks_and_modifiers() -> None:
    """The folding table decides each character by its Unicode category, as the rule says,
    for every character of the basic plane and the emoji planes, alone and in text."""
    import unicodedata

    from audit.quality.metrics import _fold

    def rule(ch: str) -> bool:  # kept?
        category = unicodedata.category(ch)
        return ch in "[]" or not (category[0] in "PZCM" or category == "Sk")

    for code in [*range(0x20000), *range(0x1F000, 0x1FB00)]:
        if 0xD800 <= code < 0xE000:
            continue
        ch = chr(code)
        folded = unicodedata.normalize("NFKC", ch).lower()
        expected = "".join(c for c in folded if rule(c))
        assert _fold(ch) == expected, hex(code)
    assert _fold("好的，谢谢 👍🏻！[表情]\u200b") == "好的谢谢👍[表情]"
