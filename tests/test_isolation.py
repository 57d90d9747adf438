"""A message that breaks a stage after decryption is set aside for that stage, with the reason;
the stage goes on with the others, ``audit failures`` lists it, ``audit retry-failed`` tries
it again.

The poison is real: the database refuses one item's write (a trigger raising an error), which
is what a value no check foresaw looks like to a stage.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from archive_items import MSGTIME, keyring, line, plaintext, write_key
from archive_items import item as encrypted_item
from click.testing import CliRunner
from sqlalchemy import Engine, select, text

from audit.archive.sources import FileSource
from audit.cli import cli
from audit.config import load_settings
from audit.isolation import release
from audit.pipeline import analyse, ingest, load_scanner
from audit.scan.scanner import Scanner
from audit.store.db import make_engine, session_scope
from audit.store.models import Alert, Finding, Message, Score, StageFailure
from audit.store.results import result_rows

ROOT = Path(__file__).resolve().parents[1]
MINUTE = 60_000
# (msgid, from, to, text, minute): two one-to-one conversations, with findings and alerts
CHAT = [
    ("m1", "li.s001", "wmA", "您好，请问有什么可以帮您", 0),
    ("m2", "wmA", "li.s001", "我要去12315投诉你们", 1),
    ("m3", "li.s001", "wmA", "加我微信 wx123456 私下转账给我", 2),
    ("m4", "li.s002", "wmB", "您好", 0),
    ("m5", "wmB", "li.s002", "我要去12315投诉你们", 1),
]


def _archive(tmp_path: Path, chat: list[tuple[str, str, str, str, int]] = CHAT) -> Path:
    rng = random.Random(21)
    path = tmp_path / "chat.jsonl"
    path.write_bytes(
        b"".join(
            line(
                encrypted_item(
                    seq,
                    msgid,
                    plaintext(
                        msgid,
                        content=body,
                        **{"from": sender, "tolist": [to], "msgtime": MSGTIME + k * MINUTE},
                    ),
                    rng,
                )
            )
            for seq, (msgid, sender, to, body, k) in enumerate(chat, 1)
        )
    )
    return path


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return load_scanner(load_settings(None, environ={}, overrides={}))


def _settings() -> Any:
    # two scoring processes, a conversation a batch: a batch the database refuses is scored
    # again in line, isolated
    return load_settings(
        None,
        environ={},
        overrides={"archive": {"workers": 1}, "quality": {"workers": 2, "batch_size": 1}},
    )


def _refuse(conn: Any, event: str, condition: str) -> None:
    """Make the database refuse a write matching ``condition`` (SQL over ``NEW``)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            f"CREATE TRIGGER poison {event} WHEN {condition} "
            "BEGIN SELECT RAISE(ABORT, 'poison item'); END"
        )
        return
    conn.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
        f"IF {condition.replace('%', '%%')} THEN RAISE EXCEPTION 'poison item'; END IF; "
        "RETURN NEW; END $$ LANGUAGE plpgsql"
    )
    conn.exec_driver_sql(f"CREATE TRIGGER poison {event} FOR EACH ROW EXECUTE FUNCTION poison()")


def _accept(conn: Any, table: str) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS poison")
    else:
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS poison ON {table}")
        conn.exec_driver_sql("DROP FUNCTION IF EXISTS poison()")


@pytest.fixture
def refusal(engine: Engine) -> Iterator[Callable[[str, str, str], None]]:
    """``refuse(table, event, condition)``; the trigger never outlives the test (the
    PostgreSQL database is shared by the session's tests)."""
    tables: list[str] = []

    def refuse(table: str, event: str, condition: str) -> None:
        tables.append(table)
        with engine.begin() as conn:
            _refuse(conn, event, condition)

    yield refuse
    with engine.begin() as conn:
        for table in tables:
            _accept(conn, table)


def _scalar(engine: Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def _scalars(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql)).scalars())


def _failures(engine: Engine) -> list[tuple[str, str, str]]:
    with session_scope(engine) as session:
        return [
            (f.stage, f.item, f.error)
            for f in session.scalars(select(StageFailure).order_by(StageFailure.id))
        ]


def _alert_keys(engine: Engine) -> set[str]:
    with session_scope(engine) as session:
        return set(session.scalars(select(Alert.dedupe_key)))


