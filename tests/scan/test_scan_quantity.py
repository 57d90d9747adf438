"""A term that is a number (the hotline 12300) is not found in an amount or a longer number."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.scan.normalize import FOLD
from audit.scan.quantity import quantity_reason
from audit.scan.scanner import Scanner

LIST = """\
12300 | high | customer | 一二三零零
打12315 | high | customer | 12315投诉
315晚会 | medium | customer
"""


@pytest.fixture(scope="module")
def scanner(tmp_path_factory: pytest.TempPathFactory) -> Scanner:
    directory: Path = tmp_path_factory.mktemp("lists")
    (directory / "complaint.txt").write_text(LIST, encoding="utf-8")
    return Scanner.from_directory(directory, categories=())


def matched(scanner: Scanner, text: str) -> list[str]:
    return [f.matched for f in scanner.scan(text, "customer")]


@pytest.mark.parametrize(
    "text",
    [
        "价格123.00元",  # the dot is a decimal point, not a separator
        "一共12300元",
        "一共12300 元",
        "套餐费¥12300",
        "￥ 12300",
        "人民币12300",
        "流量用了12300M",
        "剩余12300ＭＢ",
        "通话12300分钟",
        "积分还有12300积分",
        "涨了12300%",
        "预算12300万",
        "账单12,300",  # thousands grouping
        "余额12300.50",
        "0.12300",
        "订单号1230045",  # digits continue it
        "单号9912300",
        "给你打12315元",  # the number ending a term is an amount too
        "转了12315块",
    ],
)
def test_when_the_number_is_an_amount_or_part_of_another_then_it_is_not_found(
    scanner: Scanner, text: str
) -> None:
    assert matched(scanner, text) == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("我要打12300", ["12300"]),
        ("12300", ["12300"]),
        ("打1-2-3-0-0", ["1-2-3-0-0"]),  # separators typed to dodge the list
        ("打1 2 3 0 0", ["1 2 3 0 0"]),
        ("打1.2.3.0.0", ["1.2.3.0.0"]),
        ("打1\u200b2300", ["1\u200b2300"]),
        ("我要打１２３００", ["１２３００"]),
        ("打一二三零零", ["一二三零零"]),
        ("我打了10086和12300分别说了", ["12300"]),  # 分别 is no unit
        ("打12300，10086也打", ["12300"]),  # a comma between two numbers
        ("12300人工服务", ["12300"]),
        ("我要打12315", ["打12315"]),
        ("12315投诉你们", ["12315投诉"]),
        ("上3.15晚会", ["3.15晚会"]),  # a dot inside a longer term is no decimal point
    ],
)
def test_when_the_number_stands_alone_then_it_is_found(
    scanner: Scanner, text: str, found: list[str]
) -> None:
    assert matched(scanner, text) == found


@pytest.mark.parametrize(
    ("text", "number", "reason"),
    [
        ("123.00", "123.00", "a decimal number"),
        ("12,300", "12,300", "a number grouped in thousands"),
        ("12300.5", "12300", "part of a decimal number"),
        ("1230099", "12300", "part of a longer number"),
        ("¥12300", "12300", "an amount of money"),
        ("12300元", "12300", "an amount or a quantity"),
        ("1-2-3-0-0", "1-2-3-0-0", ""),
        ("123,00", "123,00", ""),
    ],
)
def test_when_a_number_is_looked_at_then_the_reason_is_named(
    text: str, number: str, reason: str
) -> None:
    start = text.index(number)
    assert quantity_reason(text, start, start + len(number), FOLD) == reason
