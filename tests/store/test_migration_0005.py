"""Migration 0005 on a database built at 0004 with duplicate alerts, on both backends.

The 0004 rows are written with plain table definitions of that schema (the models are head's).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from migrated import database_at
from sqlalchemy import JSON, Engine, column, insert, select, table, text
from sqlalchemy.exc import IntegrityError

from audit.store.db import migrate
from audit.store.models import Alert, AuditLog, Review

T0 = dt.datetime(2025, 11, 17, 2, 0, tzinfo=dt.UTC)
ID_TEXT = "您的身份证110101199003074514，手机13800138000"
ID_AT, PHONE_AT = ID_TEXT.index("1101"), ID_TEXT.index("1380")

_alerts_0004 = table(
    "alerts",
    *(
        column(c)
        for c in (
            "id",
            "dedupe_key",
            "kind",
            "category",
            "severity",
            "state",
            "title",
            "finding_id",
            "conversation_id",
            "org_unit_id",
            "staff_id",
            "assignee_id",
            "created_at",
            "updated_at",
        )
    ),
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine_0004(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Engine]:
    """An empty database migrated to 0004 only."""
    yield from database_at(request, tmp_path, "0004")


def _seed(engine: Engine) -> None:
    """Two conversations. Message 1 (staff, conversation 1): an ID number (high) and a phone
    (medium), each with its alert, the phone's confirmed; the conversation's score is fatal
    for the ID and has its own "quality:fatal" alert, escalated later. Message 2: one abuse
    alert. Conversation 2: a fatal score from a metric (no finding) and a low-score alert."""
    json_t = JSON()
    rows: dict[str, list[dict[str, Any]]] = {
        "scan_runs": [
            dict(id=1, started_at=T0, mode="full", wordlist_hash="h", scanner_version="1")
        ],
        "envelopes": [
            dict(id=i, source="sim", seq=i, msgid=f"m{i}", publickey_ver=1, state="decrypted")
            for i in (1, 2)
        ],
        "conversations": [
            dict(
                id=c,
                key=f"single:s:c{c}:0",
                thread=f"single:s:c{c}",
                kind="single",
                started_at=T0,
                ended_at=T0,
            )
            for c in (1, 2)
        ],
        "messages": [
            dict(
                id=i,
                envelope_id=i,
                msgid=f"m{i}",
                seq=i,
                action="send",
                msgtype="text",
                sender="li.s001",
                sender_kind="staff",
                msgtime=T0,
                text=body,
                conversation_id=i,
            )
            for i, body in ((1, ID_TEXT), (2, "你真是个傻子"))
        ],
        "findings": [
            dict(
                id=1,
                message_id=1,
                category="privacy",
                rule="privacy.resident_id",
                severity="high",
                start=ID_AT,
                end=ID_AT + 18,
                matched="110101199003074514",
            ),
            dict(
                id=2,
                message_id=1,
                category="privacy",
                rule="privacy.phone",
                severity="medium",
                start=PHONE_AT,
                end=PHONE_AT + 11,
                matched="13800138000",
            ),
            dict(
                id=3,
                message_id=2,
                category="abuse",
                rule="abuse.sha_zi",
                severity="high",
                start=4,
                end=6,
                matched="傻子",
            ),
        ],
        "scores": [
            dict(
                id=1,
                conversation_id=1,
                scorecard_version="card@1",
                score=0.0,
                deductions=[
                    {
                        "item": "id_number_leak",
                        "label": "员工发送客户身份证号码",
                        "points": 0.0,
                        "reason": "1 finding: privacy.resident_id (staff); fatal: the score is 0",
                        "fatal": True,
                    }
                ],
                metrics={"fatal": True},
            ),
            dict(
                id=2,
                conversation_id=2,
                scorecard_version="card@1",
                score=0.0,
                deductions=[
                    {
                        "item": "silent",
                        "label": "x",
                        "points": 0.0,
                        "reason": "messages = 0",
                        "fatal": True,
                    }
                ],
                metrics={"fatal": True},
            ),
        ],
    }
    for row in rows["messages"]:
        row |= dict(tolist=[], roomid="", raw={}, recalled=False, consent_withheld=False)
    for row in rows["envelopes"]:
        row |= dict(encrypt_random_key="", encrypt_chat_msg="", raw={}, attempts=0, received_at=T0)
    for row in rows["conversations"]:
        row |= dict(message_count=1, staff_messages=1, customer_messages=0)
    for row in rows["scan_runs"]:
        row |= dict(model_versions={}, scorecard_version="", messages_scanned=2, findings_count=3)
    for row in rows["findings"]:
        row |= dict(conversation_id=row["message_id"], scan_run_id=1, score=1.0, explanation="")
        row["created_at"] = T0
    for row in rows["scores"]:
        row["created_at"] = T0
    alerts = [
        (1, f"finding:m1:privacy.resident_id:{ID_AT}", "finding", "privacy", "high", "open",
         "隐私泄露：110101199003074514", 1, 1),
        (2, f"finding:m1:privacy.phone:{PHONE_AT}", "finding", "privacy", "medium", "confirmed",
         "隐私泄露：13800138000", 2, 1),
        (3, "quality:fatal:1", "quality", "quality", "critical", "escalated",
         "服务质量：致命项（员工发送客户身份证号码）", None, 1),
        (4, "finding:m2:abuse.sha_zi:4", "finding", "abuse", "high", "open", "辱骂：傻子", 3, 2),
        (5, "quality:fatal:2", "quality", "quality", "critical", "open", "服务质量：致命项（x）",
         None, 2),
        (6, "quality:low_score:2", "quality", "quality", "medium", "open", "服务质量：会话得分 0",
         None, 2),
    ]  # fmt: skip
    with engine.begin() as conn:
        for name in ("scan_runs", "envelopes", "conversations", "messages", "findings", "scores"):
            cols = sorted({k for r in rows[name] for k in r})
            json_cols = {"tolist", "raw", "model_versions", "deductions", "metrics"}
            t = table(name, *(column(c, json_t) if c in json_cols else column(c) for c in cols))
            conn.execute(insert(t), rows[name])
        conn.execute(
            insert(_alerts_0004),
            [
                dict(
                    id=i,
                    dedupe_key=k,
                    kind=kind,
                    category=cat,
                    severity=sev,
                    state=state,
                    title=title,
                    finding_id=f,
                    conversation_id=c,
                    created_at=T0,
                    updated_at=T0,
                )
                for i, k, kind, cat, sev, state, title, f, c in alerts
            ],
        )
        reviews = [
            (1, 2, "confirm", "open", "confirmed", T0 + dt.timedelta(hours=1)),
            (2, 3, "escalate", "open", "escalated", T0 + dt.timedelta(hours=2)),
        ]
        conn.execute(
            insert(Review),
            [
                dict(id=i, alert_id=a, action=act, from_state=fr, to_state=to, comment="c",
                     created_at=at)
                for i, a, act, fr, to, at in reviews
            ],
        )  # fmt: skip
        conn.execute(
            insert(AuditLog),
            [
                dict(at=at, actor="u", action="alert.review", target_type="alert",
                     target_id=str(a), detail={"action": act})
                for _, a, act, _, _, at in reviews
            ],
        )  # fmt: skip
    if engine.dialect.name == "postgresql":  # explicit ids: move the sequences past them
        with engine.begin() as conn:
            for name in ("alerts", "reviews", "findings", "messages", "scores", "audit_log"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"(SELECT max(id) FROM {name}))"
                    )
                )


def test_duplicates_are_merged_keeping_reviews_and_the_trail(engine_0004: Engine) -> None:
    engine = engine_0004
    _seed(engine)
    migrate(engine)
    with engine.connect() as conn:
        alerts = {a.id: a for a in conn.execute(select(Alert)).all()}
        reviews = dict(conn.execute(select(Review.id, Review.alert_id)).all())
        trail = conn.execute(
            select(AuditLog.action, AuditLog.target_id, AuditLog.detail).order_by(AuditLog.id)
        ).all()
    assert sorted(alerts) == [1, 4, 5, 6]
    survivor = alerts[1]
    assert survivor.message_id == 1 and survivor.dedupe_key == "finding:m1:privacy"
    assert survivor.finding_id == 1  # the ID number leads: the most severe
    assert survivor.severity == "critical"  # the fatal scorecard item is this incident
    assert survivor.state == "escalated"  # the newest review of the merged group
    assert survivor.title == "隐私泄露：[身份证号]"
    assert survivor.causes == [
        "scorecard:fatal:id_number_leak",
        f"merged:finding:m1:privacy.phone:{PHONE_AT}",
        "merged:quality:fatal:1",
    ]
    assert reviews == {1: 1, 2: 1}
    # the old trail rows are untouched; one added row per merged alert says where it went
    assert [(a, t) for a, t, _ in trail] == [
        ("alert.review", "2"),
        ("alert.review", "3"),
        ("alert.merge", "2"),
        ("alert.merge", "3"),
    ]
    assert [d["into"] for a, _, d in trail if a == "alert.merge"] == [1, 1]
    # untouched incidents: re-keyed, masked, with their message
    assert alerts[4].dedupe_key == "finding:m2:abuse" and alerts[4].message_id == 2
    assert alerts[4].title == "辱骂：傻子" and alerts[4].causes == []
    # a fatal item caused by no finding keeps its own alert
    assert alerts[5].dedupe_key == "quality:fatal:2" and alerts[5].message_id is None
    assert alerts[6].state == "open"
    # from now on the database refuses a second alert for an incident
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            insert(Alert).values(
                dedupe_key="x", kind="finding", category="privacy", severity="low",
                state="open", title="x", message_id=1, causes=[], created_at=T0, updated_at=T0,
            )
        )  # fmt: skip