# stage: (table, trigger event, condition, the item's name as SQL)
CASES: dict[str, tuple[str, str, str, str]] = {
    "conversations": (
        "messages",
        "BEFORE UPDATE OF conversation_id ON messages",
        "NEW.msgid = 'm3' AND NEW.conversation_id IS NOT NULL",
        "SELECT 'm3'",
    ),
    "scan": (
        "messages",
        "BEFORE UPDATE OF scanned_run_id ON messages",
        "NEW.msgid = 'm3' AND NEW.scanned_run_id IS NOT NULL",
        "SELECT 'm3'",
    ),
    "scores": (
        "scores",
        "BEFORE INSERT ON scores",
        "NEW.conversation_id = (SELECT conversation_id FROM messages WHERE msgid = 'm5')",
        "SELECT conversation_id FROM messages WHERE msgid = 'm5'",
    ),
    "alerts": (
        "alerts",
        "BEFORE INSERT ON alerts",
        "NEW.dedupe_key = 'finding:m3:diversion'",
        "SELECT f.id FROM findings f JOIN messages m ON m.id = f.message_id "
        "WHERE m.msgid = 'm3' AND f.category = 'diversion'",
    ),
    "quality_alerts": (
        "alerts",
        "BEFORE INSERT ON alerts",
        "NEW.dedupe_key LIKE 'quality:negative:%'",
        "SELECT s.id FROM scores s JOIN messages m ON m.conversation_id = s.conversation_id "
        "WHERE m.msgid = 'm5'",
    ),
}


def _effect(engine: Engine, stage: str) -> bool:
    """Whether the poison item's work of ``stage`` is in the database."""
    with session_scope(engine) as session:
        m3 = session.scalars(select(Message).where(Message.msgid == "m3")).one()
        m5 = session.scalars(select(Message).where(Message.msgid == "m5")).one()
        if stage == "conversations":
            return m3.conversation_id is not None
        if stage == "scan":
            return m3.scanned_run_id is not None and bool(
                session.scalars(select(Finding.id).where(Finding.message_id == m3.id)).all()
            )
        if stage == "scores":
            return bool(
                session.scalars(
                    select(Score.id).where(Score.conversation_id == m5.conversation_id)
                ).all()
            )
    keys = _alert_keys(engine)
    if stage == "alerts":
        return "finding:m3:diversion" in keys
    return any(k.startswith("quality:negative:") for k in keys)


# the work that needs the poison item's: no alert for a message not scanned, and so on
DEPENDS = {"scan": {"alerts"}, "scores": {"quality_alerts"}}
# an alert is one incident (message and category): every finding of the refused incident is
# set aside, and so is the fatal scorecard cause that would be recorded on the same alert
ALSO_SET_ASIDE = {"alerts": {"quality_alerts": 1}}


@pytest.mark.parametrize("stage", list(CASES))
def test_poison_item_is_set_aside_and_the_stage_goes_on(
    engine: Engine,
    tmp_path: Path,
    scanner: Scanner,
    refusal: Callable[[str, str, str], None],
    stage: str,
) -> None:
    table, event, condition, item_sql = CASES[stage]
    settings = _settings()
    refusal(table, event, condition)
    report = ingest(settings, engine, FileSource(_archive(tmp_path)), keyring())
    analyse(settings, engine, scanner, report=report)  # no exception escapes
    items = {str(i) for i in _scalars(engine, item_sql)}
    assert report.set_aside == {stage: len(items), **ALSO_SET_ASIDE.get(stage, {})}
    failures = _failures(engine)
    assert {(s, i) for s, i, _ in failures if s == stage} == {(stage, i) for i in items}
    assert all("poison item" in error for _, _, error in failures)
    assert not _effect(engine, stage)
    # the others went on: every other stage did its work, and the sibling items theirs
    for other in set(CASES) - {stage} - DEPENDS.get(stage, set()):
        assert _effect(engine, other), other
    assert "finding:m5:complaint" in _alert_keys(engine)

    # the database takes it now: retry-failed tries it again
    with engine.begin() as conn:
        _accept(conn, table)
    released = release(engine)
    again = analyse(settings, engine, scanner)
    assert released == len(failures) and again.set_aside == {}
    assert _failures(engine) == []
    assert _effect(engine, stage)


class _CrashingReader(Scanner):
    """Reading a text that holds ``MARK`` ends the reading process at once, as a crash in a
    native library would."""

    MARK = "私下转账"  # m3's
    parent = os.getpid()

    def scan_many(
        self, texts: Sequence[str], roles: Sequence[str | None] | None = None
    ) -> list[list[Any]]:
        if any(self.MARK in t for t in texts):
            assert os.getpid() != self.parent, "read in line: the test needs forked readers"
            os.kill(os.getpid(), signal.SIGKILL)
        return super().scan_many(texts, roles)


