"""A full rescan (`audit scan --full`, after a word-list change) re-reads every message with the
lists and detectors but keeps the classifier probabilities that classifiers of the same
versions computed; other versions score again (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from text_messages import add_text_messages

from audit.quality.classifiers import Scorers, load_scorers
from audit.scan.scanner import Scanner
from audit.scan.stage import scan_messages
from audit.store.db import session_scope
from audit.store.models import Message, ScanRun, SenderKind

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = (
    ("您好，请问有什么可以帮您？", SenderKind.STAFF),
    ("你们这信号太差了，气死我了", SenderKind.CUSTOMER),
    ("加我微信，私下给你便宜", SenderKind.STAFF),
    ("[系统消息] 会话已转接", SenderKind.SYSTEM),
)
MARK = {"staff_discourtesy": 0.123456}  # no classifier computes exactly this


@pytest.fixture(scope="module")
def scorers() -> Scorers:
    return load_scorers(ROOT / "models")


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner.from_directory(ROOT / "wordlists")


def _add(engine: Engine) -> list[int]:
    return add_text_messages(engine, MESSAGES, "rs")


def _scores(engine: Engine, ids: list[int]) -> dict[int, dict[str, float] | None]:
    with session_scope(engine) as s:
        return dict(s.execute(select(Message.id, Message.scores).where(Message.id.in_(ids))).all())


def _mark(engine: Engine, message_id: int) -> None:
    """Stand-in for probabilities computed earlier: only a reused score keeps this value."""
    with session_scope(engine) as s:
        s.execute(update(Message).where(Message.id == message_id).values(scores=MARK))


def test_full_rescan_keeps_scores_of_the_same_classifiers(
    engine: Engine, scorers: Scorers, scanner: Scanner
) -> None:
    ids = _add(engine)
    first = scan_messages(engine, scanner, scorers=scorers)
    scored = _scores(engine, ids)
    assert scored[ids[3]] is None  # a system message has no classifier
    assert [sorted(scored[i] or {}) for i in ids[:3]] == [
        ["staff_discourtesy"],
        ["customer_negative"],
        ["staff_discourtesy"],
    ]
    _mark(engine, ids[0])
    again = scan_messages(engine, scanner, full=True, scorers=scorers)
    kept = _scores(engine, ids)
    assert kept[ids[0]] == MARK  # reused, not computed again
    assert [kept[i] for i in ids[1:]] == [scored[i] for i in ids[1:]]
    with session_scope(engine) as s:
        runs = set(s.scalars(select(Message.scanned_run_id).where(Message.id.in_(ids))))
        assert runs == {again.run_id} != {first.run_id}  # every message was read again


def test_full_rescan_scores_again_after_a_classifier_changed(
    engine: Engine, scorers: Scorers, scanner: Scanner
) -> None:
    ids = _add(engine)
    first = scan_messages(engine, scanner, scorers=scorers)
    expected = _scores(engine, ids)
    _mark(engine, ids[0])
    with session_scope(engine) as s:  # as if the first run had used another staff model
        run = s.get(ScanRun, first.run_id)
        assert run is not None
        run.model_versions = {**run.model_versions, "staff_discourtesy": "an-older-version"}
    scan_messages(engine, scanner, full=True, scorers=scorers)
    assert _scores(engine, ids) == expected  # the mark is gone: scored again
