"""``audit config show``: the effective configuration, secrets masked."""

from __future__ import annotations

import json

import click

from audit.cli.context import App, pass_app
from audit.config import redacted


@click.group(name="config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command(name="show")
@pass_app
def config_show(app: App) -> None:
    """Print the effective configuration (secrets masked) and where it came from."""
    settings = app.settings
    click.echo(f"# from {settings.source}")
    click.echo(json.dumps(redacted(settings), ensure_ascii=False, indent=2))
