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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table, bindparam, delete, select, true, update
from sqlalchemy.orm import Session

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
) -> ScanStats:
    """Scan messages (and score them with the classifiers, when given) in batches; with
    ``id_range`` (lo, hi) only those with ``lo < id <= hi`` (one task's share)."""
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
    while True:
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
            rows = session.execute(query).all()
            if not rows:
                break
            last_id = rows[-1].id
            new_rows = _scan_rows(scanner, rows, run_id, scorers)
            if full:
                stats.removed += _drop_stale(session, [r.id for r in rows], new_rows)
            insert_ignore(session, FindingRow, new_rows)
            if scorers is not None:  # one UPDATE per message: the run and its scores
                _score_rows(session, scorers, rows, run_id, reusable)
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


def _score_rows(
    session: Session,
    scorers: Scorers,
    rows: Any,
    run_id: int,
    reusable: frozenset[int] = frozenset(),
) -> None:
    """Mark the batch scanned, with classifier probabilities for staff and customer messages
    (one batch per model); a message scored by a run in ``reusable`` keeps its scores."""
    by_id = {r.id: r.scores for r in rows if r.scanned_run_id in reusable and r.scores}
    chosen = [(r.id, r.text, _ROLES[SenderKind(r.sender_kind)]) for r in rows
              if SenderKind(r.sender_kind) in _ROLES and r.id not in by_id]  # fmt: skip
    scores = scorers.score_many([t for _, t, _ in chosen], [role for _, _, role in chosen])
    by_id.update((i, sc) for (i, _, _), sc in zip(chosen, scores, strict=True))
    table = Message.__table__
    assert isinstance(table, Table)
    session.connection().execute(
        update(table)
        .where(table.c.id == bindparam("mid"))
        .values(scanned_run_id=bindparam("run"), scores=bindparam("sc", type_=JSONType)),
        [{"mid": r.id, "run": run_id, "sc": by_id.get(r.id)} for r in rows],
    )


def _scan_rows(
    scanner: Scanner, rows: Any, run_id: int, scorers: Scorers | None = None
) -> list[dict[str, Any]]:
    """Finding rows of a batch: the scanner's per message, then the detectors' for the staff
    and customer messages, batched, where the lists found nothing of their category."""
    found: list[list[Finding]] = []
    for row in rows:
        found.append(scanner.scan(row.text, _ROLES.get(SenderKind(row.sender_kind))))
    if scorers is not None:
        chosen = [i for i, r in enumerate(rows) if SenderKind(r.sender_kind) in _ROLES]
        extra = scorers.detect_many(
            [rows[i].text for i in chosen],
            [_ROLES[SenderKind(rows[i].sender_kind)] for i in chosen],
            [listed_categories(found[i]) for i in chosen],
        )
        for i, model_findings in zip(chosen, extra, strict=True):
            found[i] = found[i] + model_findings
    out = []
    for row, findings in zip(rows, found, strict=True):
        for f in findings:
            out.append(
                {**finding_row(f, row.id, row.conversation_id, run_id), "created_at": utcnow()}
            )
    return out


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
