"""The one place where expected problems become a one-line message and exit status 1.

Bad config, a missing database schema, an unreadable key or word list, a refused export, a
busy pipeline: each library error below carries a message written for the operator, so the
command line prints ``Error: <message>`` on stderr and exits 1. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

from typing import Any

import click


def expected_errors() -> tuple[type[Exception], ...]:
    """The library's errors an operator can fix. Imported only once an exception is raised."""
    from audit.alert_precision import GroundTruthError
    from audit.archive.imports import ImportFileError
    from audit.archive.keys import KeyFileError
    from audit.archive.sources import SourceError
    from audit.archive.wecom_api import WeComApiError
    from audit.cluster import ClusterError
    from audit.config import ConfigError
    from audit.images.evaluate import ImageTruthError
    from audit.quality.clf_data import DataError
    from audit.quality.scorecard import ScorecardError
    from audit.scan.evaluate import EvalSetError
    from audit.scan.wordlist import WordListError
    from audit.store.access import AccessDenied
    from audit.store.db import DatabaseError
    from audit.store.directory import DirectoryError
    from audit.store.runlock import PipelineBusy
    from audit.store.users import UserError

    return (
        ConfigError,
        DatabaseError,
        SourceError,
        KeyFileError,
        WordListError,
        DirectoryError,
        ImportFileError,
        ScorecardError,
        AccessDenied,
        PipelineBusy,
        UserError,
        WeComApiError,
        DataError,
        EvalSetError,
        GroundTruthError,
        ImageTruthError,
        ClusterError,
    )


class AuditGroup(click.Group):
    """A group whose commands (and subgroups) report expected errors as one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own: --help, usage errors, Ctrl+C (no library import for them)
        except expected_errors() as exc:
            raise click.ClickException(str(exc)) from None
