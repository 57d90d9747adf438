"""Decrypted messages: one sample per msgtype of the format table, and what is refused.

Samples are in ``tests/data/messages/*.json``, written after ``wecom-archive-format.md`` §4.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from audit.archive.messages import (
    KNOWN_MSGTYPES,
    MessageFormatError,
    ParsedMessage,
    parse_message,
    parse_plaintext,
    sender_kind,
)
from audit.store.models import SenderKind

DATA = Path(__file__).resolve().parent.parent / "data" / "messages"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return data


# sample file -> (msgtype, extracted text)
SAMPLES: dict[str, tuple[str, str]] = {
    "text": ("text", "您好，这款理财产品保本保息，年化收益8%。"),
    "markdown": ("markdown", "**温馨提示**：请勿向他人透露验证码。"),
    "link": (
        "link",
        "邀请你加入群聊\n技术支持群，进入可查看详情\n"
        "https://work.weixin.qq.com/wework_admin/external_room/join/exceed?vcode=xxx",
    ),
    "weapp": ("weapp", "开始聊天前请仔细阅读服务须知事项\n客户需同意存档聊天记录\n服务须知"),
    "card": ("card", "北京某某科技有限公司\nlisi"),
    "location": ("location", "望京科技园\n北京市朝阳区望京东路1号"),
    "file": ("file", "理财合同-最终版.docx"),
    "image": ("image", ""),
    "voice": ("voice", ""),
    "video": ("video", ""),
    "emotion": ("emotion", ""),
    "revoke": ("revoke", ""),
    "agree": ("agree", ""),
    "disagree": ("disagree", ""),
    "chatrecord": (
        "chatrecord",
        "张伟和客户的聊天记录\n转给你看看，收益稳赚不赔\n内部价目表.xlsx\n限时优惠\n今日下单返现\n"
        "https://example.com/promo",
    ),
    "mixed": ("mixed", "加我私人微信 wx_zhang888\n\n转账更方便"),
    "todo": ("todo", "回访客户\n周五前确认退款金额"),
    "vote": ("vote", "下次活动时间\n周六上午\n周日下午"),
    "vote_nested": ("vote", "年会地点\n三亚\n丽江"),
    "collect": ("collect", "VIP客户群\n客户信息登记\n身份证号\n银行卡号\n到访日期"),
    "redpacket": ("redpacket", "恭喜发财，大吉大利"),
    "external_redpacket": ("external_redpacket", "感谢支持，返现红包"),
    "external_redpacket_own_key": ("external_redpacket", "拼手气红包"),
    "meeting": ("meeting", "产品说明会\n请带上风险测评问卷\n腾讯会议"),
    "docmsg": ("docmsg", "客户报价单"),
    "news": ("news", "理财课堂第一期\n如何识别非法集资\n理财课堂第二期"),
    "calendar": ("calendar", "签约\n北京市海淀区中关村大街1号\n携带身份证原件"),
    "meeting_voice_call": ("meeting_voice_call", ""),
    "voip_doc_share": ("voip_doc_share", "欢迎使用微盘.pdf.pdf"),
    "sphfeed": ("sphfeed", "理财小课堂\n三分钟看懂基金定投"),
    "voiptext": ("voiptext", ""),
    "qydiskfile": ("qydiskfile", "客户名单2024.xlsx"),
    "chatrecord_nested": (
        "chatrecord",
        "聊天记录\n图文第一段\n转发的群聊\n内层消息\n最深一层\n这不是JSON {\n门店\n上海市徐汇区",
    ),
}

# The msgtypes of the table in wecom-archive-format.md §4, spelled out independently.
TABLE_MSGTYPES = {
    "text", "markdown", "link", "weapp", "card", "location", "file", "image", "voice", "video",
    "emotion", "revoke", "agree", "disagree", "chatrecord", "mixed", "todo", "vote", "collect",
    "redpacket", "external_redpacket", "meeting", "docmsg", "news", "calendar",
    "meeting_voice_call", "voip_doc_share", "sphfeed", "voiptext", "qydiskfile",
}  # fmt: skip


@pytest.mark.parametrize(("sample", "msgtype", "text"), [(k, *v) for k, v in SAMPLES.items()])
def test_when_sample_of_msgtype_parsed_then_text_is_extracted(
    sample: str, msgtype: str, text: str
) -> None:
    raw = (DATA / f"{sample}.json").read_bytes()

    msg = parse_plaintext(raw)

    assert msg.msgtype == msgtype
    assert msg.known_type is True
    assert msg.text == text
    assert parse_message(json.loads(raw)) == msg


def test_when_table_listed_then_known_msgtypes_match_and_each_has_a_sample() -> None:
    assert KNOWN_MSGTYPES == TABLE_MSGTYPES
    assert {msgtype for msgtype, _ in SAMPLES.values()} == TABLE_MSGTYPES


def test_when_send_parsed_then_common_fields_are_typed() -> None:
    plain = load("mixed")

    msg = parse_message(plain)

    assert msg == ParsedMessage(
        msgid=plain["msgid"],
        action="send",
        msgtype="mixed",
        sender="zhangwei",
        tolist=("wmErxtDgAAjK3fQp8Vb2sN4xHq0cL1Ra", "lisi"),
        roomid="wrErxtDgAAvY7kW3mZ0pQ9sTnB2hFc1A",
        msgtime_ms=plain["msgtime"],
        text="加我私人微信 wx_zhang888\n\n转账更方便",
        recall_of=None,
        known_type=True,
        raw=plain,
    )
    assert msg.raw is plain
    assert hash(msg) == hash(parse_message(copy.deepcopy(plain)))


def test_when_switch_record_then_user_and_time_are_read() -> None:
    plain = load("switch")

    msg = parse_message(plain)

    assert msg == ParsedMessage(
        msgid="125289002219525886280",
        action="switch",
        msgtype="switch",
        sender="XuJinSheng",
        tolist=(),
        roomid="",
        msgtime_ms=1554119421840,
        text="",
        recall_of=None,
        known_type=True,
        raw=plain,
    )


def test_when_recall_then_recall_of_is_the_pre_msgid() -> None:
    msg = parse_message(load("revoke"))

    assert (msg.action, msg.msgtype, msg.text) == ("recall", "revoke", "")
    assert msg.recall_of == "14822339130656386894_1603875609"


def test_when_recall_lacks_revoke_payload_then_recall_of_is_none() -> None:
    plain = load("revoke")
    del plain["revoke"]

    assert parse_message(plain).recall_of is None


def test_when_send_is_not_a_recall_then_recall_of_is_none() -> None:
    assert parse_message(load("text")).recall_of is None


def test_when_msgtype_unknown_then_kept_without_text() -> None:
    plain = load("unknown_type")

    msg = parse_message(plain)

    assert (msg.msgtype, msg.known_type, msg.text) == ("livestream_share", False, "")
    assert msg.raw["livestream_share"]["title"] == "直播：今晚八点"


def test_when_vote_has_neither_form_then_no_text() -> None:
    plain = load("vote")
    for key in ("votetitle", "voteitem"):
        del plain[key]

    assert parse_message(plain).text == ""


def _with(sample: str, path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    plain = load(sample)
    target: Any = plain
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return plain


@pytest.mark.parametrize(
    ("sample", "path", "value", "text"),
    [
        ("text", ("text", "content"), 13800138000, "13800138000"),
        ("text", ("text", "content"), None, ""),
        ("text", ("text", "content"), True, ""),
        ("text", ("text", "content"), {"nested": "x"}, ""),
        ("text", ("text",), "not an object", ""),
        ("text", ("text",), None, ""),
        (
            "link",
            ("link", "title"),
            ["a"],
            "技术支持群，进入可查看详情\n"
            "https://work.weixin.qq.com/wework_admin/external_room/join/exceed?vcode=xxx",
        ),
        ("text", ("text", "content"), "   ", ""),
        ("news", ("info", "item"), {"title": "x"}, ""),
        ("news", ("info", "item", 0), "not an item", "理财课堂第二期"),
        ("vote", ("voteitem",), "周六上午", "下次活动时间"),
        ("vote", ("voteitem",), ["周六上午", None, 3], "下次活动时间\n周六上午\n3"),
        ("collect", ("collect", "details"), None, "VIP客户群\n客户信息登记"),
        ("chatrecord", ("chatrecord", "item"), "x", "张伟和客户的聊天记录"),
        (
            "chatrecord",
            ("chatrecord", "item", 0, "content"),
            {"content": "已是对象"},
            "张伟和客户的聊天记录\n已是对象\n内部价目表.xlsx\n限时优惠\n今日下单返现\n"
            "https://example.com/promo",
        ),
        (
            "chatrecord",
            ("chatrecord", "item", 0, "content"),
            42,
            "张伟和客户的聊天记录\n42\n内部价目表.xlsx\n限时优惠\n今日下单返现\n"
            "https://example.com/promo",
        ),
        (
            "chatrecord",
            ("chatrecord", "item", 0, "content"),
            '"一个JSON字符串"',
            '张伟和客户的聊天记录\n"一个JSON字符串"\n内部价目表.xlsx\n限时优惠\n今日下单返现\n'
            "https://example.com/promo",
        ),
        (
            "chatrecord",
            ("chatrecord", "item", 0, "type"),
            None,
            "张伟和客户的聊天记录\n内部价目表.xlsx\n限时优惠\n今日下单返现\nhttps://example.com/promo",
        ),
        (
            "chatrecord",
            ("chatrecord", "item", 0, "type"),
            "ChatRecordSomethingNew",
            "张伟和客户的聊天记录\n内部价目表.xlsx\n限时优惠\n今日下单返现\nhttps://example.com/promo",
        ),
        ("mixed", ("mixed", "item", 0, "type"), "TEXT", "加我私人微信 wx_zhang888\n\n转账更方便"),
        (
            "mixed",
            ("mixed", "item", 0, "content"),
            "纯文本，不是JSON",
            "纯文本，不是JSON\n转账更方便",
        ),
        ("mixed", ("mixed",), [], ""),
    ],
)
def test_when_payload_field_has_wrong_type_then_text_degrades(
    sample: str, path: tuple[str | int, ...], value: Any, text: str
) -> None:
    msg = parse_message(_with(sample, path, value))

    assert msg.known_type is True
    assert msg.text == text


def test_when_nesting_is_deeper_than_the_limit_then_inner_text_is_still_scanned() -> None:
    content = json.dumps({"content": "藏在最深处"}, ensure_ascii=False)
    item_type = "ChatRecordText"
    for _ in range(12):  # escaping doubles per level, so real nesting is shallow
        payload = {"title": "", "item": [{"type": item_type, "content": content}]}
        content = json.dumps(payload, ensure_ascii=False)
        item_type = "chatrecord"
    plain = _with("chatrecord", ("chatrecord",), json.loads(content))

    text = parse_message(plain).text

    assert "藏在最深处" in text


def test_when_plaintext_has_raw_control_characters_then_they_are_kept() -> None:
    plain = load("text")
    body = json.dumps(plain, ensure_ascii=False).replace(
        "您好，", "您好，\n\t\x01\x1f"
    )  # raw, unescaped: the SDK's plaintext does this
    assert "\x01" in body

    msg = parse_plaintext(body.encode("utf-8"))

    assert msg.text == "您好，\n\t\x01\x1f这款理财产品保本保息，年化收益8%。"


def test_when_plaintext_is_str_or_bytes_then_same_result() -> None:
    raw = (DATA / "text.json").read_bytes()

    assert parse_plaintext(raw) == parse_plaintext(raw.decode("utf-8"))


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b'{"msgid": "\xff\xfe"}', "not valid UTF-8"),
        (random.Random(0).randbytes(256), "not valid UTF-8"),
        (b"", "not JSON"),
        (b"not json at all", "not JSON"),
        ('{"msgid": "a", ', "not JSON"),
        ("[" * 100_000, "not JSON"),
        (b'[{"msgid": "a"}]', "must be a JSON object, not list"),
        (b'"a string"', "must be a JSON object, not str"),
        (b"null", "must be a JSON object, not NoneType"),
    ],
)
def test_when_plaintext_is_garbage_then_message_format_error(
    data: bytes | str, problem: str
) -> None:
    with pytest.raises(MessageFormatError, match=problem):
        parse_plaintext(data)


@pytest.mark.parametrize(
    ("sample", "field"),
    [
        ("text", "msgid"),
        ("text", "action"),
        ("text", "from"),
        ("text", "msgtime"),
        ("text", "msgtype"),
        ("revoke", "msgtype"),
        ("revoke", "from"),
        ("switch", "msgid"),
        ("switch", "action"),
        ("switch", "time"),
        ("switch", "user"),
    ],
)
def test_when_required_field_missing_then_error_names_it(sample: str, field: str) -> None:
    plain = load(sample)
    del plain[field]

    with pytest.raises(MessageFormatError, match=f"missing field '{field}'") as info:
        parse_plaintext(json.dumps(plain))

    assert info.value.field == field


@pytest.mark.parametrize(
    ("sample", "field", "value", "problem"),
    [
        ("text", "msgid", 123, "must be a string"),
        ("text", "msgid", "", "is empty"),
        ("text", "action", None, "must be a string"),
        ("text", "action", "forward", "unknown value 'forward'"),
        ("text", "from", None, "must be a string"),
        ("text", "msgtype", 7, "must be a string"),
        ("text", "msgtime", "abc", "non-negative integer"),
        ("text", "msgtime", "", "non-negative integer"),
        ("text", "msgtime", "１２３", "non-negative integer"),
        ("text", "msgtime", True, "non-negative integer"),
        ("text", "msgtime", 1.5e12, "non-negative integer"),
        ("text", "msgtime", -1, "non-negative integer"),
        ("text", "msgtime", None, "non-negative integer"),
        ("switch", "time", "yesterday", "non-negative integer"),
        ("switch", "user", ["XuJinSheng"], "must be a string"),
    ],
)
def test_when_required_field_has_wrong_type_then_error_names_it(
    sample: str, field: str, value: Any, problem: str
) -> None:
    plain = _with(sample, (field,), value)

    with pytest.raises(MessageFormatError, match=problem) as info:
        parse_message(plain)

    assert info.value.field == field
    assert repr(field) in str(info.value)


def test_when_not_a_dict_then_parse_message_refuses() -> None:
    with pytest.raises(MessageFormatError, match="must be a JSON object, not list"):
        parse_message([])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sample", "field", "value", "expected"),
    [
        ("text", "msgtime", "1603875611000", 1603875611000),
        ("text", "msgtime", " 1603875611000 ", 1603875611000),
        ("text", "msgtime", 0, 0),
        ("switch", "time", "1554119421840", 1554119421840),
    ],
)
def test_when_time_is_numeric_string_then_it_is_an_int(
    sample: str, field: str, value: Any, expected: int
) -> None:
    assert parse_message(_with(sample, (field,), value)).msgtime_ms == expected


@pytest.mark.parametrize(
    ("tolist", "expected"),
    [
        (["a", "b"], ("a", "b")),
        ([], ()),
        (None, ()),
        ("a", ()),
        (["a", 5, None], ("a",)),
    ],
)
def test_when_tolist_is_odd_then_it_degrades(tolist: Any, expected: tuple[str, ...]) -> None:
    assert parse_message(_with("text", ("tolist",), tolist)).tolist == expected


def test_when_tolist_and_roomid_missing_then_empty() -> None:
    plain = load("text")
    del plain["tolist"]
    del plain["roomid"]

    msg = parse_message(plain)

    assert (msg.tolist, msg.roomid) == ((), "")


@pytest.mark.parametrize(
    ("userid", "kind"),
    [
        ("wmErxtDgAAjK3fQp8Vb2sN4xHq0cL1Ra", SenderKind.CUSTOMER),
        ("wo513ae2f4b66d6f4d2eb4b26fa91ceabc", SenderKind.CUSTOMER),
        ("wm-Erxt_DgAA", SenderKind.CUSTOMER),
        ("wbErxtDgAAtVhAKkHY0xyCzDuYfGBjvg", SenderKind.ROBOT),
        ("", SenderKind.SYSTEM),
        ("zhangwei", SenderKind.STAFF),
        ("XuJinSheng", SenderKind.STAFF),
        ("WmUpperCaseStaff", SenderKind.STAFF),
        ("w", SenderKind.STAFF),
        ("13800138000", SenderKind.STAFF),
    ],
)
def test_when_userid_has_prefix_then_sender_kind_follows(userid: str, kind: SenderKind) -> None:
    assert sender_kind(userid) is kind
