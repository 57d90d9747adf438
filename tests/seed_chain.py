"""A small retail chain with every count known, for the report and dashboard tests.

One region, one city, three stores (the third without chats):

==========  ======================  =====================================================
store       conversation            messages (China time) and findings
==========  ======================  =====================================================
南京路店     conv 1, 11-16 01:00     3 msgs 11-16 (01:00 UTC 11-15 17:00): privacy;
                                    diversion + promise on one message
南京路店     conv 2, 11-16 23:30     1 msg 11-16 23:30, 1 msg 11-17 00:10 (UTC 11-16): abuse
徐家汇店     conv 3, 11-18 10:00     2 msgs 11-18: complaint
(none)      not sessionized         1 msg 11-17 12:00: illegal
==========  ======================  =====================================================

Alerts: privacy (open, store set), abuse (confirmed, store only through its conversation),
complaint (open). A third store, 陆家嘴店, has no chats at all.

Days are China days (UTC+8); the UTC times are chosen so that bucketing by UTC day would
give other answers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine

from audit.store.db import session_scope
from audit.store.models import (
    Alert,
    AlertState,
    Conversation,
    ConversationKind,
    Customer,
    Envelope,
    Finding,
    Message,
    OrgUnit,
    ScanRun,
    SenderKind,
    Severity,
    Staff,
)

UTC = dt.UTC


@dataclass(frozen=True)
class Seeded:
    region: int
    city: int
    nanjing: int  # 南京路店
    xujiahui: int  # 徐家汇店
    lujiazui: int  # 陆家嘴店, no chats


def _utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def seed_chain(engine: Engine) -> Seeded:
    """Write the chain described in the module docstring; return its org unit ids."""
    with session_scope(engine) as s:
        region = OrgUnit(code="R1", name="华东区", kind="region")
        s.add(region)
        s.flush()
        region.path = f"/{region.id}/"
        city = OrgUnit(code="C1", name="上海", kind="city", parent_id=region.id)
        s.add(city)
        s.flush()
        city.path = f"{region.path}{city.id}/"
        stores = []
        for code, name in [("S1", "南京路店"), ("S2", "徐家汇店"), ("S3", "陆家嘴店")]:
            store = OrgUnit(code=code, name=name, kind="store", parent_id=city.id)
            s.add(store)
            s.flush()
            store.path = f"{city.path}{store.id}/"
            stores.append(store)
        s1, s2, s3 = stores

        zhang = Staff(userid="zhangwei", name="张伟", org_unit_id=s1.id)
        li = Staff(userid="lina", name="李娜", org_unit_id=s2.id)
        customers = [Customer(external_userid=f"wmcust{i}", name=f"客户{i}") for i in range(3)]
        s.add_all([zhang, li, *customers])
        run = ScanRun(wordlist_hash="h", scanner_version="test", model_versions={})
        s.add(run)
        s.flush()

        seq = iter(range(1, 1000))

        def conversation(
            key: str,
            store: OrgUnit,
            staff: Staff,
            customer: Customer,
            start: dt.datetime,
            end: dt.datetime,
        ) -> Conversation:
            conv = Conversation(
                key=key,
                thread=key.rsplit(":", 1)[0],
                kind=ConversationKind.SINGLE,
                staff_id=staff.id,
                customer_id=customer.id,
                org_unit_id=store.id,
                started_at=start,
                ended_at=end,
            )
            s.add(conv)
            s.flush()
            return conv

        def message(
            at: dt.datetime, conv: Conversation | None, staff: Staff | None, text: str
        ) -> Message:
            n = next(seq)
            env = Envelope(source="test", seq=n, msgid=f"msg{n}")
            s.add(env)
            s.flush()
            msg = Message(
                envelope_id=env.id,
                msgid=env.msgid,
                seq=n,
                action="send",
                msgtype="text",
                sender=staff.userid if staff else "wmcust0",
                sender_kind=SenderKind.STAFF if staff else SenderKind.CUSTOMER,
                msgtime=at,
                text=text,
                conversation_id=conv.id if conv else None,
                staff_id=staff.id if staff else None,
            )
            s.add(msg)
            s.flush()
            return msg

        def finding(msg: Message, category: str, severity: Severity, start: int = 0) -> Finding:
            f = Finding(
                message_id=msg.id,
                conversation_id=msg.conversation_id,
                scan_run_id=run.id,
                category=category,
                rule=f"{category}.test",
                severity=severity,
                start=start,
                end=start + 2,
                matched=msg.text[start : start + 2],
            )
            s.add(f)
            s.flush()
            return f

        c1 = conversation(
            "single:zhangwei:wmcust0:1",
            s1,
            zhang,
            customers[0],
            _utc(2026, 11, 15, 17, 0),
            _utc(2026, 11, 15, 17, 10),
        )
        m1 = message(_utc(2026, 11, 15, 17, 0), c1, zhang, "我的电话13800138000")
        message(_utc(2026, 11, 15, 17, 5), c1, None, "好的")
        m3 = message(_utc(2026, 11, 15, 17, 10), c1, zhang, "加我微信，保证100%返现")
        f_privacy = finding(m1, "privacy", Severity.HIGH, 5)
        finding(m3, "diversion", Severity.HIGH, 0)
        finding(m3, "promise", Severity.LOW, 5)

        c2 = conversation(
            "single:zhangwei:wmcust1:1",
            s1,
            zhang,
            customers[1],
            _utc(2026, 11, 16, 15, 30),
            _utc(2026, 11, 16, 16, 10),
        )
        message(_utc(2026, 11, 16, 15, 30), c2, None, "在吗")
        m5 = message(_utc(2026, 11, 16, 16, 10), c2, zhang, "你有病吧")
        f_abuse = finding(m5, "abuse", Severity.CRITICAL, 1)

        c3 = conversation(
            "single:lina:wmcust2:1",
            s2,
            li,
            customers[2],
            _utc(2026, 11, 18, 2, 0),
            _utc(2026, 11, 18, 2, 5),
        )
        m6 = message(_utc(2026, 11, 18, 2, 0), c3, None, "我要打12315投诉")
        message(_utc(2026, 11, 18, 2, 5), c3, li, "您别着急")
        f_complaint = finding(m6, "complaint", Severity.MEDIUM, 3)

        orphan = message(_utc(2026, 11, 17, 4, 0), None, None, "有赌博网站吗")
        finding(orphan, "illegal", Severity.LOW, 1)

        s.add_all(
            [
                Alert(
                    dedupe_key="a1",
                    category="privacy",
                    severity=Severity.HIGH,
                    state=AlertState.OPEN,
                    title="privacy",
                    finding_id=f_privacy.id,
                    conversation_id=c1.id,
                    org_unit_id=s1.id,
                    staff_id=zhang.id,
                ),
                Alert(
                    dedupe_key="a2",
                    category="abuse",
                    severity=Severity.CRITICAL,
                    state=AlertState.CONFIRMED,
                    title="abuse",
                    finding_id=f_abuse.id,
                    conversation_id=c2.id,
                    org_unit_id=None,
                    staff_id=zhang.id,
                ),
                Alert(
                    dedupe_key="a3",
                    category="complaint",
                    severity=Severity.MEDIUM,
                    state=AlertState.OPEN,
                    title="complaint",
                    finding_id=f_complaint.id,
                    conversation_id=c3.id,
                    org_unit_id=s2.id,
                    staff_id=li.id,
                ),
            ]
        )
        return Seeded(region.id, city.id, s1.id, s2.id, s3.id)
