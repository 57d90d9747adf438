"""The pipeline's commands: ``init``, ``simulate``, ``pull``, ``retry-failed``, ``run``,
``watch``, ``media``, ``scan``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import click

from audit.cli.context import App, pass_app
from audit.cli.status import print_status
from audit.config import ArchiveConfig, Settings, mask_url

SOURCES: tuple[str, ...] = get_args(ArchiveConfig.model_fields["source"].annotation)


@click.command(name="init")
@pass_app
def init(app: App) -> None:
    """Create or upgrade the database schema (runs the migrations).

    \b
    Example:
      audit --db postgresql+psycopg://audit@db/audit init
    """
    from audit.store.db import current_revision, migrate

    engine = app.engine(check_schema=False)
    shown = mask_url(engine.url.render_as_string(hide_password=False))
    try:
        migrate(engine)
    except Exception as exc:
        raise click.ClickException(f"cannot migrate {shown}: {exc}") from exc
    click.echo(f"database ready at revision {current_revision(engine)}: {shown}")


@click.command(name="simulate")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output directory.")
@click.option("--seed", type=int, help="Random seed (same seed, same archive).")
@click.option("--messages", type=int, help="About how many messages.")
@click.option("--stores", type=int, help="Number of stores.")
@click.option("--days", type=int, help="Days of business.")
@click.option("--no-images", is_flag=True, help="No picture files for image messages.")
@pass_app
def simulate(
    app: App,
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

    settings = app.settings
    given = {"seed": seed, "messages": messages, "stores": stores, "days": days}
    if no_images:
        given["images"] = False
    cfg = settings.simulator.model_copy(update={k: v for k, v in given.items() if v is not None})
    out = out or settings.archive.simulator_dir
    with app.progress("simulate", cfg.messages) as advance:
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
    f = click.option("--source", type=click.Choice(SOURCES), help="Archive source.")(f)
    return f


def _prepare(
    app: App, source: str | None, path: Path | None, keys: tuple[str, ...]
) -> tuple[Settings, Any, Any, Any]:
    from audit.archive.keys import parse_key_spec
    from audit.pipeline import key_files, load_keys, make_source

    settings = app.settings
    kind = source or settings.archive.source
    # the image stage reads the pictures of the source given here (media_fetcher)
    update: dict[str, Any] = {"source": kind}
    if path is not None and kind == "simulator":
        update["simulator_dir"] = path
    settings = settings.model_copy(update={"archive": settings.archive.model_copy(update=update)})
    engine = app.engine()
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
        waiting = f", {i.waiting} not downloaded yet (audit media)" if i.waiting else ""
        lines.append(
            f"images        {i.images} read ({i.contents} new contents, {i.qr_decoded} with QR, "
            f"{i.ocr_read} OCR), {i.findings} findings, backlog {i.backlog}{waiting} "
            f"({sec['images']:.1f}s)"
        )
        if i.error:
            lines.append(f"images        图片未读取 pictures not read: {i.error}")
    for line in lines:
        click.echo(line, err=True)


@click.command(name="pull")
@_source_options
@pass_app
def pull_cmd(app: App, source: str | None, path: Path | None, keys: tuple[str, ...]) -> None:
    """Pull new envelopes from the archive source and decrypt them.

    \b
    Examples:
      audit pull                               # the simulated archive in data/sim
      audit pull --source file --path chat.jsonl --key 1=keys/v1.pem --key 2=keys/v2.pem
    """
    from audit.pipeline import ingest

    settings, engine, src, keyring = _prepare(app, source, path, keys)
    report = ingest(settings, engine, src, keyring, app.progress)
    assert report.pull and report.decrypt
    click.echo(
        f"pulled {report.pull.received} envelopes ({report.pull.stored} new, "
        f"{report.pull.duplicates} duplicates, {report.pull.problems} unreadable); "
        f"decrypted {report.decrypt.decrypted}, failed {report.decrypt.failed}; "
        f"checkpoint {src.name}={report.pull.checkpoint}"
    )


@click.command(name="retry-failed")
@_source_options
@pass_app
def retry_failed_cmd(
    app: App, source: str | None, path: Path | None, keys: tuple[str, ...]
) -> None:
    """Decrypt failed envelopes again (e.g. after adding a missing key), then analyse."""
    from audit.archive.ingest import decrypt_pending, retry_failed
    from audit.isolation import release as release_stage_failures
    from audit.pipeline import analyse, load_scanner, make_decryptor

    settings, engine, _src, keyring = _prepare(app, source, path, keys)
    n = retry_failed(engine)
    with app.progress("decrypt", n) as advance, make_decryptor(settings, keyring) as dec:
        stats = decrypt_pending(engine, dec, progress=advance)
    released = release_stage_failures(engine)
    report = analyse(settings, engine, load_scanner(settings, engine), app.progress)
    click.echo(f"retried {n}: decrypted {stats.decrypted}, still failed {stats.failed}")
    if released:
        click.echo(
            f"retried {released} item(s) set aside by later stages: "
            f"{sum(report.set_aside.values())} still failed"
        )


@click.command(name="run")
@_source_options
@click.option("--full-scan", is_flag=True, help="Rescan every message (after a word-list change).")
@click.option(
    "--wait", is_flag=True, help="If another run holds the database, wait for it (else refuse)."
)
@click.option(
    "--distributed",
    is_flag=True,
    help="Pull here, run the stages on the workers ([cluster] broker_url, PostgreSQL).",
)
@pass_app
def run_cmd(
    app: App,
    source: str | None,
    path: Path | None,
    keys: tuple[str, ...],
    full_scan: bool,
    wait: bool = False,
    distributed: bool = False,
) -> None:
    """Run every stage incrementally: pull, decrypt, conversations, scan, alerts.

    One run per database at a time: a second one refuses with a message, or waits with --wait.
    With --distributed a second coordinator always waits, then pulls only what is new.
    """
    from audit.pipeline import load_scanner, run
    from audit.store.runlock import pipeline_lock

    settings, engine, src, keyring = _prepare(app, source, path, keys)
    scanner = load_scanner(settings, engine)
    if distributed:
        from audit.cluster.cli import run_distributed_cmd

        report = run_distributed_cmd(settings, engine, src, scanner, app.progress, full_scan)
        _report(report)
        print_status(engine, settings=settings)
        return
    with pipeline_lock(engine, wait=wait, on_wait=lambda line: click.echo(line, err=True)):
        report = run(settings, engine, src, keyring, scanner, app.progress, full_scan=full_scan)
    _report(report)
    if settings.push.enabled and settings.push.after_run:
        from audit.digest.push import Pusher

        click.echo(Pusher(settings, engine)().line())
    print_status(engine)


@click.command(name="watch")
@_source_options
@click.option(
    "--interval", type=float, help="Seconds between pulls (default archive.watch_interval)."
)
@click.option(
    "--max-cycles", type=int, help="Stop after this many cycles (default: run until stopped)."
)
@click.option(
    "--distributed",
    is_flag=True,
    help="Pull here, run each cycle's stages on the workers ([cluster] broker_url, PostgreSQL).",
)
@pass_app
def watch(
    app: App,
    source: str | None,
    path: Path | None,
    keys: tuple[str, ...],
    interval: float | None,
    max_cycles: int | None,
    distributed: bool = False,
) -> None:
    """Pull continuously and analyse what arrives; SIGTERM stops cleanly.

    Pulls every --interval seconds, or at once when WeCom posts a msgaudit_notify callback
    to the endpoint on archive.notify_port. Logs one line per cycle with counts and lag.

    With --distributed each cycle pulls here and runs its stages on the workers (as
    `audit run --distributed`), under the same database lock.

    \b
    Examples:
      audit watch --interval 30
      audit watch --distributed --interval 30
    """
    import logging

    from audit.archive.notify import CallbackCrypto, NotifyLimits, NotifyServer
    from audit.pipeline import load_scanner, make_source
    from audit.watch import Watcher

    settings, engine, _src, keyring = _prepare(app, source, path, keys)
    scanner = load_scanner(settings, engine)
    cycle = None
    if distributed:  # refused here, in one line, without PostgreSQL or a broker
        from audit.cluster.cli import watch_distributed

        cycle = watch_distributed(settings, engine, scanner, app.progress)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    watcher = Watcher(
        settings,
        engine,
        lambda: make_source(settings, source, path),
        keyring,
        scanner,
        interval or settings.archive.watch_interval,
        distributed=cycle,
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


@click.command(name="media")
@pass_app
def media(app: App) -> None:
    """Download attachments of conversations with findings (images, voice, video, files).

    Through the official SDK (archive.corpid, archive.secret); md5-checked, stored once by
    content hash under media.directory, files above media.max_bytes recorded as skipped.

    \b
    Example:
      AUDIT_ARCHIVE__SECRET=... audit media
    """
    from audit.pipeline import fetch_media

    stats = fetch_media(app.settings, app.engine(), app.progress)
    click.echo(
        f"media: {stats.stored} stored ({stats.deduplicated} already had), "
        f"{stats.skipped} skipped, {stats.failed} failed (retried next run)"
    )


@click.command(name="scan")
@click.option("--full", is_flag=True, help="Rescan every message, not only new ones.")
@click.option(
    "--distributed", is_flag=True, help="Fan the scan out over the workers (message-id ranges)."
)
@pass_app
def scan(app: App, full: bool, distributed: bool = False) -> None:
    """Scan stored messages (incrementally, or --full after a word-list change).

    A rescan queued by a word-list edit on the dashboard makes the scan a full one (so does
    the next `audit run` or `audit watch` cycle), with the edits applied.
    """
    from audit.pipeline import analyse, load_scanner

    settings = app.settings
    engine = app.engine()
    if distributed:
        from audit.cluster.cli import analyse_distributed_cmd

        report = analyse_distributed_cmd(
            settings, engine, load_scanner(settings, engine), app.progress, full
        )
    else:
        scanner = load_scanner(settings, engine)
        report = analyse(settings, engine, scanner, app.progress, full_scan=full)
    assert report.scan is not None
    click.echo(
        f"scan run {report.scan.run_id}: {report.scan.messages} messages, "
        f"{report.scan.findings} findings, {report.scan.removed} stale findings removed"
    )


@click.command(name="purge-ciphertext")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def purge_ciphertext_cmd(app: App, yes: bool) -> None:
    """Clear the ciphertext of the envelopes already decrypted, to save space.

    The ciphertext is most of the database; once an envelope's message is stored nothing
    decrypts it again. Failed and pending envelopes keep theirs (retry-failed needs it); a
    re-delivered item is still told from a changed one; messages, rescans and exports are
    untouched. Irreversible: this database can no longer decrypt those items again. Each
    batch is recorded in the audit trail. The file (SQLite) or table (PostgreSQL) gives the
    space back after a VACUUM.

    \b
    Example:
      audit purge-ciphertext --yes
    """
    from audit.archive.purge import purge_ciphertext

    if not yes:
        click.confirm(
            "Clear the ciphertext of every decrypted envelope (irreversible)?", abort=True
        )
    stats = purge_ciphertext(app.engine(), app.operator)
    click.echo(
        f"purged the ciphertext of {stats.envelopes} decrypted envelope(s): "
        f"{stats.bytes:,} bytes cleared"
    )


COMMANDS = (
    init,
    simulate,
    pull_cmd,
    retry_failed_cmd,
    run_cmd,
    watch,
    media,
    scan,
    purge_ciphertext_cmd,
)
