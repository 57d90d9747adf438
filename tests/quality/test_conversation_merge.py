"""Late messages: one that bridges two conversations merges them, carrying over findings,
alerts and their reviews; one that comes first moves the start and key; one far away starts
a conversation of its own. Hand-written chats through the whole pipeline, on both backends."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from arrival import append_items
from simfixtures import chat, write_file_archive
from sqlalchemy import Engine, delete, select, update

from audit.archive.keys import KeyRing, load_private_key
from audit.archive.sources import FileSource
from audit.config import load_settings
from audit.pipeline import RunReport, analyse, load_scanner, run
from audit.quality.conversations import CANONICAL, runs
from audit.quality.merge import ACTION
from audit.store.access import Principal
from audit.store.db import session_scope
from audit.store.models import (
    Alert,
    AlertState,
    AuditLog,
    Checkpoint,
    Conversation,
    Finding,
    Message,
    Review,
    Score,
)
from audit.store.results import rekeyed, result_rows
from audit.store.reviews import review_alerts

STAFF, OTHER, CUSTOMER = "li.s001", "wang.s002", "wmCUSTOMERxyz"
PHONE = "好的，加我微信 13800138000"  # a privacy and a diversion finding, high severity
BASE_MS = 1763344800000  # what simfixtures.chat counts its minutes from


def _deliver(tmp_path: Path, engine: Engine, plains: list[dict[str, Any]]) -> RunReport:
    """Encrypt ``plains`` (the same key every time), append them to the archive, run."""
    batch = tmp_path / f"batch{len(list(tmp_path.glob('batch*')))}"
    batch.mkdir()
    path, key = write_file_archive(batch, plains)
    items = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    append_items(tmp_path / "archive.jsonl", items)
    settings = load_settings(None, environ={}, overrides={"archive": {"workers": 1}})
    return run(
        settings,
        engine,
        FileSource(tmp_path / "archive.jsonl"),
        KeyRing({1: load_private_key(key)}),
        load_scanner(settings),
    )


def _conversations(engine: Engine) -> dict[str, tuple[int, str, int, list[str]]]:
    """By key: (id, thread, message_count, msgids in time order)."""
    with session_scope(engine) as session:
        out = {}
        for conv in session.scalars(select(Conversation)):
            msgids = session.scalars(
                select(Message.msgid)
                .where(Message.conversation_id == conv.id)
                .order_by(Message.msgtime)
            ).all()
            out[conv.key] = (conv.id, conv.thread, conv.message_count, list(msgids))
        return out


def test_runs_split_beyond_the_idle_gap_whatever_the_order() -> None:
    t = dt.datetime(2025, 11, 17, tzinfo=dt.UTC)
    m = dt.timedelta(minutes=1)
    spans = [(t, t + 10 * m, "a"), (t + 41 * m, t + 41 * m, "b"), (t + 72 * m, t + 80 * m, "c")]
    assert runs(spans, 30 * m) == [["a"], ["b"], ["c"]]
    assert runs(spans[::-1], 30 * m) == [["a"], ["b"], ["c"]]
    # exactly the gap apart still joins
    assert runs(spans, 31 * m) == [["a", "b", "c"]]
    assert runs([spans[2], spans[0], spans[1]], 31 * m) == [["a", "b", "c"]]
    # a span reaching past the next one's start keeps the run open to its own end
    assert runs(
        [(t, t + 60 * m, "a"), (t + 5 * m, t + 5 * m, "b"), (t + 85 * m, t, "c")], 30 * m
    ) == [["a", "b", "c"]]


def test_rekeyed_moves_only_quality_keys_of_merged_conversations() -> None:
    moves = {7: 3}
    assert rekeyed("quality:low_score:7", moves) == "quality:low_score:3"
    assert rekeyed("quality:sla_streak:12:7", moves) == "quality:sla_streak:12:3"
    assert rekeyed("quality:sla_streak:7:8", moves) == "quality:sla_streak:7:8"
    assert rekeyed("finding:m7:privacy.phone:7", moves) == "finding:m7:privacy.phone:7"


def test_bridging_message_merges_with_findings_alerts_and_reviews(
    engine: Engine, tmp_path: Path
) -> None:
    first = [
        chat("a1", CUSTOMER, STAFF, 0, "你好，请问套餐怎么改"),
        chat("a2", STAFF, CUSTOMER, 10, "您好，可以的"),
        chat("b1", CUSTOMER, STAFF, 50, "还有一个问题"),
        chat("b2", STAFF, CUSTOMER, 60, PHONE),
    ]
    _deliver(tmp_path, engine, first)
    before = _conversations(engine)
    thread = f"single:{STAFF}:{CUSTOMER}"
    assert sorted(v[3] for v in before.values()) == [["a1", "a2"], ["b1", "b2"]]
    first_id = before[f"{thread}:{BASE_MS}"][0]
    later_id = before[f"{thread}:{BASE_MS + 50 * 60_000}"][0]
    with session_scope(engine) as session:
        b_alerts = session.scalars(
            select(Alert).where(Alert.conversation_id == later_id).order_by(Alert.id)
        ).all()
        assert [a.kind for a in b_alerts].count("finding") >= 1
        judged = b_alerts[0].id
        review_alerts(session, Principal.operator(), [judged], "confirm")
        alert_ids = {a.id for a in b_alerts}

    report = _deliver(tmp_path, engine, [chat("x", CUSTOMER, STAFF, 30, "在吗")])
    assert report.conversations is not None and report.conversations.merged == 1

    after = _conversations(engine)
    assert list(after) == [f"{thread}:{BASE_MS}"]
    conv_id, _, count, msgids = after[f"{thread}:{BASE_MS}"]
    assert conv_id == first_id and count == 5 and msgids == ["a1", "a2", "x", "b1", "b2"]
    with session_scope(engine) as session:
        assert session.get(Conversation, later_id) is None
        findings = session.scalars(select(Finding.conversation_id)).all()
        assert findings and set(findings) == {first_id}
        alerts = session.scalars(select(Alert)).all()
        finding_alerts = {a.id for a in alerts if a.kind == "finding"}
        assert finding_alerts and finding_alerts <= alert_ids  # carried over, not raised again
        assert {a.conversation_id for a in alerts} == {first_id}
        assert len({a.dedupe_key for a in alerts}) == len(alerts)
        kept = session.get(Alert, judged)
        assert kept is not None and kept.state == AlertState.CONFIRMED
        assert session.scalars(select(Review.alert_id)).all() == [judged]
        scores = session.scalars(select(Score.conversation_id)).all()
        assert scores == [first_id]  # the whole scored once, the merged one's score gone
        trail = session.scalars(select(AuditLog).where(AuditLog.action == ACTION)).all()
        later_key = f"{thread}:{BASE_MS + 50 * 60_000}"
        assert [(t.target_id, t.detail) for t in trail] == [
            (str(first_id), {"merged": [later_id], "keys": [later_key]})
        ]


def test_quality_alerts_of_merged_conversations_do_not_duplicate(
    engine: Engine, tmp_path: Path
) -> None:
    # two conversations where the customer is left unanswered: a quality alert each
    first = [
        chat("a1", CUSTOMER, STAFF, 0, "你们服务太差了，我要投诉"),
        chat("b1", CUSTOMER, STAFF, 50, "你们服务太差了，我要投诉"),
    ]
    _deliver(tmp_path, engine, first)
    with session_scope(engine) as session:
        quality = session.scalars(select(Alert.dedupe_key).where(Alert.kind == "quality")).all()
    causes = sorted(k.rsplit(":", 1)[0] for k in quality)
    assert causes and len(causes) == 2 * len(set(causes))  # the same causes in both
    _deliver(tmp_path, engine, [chat("x", CUSTOMER, STAFF, 25, "人呢")])
    with session_scope(engine) as session:
        (conv_id,) = session.scalars(select(Conversation.id)).all()
        rows = session.execute(
            select(Alert.dedupe_key, Alert.conversation_id).where(Alert.kind == "quality")
        ).all()
    keys = [k for k, _ in rows]
    assert len(keys) == len(set(keys))  # one alert per cause of the merged conversation
    assert {c for _, c in rows} == {conv_id}
    assert all(k.endswith(f":{conv_id}") for k in keys)


def test_late_first_message_moves_start_and_key_only(engine: Engine, tmp_path: Path) -> None:
    _deliver(
        tmp_path,
        engine,
        [chat("a1", CUSTOMER, STAFF, 20, "你好"), chat("a2", STAFF, CUSTOMER, 25, "您好")],
    )
    ((key, (conv_id, thread, _, _)),) = _conversations(engine).items()
    assert key == f"{thread}:{BASE_MS + 20 * 60_000}"
    report = _deliver(tmp_path, engine, [chat("a0", CUSTOMER, STAFF, 0, "在吗")])
    assert report.conversations is not None and report.conversations.merged == 0
    # 20 minutes before its start: the same conversation, now starting earlier
    after = _conversations(engine)
    assert after == {f"{thread}:{BASE_MS}": (conv_id, thread, 3, ["a0", "a1", "a2"])}
    # one more, more than the gap before the new start: a conversation of its own
    _deliver(tmp_path, engine, [chat("z", CUSTOMER, STAFF, -31, "早")])
    after = _conversations(engine)
    assert sorted(v[3] for v in after.values()) == [["a0", "a1", "a2"], ["z"]]
    assert after[f"{thread}:{BASE_MS}"][0] == conv_id


def test_internal_conversation_belongs_to_who_wrote_first(engine: Engine, tmp_path: Path) -> None:
    from audit.store.models import Staff

    with session_scope(engine) as session:
        session.add_all([Staff(userid=STAFF, name="李"), Staff(userid=OTHER, name="王")])
    _deliver(tmp_path, engine, [chat("i2", STAFF, OTHER, 10, "收到")])
    with session_scope(engine) as session:
        ids = {s.userid: s.id for s in session.scalars(select(Staff))}
        assert session.scalars(select(Conversation.staff_id)).all() == [ids[STAFF]]
    _deliver(tmp_path, engine, [chat("i1", OTHER, STAFF, 0, "今天的报表发一下")])
    with session_scope(engine) as session:
        assert session.scalars(select(Conversation.staff_id)).all() == [ids[OTHER]]


def test_conversations_left_unmerged_by_an_earlier_version_are_merged_once(
    engine: Engine, tmp_path: Path
) -> None:
    plains = [
        chat("a1", CUSTOMER, STAFF, 0, "你好，请问套餐怎么改"),
        chat("a2", STAFF, CUSTOMER, 10, "您好，可以的"),
        chat("x", CUSTOMER, STAFF, 30, "在吗"),
        chat("b1", CUSTOMER, STAFF, 50, "还有一个问题"),
        chat("b2", STAFF, CUSTOMER, 60, PHONE),
    ]
    _deliver(tmp_path, engine, plains)
    expected = result_rows(engine)
    # what an earlier version left when "x" came late: it joined the first conversation,
    # which kept the key of its first message to arrive, and the second stayed apart
    thread = f"single:{STAFF}:{CUSTOMER}"
    with session_scope(engine) as session:
        first = session.scalars(select(Conversation)).one()
        second = Conversation(
            key=f"{thread}:{BASE_MS + 55 * 60_000}",
            thread=thread,
            kind=first.kind,
            roomid=None,
            started_at=first.ended_at - dt.timedelta(minutes=10),
            ended_at=first.ended_at,
            message_count=2,
            staff_messages=1,
            customer_messages=1,
        )
        session.add(second)
        session.flush()
        for table in (Message, Finding, Alert):
            session.execute(
                update(table)
                .where(table.conversation_id == first.id, table.id.in_(_ids_of(session, table)))
                .values(conversation_id=second.id)
            )
        first.key = f"{thread}:{BASE_MS + 10 * 60_000}"
        first.ended_at = second.started_at - dt.timedelta(minutes=20)
        first.message_count, first.staff_messages, first.customer_messages = 3, 1, 2
        session.execute(delete(Score))
        session.execute(delete(Checkpoint).where(Checkpoint.source == CANONICAL))
    settings = load_settings(None, environ={}, overrides={"archive": {"workers": 1}})
    report = analyse(settings, engine, load_scanner(settings))
    assert report.conversations is not None and report.conversations.merged == 1
    assert result_rows(engine) == expected
    again = analyse(settings, engine, load_scanner(settings))  # once: nothing more to do
    assert again.conversations is not None and again.conversations.merged == 0


def _ids_of(session: Any, table: Any) -> list[int]:
    """Ids of the rows of ``table`` that belong to the messages b1 and b2."""
    message_ids = select(Message.id).where(Message.msgid.in_(["b1", "b2"]))
    if table is Message:
        return list(session.scalars(message_ids))
    if table is Finding:
        return list(session.scalars(select(Finding.id).where(Finding.message_id.in_(message_ids))))
    findings = select(Finding.id).where(Finding.message_id.in_(message_ids))
    return list(session.scalars(select(Alert.id).where(Alert.finding_id.in_(findings))))
