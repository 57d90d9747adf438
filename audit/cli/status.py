"""``audit status``: the counts, also printed at the end of ``audit run``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from audit.cli.context import App, pass_app

if TYPE_CHECKING:
    from audit.config import Settings


def print_status(engine: Any, as_json: bool = False, settings: Settings | None = None) -> None:
    from audit.reports.status import status
    from audit.store.db import session_scope

    with session_scope(engine) as session:
        data = status(session)
        if settings is not None and settings.cluster.broker_url:
            from audit.cluster.status import cluster_status

            data["cluster"] = cluster_status(settings, session)
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
    if "cluster" in data:
        from audit.cluster.cli import status_lines

        for line in status_lines(data["cluster"]):
            click.echo(line)


@click.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def status_cmd(app: App, as_json: bool) -> None:
    """Counts of envelopes, messages, conversations, findings, alerts and checkpoints."""
    print_status(app.engine(), as_json, app.settings)
