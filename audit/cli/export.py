"""``audit export packs|training``: the CLI face of :mod:`audit.export.run`."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from audit.cli.context import App, pass_app
from audit.domain import AlertState
from audit.export.formats import FORMATS, Format

if TYPE_CHECKING:  # the CLI imports this module on every start: keep it light
    from sqlalchemy import Engine

    from audit.export.run import ExportResult
    from audit.store.access import Principal

STATES: tuple[str, ...] = tuple(s.value for s in AlertState)


def _actor(app: App, engine: Engine, username: str | None) -> Principal:
    from audit.store.access import principal_by_name
    from audit.store.db import session_scope

    if not username:
        return app.operator
    with session_scope(engine) as session:
        return principal_by_name(session, username)


def _roots(engine: Engine, codes: tuple[str, ...]) -> tuple[int, ...] | None:
    from audit.store.access import units_by_code
    from audit.store.db import session_scope

    if not codes:
        return None
    with session_scope(engine) as session:
        return units_by_code(session, codes)


@contextlib.contextmanager
def _output(path: str) -> Iterator[BinaryIO]:
    """``-`` is stdout; a file is written beside its name and renamed only when complete."""
    if path == "-":
        yield sys.stdout.buffer
        return
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(final.name + ".partial")
    try:
        with partial.open("wb") as fh:
            yield fh
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)


def _report(result: ExportResult, path: str) -> None:
    c = result.counts
    what = (
        f"{c.rows} labelled messages"
        if result.kind == "training"
        else f"{c.conversations} conversations, {c.messages} messages, {c.findings} findings"
    )
    masked = "masked" if result.masked else "UNMASKED"
    click.echo(f"exported {what} ({result.format}, {masked}) to {path}", err=path == "-")


_date = click.DateTime(formats=["%Y-%m-%d"])
_common = [
    click.option("--from", "start", type=_date, help="First day (local time zone)."),
    click.option("--to", "end", type=_date, help="Last day, included (default: --from)."),
    click.option(
        "--scope", "scopes", multiple=True, metavar="CODE", help="Org unit code (repeatable)."
    ),
    click.option("--as", "username", metavar="USER", help="Export as this user (role, scope)."),
    click.option(
        "--unmask", is_flag=True, help="Keep personal data (admin or compliance users only)."
    ),
]


def _options(f: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(_common):
        f = option(f)
    return f


def _days(
    start: dt.datetime | None, end: dt.datetime | None
) -> tuple[dt.date | None, dt.date | None]:
    first = start.date() if start else None
    last = end.date() if end else first
    if first and last and last < first:
        raise click.BadParameter(f"--to {last} is before --from {first}")
    return first, last


@click.group(name="export")
def export_group() -> None:
    """QA exports for trainers and training data for the classifiers.

    Personal data is masked (numbers, e-mail, ids; names pseudonymised consistently within
    one export) unless --unmask is given by a user allowed to. Conversations of customers who
    refused archiving are never exported. Every export is written to the audit log.
    """


@export_group.command(name="packs")
@_options
@click.option(
    "--category", "categories", multiple=True, help="Only conversations with this finding."
)
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(STATES),
    help="Only conversations with an alert in this review state (repeatable).",
)
@click.option("--best", "band", flag_value="best", help="The best-scored per store.")
@click.option("--worst", "band", flag_value="worst", help="The worst-scored per store.")
@click.option("--per-store", default=10, show_default=True, help="How many with --best/--worst.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="xlsx", show_default=True)
@click.option("--out", "out", default=None, help="Output file, '-' for stdout.")
@pass_app
def packs_cmd(
    app: App,
    start: dt.datetime | None,
    end: dt.datetime | None,
    scopes: tuple[str, ...],
    username: str | None,
    unmask: bool,
    categories: tuple[str, ...],
    states: tuple[str, ...],
    band: str | None,
    per_store: int,
    fmt: Format,
    out: str | None,
) -> None:
    """Conversation packs: transcript, findings with spans, scores, deductions, reviews.

    \b
    Examples:
      audit export packs --from 2026-11-16 --to 2026-11-22 --worst --per-store 5
      audit export packs --from 2026-11-17 --state confirmed --category abuse --format csv
      audit export packs --from 2026-11-17 --scope S001 --format jsonl --out - | head
    """
    from audit.export.run import export_packs
    from audit.export.selection import PackQuery

    engine, tz = app.engine(), app.settings.quality.timezone
    first, last = _days(start, end)
    path = out or f"export-{(first or dt.date.today()).isoformat()}.{fmt}"
    actor = _actor(app, engine, username)
    query = PackQuery(
        start=first,
        end=last,
        timezone=tz,
        org_unit_ids=_roots(engine, scopes),
        categories=categories,
        review_states=tuple(AlertState(s) for s in states),
        band="best" if band == "best" else "worst" if band == "worst" else None,
        per_store=per_store,
    )
    with _output(path) as fh:
        result = export_packs(
            engine, query, fmt, fh, actor, unmask=unmask, target=path, progress=app.progress
        )
    _report(result, path)


@export_group.command(name="training")
@_options
@click.option("--label", "labels", multiple=True, help="Only this label (rule or classifier).")
@click.option("--out", "out", default="reviews.jsonl", show_default=True, help="'-' for stdout.")
@pass_app
def training_cmd(
    app: App,
    start: dt.datetime | None,
    end: dt.datetime | None,
    scopes: tuple[str, ...],
    username: str | None,
    unmask: bool,
    labels: tuple[str, ...],
    out: str,
) -> None:
    """Supervisors' review labels as JSON lines {"text","role","label","value"}.

    \b
    Examples:
      audit export training --out data/reviews.jsonl
      audit train --with-reviews data/reviews.jsonl
    """
    from audit.export.run import export_training
    from audit.export.training import TrainingQuery

    engine, tz = app.engine(), app.settings.quality.timezone
    first, last = _days(start, end)
    actor = _actor(app, engine, username)
    query = TrainingQuery(
        start=first, end=last, timezone=tz, org_unit_ids=_roots(engine, scopes), labels=labels
    )
    with _output(out) as fh:
        result = export_training(engine, query, fh, actor, unmask=unmask, target=out)
    _report(result, out)
