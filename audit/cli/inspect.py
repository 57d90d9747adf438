"""``audit inspect``: the scanner and classifiers as a filter on JSON lines, no database."""

from __future__ import annotations

import sys
from typing import Any

import click

from audit.cli.context import App, pass_app


@click.command(name="inspect")
@click.option(
    "--input",
    "input_file",
    type=click.File("r", encoding="utf-8"),
    default="-",
    help="JSON lines file (default: stdin).",
)
@pass_app
def inspect_cmd(app: App, input_file: Any) -> None:
    """Scan JSON lines {"id","text","role"} and print findings per line. No database needed.

    \b
    Example:
      echo '{"id":1,"text":"加我微 信 13800138000","role":"staff"}' | audit inspect
    """
    from audit.pipeline import load_classifiers, load_scanner
    from audit.scan.inspect import inspect_stream

    settings = app.settings
    scorers = load_classifiers(settings)
    stats = inspect_stream(
        input_file,
        sys.stdout,
        load_scanner(settings),
        classify=scorers.score if scorers else None,
        image_allow=settings.images.allow_payloads,
        detect=scorers.detect_many if scorers else None,
    )
    if getattr(stats, "errors", 0):
        click.echo(f"{stats.errors} input line(s) could not be read", err=True)
