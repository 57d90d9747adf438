"""``audit demo``: simulate, run the pipeline, add demo accounts, open the dashboard."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from audit.cli.context import App
from audit.cli.dashboard import launch_dashboard
from audit.cli.pipeline import init, run_cmd

# The simulated chain's demo accounts; a real deployment creates its own with `audit users add`.
DEMO_USERS = (
    ("admin", "admin", ()),
    ("supervisor", "supervisor", ("S001", "S002")),
    ("analyst", "analyst", ()),
)
DEMO_PASSWORD = "audit-demo"


@click.command(name="demo")
@click.option("--messages", type=int, help="Messages to simulate (default: simulator.messages).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("data/sim"))
@click.option("--no-dashboard", is_flag=True, help="Stop after the pipeline.")
@click.option("--port", type=int, help="Dashboard port.")
@click.pass_context
def demo_cmd(
    ctx: click.Context, messages: int | None, out: Path, no_dashboard: bool, port: int | None
) -> None:
    """Simulate a 20-store chain over a week, run the whole pipeline, open the dashboard."""
    from audit.archive.simulator import MANIFEST_FILE
    from audit.archive.simulator import simulate as run_simulation

    app = App.of(ctx)
    settings = app.settings
    cfg = settings.simulator
    if messages:
        cfg = cfg.model_copy(update={"messages": messages})
    manifest = out / MANIFEST_FILE
    if manifest.is_file() and json.loads(manifest.read_text("utf-8"))["settings"] == cfg.model_dump(
        mode="json"
    ):
        click.echo(f"reusing the simulated archive in {out}")
    else:
        with app.progress("simulate", cfg.messages) as advance:
            run_simulation(cfg, out, advance)
    ctx.invoke(init)
    ctx.invoke(run_cmd, source="simulator", path=out, keys=(), full_scan=False)
    _demo_users(app)
    if not no_dashboard:
        if not settings.dashboard.channel_labels:  # the simulated corp's names of its channels
            from audit.archive.simulator.world import CHANNEL_LABELS

            os.environ["AUDIT_DASHBOARD__CHANNEL_LABELS"] = json.dumps(
                CHANNEL_LABELS, ensure_ascii=False
            )
        launch_dashboard(settings, port)


def _demo_users(app: App) -> None:
    from sqlalchemy import select

    from audit.store.access import Principal
    from audit.store.db import session_scope
    from audit.store.models import User
    from audit.store.users import create_user

    with session_scope(app.engine()) as session:
        if session.scalar(select(User.id).limit(1)) is None:
            for username, role, scopes in DEMO_USERS:
                create_user(
                    session, username, DEMO_PASSWORD, role, scopes, actor=Principal.service("demo")
                )
    names = ", ".join(f"{u} ({r})" for u, r, _ in DEMO_USERS)
    click.echo(f"demo accounts: {names}; password {DEMO_PASSWORD}")
