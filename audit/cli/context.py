"""What every command is handed: the settings, an engine, a progress bar, and who runs it.

The group callback puts one :class:`App` on the click context; commands take it with
``@pass_app``. Settings are read on first use, so ``--help`` and commands that need no
configuration never read the config file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from audit.config import Settings, load_settings
from audit.progress import ProgressFactory, terminal_bar

if TYPE_CHECKING:  # the CLI imports this module on every start: keep it light
    from sqlalchemy import Engine

    from audit.store.access import Principal


@dataclass
class App:
    """The ``--config`` and ``--db`` given to the group, and what follows from them."""

    config: Path | None = None
    db: str | None = None
    progress: ProgressFactory = field(default=terminal_bar)

    @staticmethod
    def of(ctx: click.Context) -> App:
        """The App of a command that also needs its click context (``ctx.invoke``, ``ctx.exit``)."""
        app = ctx.find_object(App)
        if app is None:
            raise RuntimeError(f"{ctx.command_path}: run as a subcommand of `audit`")
        return app

    @cached_property
    def settings(self) -> Settings:
        overrides: dict[str, Any] = {}
        if self.db:
            overrides["database"] = {"url": self.db}
        return load_settings(self.config, overrides=overrides)

    def engine(self, *, check_schema: bool = True) -> Engine:
        """A new engine on the configured database; refuses one without the schema."""
        from audit.pipeline import open_engine

        return open_engine(self.settings, check_schema=check_schema)

    @cached_property
    def operator(self) -> Principal:
        """The operator at the command line: full rights, named ``cli:<login>``."""
        from audit.store.access import Principal

        return Principal.operator()


pass_app = click.make_pass_decorator(App)
