"""The WeCom HTTP client against a local server speaking WeCom's JSON (``FakeWeCom``).

The fake checks what the real service enforces (tokens, at most 100 ids per call, the
misspelled ``exteranalopenid``) and records every request so tests can assert batch sizes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fake_wecom import CORPID, SECRET, FakeClock, FakeWeCom, client_for, serve

from audit.archive.wecom_api import WeComApiError, redact


@pytest.fixture
def wecom() -> Iterator[FakeWeCom]:
    with serve() as fake:
        fake.tag_groups = [
            {
                "group_id": "etGROUP1",
                "group_name": "客户等级",
                "order": 1,
                "create_time": 1700000000,
                "tag": [
                    {"id": "etTAG1", "name": "金卡", "order": 1, "create_time": 1700000000},
                    {"id": "etTAG2", "name": "银卡", "order": 2, "create_time": 1700000000},
                ],
            }
        ]
        yield fake


def _contact(i: int) -> dict[str, Any]:
    return {
        "external_userid": f"wm{i:06d}abcdefABCDEF-_x",
        "name": f"客户{i}",
        "type": 1,
        "gender": i % 3,
    }


# --------------------------------------------------------------------------- token


def test_when_two_calls_then_one_token_fetched(wecom: FakeWeCom) -> None:
    client = client_for(wecom)
    client.get_corp_tag_list()
    client.get_corp_tag_list()
    assert wecom.issued == 1
    assert len(wecom.calls("externalcontact/get_corp_tag_list")) == 2


def test_when_token_lifetime_passes_then_new_token_before_calling(wecom: FakeWeCom) -> None:
    clock = FakeClock()
    client = client_for(wecom, clock)
    client.get_corp_tag_list()
    clock.t += 7200 - 300 - 1  # still inside expires_in minus the margin
    client.get_corp_tag_list()
    assert wecom.issued == 1
    clock.t += 2
    client.get_corp_tag_list()
    assert wecom.issued == 2
    assert not [s for s in wecom.seen if s.body and "errcode" in s.body]


def test_when_server_says_expired_once_then_refreshed_and_retried(wecom: FakeWeCom) -> None:
    client = client_for(wecom)
    client.get_corp_tag_list()
    wecom.expire_tokens()  # the server forgets the token: answers 42001
    groups = client.get_corp_tag_list()
    assert [g.name for g in groups] == ["客户等级"]
    assert wecom.issued == 2
    api = "externalcontact/get_corp_tag_list"
    tokens = [s.query["access_token"] for s in wecom.calls(api)]
    assert tokens == ["TOKEN0001xyz", "TOKEN0001xyz", "TOKEN0002xyz"]


def test_when_token_refused_after_refresh_then_error_not_loop(wecom: FakeWeCom) -> None:
    client = client_for(wecom)
    wecom.script["externalcontact/get_corp_tag_list"] = [
        {"errcode": 40014, "errmsg": "invalid access_token"},
        {"errcode": 40014, "errmsg": "invalid access_token"},
    ]
    with pytest.raises(WeComApiError) as err:
        client.get_corp_tag_list()
    assert err.value.errcode == 40014
    assert wecom.issued == 2


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("errcode", "words"),
    [
        (60011, "visible range"),
        (48002, "no permission for this API"),
        (301060, "at most 100"),
        (84061, "no follow relationship"),
        (12345, ""),
    ],
)
def test_when_api_fails_then_error_names_api_code_and_hint(
    wecom: FakeWeCom, errcode: int, words: str
) -> None:
    wecom.script["externalcontact/get_corp_tag_list"] = [{"errcode": errcode, "errmsg": "nope"}]
    with pytest.raises(WeComApiError) as err:
        client_for(wecom).get_corp_tag_list()
    text = str(err.value)
    assert err.value.errcode == errcode and err.value.api == "externalcontact/get_corp_tag_list"
    assert f"errcode {errcode} (nope)" in text and words in text


@pytest.mark.parametrize(
    ("corpid", "secret", "errcode", "words"),
    [
        ("wwBADBADBADBADBAD", SECRET, 40013, "invalid corpid"),
        (CORPID, SECRET + "-wrong", 40001, "invalid secret"),
    ],
)
def test_when_credentials_wrong_then_clear_error_without_secret(
    wecom: FakeWeCom, corpid: str, secret: str, errcode: int, words: str
) -> None:
    client = client_for(wecom, corpid=corpid, secret=secret)
    with pytest.raises(WeComApiError) as err:
        client.get_permit_user_list()
    assert err.value.errcode == errcode and err.value.api == "gettoken"
    assert words in str(err.value)
    for text in (str(err.value), repr(err.value), repr(client), repr(vars(client))):
        assert SECRET not in text
    assert err.value.__cause__ is None


def test_when_server_echoes_secret_and_token_then_both_scrubbed(wecom: FakeWeCom) -> None:
    client = client_for(wecom)
    token = client.access_token()
    wecom.script["msgaudit/get_permit_user_list"] = [
        {"errcode": 40058, "errmsg": f"bad request {SECRET} {token} url?access_token={token}&x=1"}
    ]
    with pytest.raises(WeComApiError) as err:
        client.get_permit_user_list()
    assert SECRET not in str(err.value) and token not in str(err.value)
    assert "access_token=***&x=1" in str(err.value)
    assert redact("gettoken?corpid=ww1&corpsecret=abc") == "gettoken?corpid=ww1&corpsecret=***"


def test_when_connection_refused_then_error_without_token(caplog: pytest.LogCaptureFixture) -> None:
    with serve() as fake:
        base = fake.base_url
    fake.base_url = base  # the server is gone: connection refused
    clock = FakeClock()
    client = client_for(fake, clock, max_retries=2)
    with caplog.at_level(logging.DEBUG), pytest.raises(WeComApiError) as err:
        client.get_corp_tag_list()
    assert err.value.errcode == -1 and err.value.api == "gettoken"
    assert "network" in str(err.value) and err.value.__cause__ is None
    assert clock.sleeps == [1.0, 2.0]
    assert SECRET not in caplog.text + str(err.value)


# --------------------------------------------------------------------------- rate limits


def test_when_rate_limited_then_backoff_and_success(
    wecom: FakeWeCom, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    client = client_for(wecom, clock)
    busy = {"errcode": 45009, "errmsg": "api freq out of limit"}
    wecom.script["msgaudit/get_permit_user_list"] = [busy, busy]
    wecom.permit = {1: ["a"], 2: ["b"]}
    with caplog.at_level(logging.INFO):
        assert client.get_permit_user_list() == ["a", "b"]
    assert clock.sleeps == [1.0, 2.0]
    assert len(wecom.calls("msgaudit/get_permit_user_list")) == 3
    assert "45009" in caplog.text
    token = client.access_token()
    assert SECRET not in caplog.text and token not in caplog.text


def test_when_http_429_then_retry_after_honoured(wecom: FakeWeCom) -> None:
    clock = FakeClock()
    client = client_for(wecom, clock)
    wecom.script["msgaudit/get_permit_user_list"] = [429]
    wecom.permit = {1: ["a"]}
    assert client.get_permit_user_list(type=1) == ["a"]
    assert clock.sleeps == [3.0]  # Retry-After: 3 beats the 1 s backoff
    assert wecom.calls("msgaudit/get_permit_user_list")[-1].body == {"type": 1}


def test_when_rate_limit_persists_then_error_after_retries(wecom: FakeWeCom) -> None:
    clock = FakeClock()
    client = client_for(wecom, clock, max_retries=3, backoff=0.5, backoff_max=1.0)
    wecom.script["msgaudit/get_permit_user_list"] = [
        {"errcode": 45009, "errmsg": "freq"} for _ in range(4)
    ]
    with pytest.raises(WeComApiError) as err:
        client.get_permit_user_list()
    assert err.value.errcode == 45009 and "rate limit" in str(err.value)
    assert clock.sleeps == [0.5, 1.0, 1.0]


def test_when_requests_per_second_set_then_calls_spaced(wecom: FakeWeCom) -> None:
    clock = FakeClock()
    client = client_for(wecom, clock, requests_per_second=4)
    for _ in range(3):
        client.get_corp_tag_list()
    # gettoken + 3 calls, 0.25 s apart (the fake clock only moves when the client sleeps)
    assert clock.sleeps == [0.25, 0.25, 0.25]


# --------------------------------------------------------------------------- APIs


def test_when_many_users_then_batches_of_100_and_cursor_pages(wecom: FakeWeCom) -> None:
    userids = [f"u{i:03d}" for i in range(230)]
    for i, u in enumerate(userids):
        if i % 3 == 0:  # 77 members with 2 contacts each
            wecom.by_user[u] = [
                (_contact(2 * i + k), {"userid": u, "tag_id": ["etTAG1", "etGONE"], "state": "s"})
                for k in range(2)
            ]
    client = client_for(wecom)
    rows = client.batch_get_by_user(userids, limit=50)
    assert len(rows) == 154
    calls = wecom.calls("externalcontact/batch/get_by_user")
    assert max(len(c.body["userid_list"]) for c in calls) == 100
    assert all(c.body["limit"] <= 100 for c in calls)
    # 100 users (68 contacts: 2 pages of 50), 100 users (66: 2 pages), 30 users (20: 1 page)
    assert [c.body["cursor"] for c in calls] == ["", "50", "", "50", ""]
    tags = rows[0].follow.tags
    assert [(t.tag_id, t.group_name, t.tag_name) for t in tags] == [
        ("etTAG1", "客户等级", "金卡"),
        ("etGONE", "", ""),
    ]
    assert rows[0].follow.state == "s" and rows[0].contact.name == "客户0"
    assert len(client.batch_get_by_user(userids[:10], limit=500)) == 8  # limit kept at 100


def test_when_contact_has_many_followers_then_next_cursor_followed(wecom: FakeWeCom) -> None:
    contact = _contact(1) | {"corp_name": "云帆科技"}
    for k in range(5):
        wecom.by_user[f"u{k}"] = [
            (
                contact,
                {
                    "userid": f"u{k}",
                    "remark": f"r{k}",
                    "createtime": 1700000000 + k,
                    "add_way": 1,
                    "state": "qr",
                    "tags": [{"group_name": "g", "tag_name": "t", "tag_id": "etT", "type": 1}],
                },
            )
        ]
    wecom.page = 2
    detail = client_for(wecom).get_external_contact(contact["external_userid"])
    assert detail.contact.corp_name == "云帆科技"
    assert [f.userid for f in detail.follows] == ["u0", "u1", "u2", "u3", "u4"]
    assert detail.follows[0].tags[0].tag_name == "t"
    assert [c.query.get("cursor") for c in wecom.calls("externalcontact/get")] == [None, "2", "4"]


def test_when_checking_consent_then_chunks_of_100_with_misspelled_key(wecom: FakeWeCom) -> None:
    pairs = [("u1", f"wm{i:08d}ABCDEFGH") for i in range(205)]
    wecom.agree[pairs[7]] = ("Disagree", 1700000123)
    wecom.agree[pairs[8]] = ("Default_Agree", 0)
    result = client_for(wecom).check_single_agree(pairs)
    calls = wecom.calls("msgaudit/check_single_agree")
    assert [len(c.body["info"]) for c in calls] == [100, 100, 5]
    assert set(calls[0].body["info"][0]) == {"userid", "exteranalopenid"}
    assert len(result) == 205
    assert (result[7].external_userid, result[7].status, result[7].changed_at) == (
        pairs[7][1],
        "disagree",
        1700000123,
    )
    assert result[8].status == "agree" and result[0].userid == "u1"


def test_when_checking_room_consent_then_statuses(wecom: FakeWeCom) -> None:
    wecom.room_agree["wrROOM"] = [("wmA1234567", "Agree", 1), ("wmB1234567", "Disagree", 2)]
    result = client_for(wecom).check_room_agree("wrROOM")
    assert [(a.external_userid, a.status, a.userid) for a in result] == [
        ("wmA1234567", "agree", ""),
        ("wmB1234567", "disagree", ""),
    ]


def test_when_group_is_internal_or_customer_then_right_endpoint(wecom: FakeWeCom) -> None:
    wecom.internal_rooms["wrIN"] = {
        "roomname": "内部群",
        "creator": "u1",
        "room_create_time": 1600000000,
        "notice": "n",
        "members": [{"memberid": "u1", "jointime": 1600000000}, {"memberid": "u2", "jointime": 1}],
    }
    wecom.customer_rooms["wrOUT"] = {
        "chat_id": "wrOUT",
        "name": "福利群",
        "owner": "u2",
        "create_time": 1600000001,
        "notice": "",
        "member_list": [
            {"userid": "u2", "type": 1, "join_time": 1600000001},
            {"userid": "wmC1234567", "type": 2, "join_time": 1600000002},
        ],
    }
    client = client_for(wecom)
    internal = client.groupchat_get("wrIN")
    assert (internal.kind, internal.name, internal.creator) == ("internal", "内部群", "u1")
    assert [m.userid for m in internal.members] == ["u1", "u2"]
    customer = client.groupchat_get("wrOUT")
    assert (customer.kind, customer.name, customer.creator) == ("customer", "福利群", "u2")
    assert [(m.userid, m.type) for m in customer.members] == [("u2", 1), ("wmC1234567", 2)]
    assert wecom.calls("externalcontact/groupchat/get")[0].body["chat_id"] == "wrOUT"
    with pytest.raises(WeComApiError) as err:
        client.groupchat_get("wrOUT", kind="internal")
    assert err.value.api == "msgaudit/groupchat/get"
    assert client.groupchat_get("wrOUT", kind="customer").name == "福利群"


def test_sync_contacts_and_the_digest_build_the_client_from_the_same_settings(
    wecom: FakeWeCom,
) -> None:
    from audit.cli.directory import wecom_clients
    from audit.config import Settings
    from audit.digest.configured import configured_channels
    from audit.digest.wecom_app import WeComAppChannel
    from audit.net import RetryPolicy

    settings = Settings.model_validate(
        {
            "wecom": {
                "base_url": wecom.base_url,
                "corpid": CORPID,
                "contact_secret": SECRET,
                "timeout": 7.5,
                "requests_per_second": 4.0,
                "max_retries": 2,
                "backoff_seconds": 0.25,
                "backoff_max_seconds": 9.0,
                "proxy": "",
            },
            "digest": {"app_agentid": 1000002, "app_secret": SECRET},
        }
    )
    wecom.permit = {1: ["zhangsan"], 2: ["lisi"]}
    contacts, _ = wecom_clients(settings)
    channel = configured_channels(settings)["wecom_app"]
    assert isinstance(channel, WeComAppChannel)
    for client in (contacts, channel.client):
        assert (client.base_url, client.corpid, client.timeout) == (wecom.base_url, CORPID, 7.5)
        assert client._retry == RetryPolicy(attempts=3, backoff=0.25, backoff_max=9.0)
        assert client._limiter.interval == 0.25
    assert channel.client.get_permit_user_list() == ["zhangsan", "lisi"]
    assert contacts.get_permit_user_list() == ["zhangsan", "lisi"]
    assert len(wecom.calls("gettoken")) == 2  # one token per client, both from the fake
