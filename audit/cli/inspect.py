"""``audit inspect``: the scanner and classifiers as a filter on JSON lines, no database."""

from __future__ import annotations

import os
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
    from audit.inspect import run as run_inspect

    stats = run_inspect(app.settings, input_file, sys.stdout)
    if getattr(stats, "errors", 0):
        click.echo(f"{stats.errors} input line(s) could not be read", err=True)
    out, err = sys.stdout, sys.stderr
    if out is not None and err is not None and (out, err) == (sys.__stdout__, sys.__stderr__):
        # a process of its own (not a test's runner): the output is all written, and the
        # interpreter's teardown would only free what it loaded, a tenth of a second or more
        # for the word lists, the automaton and jieba's dictionary
        out.flush()
        err.flush()
        os._exit(0)
