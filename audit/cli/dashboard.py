"""``audit dashboard``: the Streamlit dashboard on the configured database."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from audit.cli.context import App, pass_app
from audit.config import Settings


def dashboard_command(settings: Settings, port: int | None) -> list[str]:
    from audit.resources import ResourceMissing, locate

    try:
        app = locate(Path("dashboards")) / "server.py"
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


def launch_dashboard(settings: Settings, port: int | None) -> NoReturn:
    """Become the Streamlit server (exec): a signal to this process reaches the server itself.

    A child process would outlive a SIGTERM sent to ``audit dashboard`` by a service manager
    and keep serving, orphaned.
    """
    env = {**os.environ, "AUDIT_DATABASE__URL": settings.database.url}
    cmd = dashboard_command(settings, port)
    click.echo(
        f"dashboard on http://{settings.dashboard.address}:{port or settings.dashboard.port} "
        "(Ctrl+C to stop)"
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, env)


@click.command(name="dashboard")
@click.option("--port", type=int, help="Port (default: dashboard.port, 8501).")
@pass_app
def dashboard_cmd(app: App, port: int | None) -> None:
    """Start the Streamlit dashboard on the configured database."""
    settings = app.settings
    app.engine().dispose()  # fail here, clearly, if the database is not ready
    launch_dashboard(settings, port)
