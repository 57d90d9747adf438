"""A small chain with personal data in every place an export could leak it.

Two stores. Conversation 1 (南京路店, 张伟 with 王小明) carries a phone number, a resident ID,
a bank card and an e-mail address in the text, the phone again in an alert title, a score
deduction and a reviewer's comment. Conversation 2 (徐家汇店) is clean and well scored.
Conversation 3 is with a customer who refused archiving: its message is flagged
``consent_withheld`` and must never be exported.
"""

from __future__ import annotations

import datetime as dt
import itertools
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
    Review,
    Role,
    ScanRun,
    Score,
    SenderKind,
    Severity,
    Staff,
    User,
    UserScope,
)

PHONE = "13800138000"
RESIDENT_ID = "110101199003074514"
CARD = "6222021234567890128"
EMAIL = "wang.xm@example.com"
WITHHELD_PHONE = "13912345678"
RAW = (PHONE, RESIDENT_ID, CARD, EMAIL, WITHHELD_PHONE, "王小明", "张伟", "李娜", "赵六")
DAY = dt.date(2026, 11, 17)  # China time


@dataclass(frozen=True)
class World:
    s1: int
    s2: int
    region: int
    conv1: int
    conv2: int
    conv3: int


def at(hour: int, minute: int = 0, day: dt.date = DAY) -> dt.datetime:
    local = dt.datetime.combine(
        day, dt.time(hour, minute), tzinfo=dt.timezone(dt.timedelta(hours=8))
    )
    return local.astimezone(dt.UTC)


