"""Customers who refused archiving: recorded, their messages kept and flagged."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from arrival import Late, append_items, deliveries
from simfixtures import chat, write_file_archive
from sqlalchemy import Engine, event, select

from audit.archive.consent import ConsentStats, apply_consent, withheld_windows
from audit.archive.contacts import apply_consent as record_answers
from audit.archive.keys import KeyRing, load_private_key
from audit.archive.sources import FileSource
from audit.archive.wecom_api import AgreeInfo
from audit.config import load_settings
from audit.pipeline import analyse, ingest, load_scanner, run
from audit.store.db import make_engine, session_scope
from audit.store.models import Customer, Finding, Message

T0 = dt.datetime(2025, 11, 17, tzinfo=dt.UTC)


def test_like_escapes_wildcards() -> None:
    from audit.archive.consent import _like

    assert _like("wm_a%b\\c") == "wm\\_a\\%b\\\\c"


def test_windows_from_events() -> None:
    h = dt.timedelta(hours=1)
    windows = withheld_windows(
        [(T0 + 3 * h, "agree"), (T0, "disagree"), (T0 + 5 * h, "disagree"), (T0 + h, "disagree")]
    )
    assert windows[0] == (T0, T0 + 3 * h)
    assert windows[1][0] == T0 + 5 * h and windows[1][1].year == 9999
    assert withheld_windows([(T0, "agree")]) == []


def _run(engine: Engine, tmp_path: Path, mode: str = "flag") -> None:
    cust = "wmCUSTOMERxyz"
    agree_ms = 1763344800000 + 30 * 60_000
    plains = [
        chat("m1", cust, "li.s001", 0, "我要投诉你们，打12315"),
        chat(
            "m2",
            cust,
            "li.s001",
            1,
            msgtype="disagree",
            userid=cust,
            disagree_time=1763344800000 + 60_000,
        ),
        chat("m3", cust, "li.s001", 2, "我要投诉你们，打12315"),
        chat("m4", "li.s001", cust, 3, "好的，加我微信 13800138000"),
        chat("m5", cust, "li.s001", 30, msgtype="agree", userid=cust, agree_time=agree_ms),
        chat("m6", cust, "li.s001", 31, "我要投诉你们，打12315"),
    ]
    archive, key = write_file_archive(tmp_path, plains)
    settings = load_settings(
        None, environ={}, overrides={"archive": {"workers": 1, "consent_mode": mode}}
    )
    run(
        settings,
        engine,
        FileSource(archive),
        KeyRing({1: load_private_key(key)}),
        load_scanner(settings),
    )


def test_messages_while_consent_withheld_are_flagged(engine: Engine, tmp_path: Path) -> None:
    _run(engine, tmp_path)
    with session_scope(engine) as session:
        flags = dict(session.execute(select(Message.msgid, Message.consent_withheld)).all())
        customer = session.scalars(select(Customer)).one()
        scanned = {
            m
            for (m,) in session.execute(
                select(Message.msgid).join(Finding, Finding.message_id == Message.id)
            )
        }
    assert flags == {"m1": False, "m2": False, "m3": True, "m4": True, "m5": False, "m6": False}
    assert customer.consent == "agree"  # the latest event
    assert {"m1", "m3", "m4", "m6"} <= scanned  # "flag" keeps them in the scan


def test_skip_scan_mode_keeps_flagged_messages_out_of_the_scanner(
    engine: Engine, tmp_path: Path
) -> None:
    _run(engine, tmp_path, "skip_scan")
    with session_scope(engine) as session:
        scanned = {
            m
            for (m,) in session.execute(
                select(Message.msgid).join(Finding, Finding.message_id == Message.id)
            )
        }
        assert session.scalar(select(Message).where(Message.msgid == "m3")) is not None
    assert "m3" not in scanned and "m4" not in scanned
    assert {"m1", "m6"} <= scanned


# --------------------------------------------------------------- incremental = full

CUSTOMERS = ("wm_a1", "wmB2", "wmb2", "wmC%3", "wmD4", "wmE5", "wmF6")
KNOWN = ("wm_a1", "wmD4")  # in the directory before their messages come: placed by id
START_MS = 1763344800000


def _consent_world(rng: random.Random) -> list[dict[str, Any]]:
    """Chats of several customers over three days, some refusing archiving (once, twice,
    agreeing again in between), their messages interleaved with the events."""
    plains: list[dict[str, Any]] = []
    for c, cust in enumerate(CUSTOMERS):
        staff = f"li.s00{c % 3}"
        for i in range(30):
            minute = rng.randrange(0, 3 * 24 * 60)
            sender, to = (cust, staff) if i % 2 else (staff, cust)
            plains.append(chat(f"{cust}-{i}", sender, to, minute, f"消息 {i}"))
        for j in range(rng.randrange(0, 4)):
            minute = rng.randrange(0, 3 * 24 * 60)
            kind = "disagree" if j % 2 == 0 else "agree"
            plains.append(
                chat(
                    f"{cust}-{kind}-{j}",
                    cust,
                    staff,
                    minute,
                    msgtype=kind,
                    userid=cust,
                    **{f"{kind}_time": START_MS + minute * 60_000},
                )
            )
    return plains


def _api_answers(n: int) -> list[AgreeInfo]:
    """What the check_*_agree API says between the pulls (seconds since the epoch)."""
    at = START_MS // 1000
    answers = {
        1: [AgreeInfo("li.s001", "wmD4", "disagree", at + 20 * 3600)],
        2: [AgreeInfo("li.s001", "wmD4", "agree", at + 40 * 3600)],
        3: [AgreeInfo("li.s000", "wm_a1", "disagree", at + 60 * 3600)],
    }
    return answers.get(n, [])


def _consent_rows(engine: Engine) -> tuple[dict[str, bool], dict[str, tuple[str, Any]]]:
    with session_scope(engine) as session:
        flags = dict(session.execute(select(Message.msgid, Message.consent_withheld)).all())
        states = {
            c.external_userid: (c.consent, c.consent_changed_at)
            for c in session.scalars(select(Customer))
        }
    return flags, states


def _arrivals(
    engine: Engine, tmp_path: Path, full: bool
) -> list[tuple[dict[str, bool], dict[str, tuple[str, Any]]]]:
    """The world delivered shuffled in four pulls, the API answering in between; the
    consent flags and states after each run, consent checked in full or incrementally."""
    rng = random.Random(3)
    source_dir = tmp_path / ("full" if full else "incremental")
    source_dir.mkdir()
    written, key = write_file_archive(source_dir, _consent_world(rng))
    items = [json.loads(line) for line in written.read_text(encoding="utf-8").splitlines()]
    parts = deliveries(items, Late((), ()), pulls=4, seed=11)
    settings = load_settings(None, environ={}, overrides={"archive": {"workers": 1}})
    scanner = load_scanner(settings)
    keys = KeyRing({1: load_private_key(key)})
    archive = source_dir / "arrivals.jsonl"
    with session_scope(engine) as session:
        session.add_all(Customer(external_userid=c) for c in KNOWN)
    out = []
    for n, part in enumerate(parts):
        append_items(archive, part)
        with session_scope(engine) as session:
            record_answers(session, _api_answers(n))
        report = ingest(settings, engine, FileSource(archive), keys)
        analyse(settings, engine, scanner, report=report, full_scan=full)
        out.append(_consent_rows(engine))
    return out


def test_incremental_consent_flags_what_a_full_pass_flags_on_shuffled_arrival(
    db_url: str, empty_again: Callable[[str], None], tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    full = _arrivals(engine, tmp_path, full=True)
    engine.dispose()
    empty_again(db_url)
    engine = make_engine(db_url)
    incremental = _arrivals(engine, tmp_path, full=False)
    engine.dispose()
    for n, (got, expected) in enumerate(zip(incremental, full, strict=True)):
        assert got == expected, f"after pull {n}"
    flags, states = incremental[-1]
    assert 20 < sum(flags.values()) < len(flags) - 100  # the world has both, plenty
    # the API's answers count: the last one stands, another was overtaken by a message
    assert states["wm_a1"] == ("disagree", T0 + dt.timedelta(hours=62))
    assert states["wmD4"][0] == "disagree"


def test_consent_with_nothing_new_reads_no_message(engine: Engine, tmp_path: Path) -> None:
    _run(engine, tmp_path)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        stats = apply_consent(engine)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert stats == ConsentStats()
    assert statements and not [s for s in statements if "messages" in s]

    # an answer of the API about one customer: that customer's messages are read again
    with session_scope(engine) as session:
        record_answers(
            session, [AgreeInfo("li.s001", "wmCUSTOMERxyz", "disagree", START_MS // 1000 + 31 * 60)]
        )
    stats = apply_consent(engine)
    assert stats.customers == 1 and stats.flagged == 1  # m6, sent after that answer
    with session_scope(engine) as session:
        flags = dict(session.execute(select(Message.msgid, Message.consent_withheld)).all())
    assert flags["m6"] is True
    assert apply_consent(engine) == ConsentStats()  # settled


def test_an_answer_overtaken_by_a_later_message_is_looked_at_again(
    engine: Engine, tmp_path: Path
) -> None:
    """The customer refused (archive), the API then said "agree" at minute 5, and a later
    agree message (minute 30) arrives with a message of minute 20: the pass that sees them
    still counts the API's answer (withheld 1..5 only); the next one counts the message
    instead (withheld 1..30) and flags the message of minute 20, as a full pass would."""
    cust, staff = "wmCUSTOMERxyz", "li.s001"
    plains = [
        chat("m1", cust, staff, 0, "你好"),
        chat(
            "m2", cust, staff, 1, msgtype="disagree", userid=cust, disagree_time=START_MS + 60_000
        ),
        chat("m3", staff, cust, 2, "好的"),
        chat("m5", cust, staff, 30, msgtype="agree", userid=cust, agree_time=START_MS + 1_800_000),
        chat("m7", staff, cust, 20, "还在吗"),
        chat("m6", cust, staff, 31, "在"),
    ]
    written, key = write_file_archive(tmp_path, plains)
    items = [json.loads(line) for line in written.read_text(encoding="utf-8").splitlines()]
    settings = load_settings(None, environ={}, overrides={"archive": {"workers": 1}})
    scanner, keys = load_scanner(settings), KeyRing({1: load_private_key(key)})
    archive = tmp_path / "arrivals.jsonl"
    append_items(archive, items[:3])
    run(settings, engine, FileSource(archive), keys, scanner)
    with session_scope(engine) as session:
        record_answers(session, [AgreeInfo(staff, cust, "agree", START_MS // 1000 + 300)])
    append_items(archive, items[3:])
    run(settings, engine, FileSource(archive), keys, scanner)
    flags, _ = _consent_rows(engine)
    assert flags == {"m1": False, "m2": False, "m3": True, "m5": False, "m7": False, "m6": False}
    apply_consent(engine)
    flags, states = _consent_rows(engine)
    assert flags["m7"] is True and not flags["m6"]
    assert states[cust] == ("agree", T0 + dt.timedelta(hours=2, minutes=30))
    assert apply_consent(engine) == ConsentStats()  # settled now