def test_a_message_whose_reading_kills_the_reader_is_set_aside(
    engine: Engine, tmp_path: Path
) -> None:
    settings = load_settings(
        None, environ={}, overrides={"archive": {"workers": 1}, "scan": {"workers": 2}}
    )
    crashing = _CrashingReader.from_directory(ROOT / "wordlists")
    report = ingest(settings, engine, FileSource(_archive(tmp_path)), keyring())
    analyse(settings, engine, crashing, report=report)  # neither hangs nor raises
    assert report.set_aside == {"scan": 1}
    [(stage, item, error)] = _failures(engine)
    assert (stage, item) == ("scan", "m3")
    assert error.startswith("BrokenProcessPool: ")
    assert not _effect(engine, "scan")
    for other in set(CASES) - {"scan", "alerts"}:
        assert _effect(engine, other), other
    assert "finding:m5:complaint" in _alert_keys(engine)


def test_audit_failures_lists_what_a_stage_set_aside(
    engine: Engine, db_url: str, tmp_path: Path, refusal: Callable[[str, str, str], None]
) -> None:
    table, event, condition, _ = CASES["scores"]
    refusal(table, event, condition)
    key = write_key(tmp_path / "v1.pem")
    runner = CliRunner()
    path = _archive(tmp_path)
    result = runner.invoke(
        cli,
        ["--db", db_url, "run", "--source", "file", "--path", str(path), "--key", f"1={key}"],
    )
    assert result.exit_code == 0, result.output
    conv = _scalar(engine, "SELECT conversation_id FROM messages WHERE msgid = 'm5'")
    result = runner.invoke(cli, ["--db", db_url, "failures"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "0 failed envelope(s)"
    assert lines[1] == "1 item(s) set aside by later stages"
    assert lines[2].startswith(f"scores x1 {conv}: ") and "poison item" in lines[2]
    result = runner.invoke(cli, ["--db", db_url, "status"])
    assert "\nset aside   1 by scores (audit failures)\n" in result.output
    with engine.begin() as conn:
        _accept(conn, table)
    result = runner.invoke(
        cli,
        ["--db", db_url, "retry-failed", "--source", "file", "--path", str(path), "--key",
         f"1={key}"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "retried 1 item(s) set aside by later stages: 0 still failed" in result.output
    assert _failures(engine) == []


# b2 bridges b1 and b3 (more than the 30-minute idle gap apart): without it, two conversations
BRIDGED = [
    ("b1", "li.s001", "wmA", "您好，请问有什么可以帮您", 0),
    ("b2", "li.s001", "wmA", "加我微信 wx123456 私下转账给我", 25),
    ("b3", "wmA", "li.s001", "我要去12315投诉你们，你们太差劲了", 50),
    ("b4", "li.s002", "wmB", "您好", 0),
    ("b5", "wmB", "li.s002", "我要去12315投诉你们", 1),
]


def test_a_released_bridging_message_merges_as_if_it_had_arrived_normally(
    engine: Engine,
    sqlite_template: Path,
    tmp_path: Path,
    scanner: Scanner,
    refusal: Callable[[str, str, str], None],
) -> None:
    settings = _settings()
    path = _archive(tmp_path, BRIDGED)
    clean_db = tmp_path / "clean.db"
    shutil.copy(sqlite_template, clean_db)
    clean = make_engine(f"sqlite:///{clean_db}")
    analyse(settings, clean, scanner, report=ingest(settings, clean, FileSource(path), keyring()))
    expected = result_rows(clean)
    clean.dispose()
    assert expected.counts()["conversations"] == 2

    refusal("messages", "BEFORE UPDATE OF conversation_id ON messages",
            "NEW.msgid = 'b2' AND NEW.conversation_id IS NOT NULL")  # fmt: skip
    report = ingest(settings, engine, FileSource(path), keyring())
    analyse(settings, engine, scanner, report=report)
    assert report.set_aside == {"conversations": 1}
    apart = result_rows(engine)
    assert apart.counts()["conversations"] == 3  # b1 and b3 apart, b4 with b5
    assert apart != expected

    with engine.begin() as conn:
        _accept(conn, "messages")
    assert release(engine) == 1
    again = analyse(settings, engine, scanner)
    assert again.set_aside == {} and _failures(engine) == []
    assert again.conversations is not None and again.conversations.merged == 1
    # joined and merged exactly as a clean run places it: conversations, findings, scores
    # and alerts row for row
    assert result_rows(engine) == expected
    # a second release and run change nothing
    assert release(engine) == 0
    analyse(settings, engine, scanner)
    assert result_rows(engine) == expected
