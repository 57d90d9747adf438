"""The chain of ``seed_chain`` plus what the dashboard shows beside it.

Adds to the three stores: one user per role (password ``password-1``; the supervisor
``nanjing`` sees only 南京路店, ``xujiahui`` only 徐家汇店), customer tags (VIP on customer 0,
5G on customer 2), follows with acquisition channels, scores with metrics and deductions
(conversation 1 answered twice in 1 and 10 business minutes; conversation 3 answered once in
30 s and then left waiting since 11-18 10:06 China time),
and in conversation 1 a message with HTML in it (and a finding on it), a recalled message,
an image, and a message sent while the customer withheld consent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from seed_chain import Seeded, seed_chain
from sqlalchemy import Engine, func, select, update

from audit.store.db import session_scope
from audit.store.models import (
    Alert,
    Conversation,
    Customer,
    CustomerTag,
    Envelope,
    Finding,
    Follow,
    Message,
    ScanRun,
    Score,
    SenderKind,
    Severity,
    Staff,
    Tag,
    TagGroup,
)
from audit.store.users import create_user

PASSWORD = "password-1"
USERS = {
    "admin": ("admin", []),
    "officer": ("compliance", []),
    "nanjing": ("supervisor", ["S1"]),
    "xujiahui": ("supervisor", ["S2"]),
    "analyst": ("analyst", []),
    "viewer": ("viewer", []),
}
INJECTION = "<script>alert('x')</script>加我微信"


@dataclass(frozen=True)
class DashSeed:
    chain: Seeded
    conv_nanjing: int  # conversation 1, 南京路店
    conv_xujiahui: int  # conversation 3, 徐家汇店
    alert_nanjing: int  # a1, open privacy alert of 南京路店
    alert_xujiahui: int  # a3, open complaint alert of 徐家汇店
    user_ids: dict[str, int]


def _utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def seed_dashboard(engine: Engine) -> DashSeed:
    chain = seed_chain(engine)
    with session_scope(engine) as s:
        ids = {}
        for name, (role, scopes) in USERS.items():
            ids[name] = create_user(s, name, PASSWORD, role, scopes, display_name=name.title()).id
        conv = {c.key: c for c in s.scalars(select(Conversation))}
        c1 = conv["single:zhangwei:wmcust0:1"]
        c3 = conv["single:lina:wmcust2:1"]
        alerts = {a.dedupe_key: a for a in s.scalars(select(Alert))}
        zhang = s.scalar(select(Staff).where(Staff.userid == "zhangwei"))
        li = s.scalar(select(Staff).where(Staff.userid == "lina"))
        cust = {c.external_userid: c for c in s.scalars(select(Customer))}
        assert zhang and li
        c1.customer_id = cust["wmcust0"].id
        run = s.scalar(select(ScanRun))
        assert run is not None

        def add(n: int, at: dt.datetime, text: str, **kw: object) -> Message:
            env = Envelope(source="test", seq=900 + n, msgid=f"dash{n}")
            s.add(env)
            s.flush()
            fields = {
                "envelope_id": env.id,
                "msgid": env.msgid,
                "seq": 900 + n,
                "action": "send",
                "msgtype": "text",
                "sender": "zhangwei",
                "sender_kind": SenderKind.STAFF,
                "msgtime": at,
                "text": text,
                "conversation_id": c1.id,
                "staff_id": zhang.id,
                **kw,
            }
            m = Message(**fields)
            s.add(m)
            s.flush()
            return m

        inj = add(1, _utc(2026, 11, 15, 17, 6), INJECTION)
        start = INJECTION.index("加我微信")
        s.add(
            Finding(
                message_id=inj.id,
                conversation_id=c1.id,
                scan_run_id=run.id,
                category="diversion",
                rule="diversion.加我微信",
                severity=Severity.HIGH,
                start=start,
                end=start + 4,
                matched="加我微信",
                explanation="词表 diversion.txt <b>加我微信</b>",
            )
        )
        add(2, _utc(2026, 11, 15, 17, 7), "这条撤回了", recalled=True, recalled_by="dash9")
        add(3, _utc(2026, 11, 15, 17, 8), "", msgtype="image")
        add(
            4,
            _utc(2026, 11, 15, 17, 9),
            "客户拒绝存档后的消息",
            sender="wmcust0",
            sender_kind=SenderKind.CUSTOMER,
            staff_id=None,
            consent_withheld=True,
        )

        s.add_all(
            [
                TagGroup(id="etG1", name="客户等级"),
                TagGroup(id="etG2", name="套餐"),
            ]
        )
        s.flush()
        s.add_all(
            [
                Tag(id="etVIP", group_id="etG1", name="VIP"),
                Tag(id="et5G", group_id="etG2", name="5G"),
            ]
        )
        s.flush()
        s.add_all(
            [
                CustomerTag(customer_id=cust["wmcust0"].id, tag_id="etVIP", staff_id=zhang.id),
                CustomerTag(customer_id=cust["wmcust2"].id, tag_id="et5G", staff_id=li.id),
                Follow(
                    staff_id=zhang.id,
                    customer_id=cust["wmcust0"].id,
                    state="store_qr",
                    added_at=_utc(2026, 11, 15, 1),
                ),
                Follow(
                    staff_id=li.id,
                    customer_id=cust["wmcust2"].id,
                    state="ad_5g",
                    added_at=_utc(2026, 11, 17, 1),
                ),
                Score(
                    conversation_id=c1.id,
                    scorecard_version="v1",
                    score=72.5,
                    deductions=[
                        {
                            "item": "greeting",
                            "label": "未问候",
                            "points": -5,
                            "reason": "no greeting",
                            "fatal": False,
                        },
                    ],
                    metrics={
                        "within_sla": 1,
                        "responses": 2,
                        "response_median_seconds": 90.0,
                        "response_business_seconds": [60.0, 600.0],
                        "sla_rate": 0.5,
                        "unanswered_at_end": False,
                        "scores_max": {"customer_negative": 0.1},
                    },
                ),
                Score(
                    conversation_id=c3.id,
                    scorecard_version="v1",
                    score=90.0,
                    deductions=[],
                    metrics={
                        "within_sla": 1,
                        "responses": 1,
                        "response_median_seconds": 30.0,
                        "response_business_seconds": [30.0],
                        "sla_rate": 1.0,
                        "unanswered_at_end": True,
                        "unanswered_messages": 1,
                        "unanswered_since": "2026-11-18T02:06:00+00:00",
                        "scores_max": {"customer_negative": 0.9},
                    },
                ),
            ]
        )
        s.flush()
        # what the sessionizer maintains (seed_chain leaves it at 0)
        s.execute(
            update(Conversation).values(
                message_count=select(func.count(Message.id))
                .where(Message.conversation_id == Conversation.id)
                .scalar_subquery()
            )
        )
        return DashSeed(
            chain=chain,
            conv_nanjing=c1.id,
            conv_xujiahui=c3.id,
            alert_nanjing=alerts["a1"].id,
            alert_xujiahui=alerts["a3"].id,
            user_ids=ids,
        )
