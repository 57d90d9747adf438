"""Running an export: check who asks, narrow the scope, stream, and write the audit log.

The CLI (``audit export``) and the dashboard's export page both call :func:`export_packs` and
:func:`export_training`; they differ only in where the bytes go. Every export, and every
refused one, leaves an ``audit_log`` row (action ``export`` / ``export_denied``) with the
actor, the filters, whether it was masked and what it held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

from sqlalchemy import Engine, func, select

from audit.domain import Action
from audit.export.counts import Counts
from audit.export.csvfile import write_csv
from audit.export.formats import FORMATS, Format
from audit.export.jsonl import write_jsonl
from audit.export.masking import Masker
from audit.export.packs import Pack, iter_packs
from audit.export.selection import PackQuery, conversation_ids
from audit.export.training import TrainingQuery, write_training
from audit.progress import Advance, ProgressFactory, no_progress
from audit.store.access import AccessDenied, Principal, expand, narrowed, parent_links, record
from audit.store.db import session_scope


@dataclass(frozen=True)
class ExportResult:
    kind: str  # packs | training
    format: str
    masked: bool
    counts: Counts


def _log(
    engine: Engine, actor: Principal, action: Action, target: str, detail: dict[str, Any]
) -> None:
    with session_scope(engine) as session:
        role = actor.role.value if actor.is_user else None  # None: the operator
        record(session, actor, action, target, **detail, role=role)


def _failed(engine: Engine, actor: Principal, target: str, kind: str, exc: Exception) -> None:
    # a half-written file may exist: the trail says so
    _log(
        engine,
        actor,
        Action.EXPORT_FAILED,
        target,
        {"kind": kind, "error": f"{type(exc).__name__}: {exc}"},
    )


def _authorize(engine: Engine, actor: Principal, unmask: bool, kind: str, target: str) -> None:
    reason = None
    if not actor.may_export:
        reason = f"role {actor.role} may not export conversations"
    elif unmask and not actor.may_unmask:
        reason = (
            "unmasked exports need a user with role admin or compliance"
            if actor.is_user
            else "unmasked exports need a named user (--as USER) with role admin or compliance"
        )
    if reason:
        _log(
            engine,
            actor,
            Action.EXPORT_DENIED,
            target,
            {"kind": kind, "unmask": unmask, "reason": reason},
        )
        raise AccessDenied(reason)


def _scoped(
    engine: Engine, actor: Principal, ids: tuple[int, ...] | None
) -> tuple[int, ...] | None:
    """``ids`` (roots) cut down to the actor's scope, expanded for plain ``IN`` filters."""
    with session_scope(engine) as session:
        return expand(session, narrowed(actor, ids, parent_links(session)))


def export_packs(
    engine: Engine,
    query: PackQuery,
    fmt: Format,
    out: BinaryIO,
    actor: Principal,
    *,
    unmask: bool = False,
    target: str = "",
    progress: ProgressFactory = no_progress,
) -> ExportResult:
    """Write the selected conversation packs to ``out``; ``query.org_unit_ids`` are roots.
    ``progress`` advances by conversation against the selection's count."""
    _authorize(engine, actor, unmask, "packs", target)
    query = replace(query, org_unit_ids=_scoped(engine, actor, query.org_unit_ids))
    masker = Masker(enabled=not unmask)
    writer = _writer(fmt, query.timezone)
    try:
        with engine.connect() as conn:
            total = conn.scalar(
                select(func.count()).select_from(conversation_ids(query).subquery())
            )
            with progress("export", total) as advance:
                counts = writer(_advancing(iter_packs(conn, query, masker), advance), out)
    except Exception as exc:
        _failed(engine, actor, target, "packs", exc)
        raise
    _log(
        engine,
        actor,
        Action.EXPORT,
        target,
        {
            "kind": "packs",
            "format": fmt,
            "masked": not unmask,
            "filters": query.describe(),
            "conversations": counts.conversations,
            "messages": counts.messages,
            "findings": counts.findings,
            "target": target,
        },
    )
    return ExportResult("packs", fmt, not unmask, counts)


def _advancing(packs: Iterator[Pack], advance: Advance) -> Iterator[Pack]:
    for pack in packs:
        yield pack
        advance(1)


def export_training(
    engine: Engine,
    query: TrainingQuery,
    out: BinaryIO,
    actor: Principal,
    *,
    unmask: bool = False,
    target: str = "",
) -> ExportResult:
    """Write labelled messages from reviews as JSON lines (see :mod:`audit.export.training`)."""
    _authorize(engine, actor, unmask, "training", target)
    query = replace(query, org_unit_ids=_scoped(engine, actor, query.org_unit_ids))
    try:
        with engine.connect() as conn:
            counts = write_training(conn, query, Masker(enabled=not unmask), out)
    except Exception as exc:
        _failed(engine, actor, target, "training", exc)
        raise
    _log(
        engine,
        actor,
        Action.EXPORT,
        target,
        {
            "kind": "training",
            "format": "jsonl",
            "masked": not unmask,
            "filters": query.describe(),
            "examples": counts.rows,
            "target": target,
        },
    )
    return ExportResult("training", "jsonl", not unmask, counts)


def _writer(fmt: Format, timezone: str) -> Callable[[Any, BinaryIO], Counts]:
    if fmt == "jsonl":
        return write_jsonl
    if fmt == "csv":
        return write_csv
    if fmt == "xlsx":
        from audit.export.xlsx import write_xlsx

        return lambda packs, out: write_xlsx(packs, out, timezone)
    raise ValueError(f"unknown export format {fmt!r}: one of {', '.join(FORMATS)}")
