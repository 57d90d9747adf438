"""The ``audit`` command line. Thin: each command parses, calls the library, and reports.

Expected problems (bad config, missing database schema, unreadable key, bad word list) end
as one clear line on stderr and exit status 1 (:mod:`audit.cli.errors`); a traceback means a
bug. Commands are handed an :class:`audit.cli.context.App` (settings, engine, progress bar,
operator). One module per command group:

- ``pipeline``: init, simulate, pull, retry-failed, run, watch, media, scan, purge-ciphertext
- ``status``, ``failures``, ``inspect``, ``eval``, ``train``, ``dashboard``, ``demo``,
  ``digest``, ``export`` (packs, training), ``users`` (add, list, disable, passwd),
  ``config`` (show)
- ``directory``: sync-contacts, import-org, import-tags
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from audit import __version__
from audit.cli import directory, pipeline
from audit.cli.config import config_group
from audit.cli.context import App
from audit.cli.dashboard import dashboard_cmd
from audit.cli.demo import demo_cmd
from audit.cli.digest import digest_command
from audit.cli.errors import AuditGroup
from audit.cli.eval import eval_cmd
from audit.cli.export import export_group
from audit.cli.failures import failures_cmd
from audit.cli.inspect import inspect_cmd
from audit.cli.status import status_cmd
from audit.cli.train import train_cmd
from audit.cli.users import users_group
from audit.cli.worker import worker_cmd


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
    ctx.obj = App(config=config, db=db)


for _command in (
    *pipeline.COMMANDS,
    failures_cmd,
    status_cmd,
    inspect_cmd,
    train_cmd,
    eval_cmd,
    dashboard_cmd,
    demo_cmd,
    *directory.COMMANDS,
    users_group,
    config_group,
    digest_command,
    export_group,
    worker_cmd,
):
    cli.add_command(_command)


def main() -> None:
    for stream in (sys.stdout, sys.stderr):  # Chinese text on a C-locale terminal or a pipe
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and (stream.encoding or "").lower() != "utf-8":
            reconfigure(encoding="utf-8")
    cli(prog_name="audit")


__all__ = ["App", "cli", "main"]
