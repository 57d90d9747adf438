"""sync_contacts and record_consent end to end: local WeCom server -> SQLite."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_wecom import FakeWeCom, client_for, serve
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from audit.archive.contacts import (
    UNASSIGNED_CODE,
    follow_pairs,
    record_consent,
    sync_contacts,
)
from audit.archive.imports import import_org
from audit.store.db import make_engine, session_scope
from audit.store.directory import load_directory
from audit.store.models import Customer, CustomerTag, Follow, Room, Staff, Tag, TagGroup

DATA = Path(__file__).resolve().parent.parent / "data" / "imports"
A = "wmAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
B = "wmBBBBBBBBBBBBBBBBBBBBBBBBB-_B"
C = "woCCCCCCCCCCCCCCCCCCCCCCCCCCCC"


def _follow(userid: str, tags: list[str], state: str, **extra: Any) -> dict[str, Any]:
    return {
        "userid": userid,
        "remark": extra.get("remark", ""),
        "createtime": extra.get("createtime", 1700000000),
        "add_way": extra.get("add_way", 1),
        "state": state,
        "tag_id": tags,
    }


@pytest.fixture
def wecom() -> Iterator[FakeWeCom]:
    with serve() as fake:
        fake.tag_groups = [
            {
                "group_id": "etLEVEL",
                "group_name": "客户等级",
                "order": 1,
                "tag": [
                    {"id": "etGOLD", "name": "金卡", "order": 2},
                    {"id": "etSILVER", "name": "银卡", "order": 1},
                ],
            },
            {
                "group_id": "etPLAN",
                "group_name": "套餐",
                "order": 2,
                "tag": [{"id": "et5G", "name": "5G畅享", "order": 1}],
            },
        ]
        a = {"external_userid": A, "name": "陈先生", "type": 1, "gender": 1}
        b = {"external_userid": B, "name": "小鱼儿", "type": 1, "gender": 2}
        c = {"external_userid": C, "name": "赵总", "type": 2, "gender": 0, "corp_name": "云帆科技"}
        fake.by_user = {
            "zhangwei.s001": [
                (a, _follow("zhangwei.s001", ["etGOLD", "et5G"], "qr_store_S001", remark="陈先生")),
                (c, _follow("zhangwei.s001", ["etGONE"], "", add_way=202)),
            ],
            "lina.s001": [(a, _follow("lina.s001", ["etSILVER"], "poster_5g"))],
            "S002_01": [(b, _follow("S002_01", [], "live_stream", createtime=1690000000))],
            "newbie": [(b, _follow("newbie", ["et5G"], "referral"))],
        }
        fake.permit = {1: ["zhangwei.s001", "lina.s001"], 2: ["S002_01", "newbie"]}
        fake.internal_rooms["wrINTERNAL"] = {
            "roomname": "文三路店内部工作群",
            "creator": "zhangwei.s001",
            "room_create_time": 1650000000,
            "notice": "每日晨会九点",
            "members": [{"memberid": "zhangwei.s001"}, {"memberid": "lina.s001"}],
        }
        fake.customer_rooms["wrCUSTOMER"] = {
            "chat_id": "wrCUSTOMER",
            "name": "5G福利群",
            "owner": "S002_01",
            "create_time": 1660000000,
            "member_list": [
                {"userid": "S002_01", "type": 1},
                {"userid": B, "type": 2},
                {"userid": "wbROBOT", "type": 1},
            ],
        }
        fake.agree[("lina.s001", A)] = ("Disagree", 1700001000)
        fake.agree[("zhangwei.s001", A)] = ("Agree", 1700000500)
        fake.room_agree["wrCUSTOMER"] = [(B, "Agree", 1700002000)]
        yield fake


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    eng = make_engine(sqlite_url)
    yield eng
    eng.dispose()


def _staff(s: Session) -> dict[str, tuple[str, str, str, bool]]:
    return {
        st.userid: (st.name, st.org_unit.code if st.org_unit else "", st.position, st.archived)
        for st in s.scalars(select(Staff))
    }


def test_when_org_imported_then_sync_fills_directory_and_consent(
    wecom: FakeWeCom, engine: Engine
) -> None:
    with session_scope(engine) as s:
        load_directory(s, import_org(DATA / "org.csv"))
    client = client_for(wecom)
    stats = sync_contacts(
        client, engine, roomids=["wrINTERNAL", "wrCUSTOMER", "wrGONE"], consent=True
    )
    assert (stats.staff, stats.customers, stats.follows, stats.rooms) == (4, 3, 5, 2)
    assert (stats.tag_groups, stats.tags, stats.customer_tags) == (2, 3, 4)
    assert stats.unassigned == ("newbie",)
    assert stats.unknown_tag_ids == ("etGONE",)
    assert len(stats.failed_rooms) == 1 and stats.failed_rooms[0].startswith("wrGONE: ")
    assert stats.new.staff == 1 and stats.new.customers == 3
    assert stats.consent is not None
    assert (stats.consent.agree, stats.consent.disagree) == (2, 1)

    with session_scope(engine) as s:
        # names, stores and positions from the org import are kept; newbie goes to 未分配
        assert _staff(s) == {
            "zhangwei.s001": ("张伟", "S001", "店长", True),
            "lina.s001": ("李娜", "S001", "营业员", True),
            "S002_01": ("王芳", "S002", "店长", True),
            "newbie": ("newbie", UNASSIGNED_CODE, "", True),
        }
        unassigned = s.scalars(select(Staff).where(Staff.userid == "newbie")).one().org_unit
        assert unassigned is not None and unassigned.name == "未分配"
        customers = {c.external_userid: c for c in s.scalars(select(Customer))}
        assert [(c.name, c.type, c.gender, c.corp_name) for c in customers.values()] == [
            ("陈先生", 1, 1, ""),
            ("赵总", 2, 0, "云帆科技"),
            ("小鱼儿", 1, 2, ""),
        ]
        follows = s.execute(
            select(Staff.userid, Customer.external_userid, Follow)
            .join(Staff, Follow.staff_id == Staff.id)
            .join(Customer, Follow.customer_id == Customer.id)
        ).all()
        by_pair = {(u, e): f for u, e, f in follows}
        assert len(by_pair) == 5
        first = by_pair[("zhangwei.s001", A)]
        assert (first.state, first.remark, first.add_way) == ("qr_store_S001", "陈先生", 1)
        assert first.added_at == dt.datetime.fromtimestamp(1700000000, dt.UTC)
        assert by_pair[("zhangwei.s001", C)].add_way == 202
        assert by_pair[("S002_01", B)].state == "live_stream"
        tags = s.execute(
            select(Customer.external_userid, Staff.userid, Tag.name)
            .join(CustomerTag, CustomerTag.customer_id == Customer.id)
            .join(Staff, CustomerTag.staff_id == Staff.id)
            .join(Tag, CustomerTag.tag_id == Tag.id)
            .order_by(Staff.userid, Tag.name)
        ).all()
        assert [tuple(t) for t in tags] == [
            (A, "lina.s001", "银卡"),
            (B, "newbie", "5G畅享"),
            (A, "zhangwei.s001", "5G畅享"),
            (A, "zhangwei.s001", "金卡"),
        ]
        assert [(g.id, g.name, g.order) for g in s.scalars(select(TagGroup))] == [
            ("etLEVEL", "客户等级", 1),
            ("etPLAN", "套餐", 2),
        ]
        rooms = {r.roomid: r for r in s.scalars(select(Room))}
        inner, outer = rooms["wrINTERNAL"], rooms["wrCUSTOMER"]
        assert (inner.name, inner.creator, inner.notice) == (
            "文三路店内部工作群",
            "zhangwei.s001",
            "每日晨会九点",
        )
        assert inner.members == ["zhangwei.s001", "lina.s001"]
        assert outer.members == ["S002_01", B, "wbROBOT"]
        assert outer.created_at == dt.datetime.fromtimestamp(1660000000, dt.UTC)
        units = {r.org_unit_id for r in rooms.values()}
        codes = {st.org_unit_id: st.org_unit.code for st in s.scalars(select(Staff)) if st.org_unit}
        assert {codes[u] for u in units if u is not None} == {"S001", "S002"}
        # consent: A disagreed with lina (any disagree wins), B agreed in the room
        assert (customers[A].consent, customers[A].consent_changed_at) == (
            "disagree",
            dt.datetime.fromtimestamp(1700001000, dt.UTC),
        )
        assert customers[B].consent == "agree"
        assert customers[C].consent == "agree"  # the fake's default answer
    # the msgaudit calls went to msgaudit, the contact calls to externalcontact
    assert wecom.calls("msgaudit/groupchat/get")[0].body == {"roomid": "wrINTERNAL"}
    assert len(wecom.calls("msgaudit/check_single_agree")) == 1


def test_when_synced_again_then_idempotent_and_removed_tags_dropped(
    wecom: FakeWeCom, engine: Engine
) -> None:
    client = client_for(wecom)
    users = ["zhangwei.s001", "lina.s001"]
    first = sync_contacts(client, engine, users, {"zhangwei.s001": "S404"})
    assert first.unassigned == ("zhangwei.s001", "lina.s001")
    assert first.unknown_stores == ("S404",)
    assert "S404" in first.warnings[0]
    again = sync_contacts(client, engine, users)
    assert (again.new.staff, again.new.customers, again.new.follows) == (0, 0, 0)
    assert (again.new.customer_tags, again.new.org_units, again.customer_tags_removed) == (0, 0, 0)
    with session_scope(engine) as s:
        # no permit list asked: the archived flag keeps its default
        assert {st.userid: st.archived for st in s.scalars(select(Staff))} == {
            "zhangwei.s001": True,
            "lina.s001": True,
        }
    # the customer loses the 金卡 tag in WeCom
    row = wecom.by_user["zhangwei.s001"][0]
    row[1]["tag_id"] = ["et5G"]
    third = sync_contacts(client, engine, users)
    assert third.customer_tags_removed == 1
    with session_scope(engine) as s:
        names = s.scalars(
            select(Tag.name).join(CustomerTag, CustomerTag.tag_id == Tag.id).order_by(Tag.name)
        ).all()
        assert names == ["5G畅享", "银卡"]


def test_when_stored_consent_is_newer_then_older_answer_does_not_win(
    wecom: FakeWeCom, engine: Engine
) -> None:
    client = client_for(wecom)
    sync_contacts(client, engine, ["zhangwei.s001"])
    later = dt.datetime.fromtimestamp(1800000000, dt.UTC)
    with session_scope(engine) as s:
        a = s.scalars(select(Customer).where(Customer.external_userid == A)).one()
        a.consent, a.consent_changed_at = "disagree", later  # e.g. a disagree message
    with session_scope(engine) as s:
        pairs = follow_pairs(s)
        assert pairs == [("zhangwei.s001", A), ("zhangwei.s001", C)]
        stats = record_consent(s, client, [*pairs, ("zhangwei.s001", "wmUNKNOWN123")])
        assert stats.unknown_customers == ("wmUNKNOWN123",)
        assert (stats.checked, stats.changed) == (3, 1)  # C: unknown -> agree
    with session_scope(engine) as s:
        a = s.scalars(select(Customer).where(Customer.external_userid == A)).one()
        assert (a.consent, a.consent_changed_at) == ("disagree", later)
    wecom.agree[("zhangwei.s001", A)] = ("Agree", 1900000000)  # agreed again, later still
    with session_scope(engine) as s:
        assert record_consent(s, client, [("zhangwei.s001", A)]).changed == 1
        a = s.scalars(select(Customer).where(Customer.external_userid == A)).one()
        assert a.consent == "agree"
