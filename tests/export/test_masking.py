"""The masker: what it hides, how tokens stay consistent, and how spans follow."""

from __future__ import annotations

import re

import pytest

from audit.export.masking import Masker, mask_name, masked_excerpt, masker_for, stored_masker
from audit.store.access import Principal
from audit.store.models import Role


@pytest.mark.parametrize(
    ("text", "raw", "token"),
    [
        ("电话13800138000", "13800138000", "[手机号-"),
        ("电话 138 0013 8000 谢谢", "138 0013 8000", "[手机号-"),
        ("电话一三八零零一三八零零零", "一三八零零一三八零零零", "[手机号-"),
        ("电话１３８００１３８０００", "１３８００１３８０００", "[手机号-"),
        ("身份证110101199003074514", "110101199003074514", "[身份证号-"),
        ("卡号6222021234567890128", "6222021234567890128", "[银行卡号-"),
        ("邮箱 wang.xm@example.com 收", "wang.xm@example.com", "[邮箱-"),
        ("加我微信 zw_8888", "zw_8888", "[微信号-"),
        (
            "尾号13800138000的那个号",
            "13800138000",
            "[号码-",
        ),  # declined by the scanner, still masked
        ("我叫李四，办卡", "李四", "[姓名-"),
    ],
)
def test_when_personal_data_then_masked(text: str, raw: str, token: str) -> None:
    masked = Masker().text(text)
    assert raw not in masked
    assert re.search(re.escape(token) + r"[A-Z2-7]{8}\]", masked), masked


def test_when_same_value_twice_then_same_token() -> None:
    m = Masker()
    phone = m.text("13800138000")
    assert phone == m.text("打13800138000")[1:] and re.fullmatch(r"\[手机号-[A-Z2-7]{8}\]", phone)
    assert m.text("13912345678") != phone
    assert (
        m.person("customer", 7, "王小明")
        == m.person("customer", 7, "王小明")
        != m.person("customer", 8, "王小明")
    )
    assert m.person("staff", 7, "张伟") == "员工1" and m.person("staff", 9, "李娜") == "员工2"
    assert Masker().text("13800138000") != phone  # another export, another key: not linkable


def test_when_names_given_then_names_and_titles_masked() -> None:
    m = Masker()
    names = {"王小明": m.person("customer", 1, "王小明"), "张伟": m.person("staff", 2, "张伟")}
    text = m.text("王小明您好，我是张伟。王先生请稍等", names)
    assert text == f"[{names['王小明']}]您好，我是[员工1]。[姓1]先生请稍等"


def test_when_masked_then_spans_follow_the_text() -> None:
    masked = Masker().mask("我的电话13800138000，加我微信")
    start, end = masked.span(4, 15)
    assert re.fullmatch(r"\[手机号-[A-Z2-7]{8}\]", masked.text[start:end])
    start, end = masked.span(16, 20)
    assert masked.text[start:end] == "加我微信"


def test_when_disabled_then_unchanged() -> None:
    m = Masker(enabled=False)
    assert m.text("13800138000") == "13800138000"
    assert m.person("staff", 1, "张伟") == "张伟"


def test_mask_name() -> None:
    assert mask_name("张伟") == "张*" and mask_name("欧阳娜娜") == "欧***" and mask_name("") == ""


# --------------------------------------------------------------------------- forms people type


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("邮箱 wang.xm＠example.com 收", ["wang.xm＠example.com", "wang.xm"]),
        ("前七位1380013，后四位8000", ["1380013", "8000"]),
        ("身份证前六位110101，后面是199003074514", ["110101", "199003074514"]),
        ("有事找我 tony-811 就行", ["tony-811"]),
        ("wxid_a1b2c3 加一下", ["wxid_a1b2c3"]),
        ("随时找我 zhang2024x", ["zhang2024x"]),
        ("电话138OO138000", ["138OO138000"]),
        ("邮箱 wang.xm(at)example.com", ["wang.xm(at)example.com", "wang.xm"]),
        ("邮箱 wangxm艾特qq.com", ["wangxm艾特qq.com", "wangxm"]),
    ],
)
def test_when_personal_data_is_written_as_people_type_it_then_masked(
    text: str, raw: list[str]
) -> None:
    for masker in (Masker(), stored_masker(), masker_for(_user(Role.SUPERVISOR)), masker_for(None)):
        masked = masker.text(text)
        assert not [r for r in raw if r in masked], masked
        assert "[" in masked


@pytest.mark.parametrize(
    "text",
    [
        "iPhone15 和 Mate60 都有货，打10086问",
        "活动时间20251117至20251130",
        "套餐 5G畅享 每月128元",
        "2024年办的卡",
    ],
)
def test_when_nothing_personal_then_nothing_masked(text: str) -> None:
    assert stored_masker().text(text) == text


def test_when_stored_then_tokens_are_bare_labels() -> None:
    assert stored_masker().text("电话13800138000，身份证110101199003074514") == (
        "电话[手机号]，身份证[身份证号]"
    )


def _user(role: Role) -> Principal:
    return Principal(user_id=1, username="u", role=role, unit_ids=None)


def test_the_role_decides_what_is_shown_unmasked() -> None:
    text = "电话13800138000"
    admin, compliance = masker_for(_user(Role.ADMIN)), masker_for(_user(Role.COMPLIANCE))
    assert admin.text(text) == compliance.text(text) == text
    for role in (Role.SUPERVISOR, Role.ANALYST, Role.VIEWER):
        assert masker_for(_user(role)).text(text) == "电话[手机号]", role
    # nobody in particular (a digest) and the operator, who has no name to account for it
    for who in (None, Principal.operator("cli:root")):
        assert masker_for(who).text(text) == "电话[手机号]", who


def test_an_excerpt_is_cut_around_the_finding_after_masking() -> None:
    text = "前面" * 20 + "我的电话13800138000请回电" + "后面" * 20
    start = text.index("1380")
    excerpt = masked_excerpt(stored_masker(), text, start, start + 11, context=6)
    assert excerpt == "…前面我的电话[手机号]请回电后面后…"
