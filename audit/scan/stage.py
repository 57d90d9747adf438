"""The scan stage: stored messages through the scanner into findings.

Incremental by default (messages never scanned); ``full`` rescans everything after a
word-list change. With the trained models, each batch is also scored by the classifiers and
read by the paraphrase detectors (one vectorized call per batch), whose findings (rule
``model.<category>``) are stored like the scanner's. Each run is recorded with the word-list
hash, scanner version and model versions, so a finding can always be traced to the lists
and models that produced it. On a full rescan, findings that
the new lists still produce are kept (with their alerts and reviews); the others are removed
unless a supervisor has already reviewed their alert. A full rescan keeps the classifier
probabilities of messages scored by classifiers of the same versions: only the lists and the
detectors read them again.

Reading is the stage's CPU work and is independent per message: with ``workers`` > 1 it runs
in that many processes (forked, so they share the loaded lists and models), a few batches
ahead, while this process reads the next batches from the database and writes the findings
of the finished ones, in order. The rows written are the same as with one process.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table, bindparam, delete, select, true, update
from sqlalchemy.orm import Session

from audit.forking import worker_pool
from audit.quality.classifiers import Scorers
from audit.scan.finding import Finding, finding_row, listed_categories
from audit.scan.scanner import Scanner
from audit.store.db import insert_ignore, session_scope
from audit.store.models import Alert, AlertState, Message, ScanRun, SenderKind
from audit.store.models import Finding as FindingRow
from audit.store.quarantine import is_set_aside
from audit.store.types import JSONType, utcnow

SCAN_STAGE = "scan"  # its name in stage_failures (items: msgids), see audit.isolation

_ROLES = {SenderKind.STAFF: "staff", SenderKind.CUSTOMER: "customer"}


@dataclass
class ScanStats:
    run_id: int = 0
    messages: int = 0
    findings: int = 0
    removed: int = 0


def scan_messages(
    engine: Engine,
    scanner: Scanner,
    full: bool = False,
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
    skip_withheld: bool = False,
    scorers: Scorers | None = None,
    scorecard_version: str = "",
    id_range: tuple[int, int] | None = None,
    workers: int = 1,
) -> ScanStats:
    """Scan messages (and score them with the classifiers, when given) in batches; with
    ``id_range`` (lo, hi) only those with ``lo < id <= hi`` (one task's share); ``workers``:
    reading processes (see the module's docstring)."""
    with session_scope(engine) as session:
        run = ScanRun(
            mode="full" if full else "incremental",
            wordlist_hash=scanner.wordlist_hash,
            scanner_version=scanner.version,
            model_versions=dict(scorers.versions) if scorers else {},
            scorecard_version=scorecard_version,
        )
        session.add(run)
        session.flush()
        run_id = run.id
    stats = ScanStats(run_id=run_id)
    last_id, upto = id_range or (0, None)
    reusable = _scored_alike(engine, scorers, run_id) if full and scorers else frozenset()

    def next_batch() -> list[Any]:
        with session_scope(engine) as session:
            query = (
                select(
                    Message.id,
                    Message.text,
                    Message.sender_kind,
                    Message.conversation_id,
                    Message.scanned_run_id,
                    Message.scores,
                )
                .where(
                    Message.id > last_id,
                    Message.id <= upto if upto is not None else true(),
                    Message.text != "",
                    ~is_set_aside(SCAN_STAGE, Message.msgid),
                )
                .order_by(Message.id)
                .limit(batch_size)
            )
            if not full:
                query = query.where(Message.scanned_run_id.is_(None))
            if skip_withheld:  # the customer refused archiving: kept, but not read
                query = query.where(Message.consent_withheld.is_(False))
            return list(session.execute(query).all())

    def write(rows: list[Any], read: Read) -> None:
        new_rows = _finding_rows(rows, read.found, run_id)
        with session_scope(engine) as session:
            if full:
                stats.removed += _drop_stale(session, [r.id for r in rows], new_rows)
            insert_ignore(session, FindingRow, new_rows)
            if scorers is not None:  # one UPDATE per message: the run and its scores
                _mark_scored(session, rows, run_id, read.scores, reusable)
            else:
                session.execute(
                    update(Message)
                    .where(Message.id.in_([r.id for r in rows]))
                    .values(scanned_run_id=run_id)
                )
        stats.messages += len(rows)
        stats.findings += len(new_rows)
        if progress:
            progress(len(rows))

    with _readers(scanner, scorers, workers) as (read, ahead):
        waiting: deque[tuple[list[Any], Callable[[], Read]]] = deque()
        while True:
            rows = next_batch()
            if rows:
                last_id = rows[-1].id
                waiting.append((rows, read(_items(rows, scorers, reusable))))
            # written in order; a batch that failed raises here, after those before it
            while waiting and (not rows or len(waiting) > ahead):
                done, result = waiting.popleft()
                write(done, result())
            if not rows:
                break
    with session_scope(engine) as session:
        session.execute(
            update(ScanRun)
            .where(ScanRun.id == run_id)
            .values(
                finished_at=utcnow(),
                messages_scanned=stats.messages,
                findings_count=stats.findings,
            )
        )
    return stats


def _scored_alike(engine: Engine, scorers: Scorers, current: int) -> frozenset[int]:
    """The earlier scan runs whose classifiers had the versions of ``scorers``: a message
    they scored keeps its probabilities on a full rescan (a word-list change re-reads the
    text with the lists and the detectors, not with the same classifiers again)."""
    versions = {name: scorers.versions.get(name) for name in scorers.pipelines}
    with session_scope(engine) as session:
        runs = session.execute(
            select(ScanRun.id, ScanRun.model_versions).where(ScanRun.id != current)
        ).all()
    return frozenset(
        run_id
        for run_id, used in runs
        if {name: (used or {}).get(name) for name in versions} == versions
    )


@dataclass(frozen=True)
class Item:
    """What reading one message needs: its text, its role (None for others than staff and
    customers), and whether the classifiers score it."""

    text: str
    role: str | None
    score: bool


@dataclass(frozen=True)
class Read:
    """A batch read: findings per message; classifier probabilities by the batch's index
    of the messages scored."""

    found: list[list[Finding]]
    scores: dict[int, dict[str, float]]


def _items(rows: Sequence[Any], scorers: Scorers | None, reusable: frozenset[int]) -> list[Item]:
    """The batch's messages as the readers take them; a message scored by a run in
    ``reusable`` (classifiers of the same versions) keeps its scores and is not scored."""
    out = []
    for r in rows:
        role = _ROLES.get(SenderKind(r.sender_kind))
        kept = r.scanned_run_id in reusable and bool(r.scores)
        out.append(Item(r.text, role, scorers is not None and role is not None and not kept))
    return out


def read_batch(scanner: Scanner, scorers: Scorers | None, items: Sequence[Item]) -> Read:
    """The scanner's findings per message (the batch at once: ``Scanner.scan_many``), then
    the detectors' for the staff and customer messages, batched, where the lists found
    nothing of their category; and the classifiers' probabilities of the messages to score
    (one batch per model)."""
    found = scanner.scan_many([item.text for item in items], [item.role for item in items])
    scores: dict[int, dict[str, float]] = {}
    if scorers is not None:
        chosen = [i for i, item in enumerate(items) if item.role is not None]
        extra = scorers.detect_many(
            [items[i].text for i in chosen],
            [items[i].role for i in chosen],
            [listed_categories(found[i]) for i in chosen],
        )
        for i, model_findings in zip(chosen, extra, strict=True):
            found[i] = found[i] + model_findings
        scored = [i for i, item in enumerate(items) if item.score]
        probabilities = scorers.score_many(
            [items[i].text for i in scored], [items[i].role for i in scored]
        )
        scores = dict(zip(scored, probabilities, strict=True))
    return Read(found, scores)


def _finding_rows(
    rows: Sequence[Any], found: list[list[Finding]], run_id: int
) -> list[dict[str, Any]]:
    out = []
    for row, findings in zip(rows, found, strict=True):
        for f in findings:
            out.append(
                {**finding_row(f, row.id, row.conversation_id, run_id), "created_at": utcnow()}
            )
    return out


def _mark_scored(
    session: Session,
    rows: Sequence[Any],
    run_id: int,
    scores: dict[int, dict[str, float]],
    reusable: frozenset[int],
) -> None:
    """Mark the batch scanned, with the probabilities just computed; a message scored by a
    run in ``reusable`` keeps its own, one no classifier reads has none."""
    table = Message.__table__
    assert isinstance(table, Table)
    values = []
    for i, r in enumerate(rows):
        kept = r.scores if r.scanned_run_id in reusable and r.scores else None
        values.append({"mid": r.id, "run": run_id, "sc": scores.get(i, kept)})
    session.connection().execute(
        update(table)
        .where(table.c.id == bindparam("mid"))
        .values(scanned_run_id=bindparam("run"), scores=bindparam("sc", type_=JSONType)),
        values,
    )


def _read_forked(reader: tuple[Scanner, Scorers | None], items: Sequence[Item]) -> Read:
    return read_batch(*reader, items)


@contextmanager
def _readers(
    scanner: Scanner, scorers: Scorers | None, workers: int
) -> Iterator[tuple[Callable[[Sequence[Item]], Callable[[], Read]], int]]:
    """``(read, ahead)``: ``read(items)`` starts reading a batch and returns what waits for
    it; ``ahead`` batches may wait at once. One process reads in line; several read in a
    pool of forked processes that inherit the loaded lists and models."""
    with worker_pool(workers, (scanner, scorers), _read_forked) as start:
        if start is not None:
            yield start, workers
            return

        def in_line(items: Sequence[Item]) -> Callable[[], Read]:
            done = read_batch(scanner, scorers, items)
            return lambda: done

        yield in_line, 0


def _drop_stale(session: Session, message_ids: list[int], new_rows: list[dict[str, Any]]) -> int:
    """Remove findings of these messages that the current lists no longer produce."""
    keep = {(r["message_id"], r["rule"], r["start"], r["end"]) for r in new_rows}
    existing = session.execute(
        select(
            FindingRow.id, FindingRow.message_id, FindingRow.rule, FindingRow.start, FindingRow.end
        ).where(
            FindingRow.message_id.in_(message_ids),
            FindingRow.detail.is_(None),  # findings on a message's pictures are the image stage's
        )
    ).all()
    stale = [f.id for f in existing if (f.message_id, f.rule, f.start, f.end) not in keep]
    if not stale:
        return 0
    reviewed = set(
        session.scalars(
            select(Alert.finding_id).where(
                Alert.finding_id.in_(stale), Alert.state != AlertState.OPEN
            )
        )
    )
    removable = [i for i in stale if i not in reviewed]
    if removable:
        session.execute(
            delete(Alert).where(Alert.finding_id.in_(removable), Alert.state == AlertState.OPEN)
        )
        session.execute(delete(FindingRow).where(FindingRow.id.in_(removable)))
    return len(removable)
