"""Recognizers, through the scanner with the default word lists: spans in the original text."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.scan.recognizers import BankCardRecognizer, ResidentIdRecognizer
from audit.scan.scanner import Finding, Scanner
from audit.store.models import Severity

DEFAULT_LISTS = Path(__file__).resolve().parents[2] / "wordlists"
SCANNER = Scanner.from_directory(DEFAULT_LISTS)


def spans(text: str, role: str | None = None) -> list[tuple[str, int, int, str]]:
    return [(f.rule, f.start, f.end, f.matched) for f in SCANNER.scan(text, role)]


# ------------------------------------------------------------------------------ phone


@pytest.mark.parametrize(
    ("text", "start", "end", "matched"),
    [
        ("我的电话13800138000", 4, 15, "13800138000"),
        ("电话 138 0013 8000 找我", 3, 16, "138 0013 8000"),
        ("１３８００１３８０００", 0, 11, "１３８００１３８０００"),
        ("打一三八零零一三八零零零", 1, 12, "一三八零零一三八零零零"),
        ("+86 138-0013-8000", 0, 17, "+86 138-0013-8000"),
        ("＋86 13800138000。", 0, 15, "＋86 13800138000"),
        ("8613800138000", 0, 13, "8613800138000"),
        ("1 3 8 0 0 1 3 8 0 0 0", 0, 21, "1 3 8 0 0 1 3 8 0 0 0"),
        ("①③⑧⓪⓪①③⑧⓪⓪⓪", 0, 11, "①③⑧⓪⓪①③⑧⓪⓪⓪"),
        ("13800138000 10086", 0, 11, "13800138000"),
    ],
)
def test_when_mobile_number_is_written_any_way_then_original_span_is_found(
    text: str, start: int, end: int, matched: str
) -> None:
    assert spans(text) == [("privacy.phone", start, end, matched)]


def test_when_phone_is_found_then_finding_explains_itself() -> None:
    assert SCANNER.scan("+86 138-0013-8000") == [
        Finding(
            category="privacy",
            rule="privacy.phone",
            severity=Severity.MEDIUM,
            score=0.9,
            start=0,
            end=17,
            matched="+86 138-0013-8000",
            explanation="mainland mobile number (pattern mobile_cn_86) after normalization: "
            "spacing removed, symbols removed",
            technique="separators",
        )
    ]


@pytest.mark.parametrize(
    "text",
    [
        "1380013800010086",  # one run of 16 digits, no break: not a phone number
        "138001380001",  # 12 digits
        "12800138000",  # no mobile prefix 12
        "客服热线10086，宽带10000，联通10010",
        "尾号8000的卡",
        "您的订单号13800138000已发货",
        "单号：138 0013 8000",
        "余额13800138000元",
        "一下",
        "等一下再打",
    ],
)
def test_when_number_is_not_a_phone_number_then_nothing_is_found(text: str) -> None:
    assert spans(text) == []


# ------------------------------------------------------------------------ resident ID


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("身份证11010519491231002X", 3, 21),
        ("身份证号 110105 19491231 002x", 5, 25),
        ("320106198507160041", 0, 18),
        ("４４０３０４１９９００３０７１２３Ｘ", 0, 18),
    ],
)
def test_when_resident_id_checksum_holds_then_it_is_found(text: str, start: int, end: int) -> None:
    assert spans(text) == [("privacy.resident_id", start, end, text[start:end])]


@pytest.mark.parametrize(
    "text",
    [
        "身份证110105194912310021",  # check character should be X
        "320106198507160042",
        "320106198507320041",  # day 32
    ],
)
def test_when_resident_id_checksum_fails_then_nothing_is_found(text: str) -> None:
    assert spans(text) == []


def test_when_resident_id_is_validated_then_gb11643_decides() -> None:
    recognizer = ResidentIdRecognizer()

    assert recognizer.validate("11010519491231002x") is True
    assert recognizer.validate("110105194912310021") is False


# ------------------------------------------------------------------------- bank card


@pytest.mark.parametrize(
    ("text", "start", "end", "score"),
    [
        ("卡号6222021234567890128", 2, 21, 1.0),
        ("卡号 4000 0000 0000 0002 收到", 3, 22, 1.0),
        ("6217 0000 0000 0000 004", 0, 23, 1.0),
        ("300000000000000004", 0, 18, 0.8),  # valid Luhn, no UnionPay/Visa/Master prefix
    ],
)
def test_when_card_number_passes_luhn_then_it_is_found(
    text: str, start: int, end: int, score: float
) -> None:
    found = SCANNER.scan(text)

    assert [(f.rule, f.start, f.end, f.matched, f.score) for f in found] == [
        ("privacy.bank_card", start, end, text[start:end], score)
    ]


@pytest.mark.parametrize("text", ["卡号6222021234567890127", "4000 0000 0000 0003"])
def test_when_card_number_fails_luhn_then_nothing_is_found(text: str) -> None:
    assert spans(text) == []


def test_when_luhn_is_checked_then_known_test_numbers_behave() -> None:
    recognizer = BankCardRecognizer()

    assert recognizer.validate("4111111111111111") is True
    assert recognizer.validate("4111111111111112") is False


def test_when_card_follows_order_number_words_then_nothing_is_found() -> None:
    assert spans("订单号6222021234567890128") == []


# ----------------------------------------------------------------------------- email


def test_when_email_is_written_then_original_span_is_found() -> None:
    assert SCANNER.scan("发到 zhang.san+vip@mail.example.com 吧") == [
        Finding(
            category="privacy",
            rule="privacy.email",
            severity=Severity.MEDIUM,
            score=0.95,
            start=3,
            end=33,
            matched="zhang.san+vip@mail.example.com",
            explanation="email address (pattern email)",
            technique="pattern",
        )
    ]


@pytest.mark.parametrize("text", ["@张三 你好", "a@b", "价格@99元"])
def test_when_at_sign_is_not_an_email_then_nothing_is_found(text: str) -> None:
    assert spans(text) == []


# ------------------------------------------------------------------ QQ and WeChat ids


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("QQ：123456789", 3, 12),
        ("我的扣扣是 8765432", 6, 13),
        ("企鹅 1234567890", 3, 13),
        ("qq号 98765", 4, 9),
    ],
)
def test_when_qq_number_follows_context_then_it_is_a_contact_id(
    text: str, start: int, end: int
) -> None:
    assert [
        (f.category, f.rule, f.severity, f.start, f.end, f.matched)
        for f in SCANNER.scan(text, "customer")
    ] == [("diversion", "diversion.contact_id", Severity.HIGH, start, end, text[start:end])]


@pytest.mark.parametrize(
    "text", ["编号123456789", "123456789", "QQ音乐会员 一个月 15 元后续 12345678"]
)
def test_when_digits_lack_qq_context_then_nothing_is_found(text: str) -> None:
    assert spans(text) == []


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("微信号: abc_123", "abc_123"),
        ("vx：wx-2024a 备注门店", "wx-2024a"),
        ("我的威信是Zhang_San88", "Zhang_San88"),
        ("微 信 号（ a1b2c3d ）", "a1b2c3d"),
        ("微信\u200b\u200btony_811", "tony_811"),  # zero-width spaces between
        ("加我vx\ufeff：\u2060wx-2024a", "wx-2024a"),
        ("卫星：lin_2024，有事找我", "lin_2024"),  # 微信 said with homophones
        ("薇芯=zhao-88", "zhao-88"),
    ],
)
def test_when_wechat_id_follows_context_then_it_is_a_contact_id(text: str, matched: str) -> None:
    found = [f for f in SCANNER.scan(text, "customer") if f.rule == "diversion.contact_id"]

    assert [(f.matched, f.start) for f in found] == [(matched, text.index(matched))]


@pytest.mark.parametrize(
    "text",
    [
        "微信 account",
        "企业微信号: abc_123",
        "微信支付 ok_pay",
        "邮箱 abc_123@qq.com 微信",
        "卫星电视：cctv_5 频道",
    ],
)
def test_when_no_wechat_id_follows_context_then_nothing_is_found(text: str) -> None:
    assert [f for f in SCANNER.scan(text, "customer") if f.rule == "diversion.contact_id"] == []


# ------------------------------------------------------------- gaps closed in v0.2


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("电话0086 138 0013 8000", "0086 138 0013 8000"),
        ("电话００８６１３８００１３８０００", "００８６１３８００１３８０００"),
        ("+86-138-0013-8000", "+86-138-0013-8000"),
    ],
)
def test_when_mobile_has_an_international_prefix_then_it_is_in_the_span(
    text: str, matched: str
) -> None:
    assert [(f.rule, f.matched) for f in SCANNER.scan(text)] == [("privacy.phone", matched)]


def test_when_wechat_id_is_written_full_width_then_it_is_found() -> None:
    findings = SCANNER.scan("我微信号：ｗｘ＿ａｂｃ１２３", "staff")

    assert ("diversion.contact_id", "ｗｘ＿ａｂｃ１２３") in [(f.rule, f.matched) for f in findings]


@pytest.mark.parametrize(
    "text",
    [
        "订单号20241116008812",
        "尾号8000的卡",
        "话费128.50元",
        "2024年11月16日办理",
        "客服热线10086",
        "宽带报修10000",
        "400-820-8820",
        "快递单号SF1234567890123",
    ],
)
def test_when_number_is_an_order_amount_date_hotline_or_tail_then_it_is_not_a_finding(
    text: str,
) -> None:
    assert [f for f in SCANNER.scan(text, "staff") if f.category == "privacy"] == []
