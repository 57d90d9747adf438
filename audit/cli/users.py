"""``audit users``: dashboard accounts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from audit.cli.context import App, pass_app
from audit.domain import Role


@click.group(name="users")
def users_group() -> None:
    """Dashboard accounts: add, list, disable, set a password.

    \b
    Roles: admin, compliance (every store), supervisor (own org units and below),
    analyst (aggregates, pseudonymised names), viewer (aggregates only).
    """


def _in_session(app: App, fn: Callable[[Any], Any]) -> Any:
    from audit.store.db import session_scope

    with session_scope(app.engine()) as session:
        return fn(session)


@users_group.command(name="add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--scope", "scopes", multiple=True, metavar="ORG_CODE", help="Org unit (repeat).")
@click.option("--name", default="", help="Display name.")
@click.option("--email", default="", help="For the daily digest.")
@click.password_option(help="Prompted for (twice) when not given.")
@pass_app
def users_add(
    app: App,
    username: str,
    role: str,
    scopes: tuple[str, ...],
    name: str,
    email: str,
    password: str,
) -> None:
    """Add a user; a supervisor needs --scope (a store, city or region code).

    Usernames: 2-64 of a-z, 0-9, '.', '_', '-'. Passwords: see `audit users passwd --help`.

    \b
    Example:
      audit users add wang.li --role supervisor --scope S001 --scope S002
    """
    from audit.store.users import create_user

    actor = app.operator
    _in_session(
        app,
        lambda s: create_user(
            s, username, password, role, scopes, display_name=name, email=email, actor=actor
        ),
    )
    click.echo(f"user {username} added ({role}{', ' + ', '.join(scopes) if scopes else ''})")


@users_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@pass_app
def users_list(app: App, as_json: bool) -> None:
    """List users with role, scope and state."""
    from audit.store.users import list_users

    for u in _in_session(app, list_users):
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "username": u.username,
                        "role": u.role.value,
                        "scopes": list(u.scopes),
                        "active": u.active,
                        "email": u.email,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            state = "" if u.active else "  (disabled)"
            click.echo(f"{u.username:<20} {u.role.value:<11} {','.join(u.scopes) or '*'}{state}")


@users_group.command(name="disable")
@click.argument("username")
@pass_app
def users_disable(app: App, username: str) -> None:
    """Refuse further sign-ins (the user's reviews and trail stay)."""
    from audit.store.users import disable_user

    actor = app.operator
    _in_session(app, lambda s: disable_user(s, username, actor=actor))
    click.echo(f"user {username} disabled")


@users_group.command(name="passwd")
@click.argument("username")
@click.password_option(help="Prompted for (twice) when not given.")
@pass_app
def users_passwd(app: App, username: str, password: str) -> None:
    """Set a user's password; every dashboard session the user has open ends.

    \b
    Passwords: at least 10 characters, two kinds of character (or 16 and more), not a
    repeated or sequential pattern, not containing the username.
    """
    from audit.store.users import set_password

    actor = app.operator
    _in_session(app, lambda s: set_password(s, username, password, actor=actor))
    click.echo(f"password of {username} changed; their open dashboard sessions are ended")
