"""Crashes at chosen points: SIGKILL to a run's whole process group just before its N-th
write to a stage's table, the same point on every run (counted in statements, not in time).
The kill lands inside the statement's transaction, so that transaction's work is lost, as in
a power cut.

:func:`run_killed` forks what ``audit retry-failed`` and ``audit run`` do over a file
archive (a fork: no interpreter start-up per crash).
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from audit.archive.ingest import retry_failed
from audit.archive.keys import KeyRing
from audit.archive.sources import FileSource
from audit.config import load_settings
from audit.pipeline import load_scanner, run
from audit.store.db import make_engine

# the stages, by the table each writes as it goes (in pipeline order)
STAGE_TABLES = {
    "pull": "envelopes",
    "decrypt": "messages",
    "conversations": "conversations",
    "scan": "findings",
    "scores": "scores",
    "alerts": "alerts",
    "daily": "conversation_facts",
}


def _before_write(table: str, n: int, action: Callable[[], None]) -> None:
    """Call ``action`` before the ``n``-th INSERT, UPDATE or DELETE on ``table`` (one after
    a WITH clause too: an INSERT ... SELECT whose select has a common table expression is
    written that way)."""
    pattern = re.compile(
        rf'^\s*(WITH\s.*?\)\s*)?(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?{table}"?[\s(]',
        re.I | re.S,
    )
    seen = 0

    @event.listens_for(Engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal seen
        if pattern.match(statement):
            seen += 1
            if seen == n:
                action()


def arm(table: str, n: int) -> None:
    """Kill this process group before the ``n``-th INSERT, UPDATE or DELETE on ``table``."""
    _before_write(table, n, lambda: os.killpg(os.getpgid(0), signal.SIGKILL))


def pause(table: str, n: int, directory: Path, limit: float = 600) -> None:
    """Before the ``n``-th write to ``table``, create ``directory``/paused and wait (inside
    the statement's transaction) until ``directory``/go exists."""

    def wait() -> None:
        (directory / "paused").touch()
        deadline = time.monotonic() + limit
        while not (directory / "go").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"paused before write {n} to {table}: never released")
            time.sleep(0.05)

    _before_write(table, n, wait)


def run_killed(
    url: str,
    kill: tuple[str, int] | None,
    archive: Path,
    keys: KeyRing,
    overrides: dict[str, Any] | None = None,
) -> bool:
    """``retry-failed`` then ``run`` over the file ``archive`` in a forked process of its own
    group, killed at ``kill`` (stage, n-th write of its table) if given; True if it was."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        code = 1
        try:
            os.setpgrp()
            if kill:
                arm(STAGE_TABLES[kill[0]], kill[1])
            settings = load_settings(None, environ={}, overrides=overrides or SMALL_BATCHES)
            engine = make_engine(url)
            retry_failed(engine)
            run(settings, engine, FileSource(archive), keys, load_scanner(settings))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    if not killed and not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
        raise RuntimeError(f"the run ended with wait status {status}")
    return killed


# many small transactions: many places to die in
SMALL_BATCHES: dict[str, Any] = {
    "archive": {"workers": 1, "page_size": 97},
    "scan": {"batch_size": 500},
}
