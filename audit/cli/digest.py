"""``audit digest``: the CLI face of :mod:`audit.digest.run`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from audit.cli.context import App


@click.command(name="digest")
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The day to report (default: yesterday in quality.timezone).",
)
@click.option("--resend", is_flag=True, help="Send again what was already sent for this day.")
@click.option("--dry-run", is_flag=True, help="Render to files (see --to-file) instead of sending.")
@click.option(
    "--to-file",
    "to_file",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for a dry run's files (implies --dry-run; default ./digest-preview).",
)
@click.pass_context
def digest_command(
    ctx: click.Context, day: dt.datetime | None, resend: bool, dry_run: bool, to_file: Path | None
) -> None:
    """Send each recipient the daily alert digest of their scope, once per day and channel.

    Recipients: supervisors, compliance officers and admins with an e-mail address (users
    table), digest.recipients, digest.webhook_url (WeCom group robot) and digest.routes.
    Re-running a day sends only what failed before; every attempt is recorded.

    \b
    Examples:
      audit digest                       # yesterday, from cron or a systemd timer
      audit digest --date 2026-11-17 --dry-run --to-file preview/
      audit digest --date 2026-11-17 --resend
    """
    from audit.digest.channel import Channel
    from audit.digest.configured import (
        configured_channels,
        configured_recipients,
        digest_options,
    )
    from audit.digest.filesink import FileChannel
    from audit.digest.run import default_day, send_digests
    from audit.store.db import session_scope

    app = App.of(ctx)
    settings = app.settings
    engine = app.engine()
    options = digest_options(settings)
    the_day = day.date() if day else default_day(options.timezone)
    with session_scope(engine) as session:
        recipients = configured_recipients(session, settings)
    if not recipients:
        raise click.ClickException(
            "no digest recipients: add users with an e-mail address (audit users add), "
            "digest.recipients, digest.webhook_url or digest.routes"
        )
    preview = to_file or (Path("digest-preview") if dry_run else None)
    if preview is not None:
        sink = FileChannel(preview, the_day.isoformat())
        sinks: dict[str, Channel] = dict.fromkeys(("email", "webhook", "wecom_app"), sink)
        send_digests(engine, the_day, recipients, sinks, options, record=False)
        click.echo(f"{len(sink.written)} files for {len(recipients)} recipients in {preview}/")
        return
    run = send_digests(
        engine, the_day, recipients, configured_channels(settings), options, resend=resend
    )
    for d in run.deliveries:
        line = f"{d.status:<8} {d.channel:<9} {d.recipient}"
        if d.status == "sent":
            line += f"  ({d.alert_count} new alerts, {d.messages} message(s))"
        elif d.detail:
            line += f"  {d.detail}"
        click.echo(line)
    click.echo(
        f"digest {the_day}: {run.count('sent')} sent, {run.count('skipped')} skipped, "
        f"{run.count('failed')} failed"
    )
    if run.count("failed"):
        ctx.exit(1)  # cron and systemd see the failure; the next run retries it
