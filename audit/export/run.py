"""Running an export: check who asks, narrow the scope, stream, and write the audit log.

The CLI (``audit export``) and the dashboard's export page both call :func:`export_packs` and
:func:`export_training`; they differ only in where the bytes go. Every export, and every
refused one, leaves an ``audit_log`` row (action ``export`` / ``export_denied``) with the
actor, the filters, whether it was masked and what it held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, BinaryIO, TypeVar

from sqlalchemy import Connection, Engine, func, select

from audit.domain import Action
from audit.export.counts import Counts
from audit.export.csvfile import write_csv
from audit.export.formats import FORMATS, Format
from audit.export.jsonl import write_jsonl
from audit.export.masking import Masker
from audit.export.packs import Pack, iter_packs
from audit.export.selection import PackQuery, conversation_ids
from audit.export.training import TrainingQuery, write_training
from audit.export.window import ExportWindow
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


# what an export selects: narrowed to the actor's scope, described in the trail
Query = TypeVar("Query", bound=ExportWindow)
# writes the narrowed query's rows: their counts, and what the trail says they held
Write = Callable[[Connection, Query, Masker], tuple[Counts, dict[str, int]]]


def _export(
    engine: Engine,
    actor: Principal,
    query: Query,
    write: Write[Query],
    *,
    kind: str,
    fmt: str,
    unmask: bool,
    target: str,
) -> ExportResult:
    """Every export's run: authorize, narrow ``query`` to the actor's scope, write, and leave
    the trail's row (``export``, ``export_failed`` or ``export_denied``)."""
    _authorize(engine, actor, unmask, kind, target)
    query = replace(query, org_unit_ids=_scoped(engine, actor, query.org_unit_ids))
    try:
        with engine.connect() as conn:
            counts, held = write(conn, query, Masker(enabled=not unmask))
    except Exception as exc:
        _failed(engine, actor, target, kind, exc)
        raise
    detail = {"kind": kind, "format": fmt, "masked": not unmask, "filters": query.describe()}
    _log(engine, actor, Action.EXPORT, target, {**detail, **held, "target": target})
    return ExportResult(kind, fmt, not unmask, counts)


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
    writer = _writer(fmt, query.timezone)

    def write(conn: Connection, query: PackQuery, masker: Masker) -> tuple[Counts, dict[str, int]]:
        total = conn.scalar(select(func.count()).select_from(conversation_ids(query).subquery()))
        with progress("export", total) as advance:
            counts = writer(_advancing(iter_packs(conn, query, masker), advance), out)
        held = {
            "conversations": counts.conversations,
            "messages": counts.messages,
            "findings": counts.findings,
        }
        return counts, held

    return _export(engine, actor, query, write, kind="packs", fmt=fmt, unmask=unmask, target=target)


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

    def write(
        conn: Connection, query: TrainingQuery, masker: Masker
    ) -> tuple[Counts, dict[str, int]]:
        counts = write_training(conn, query, masker, out)
        return counts, {"examples": counts.rows}

    return _export(
        engine, actor, query, write, kind="training", fmt="jsonl", unmask=unmask, target=target
    )


def _writer(fmt: Format, timezone: str) -> Callable[[Any, BinaryIO], Counts]:
    if fmt == "jsonl":
        return write_jsonl
    if fmt == "csv":
        return write_csv
    if fmt == "xlsx":
        from audit.export.xlsx import write_xlsx

        return lambda packs, out: write_xlsx(packs, out, timezone)
    raise ValueError(f"unknown export format {fmt!r}: one of {', '.join(FORMATS)}")
