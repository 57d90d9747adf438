"""Dormant customers on a seeded database, on SQLite and PostgreSQL.

The chain: 华东区 > 上海 > {南京路店, 徐家汇店}, with scored conversations and one-to-one chats
whose customers went quiet.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from audit import reports
from audit.quality.dormant import DormantCustomer, dormant_customers, dormant_page
from audit.quality.metrics import BusinessClock, Msg, compute_metrics
from audit.quality.scorecard import ScoreResult, score_values
from audit.store.access import Principal, pseudonym
from audit.store.daily import refresh_daily
from audit.store.db import session_factory, session_scope
from audit.store.models import (
    Conversation,
    ConversationKind,
    Customer,
    CustomerTag,
    Envelope,
    Message,
    OrgUnit,
    Role,
    Score,
    SenderKind,
    Staff,
    Tag,
    TagGroup,
)

UTC = dt.UTC
CLOCK = BusinessClock.parse("00:00-24:00")
VERSION = "card@new"
D = dt.date


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@dataclass(frozen=True)
class Chain:
    region: int
    city: int
    nanjing: int
    xujiahui: int
    zhang: int
    li: int


class Seeder:
    def __init__(self, session: Session) -> None:
        self.s = session
        self.seq = itertools.count(1)

    def unit(self, code: str, name: str, kind: str, parent: OrgUnit | None) -> OrgUnit:
        unit = OrgUnit(code=code, name=name, kind=kind, parent_id=parent.id if parent else None)
        self.s.add(unit)
        self.s.flush()
        unit.path = f"{parent.path if parent else '/'}{unit.id}/"
        return unit

    def conversation(
        self,
        kind: ConversationKind,
        start: dt.datetime,
        unit: int | None,
        staff: int | None = None,
        customer: int | None = None,
    ) -> Conversation:
        n = next(self.seq)
        conv = Conversation(
            key=f"c{n}",
            thread=f"t{n}",
            kind=kind,
            staff_id=staff,
            customer_id=customer,
            org_unit_id=unit,
            started_at=start,
            ended_at=start,
        )
        self.s.add(conv)
        self.s.flush()
        return conv

    def message(
        self,
        conv: Conversation,
        at: dt.datetime,
        kind: SenderKind,
        action: str = "send",
    ) -> None:
        n = next(self.seq)
        env = Envelope(source="test", seq=n, msgid=f"m{n}")
        self.s.add(env)
        self.s.flush()
        self.s.add(
            Message(
                envelope_id=env.id,
                msgid=env.msgid,
                seq=n,
                action=action,
                msgtype="text",
                sender="x",
                sender_kind=kind,
                msgtime=at,
                text="",
                conversation_id=conv.id,
                staff_id=conv.staff_id,
                customer_id=conv.customer_id,
            )
        )

    def score(
        self,
        conv: Conversation,
        replies: Sequence[float],
        score: float,
        fatal: bool = False,
        version: str = VERSION,
        kind: str = "single",
    ) -> None:
        """A score whose metrics come from a conversation answered after ``replies`` seconds."""
        t = conv.started_at
        msgs = []
        for wait in replies:
            msgs.append(Msg(at=t, kind="customer", sender="wm", text="在吗"))
            t += dt.timedelta(seconds=wait)
            msgs.append(Msg(at=t, kind="staff", sender="s", text="您好"))
            t += dt.timedelta(seconds=10)
        metrics = compute_metrics(msgs, CLOCK, sla_minutes=5, kind=kind)  # type: ignore[arg-type]
        values = score_values(ScoreResult(score, (), fatal), metrics)
        self.s.add(Score(conversation_id=conv.id, scorecard_version=version, **values))


def seed(engine: Engine) -> Chain:
    with session_scope(engine) as s:
        db = Seeder(s)
        region = db.unit("R1", "华东区", "region", None)
        city = db.unit("C1", "上海", "city", region)
        nanjing = db.unit("S1", "南京路店", "store", city)
        xujiahui = db.unit("S2", "徐家汇店", "store", city)
        zhang = Staff(userid="zhangwei", name="张伟", org_unit_id=nanjing.id)
        li = Staff(userid="lina", name="李娜", org_unit_id=xujiahui.id)
        s.add_all([zhang, li])
        s.flush()
        single, room = ConversationKind.SINGLE, ConversationKind.ROOM

        # 南京路店, 11-16 10:00 Beijing: replies after 60 s and 600 s
        c1 = db.conversation(single, utc(2026, 11, 16, 2), nanjing.id, zhang.id)
        db.score(c1, [60, 600], 90)
        db.score(c1, [60, 600], 10, version="card@old")  # another card: never mixed in
        # 南京路店, 11-16 17:00 UTC = 11-17 01:00 Beijing: one reply after 120 s
        c2 = db.conversation(single, utc(2026, 11, 16, 17), nanjing.id, zhang.id)
        db.score(c2, [120], 70)
        # 南京路店 group chat, 11-16: no staff member of its own
        c3 = db.conversation(room, utc(2026, 11, 16, 5), nanjing.id)
        db.score(c3, [300], 100, kind="room")
        # 徐家汇店, 11-16: three replies, and a fatal item
        c4 = db.conversation(single, utc(2026, 11, 16, 3), xujiahui.id, li.id)
        db.score(c4, [30, 30, 900], 0, fatal=True)
        # outside the period (11-18 Beijing)
        c5 = db.conversation(single, utc(2026, 11, 17, 16, 30), xujiahui.id, li.id)
        db.score(c5, [10], 100)
        return Chain(region.id, city.id, nanjing.id, xujiahui.id, zhang.id, li.id)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_factory(engine)() as s:
        yield s


# --------------------------------------------------------------------------- dormant customers


NOW = utc(2026, 12, 31)


def seed_dormant(engine: Engine) -> Chain:
    chain = seed(engine)
    with session_scope(engine) as s:
        db = Seeder(s)
        db.seq = itertools.count(1000)
        customers = [Customer(external_userid=f"wmcust{i}", name=f"客户{i}") for i in range(6)]
        s.add_all(customers)
        s.add(TagGroup(id="g1", name="客户"))
        s.flush()
        s.add_all(
            [
                Tag(id="t1", group_id="g1", name="5G套餐"),
                Tag(id="t2", group_id="g1", name="宽带"),
                Tag(id="t3", group_id="g1", name="旧标签", deleted=True),
            ]
        )
        s.flush()
        s.add_all(
            [
                CustomerTag(customer_id=customers[0].id, tag_id="t1", staff_id=chain.zhang),
                CustomerTag(customer_id=customers[0].id, tag_id="t2", staff_id=chain.li),
                CustomerTag(customer_id=customers[0].id, tag_id="t3", staff_id=chain.zhang),
                CustomerTag(customer_id=customers[3].id, tag_id="t2", staff_id=chain.li),
            ]
        )
        cust, staff = SenderKind.CUSTOMER, SenderKind.STAFF
        single = ConversationKind.SINGLE

        def pair(staff_id: int, customer: Customer, unit: int) -> Conversation:
            return db.conversation(single, utc(2026, 10, 1), unit, staff_id, customer.id)

        # 0: wrote 11-01, 张伟 wrote twice after: dormant (60 days)
        c = pair(chain.zhang, customers[0], chain.nanjing)
        db.message(c, utc(2026, 10, 30), staff)
        db.message(c, utc(2026, 11, 1), cust)
        db.message(c, utc(2026, 11, 5), staff)
        db.message(c, utc(2026, 11, 20), staff)
        db.message(c, utc(2026, 12, 28), cust, action="recall")  # a recall is no reply
        db.message(c, utc(2026, 12, 29), SenderKind.ROBOT)
        room = db.conversation(ConversationKind.ROOM, utc(2026, 12, 30), chain.nanjing)
        db.message(room, utc(2026, 12, 30), cust)  # group chats say nothing of the pair
        # 1: the customer had the last word: waiting for staff, not dormant
        c = pair(chain.zhang, customers[1], chain.nanjing)
        db.message(c, utc(2026, 10, 30), staff)
        db.message(c, utc(2026, 11, 1), cust)
        # 2: wrote recently
        c = pair(chain.zhang, customers[2], chain.nanjing)
        db.message(c, utc(2026, 12, 20), cust)
        db.message(c, utc(2026, 12, 21), staff)
        # 3: never wrote; 李娜 first wrote 11-10: dormant (51 days)
        c = pair(chain.li, customers[3], chain.xujiahui)
        db.message(c, utc(2026, 11, 10), staff)
        # 4: never wrote, but 李娜 wrote only last week
        c = pair(chain.li, customers[4], chain.xujiahui)
        db.message(c, utc(2026, 12, 25), staff)
        # 5: wrote 11-01, staff replied on 11-02, then the customer answered after "now"
        c = pair(chain.li, customers[5], chain.xujiahui)
        db.message(c, utc(2026, 11, 1), cust)
        db.message(c, utc(2026, 11, 2), staff)
        db.message(c, utc(2027, 1, 5), cust)
    return chain


def test_when_customers_stop_replying_then_they_are_listed_as_dormant(
    engine: Engine, session: Session
) -> None:
    chain = seed_dormant(engine)
    found = dormant_customers(session, NOW, days=30)
    assert [(d.store, d.staff_name, d.external_userid) for d in found] == [
        ("南京路店", "张伟", "wmcust0"),
        ("徐家汇店", "李娜", "wmcust5"),  # longest silence first
        ("徐家汇店", "李娜", "wmcust3"),
    ]
    first, later, never = found
    assert first.last_customer_at == utc(2026, 11, 1)
    assert first.last_staff_at == utc(2026, 11, 20)
    assert first.unanswered_staff_messages == 2
    assert first.silent_days == 60
    assert first.tags == ("5G套餐", "宽带")
    assert (first.staff_userid, first.org_unit_id) == ("zhangwei", chain.nanjing)

    assert never.last_customer_at is None
    assert never.last_staff_at == utc(2026, 11, 10)
    assert (never.unanswered_staff_messages, never.silent_days) == (1, 51)
    assert never.tags == ("宽带",)

    # at "now" the customer's 2027 answer had not happened yet
    assert later.last_customer_at == utc(2026, 11, 1)
    assert later.unanswered_staff_messages == 1
    assert later.silent_days == 60


def test_when_the_threshold_or_scope_changes_then_the_list_follows(
    engine: Engine, session: Session
) -> None:
    chain = seed_dormant(engine)
    assert [d.external_userid for d in dormant_customers(session, NOW, days=55)] == [
        "wmcust0",
        "wmcust5",
    ]
    scoped = dormant_customers(session, NOW, days=30, within=[chain.xujiahui])
    assert [d.external_userid for d in scoped] == ["wmcust5", "wmcust3"]
    with pytest.raises(ValueError, match="aware"):
        dormant_customers(session, NOW.replace(tzinfo=None), days=30)


def test_when_a_pair_talks_in_several_conversations_then_they_add_up(
    engine: Engine, session: Session
) -> None:
    chain = seed(engine)
    with session_scope(engine) as s:
        db = Seeder(s)
        db.seq = itertools.count(2000)
        talked, silent = Customer(external_userid="wmmany"), Customer(external_userid="wmnever")
        s.add_all([talked, silent])
        s.flush()
        cust, staff = SenderKind.CUSTOMER, SenderKind.STAFF

        def conv(customer: Customer, day: int) -> Conversation:
            single = ConversationKind.SINGLE
            return db.conversation(
                single, utc(2026, 10, day), chain.nanjing, chain.zhang, customer.id
            )

        # the customer's last word (10-06) is in b; the staff messages after it are spread out
        a = conv(talked, 1)  # all before 10-06: none of it is unanswered
        db.message(a, utc(2026, 10, 2), staff)
        db.message(a, utc(2026, 10, 3), cust)
        db.message(a, utc(2026, 10, 4), staff)
        b = conv(talked, 5)  # the last customer message, then two staff messages
        db.message(b, utc(2026, 10, 6), cust)
        db.message(b, utc(2026, 10, 7), staff)
        db.message(b, utc(2026, 10, 8), staff)
        c = conv(talked, 1)  # overlaps b: one staff message before 10-06, one after
        db.message(c, utc(2026, 10, 5), staff)
        db.message(c, utc(2026, 10, 9), staff)
        d = conv(talked, 2)  # an earlier customer message, the staff reply after 10-06
        db.message(d, utc(2026, 10, 2, 12), cust)
        db.message(d, utc(2026, 10, 10), staff)
        # the other customer never wrote: every staff message of both conversations counts
        e = conv(silent, 3)
        db.message(e, utc(2026, 10, 3), staff)
        db.message(e, utc(2026, 10, 4), staff)
        f = conv(silent, 1)
        db.message(f, utc(2026, 10, 1), staff)

    found = {d.external_userid: d for d in dormant_customers(session, NOW, days=30)}
    assert found["wmmany"].last_customer_at == utc(2026, 10, 6)
    assert found["wmmany"].last_staff_at == utc(2026, 10, 10)
    assert found["wmmany"].unanswered_staff_messages == 4  # 10-07, 10-08, 10-09, 10-10
    assert found["wmmany"].silent_days == 86
    assert found["wmnever"].last_customer_at is None
    assert found["wmnever"].last_staff_at == utc(2026, 10, 4)
    assert found["wmnever"].unanswered_staff_messages == 3
    assert found["wmnever"].silent_days == 91  # since the first staff message, 10-01


def test_when_the_customers_page_lists_dormant_pairs_then_each_field_is_a_column(
    engine: Engine,
) -> None:
    chain = seed(engine)
    with session_scope(engine) as s:
        db = Seeder(s)
        db.seq = itertools.count(3000)
        old = Customer(external_userid="wmold", name="老客户")
        s.add_all([old, TagGroup(id="g9", name="客户")])
        s.flush()
        s.add_all([Tag(id="t9", group_id="g9", name="宽带")])
        s.flush()
        s.add(CustomerTag(customer_id=old.id, tag_id="t9", staff_id=chain.zhang))
        # years ago, so dormant whenever the page asks (it asks at the current time)
        c = db.conversation(
            ConversationKind.SINGLE, utc(2020, 1, 1), chain.nanjing, chain.zhang, old.id
        )
        db.message(c, utc(2020, 1, 1), SenderKind.CUSTOMER)
        db.message(c, utc(2020, 1, 2), SenderKind.STAFF)

    officer = Principal(None, "officer", Role.COMPLIANCE, None)
    frame = reports.dormant_customers(engine, officer, 30)
    assert frame is not None
    assert list(frame.columns) == [f.name for f in fields(DormantCustomer)]
    row = frame.iloc[0]
    assert (row["external_userid"], row["customer_name"], row["staff_name"]) == (
        "wmold",
        "老客户",
        "张伟",
    )
    assert row["last_customer_at"] == utc(2020, 1, 1)
    assert row["unanswered_staff_messages"] == 1
    assert row["tags"] == ("宽带",)
    analyst = reports.dormant_customers(engine, Principal(None, "a", Role.ANALYST, None), 30)
    assert analyst is not None
    assert analyst.iloc[0]["external_userid"] == pseudonym("customer", old.id)
    assert reports.dormant_customers(engine, Principal(None, "v", Role.VIEWER, None), 30) is None


def seed_overlapping(engine: Engine, chain: Chain) -> None:
    """More pairs for the facts: the customer's last word in one conversation and staff
    messages after it in overlapping ones (counted from their messages), a pair silent exactly
    31 days less a microsecond before NOW, and one exactly 31 days."""
    with session_scope(engine) as s:
        db = Seeder(s)
        db.seq = itertools.count(5000)
        talked = Customer(external_userid="wmmany")
        edge, exact = Customer(external_userid="wmedge"), Customer(external_userid="wmexact")
        s.add_all([talked, edge, exact])
        s.flush()
        cust, staff = SenderKind.CUSTOMER, SenderKind.STAFF

        def conv(customer: Customer, day: int) -> Conversation:
            single = ConversationKind.SINGLE
            return db.conversation(
                single, utc(2026, 10, day), chain.nanjing, chain.zhang, customer.id
            )

        b = conv(talked, 5)
        db.message(b, utc(2026, 10, 6), cust)
        db.message(b, utc(2026, 10, 7), staff)
        c = conv(talked, 1)  # overlaps b: one staff message before 10-06, one after
        db.message(c, utc(2026, 10, 5), staff)
        db.message(c, utc(2026, 10, 9), staff)
        db.message(c, utc(2026, 10, 9, 1), staff)
        month = NOW - dt.timedelta(days=31)
        e = conv(edge, 20)
        db.message(e, month + dt.timedelta(microseconds=1), cust)
        db.message(e, month + dt.timedelta(microseconds=2), staff)
        x = conv(exact, 20)
        db.message(x, month, cust)
        db.message(x, month + dt.timedelta(seconds=1), staff)


def _page(
    session: Session, facts: bool, now: dt.datetime, days: int, **kw: Any
) -> tuple[list[DormantCustomer], int]:
    found = dormant_page(session, now, days, facts=facts, **kw)
    return found.rows, found.total


def test_when_the_facts_are_fresh_then_the_dormant_pages_are_the_live_ones(
    engine: Engine, session: Session
) -> None:
    chain = seed_dormant(engine)
    seed_overlapping(engine, chain)
    refresh_daily(engine)

    def compare() -> None:
        for now, days in ((NOW, 30), (NOW, 55), (utc(2026, 11, 25), 1), (utc(2026, 10, 8), 1)):
            for within in (None, [chain.xujiahui], [chain.city]):
                every, total = _page(session, False, now, days, within=within)
                assert _page(session, True, now, days, within=within) == (every, total)
                assert total == len(every)
                for offset, limit in ((0, 1), (1, 2), (2, 100), (len(every), 5)):
                    page = _page(
                        session, True, now, days, within=within, offset=offset, limit=limit
                    )
                    assert page == (every[offset : offset + limit], total)
                for d in every:  # whole days, as Python counts them
                    if d.last_customer_at is not None:
                        assert d.silent_days == (now - d.last_customer_at).days

    compare()
    found = {d.external_userid: d for d in dormant_customers(session, NOW, 30)}
    assert found["wmmany"].unanswered_staff_messages == 3  # 10-07, 10-09 twice
    assert (found["wmedge"].silent_days, found["wmexact"].silent_days) == (30, 31)
    assert "wmcust5" in found  # its 2027 answer is after "now": read from its messages

    with session_scope(engine) as s:  # a new message: an incremental refresh follows it
        db = Seeder(s)
        db.seq = itertools.count(9000)
        conv = s.scalar(
            select(Conversation)
            .join(Customer, Customer.id == Conversation.customer_id)
            .where(Customer.external_userid == "wmmany")
            .order_by(Conversation.id)
            .limit(1)
        )
        assert conv is not None
        db.message(conv, utc(2026, 10, 8), SenderKind.CUSTOMER)
    assert refresh_daily(engine).mode == "incremental"
    session.expire_all()
    found = {d.external_userid: d for d in dormant_customers(session, NOW, 30)}
    assert found["wmmany"].last_customer_at == utc(2026, 10, 8)
    assert found["wmmany"].unanswered_staff_messages == 2  # 10-09 twice
    compare()