def seed_world(engine: Engine) -> World:
    seq = itertools.count(1)
    with session_scope(engine) as s:
        region = OrgUnit(code="R1", name="华东区", kind="region")
        s.add(region)
        s.flush()
        region.path = f"/{region.id}/"
        stores = []
        for code, name in (("S1", "南京路店"), ("S2", "徐家汇店")):
            unit = OrgUnit(code=code, name=name, kind="store", parent_id=region.id)
            s.add(unit)
            s.flush()
            unit.path = f"{region.path}{unit.id}/"
            stores.append(unit)
        s1, s2 = stores
        zhang = Staff(userid="zhangwei", name="张伟", org_unit_id=s1.id)
        li = Staff(userid="lina", name="李娜", org_unit_id=s2.id)
        wang = Customer(external_userid="wmwang", name="王小明", consent="agree")
        chen = Customer(external_userid="wmchen", name="陈静", consent="agree")
        zhao = Customer(external_userid="wmzhao", name="赵六", consent="disagree")
        run = ScanRun(wordlist_hash="h", scanner_version="t", model_versions={})
        s.add_all([zhang, li, wang, chen, zhao, run])
        s.flush()

        def conv(
            store: OrgUnit, staff: Staff, customer: Customer, start: dt.datetime
        ) -> Conversation:
            c = Conversation(
                key=f"single:{staff.userid}:{customer.external_userid}:{start.timestamp()}",
                thread=f"single:{staff.userid}:{customer.external_userid}",
                kind=ConversationKind.SINGLE,
                staff_id=staff.id,
                customer_id=customer.id,
                org_unit_id=store.id,
                started_at=start,
                ended_at=start + dt.timedelta(minutes=10),
                customer_messages=1,
                staff_messages=1,
            )
            s.add(c)
            s.flush()
            return c

        def msg(
            c: Conversation,
            when: dt.datetime,
            who: Staff | Customer,
            text: str,
            withheld: bool = False,
        ) -> Message:
            n = next(seq)
            env = Envelope(source="t", seq=n, msgid=f"m{n}")
            s.add(env)
            s.flush()
            staff = isinstance(who, Staff)
            m = Message(
                envelope_id=env.id,
                msgid=env.msgid,
                seq=n,
                action="send",
                msgtype="text",
                sender=who.userid if isinstance(who, Staff) else who.external_userid,
                sender_kind=SenderKind.STAFF if staff else SenderKind.CUSTOMER,
                msgtime=when,
                text=text,
                conversation_id=c.id,
                staff_id=who.id if staff else None,
                customer_id=None if staff else who.id,
                consent_withheld=withheld,
            )
            s.add(m)
            s.flush()
            return m

        def finding(
            m: Message, category: str, rule: str, needle: str, severity: Severity
        ) -> Finding:
            start = m.text.index(needle)
            f = Finding(
                message_id=m.id,
                conversation_id=m.conversation_id,
                scan_run_id=run.id,
                category=category,
                rule=rule,
                severity=severity,
                start=start,
                end=start + len(needle),
                matched=needle,
                explanation=f"rule {rule}",
            )
            s.add(f)
            s.flush()
            return f

        c1 = conv(s1, zhang, wang, at(10))
        m1 = msg(c1, at(10), wang, f"我叫王小明，电话{PHONE}，麻烦尽快处理")
        m2 = msg(
            c1, at(10, 2), zhang, f"张伟为您服务，请把身份证{RESIDENT_ID}发我，加我微信 zw_8888"
        )
        m3 = msg(c1, at(10, 4), wang, f"卡号{CARD}，邮箱{EMAIL}")
        msg(c1, at(10, 6), zhang, "王先生您好，你有病吧，自己不会看吗")
        f_phone = finding(m1, "privacy", "privacy.phone", PHONE, Severity.MEDIUM)
        f_id = finding(m2, "privacy", "privacy.resident_id", RESIDENT_ID, Severity.HIGH)
        finding(m3, "privacy", "privacy.bank_card", CARD, Severity.HIGH)
        f_div = finding(m2, "diversion", "diversion.contact_id", "加我微信", Severity.HIGH)

        c2 = conv(s2, li, chen, at(11))
        msg(c2, at(11), chen, "你好，我想升级5G套餐")
        msg(c2, at(11, 1), li, "您好，很高兴为您服务，这就为您办理")

        c3 = conv(s1, zhang, zhao, at(12))
        m9 = msg(c3, at(12), zhao, f"我的号码{WITHHELD_PHONE}", withheld=True)
        f_withheld = finding(m9, "privacy", "privacy.phone", WITHHELD_PHONE, Severity.MEDIUM)

        s.add_all(
            [
                Score(
                    conversation_id=c1.id,
                    scorecard_version="v1",
                    score=35.0,
                    metrics={"sla_rate": 0.5},
                    deductions=[{"item": "privacy", "points": -60, "reason": f"泄露电话{PHONE}"}],
                ),
                Score(
                    conversation_id=c2.id,
                    scorecard_version="v1",
                    score=96.0,
                    metrics={"sla_rate": 1.0},
                    deductions=[],
                ),
                Score(
                    conversation_id=c3.id,
                    scorecard_version="v1",
                    score=80.0,
                    metrics={},
                    deductions=[],
                ),
            ]
        )
        admin = User(username="admin1", role=Role.ADMIN, email="admin@corp.cn")
        comp = User(username="comp1", role=Role.COMPLIANCE, email="comp@corp.cn")
        sup = User(username="sup2", role=Role.SUPERVISOR, email="sup2@corp.cn")
        viewer = User(username="viewer1", role=Role.VIEWER, email="")
        s.add_all([admin, comp, sup, viewer])
        s.flush()
        s.add(UserScope(user_id=sup.id, org_unit_id=s2.id))

        def alert(
            f: Finding,
            c: Conversation,
            state: AlertState,
            title: str,
            staff: Staff,
            created: dt.datetime,
        ) -> Alert:
            a = Alert(
                dedupe_key=f"finding:{f.id}",
                category=f.category,
                severity=f.severity,
                state=state,
                title=title,
                finding_id=f.id,
                conversation_id=c.id,
                org_unit_id=c.org_unit_id,
                staff_id=staff.id,
                created_at=created,
                updated_at=created,
            )
            s.add(a)
            s.flush()
            return a

        a1 = alert(f_id, c1, AlertState.CONFIRMED, f"隐私泄露：{RESIDENT_ID}", zhang, at(13))
        a2 = alert(f_div, c1, AlertState.FALSE_POSITIVE, "私下导流：加我微信", zhang, at(13))
        a3 = alert(f_phone, c1, AlertState.OPEN, f"隐私泄露：{PHONE}", zhang, at(13))
        alert(f_withheld, c3, AlertState.CONFIRMED, "隐私泄露", zhang, at(13))
        s.add_all(
            [
                Review(
                    alert_id=a1.id,
                    user_id=comp.id,
                    action="confirm",
                    from_state=AlertState.OPEN,
                    to_state=AlertState.CONFIRMED,
                    comment=f"核实：员工索要身份证{RESIDENT_ID}",
                    finding_rule="privacy.resident_id",
                    created_at=at(14),
                ),
                Review(
                    alert_id=a2.id,
                    user_id=comp.id,
                    action="false_positive",
                    from_state=AlertState.OPEN,
                    to_state=AlertState.FALSE_POSITIVE,
                    comment="店内官方微信",
                    finding_rule="diversion.contact_id",
                    created_at=at(14),
                ),
            ]
        )
        _ = a3
        return World(s1.id, s2.id, region.id, c1.id, c2.id, c3.id)
