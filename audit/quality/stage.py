"""The scoring stage: each conversation's metrics and scorecard result, stored as a ``Score``.

Incremental: a conversation is scored again when a message joined it since the last run
(high-water mark ``stage:quality`` over message ids), and every conversation without a score
for the current scorecard version is scored, so editing the scorecard rescores everything
on the next run. One row per (conversation, scorecard version); earlier versions are kept.
A conversation that cannot be scored is set aside (stage ``scores``, item: its id) and the
rest of its batch is scored.

Batches are computed (read, metrics, scorecard) in ``workers`` processes, each with a
connection of its own and started fresh (``audit.forking``: not forked from this process,
whose other threads may hold locks), a few batches ahead, while this process writes them in
order: the writes and the set-aside rule are those of one process. A batch whose computation
fails is scored again here, where its failing conversations are isolated.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, String, cast, delete, func, select
from sqlalchemy.orm import Session

from audit.config import QualityConfig
from audit.forking import worker_pool
from audit.quality.metrics import BusinessClock, Msg, compute_metrics
from audit.quality.scorecard import FindingRef, Scorecard, ScoreResult, evaluate, score_values
from audit.store.db import driver_datetime, insert_tuples, make_engine, session_scope, stage_mark
from audit.store.models import (
    Checkpoint,
    Conversation,
    ConversationKind,
    Finding,
    Message,
    Score,
)
from audit.store.quarantine import is_set_aside, isolate, record_failure
from audit.store.types import utcnow

STAGE = "stage:quality"
SCORES_STAGE = "scores"  # its name in stage_failures
# the quality-alert stage's mark over score ids (audit.alerts.QUALITY_STAGE)
QUALITY_ALERTS_STAGE = "stage:quality_alerts"
_KIND_NAMES: dict[ConversationKind, Literal["single", "room", "internal"]] = {
    ConversationKind.SINGLE: "single",
    ConversationKind.ROOM: "room",
    ConversationKind.INTERNAL: "internal",
}


@dataclass
class ScoreStats:
    conversations: int = 0
    fatal: int = 0
    mean_score: float | None = None
    set_aside: int = 0  # conversations that could not be scored (stage_failures)


def _due(session: Session, card: Scorecard, after_message_id: int, limit: int) -> list[int]:
    touched = select(Message.conversation_id).where(
        Message.id > after_message_id, Message.conversation_id.is_not(None)
    )
    unscored = select(Conversation.id).where(
        ~select(Score.id)
        .where(Score.conversation_id == Conversation.id, Score.scorecard_version == card.version)
        .exists()
    )
    ids = set(session.scalars(touched.distinct())) | set(session.scalars(unscored.limit(limit)))
    aside = set(
        session.scalars(
            select(Conversation.id).where(is_set_aside(SCORES_STAGE, cast(Conversation.id, String)))
        )
    )
    return sorted(i for i in ids if i is not None and i not in aside)


def _messages(session: Session, conversation_ids: Sequence[int]) -> dict[int, list[Msg]]:
    """Each conversation's messages in time order (then id). Sorted here, not by the query:
    asked to order, SQLite's planner may walk the whole time index instead of looking the
    conversations up (it did at 1,000,000 messages, on statistics taken while most messages
    were not placed yet: a full scan per batch)."""
    rows: dict[int, list[Any]] = defaultdict(list)
    for row in session.execute(
        select(
            Message.conversation_id,
            Message.id,
            Message.msgtime,
            Message.sender_kind,
            Message.sender,
            Message.text,
            Message.msgtype,
            Message.action,
            Message.scores,
        ).where(Message.conversation_id.in_(conversation_ids))
    ):
        rows[row.conversation_id].append(row)
    out: dict[int, list[Msg]] = {}
    for conv_id, found in rows.items():
        found.sort(key=lambda r: (r.msgtime, r.id))
        out[conv_id] = [
            Msg(
                at=row.msgtime,
                kind=str(
                    row.sender_kind.value if hasattr(row.sender_kind, "value") else row.sender_kind
                ),
                sender=row.sender,
                text=row.text,
                msgtype=row.msgtype,
                action=row.action,
                scores=row.scores or {},
            )
            for row in found
        ]
    return out


def _findings(session: Session, conversation_ids: Sequence[int]) -> dict[int, list[FindingRef]]:
    out: dict[int, list[FindingRef]] = defaultdict(list)
    for finding_id, conv_id, category, rule, severity, kind in session.execute(
        select(
            Finding.id,
            Finding.conversation_id,
            Finding.category,
            Finding.rule,
            Finding.severity,
            Message.sender_kind,
        )
        .join(Message, Message.id == Finding.message_id)
        .where(Finding.conversation_id.in_(conversation_ids))
    ):
        if conv_id is None:
            continue
        out[conv_id].append(
            FindingRef(
                category,
                rule,
                str(getattr(severity, "value", severity)),
                str(getattr(kind, "value", kind)),
                finding_id,
            )
        )
    return out


def _rewind_alerts(session: Session, first_new: int | None) -> None:
    """SQLite hands the largest id of a deleted row out again, so a rescored conversation's
    new score can get an id the quality-alert stage has passed already; that stage then goes
    back to it (its alerts follow the score idempotently: audit.quality.alert_sync), in the
    transaction that wrote the score."""
    if first_new is None:
        return
    mark = session.get(Checkpoint, QUALITY_ALERTS_STAGE, with_for_update=True)
    if mark is not None and mark.seq >= first_new:
        mark.seq = first_new - 1


# A computed batch: its score rows (_COLUMNS but created_at) and their results.
_Computed = tuple[list[tuple[Any, ...]], list[ScoreResult]]
_COLUMNS = ("conversation_id", "scorecard_version", "score", "deductions", "metrics", "created_at")


def _compute(
    session: Session,
    card: Scorecard,
    quality: QualityConfig,
    clock: BusinessClock,
    ids: Sequence[int],
) -> _Computed:
    """Read a batch's conversations and compute their scores; writes nothing."""
    kinds = dict(
        session.execute(
            select(Conversation.id, Conversation.kind).where(Conversation.id.in_(ids))
        ).all()
    )
    messages = _messages(session, ids)
    findings = _findings(session, ids)
    results = []
    rows: list[tuple[Any, ...]] = []
    for conv_id in ids:
        kind = _KIND_NAMES[ConversationKind(kinds.get(conv_id, ConversationKind.SINGLE))]
        metrics = compute_metrics(
            messages.get(conv_id, []),
            clock,
            quality.sla_minutes,
            kind,
            greeting_words=card.greetings,
        )
        result = evaluate(card, metrics, findings.get(conv_id, []))
        values = score_values(result, metrics)
        rows.append(  # as the columns go to the driver: the JSON serialized here
            (
                conv_id,
                card.version,
                values["score"],
                json.dumps(values["deductions"]),
                json.dumps(values["metrics"]),
            )
        )
        results.append(result)
    return rows, results


