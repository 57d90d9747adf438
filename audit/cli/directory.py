"""The org directory: ``sync-contacts`` (from WeCom), ``import-org`` and ``import-tags``
(from CSV or XLSX)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from audit.cli.context import App, pass_app
from audit.config import Settings


def wecom_clients(settings: Settings) -> tuple[Any, Any]:
    """The contact-API client and the msgaudit-API client (they use different secrets)."""
    from audit.archive.wecom_api import WeComClient

    w = settings.wecom
    corpid = w.corpid or settings.archive.corpid
    if not corpid or not w.contact_secret.get_secret_value():
        raise click.ClickException(
            "wecom.corpid (or archive.corpid) and wecom.contact_secret must be set; "
            "give the secret as AUDIT_WECOM__CONTACT_SECRET"
        )

    def client(secret: Any) -> Any:
        return WeComClient.from_settings(settings, secret)

    contacts = client(w.contact_secret)
    archive_secret = w.archive_secret or settings.archive.secret
    archive = client(archive_secret) if archive_secret.get_secret_value() else None
    return contacts, archive


@click.command(name="sync-contacts")
@click.option("--user", "users", multiple=True, metavar="USERID", help="Only these staff.")
@click.option("--consent", is_flag=True, help="Also ask WeCom who agreed to archiving.")
@pass_app
def sync_contacts_cmd(app: App, users: tuple[str, ...], consent: bool) -> None:
    """Fill staff, customers, follow relations (with channel), tags and rooms from WeCom.

    Staff keep the store given by `audit import-org`; others go to 未分配 (unassigned).
    Rooms are those seen in the archive.

    \b
    Example:
      AUDIT_WECOM__CONTACT_SECRET=... audit sync-contacts --consent
    """
    from sqlalchemy import select

    from audit.archive.contacts import sync_contacts
    from audit.store.db import session_scope
    from audit.store.models import Message

    settings = app.settings
    engine = app.engine()
    contacts, archive = wecom_clients(settings)
    with session_scope(engine) as session:
        roomids = [r for r in session.scalars(select(Message.roomid).distinct()) if r]
    stats = sync_contacts(
        contacts,
        engine,
        list(users) or None,
        roomids=roomids,
        archive_client=archive,
        consent=consent,
    )
    click.echo(
        f"{stats.staff} staff, {stats.customers} customers, {stats.follows} follow relations, "
        f"{stats.tags} tags, {stats.customer_tags} customer tags, {stats.rooms} rooms "
        f"({stats.new.staff} new staff, {stats.new.customers} new customers)"
    )
    if stats.consent is not None:
        click.echo(f"consent: {stats.consent}")
    for line in (*stats.warnings, *(f"room {r}" for r in stats.failed_rooms)):
        click.echo(f"warning: {line}", err=True)
    if stats.unassigned:
        click.echo(
            f"{len(stats.unassigned)} staff without a store (put in 未分配); "
            "load the org chart with `audit import-org`",
            err=True,
        )


@click.command(name="import-org")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def import_org_cmd(app: App, path: Path) -> None:
    """Load the org tree and staff from CSV or XLSX (region, city, store, staff).

    Columns: region, city, store_code, store_name, staff_userid, staff_name, position
    (Chinese headers accepted). Every bad row is reported with its line and column.

    \b
    Example:
      audit import-org org.xlsx
    """
    from audit.archive.imports import import_org
    from audit.store.db import session_scope
    from audit.store.directory import load_directory

    engine = app.engine()
    world = import_org(path)
    with session_scope(engine) as session:
        stats = load_directory(session, world)
    click.echo(
        f"{len(world.org_units)} org units ({stats.org_units} new), "
        f"{len(world.staff)} staff ({stats.staff} new) from {path}"
    )


@click.command(name="import-tags")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def import_tags_cmd(app: App, path: Path) -> None:
    """Load tag groups and tags, or customers' tags, from CSV or XLSX.

    A file with an external_userid column is read as customer tags (external_userid,
    customer_name, staff_userid, tags, state); otherwise as the tag list (group_name,
    tag_name, optional ids).

    \b
    Example:
      audit import-tags customer_tags.csv
    """
    from audit.archive.imports import DirectorySnapshot, import_tags
    from audit.store.db import session_scope
    from audit.store.directory import load_directory

    engine = app.engine()
    with session_scope(engine) as session:
        world = import_tags(path, DirectorySnapshot.from_session(session))
        stats = load_directory(session, world)
    click.echo(
        f"{stats.tags} new tags, {stats.customers} new customers, "
        f"{stats.customer_tags} new customer tags from {path}"
    )


COMMANDS = (sync_contacts_cmd, import_org_cmd, import_tags_cmd)
