"""The scan stage read by several processes writes exactly the rows that one process writes:
the same findings, the same classifier probabilities, the same marks, in incremental and full
scans, with batches read ahead and written in order (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select, update
from text_messages import add_text_messages

from audit.quality.compiled import load_fast
from audit.scan.scanner import Scanner
from audit.scan.stage import scan_messages
from audit.store.db import session_scope
from audit.store.models import Finding, Message

ROOT = Path(__file__).resolve().parents[2]
EVAL = ROOT / "tests" / "data" / "eval" / "v2" / "tuning.jsonl"


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner.from_directory(ROOT / "wordlists")


@pytest.fixture(scope="module")
def scorers(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_fast(ROOT / "models", tmp_path_factory.mktemp("cache"))


def _messages() -> list[tuple[str, str]]:
    """Labelled chat messages with violations and clean ones, staff, customer and system."""
    out = []
    for n, line in enumerate(EVAL.read_text(encoding="utf-8").splitlines()):
        item = json.loads(line)
        out.append((item["text"], "system" if n % 17 == 0 else item["role"]))
    return out


def _add(engine: Engine) -> None:
    messages = _messages()
    for k in range(0, len(messages), 50):  # add_text_messages spaces a call's rows by minutes
        add_text_messages(engine, messages[k : k + 50], f"r{k}-")


def _written(engine: Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with session_scope(engine) as s:
        findings = s.execute(
            select(
                Finding.message_id,
                Finding.category,
                Finding.rule,
                Finding.start,
                Finding.end,
                Finding.severity,
                Finding.score,
                Finding.matched,
                Finding.explanation,
            ).order_by(Finding.message_id, Finding.rule, Finding.start, Finding.end)
        ).all()
        messages = s.execute(
            select(Message.id, Message.scanned_run_id, Message.scores).order_by(Message.id)
        ).all()
    return [tuple(f) for f in findings], [tuple(m) for m in messages]


def _forget(engine: Engine) -> None:
    with session_scope(engine) as s:
        s.execute(delete(Finding))
        s.execute(update(Message).values(scanned_run_id=None, scores=None))


@pytest.mark.parametrize("workers", [2, 3])
def test_several_readers_write_what_one_writes(
    engine: Engine, scanner: Scanner, scorers: Any, workers: int
) -> None:
    _add(engine)
    one = scan_messages(engine, scanner, scorers=scorers, batch_size=16)
    alone = _written(engine)
    assert one.messages > 300 and one.findings > 100
    assert sum(1 for _, _, scores in alone[1] if scores) > 250

    _forget(engine)
    many = scan_messages(engine, scanner, scorers=scorers, batch_size=16, workers=workers)
    findings, messages = _written(engine)
    assert (many.messages, many.findings) == (one.messages, one.findings)
    assert findings == alone[0]
    # the same probabilities; each run marks its own messages
    assert [(i, sc) for i, _, sc in messages] == [(i, sc) for i, _, sc in alone[1]]
    assert {run for _, run, _ in messages} == {many.run_id}

    # a full rescan read by several processes keeps what the lists still find, and the
    # scores of classifiers of the same versions
    full = scan_messages(
        engine, scanner, full=True, scorers=scorers, batch_size=16, workers=workers
    )
    assert (full.messages, full.findings, full.removed) == (one.messages, one.findings, 0)
    again_findings, again_messages = _written(engine)
    assert again_findings == alone[0]
    assert [(i, sc) for i, _, sc in again_messages] == [(i, sc) for i, _, sc in alone[1]]


def test_several_readers_without_classifiers(engine: Engine, scanner: Scanner) -> None:
    _add(engine)
    scan_messages(engine, scanner, batch_size=32)
    alone = _written(engine)
    _forget(engine)
    stats = scan_messages(engine, scanner, batch_size=32, workers=2)
    assert _written(engine)[0] == alone[0]
    assert stats.messages == len(alone[1])
