"""``audit worker``: the worker of ``audit run --distributed`` (:mod:`audit.cluster`)."""

from __future__ import annotations

import click

from audit.cli.context import App, pass_app


@click.command(name="worker")
@click.option("--concurrency", "-c", type=int, default=1, show_default=True, help="Processes.")
@click.option(
    "--queues",
    "-Q",
    help="Comma-separated queues, by kind (decrypt, scan, images, analyse) or full name "
    "(default: all of them). Example: --queues images for a host that reads the pictures.",
)
@click.option("--name", "-n", help="Worker name (NAME@host; default audit@host).")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@pass_app
def worker_cmd(
    app: App, concurrency: int, queues: str | None, name: str | None, loglevel: str
) -> None:
    """Run pipeline tasks for `audit run --distributed` ([cluster] broker_url, PostgreSQL)."""
    from audit.cluster.worker import start_worker

    start_worker(
        app.settings,
        concurrency,
        [q for q in (queues or "").split(",") if q] or None,
        name,
        loglevel,
    )
