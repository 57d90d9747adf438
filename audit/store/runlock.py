"""One pipeline run per database at a time.

Two ``audit run`` (or a run and ``audit watch``) on one database would both place the same new
messages and one would end on a unique-constraint error. The run takes this lock first: on
PostgreSQL a session-level advisory lock, on SQLite an exclusive ``flock`` on a file next to
the database. Both are released by the operating system or the server when the process ends,
however it ends, so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, func, select

# one fixed 64-bit key for "the pipeline" (advisory locks are per database)
PG_KEY = int.from_bytes(hashlib.sha1(b"audit.pipeline").digest()[:8], "big", signed=True)
POLL_SECONDS = 0.5


class PipelineBusy(Exception):
    """Another run holds the pipeline lock of this database."""


def lock_file(engine: Engine) -> Path | None:
    """The SQLite lock file (``audit.db.lock``); ``None`` for an in-memory database."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database).resolve().with_name(Path(database).name + ".lock")


def _busy_message(where: str) -> str:
    return (
        f"another `audit run` or `audit watch` is working on this database ({where}): "
        "let it finish, or pass --wait to wait for it"
    )


@contextmanager
def _sqlite_lock(path: Path, wait: bool, on_wait: Callable[[str], None]) -> Iterator[None]:
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    raise PipelineBusy(_busy_message(f"lock file {path}")) from None
                if not waited:
                    on_wait(f"waiting for the other run to finish (lock file {path})")
                    waited = True
                time.sleep(POLL_SECONDS)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def _pg_lock(engine: Engine, wait: bool, on_wait: Callable[[str], None]) -> Iterator[None]:
    # its own connection, in autocommit so that holding it keeps no transaction open
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        waited = False
        while not conn.execute(select(func.pg_try_advisory_lock(PG_KEY))).scalar_one():
            if not wait:
                raise PipelineBusy(_busy_message(f"advisory lock {PG_KEY}"))
            if not waited:
                on_wait(f"waiting for the other run to finish (advisory lock {PG_KEY})")
                waited = True
            time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            conn.execute(select(func.pg_advisory_unlock(PG_KEY)))


@contextmanager
def pipeline_lock(
    engine: Engine, *, wait: bool = False, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the database's pipeline lock; :class:`PipelineBusy` when taken and not ``wait``."""
    say = on_wait or (lambda _line: None)
    if engine.dialect.name == "postgresql":
        with _pg_lock(engine, wait, say):
            yield
        return
    path = lock_file(engine) if engine.dialect.name == "sqlite" else None
    if path is None:  # in-memory SQLite: one process only, nothing to share
        yield
        return
    with _sqlite_lock(path, wait, say):
        yield