def _write(
    session: Session, card: Scorecard, ids: Sequence[int], rows: list[tuple[Any, ...]]
) -> None:
    """Replace the batch's scores of this scorecard version with ``rows``."""
    session.execute(
        delete(Score).where(Score.conversation_id.in_(ids), Score.scorecard_version == card.version)
    )
    if rows:  # multi-row INSERTs, not a unit of work of thousands of objects
        now = driver_datetime(session.get_bind().dialect.name, utcnow())
        new_ids = insert_tuples(
            session,
            Score.__tablename__,
            _COLUMNS,
            [(*r, now) for r in rows],
            jsonb=("deductions", "metrics"),
            tail="",
            returning="id",
        )
        _rewind_alerts(session, min(new_ids))


def _score_batch(
    session: Session,
    card: Scorecard,
    quality: QualityConfig,
    clock: BusinessClock,
    ids: Sequence[int],
) -> list[ScoreResult]:
    rows, results = _compute(session, card, quality, clock, ids)
    _write(session, card, ids, rows)
    return results


@dataclass(frozen=True)
class ScorePlan:
    """What a scoring pass covers: the conversations due, and the mark to set when done."""

    since: int
    newest: int
    due: list[int]


def plan_scores(engine: Engine, card: Scorecard, upto: int | None = None) -> ScorePlan:
    """The conversations due; the mark moves to the newest message, or to ``upto`` (the
    newest the stages before this one have seen: later ones wait for the next pass)."""
    with session_scope(engine) as session:
        since = stage_mark(session, STAGE).seq
        newest = session.scalar(select(func.max(Message.id))) or since
        if upto is not None:
            newest = min(newest, upto)
        due = _due(session, card, since, limit=10**9)
    return ScorePlan(since, newest, due)


