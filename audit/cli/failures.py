"""``audit failures``: what failed or was set aside, with the reason."""

from __future__ import annotations

import json

import click

from audit.cli.context import App, pass_app


@click.command(name="failures")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one per envelope.")
@pass_app
def failures_cmd(app: App, limit: int, as_json: bool) -> None:
    """List envelopes that failed, with the reason, so they can be fixed and retried.

    Also the items a later stage set aside (conversations, scan, scores, alerts), and the
    msgids delivered twice with different content (conflicts, reason "conflict: ...").

    \b
    Example:
      audit failures --limit 20
      audit retry-failed --key 3=keys/v3.pem   # after adding the missing key
    """
    from sqlalchemy import func, select

    from audit.store.db import session_scope
    from audit.store.models import Envelope, EnvelopeState, StageFailure

    engine = app.engine()
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