def score_batch(
    engine: Engine,
    card: Scorecard,
    quality: QualityConfig,
    ids: Sequence[int],
    stats: ScoreStats,
    clock: BusinessClock | None = None,
) -> float:
    """Score one batch of conversations, setting aside those that fail on their own;
    returns the sum of the scores (for the mean), counting into ``stats``."""
    clock = clock or BusinessClock.from_config(quality)
    total = 0.0

    def attempt(part: Sequence[int]) -> None:
        nonlocal total
        with session_scope(engine) as session:
            results = _score_batch(session, card, quality, clock, part)
        for result in results:
            stats.conversations += 1
            stats.fatal += int(result.fatal)
            total += result.score

    refused = isolate(ids, attempt)
    if refused:
        with session_scope(engine) as session:
            for conv_id, why in refused:
                record_failure(session, SCORES_STAGE, str(conv_id), why)
        stats.set_aside += len(refused)
    return total


def _write_computed(
    engine: Engine,
    card: Scorecard,
    ids: Sequence[int],
    computed: _Computed,
    stats: ScoreStats,
) -> float:
    """Write a batch computed elsewhere; returns the sum of its scores."""
    rows, results = computed
    with session_scope(engine) as session:
        _write(session, card, ids, rows)
    stats.conversations += len(results)
    stats.fatal += sum(int(r.fatal) for r in results)
    return sum(r.score for r in results)


_WORKER_ENGINE: Engine | None = None  # a scoring process's own


def _compute_in_worker(
    scorer: tuple[str, Scorecard, QualityConfig, BusinessClock], ids: Sequence[int]
) -> _Computed:
    global _WORKER_ENGINE
    url, card, quality, clock = scorer
    if _WORKER_ENGINE is None:
        _WORKER_ENGINE = make_engine(url)
    with session_scope(_WORKER_ENGINE) as session:
        return _compute(session, card, quality, clock, ids)


@contextmanager
def _scorers(
    engine: Engine, card: Scorecard, quality: QualityConfig, clock: BusinessClock, workers: int
) -> Iterator[tuple[Callable[[Sequence[int]], Callable[[], _Computed]], int] | None]:
    """``(compute, ahead)`` over a pool of scoring processes, or None where batches are
    better scored in line: one worker, or a database only this process can see."""
    database = engine.url.database or ""
    if engine.dialect.name == "sqlite" and database in ("", ":memory:"):
        workers = 1
    url = engine.url.render_as_string(hide_password=False)
    state = (url, card, quality, clock)
    with worker_pool(workers, state, _compute_in_worker, inherit=False) as start:
        yield None if start is None else (start, workers)


def finish_scores(engine: Engine, plan: ScorePlan) -> None:
    with session_scope(engine) as session:
        stage_mark(session, STAGE).seq = max(plan.newest, plan.since)


def score_conversations(
    engine: Engine,
    card: Scorecard,
    quality: QualityConfig,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
    upto: int | None = None,
    workers: int = 1,
) -> ScoreStats:
    clock = BusinessClock.from_config(quality)
    stats = ScoreStats()
    total = 0.0
    plan = plan_scores(engine, card, upto)
    batches = [plan.due[i : i + batch_size] for i in range(0, len(plan.due), batch_size)]
    # a process per batch at most: a small run is scored here, with no process to start
    with _scorers(engine, card, quality, clock, min(workers, len(batches))) as pool:
        if pool is None:
            for ids in batches:
                total += score_batch(engine, card, quality, ids, stats, clock)
                if progress:
                    progress(len(ids))
        else:
            compute, ahead = pool
            waiting: deque[tuple[list[int], Callable[[], _Computed]]] = deque()

            def settle() -> None:
                nonlocal total
                ids, computed = waiting.popleft()
                try:
                    total += _write_computed(engine, card, ids, computed(), stats)
                except Exception:  # scored again in line, where failures are isolated
                    total += score_batch(engine, card, quality, ids, stats, clock)
                if progress:
                    progress(len(ids))

            for ids in batches:
                waiting.append((ids, compute(ids)))
                if len(waiting) > ahead:
                    settle()
            while waiting:
                settle()
    finish_scores(engine, plan)
    if stats.conversations:
        stats.mean_score = round(total / stats.conversations, 2)
    return stats
