"""The stages as Celery tasks, each over one range or partition, each idempotent.

Every task wraps the stage function ``audit run`` calls (nothing is reimplemented here):

* ``decrypt``: the pending envelopes with ids in (lo, hi];
* ``conversations``: one partition of the threads (a stable hash of the staff-customer pair,
  room or staff pair), up to a message id, under the partition's own mark;
* ``consent``, ``alerts``, ``daily``: the whole stage, one task;
* ``images``: a set of image messages whose pictures no other task carries (QR and OCR);
* ``scan``: the messages with ids in (lo, hi) not scanned yet (all of them on a full rescan);
* ``scores``: one batch of conversation ids.

A second delivery finds its work done (state, marks, unique constraints) and changes nothing.
A task that raises is retried with exponential backoff; when it keeps failing it is recorded
in ``stage_failures`` as ``cluster:<task>`` with the reason, which ``audit failures`` lists.
Each task carries the coordinator's fingerprint (:mod:`audit.cluster.fingerprint`); a worker
with other word lists, models or schema refuses it without retrying.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

from celery import Task
from sqlalchemy import Engine

from audit.cluster.app import app
from audit.cluster.fingerprint import VersionMismatch, check, fingerprint
from audit.config import Settings, load_settings
from audit.scan.scanner import Scanner
from audit.store.quarantine import describe, record_failure

log = logging.getLogger(__name__)

# the worker's settings, set by `audit worker` (else read from the environment)
_settings: Settings | None = None


def use_settings(settings: Settings) -> None:
    global _settings
    _settings = settings


@dataclass
class _Context:
    """What a worker process loads once: settings, engine, scanner, fingerprint, keys."""

    settings: Settings
    engine: Engine
    scanner: Scanner
    fingerprint: dict[str, str]
    pid: int = field(default_factory=os.getpid)
    _keys: Any = None
    _scorers: Any = None
    _loaded_scorers: bool = False

    def keys(self) -> Any:
        if self._keys is None:
            from audit.pipeline import key_files, load_keys, make_source

            source = make_source(self.settings)
            self._keys = load_keys(self.settings, key_files(self.settings, source))
        return self._keys

    def scorers(self) -> Any:
        if not self._loaded_scorers:
            from audit.pipeline import load_classifiers

            self._scorers, self._loaded_scorers = load_classifiers(self.settings), True
        return self._scorers


_context: _Context | None = None


def context() -> _Context:
    """This process's context (rebuilt in a forked pool process: engines are not shared)."""
    global _context
    if _context is None or _context.pid != os.getpid():
        from audit.pipeline import load_scanner, open_engine

        settings = _settings or load_settings()
        engine = open_engine(settings)
        scanner = load_scanner(settings, engine)
        _context = _Context(settings, engine, scanner, fingerprint(settings, scanner))
    return _context


def _checked(fp: dict[str, str]) -> _Context:
    ctx = context()
    if fp.get("wordlist_hash") != ctx.fingerprint.get("wordlist_hash"):
        # an officer's word-list edit since this worker loaded its lists: load them again
        from audit.pipeline import current_scanner

        scanner = current_scanner(ctx.settings, ctx.engine, ctx.scanner)
        if scanner is not ctx.scanner:
            ctx.scanner = scanner
            ctx.fingerprint = {**ctx.fingerprint, "wordlist_hash": scanner.wordlist_hash}
    check(fp, ctx.fingerprint, socket.gethostname())
    return ctx


def item_of(name: str, kwargs: dict[str, Any]) -> str:
    """How a task is named in ``stage_failures``: its arguments, lists by their ends."""
    parts = []
    for key, value in kwargs.items():
        if key == "fp":
            continue
        if isinstance(value, list):
            value = f"{value[0]}..{value[-1]} ({len(value)})" if value else "[]"
        parts.append(f"{key}={value}")
    return f"{name} " + " ".join(parts)


class StageTask(Task):
    """Late acknowledgement, re-queued on a lost worker, retried with backoff, and recorded
    as a failure when it gives up."""

    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = (Exception,)
    dont_autoretry_for = (VersionMismatch,)
    retry_backoff = 1
    retry_jitter = False

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        short = self.name.rsplit(".", 1)[-1]
        try:
            from audit.store.db import session_scope

            with session_scope(context().engine) as session:
                record_failure(session, f"cluster:{short}", item_of(short, kwargs), describe(exc))
        except Exception:  # the database itself is gone: the log still says it
            log.exception("could not record the failure of %s %s", short, kwargs)


@app.task(base=StageTask, bind=True)
def decrypt(self: Task, fp: dict[str, str], lo: int, hi: int) -> dict[str, Any]:
    from audit.archive.ingest import Decryptor, decrypt_pending

    ctx = _checked(fp)
    with Decryptor(ctx.keys(), 1) as decryptor:  # in this process: the pool is the workers
        stats = decrypt_pending(ctx.engine, decryptor, batch_size=hi - lo, id_range=(lo, hi))
    return asdict(stats)


@app.task(base=StageTask, bind=True)
def conversations(
    self: Task, fp: dict[str, str], part: int, parts: int, upto: int
) -> dict[str, Any]:
    import datetime as dt

    from audit.quality.conversations import build_conversations

    ctx = _checked(fp)
    gap = dt.timedelta(minutes=ctx.settings.conversations.idle_gap_minutes)
    stats = build_conversations(ctx.engine, gap, partition=(part, parts), upto=upto)
    return asdict(stats)


@app.task(base=StageTask, bind=True)
def consent(self: Task, fp: dict[str, str], full: bool = False) -> dict[str, Any]:
    from audit.archive.consent import apply_consent

    return asdict(apply_consent(_checked(fp).engine, full=full))


@app.task(base=StageTask, bind=True)
def scan(self: Task, fp: dict[str, str], lo: int, hi: int, full: bool) -> dict[str, Any]:
    from audit.pipeline import load_card
    from audit.scan.stage import scan_messages

    ctx = _checked(fp)
    settings = ctx.settings
    stats = scan_messages(
        ctx.engine,
        ctx.scanner,
        full=full,
        batch_size=settings.scan.batch_size,
        skip_withheld=settings.archive.consent_mode == "skip_scan",
        scorers=ctx.scorers(),
        scorecard_version=load_card(settings).version,
        id_range=(lo, hi),
    )
    return asdict(stats)


@app.task(base=StageTask, bind=True)
def images(self: Task, fp: dict[str, str], ids: list[int]) -> dict[str, Any] | None:
    from audit.pipeline import read_pictures

    ctx = _checked(fp)
    # read in this process: the pool is the workers (a prefork child cannot fork a pool)
    stats = read_pictures(ctx.settings, ctx.engine, ctx.scanner, message_ids=ids, workers=1)
    return None if stats is None else asdict(stats)


@app.task(base=StageTask, bind=True)
def scores(self: Task, fp: dict[str, str], ids: list[int]) -> dict[str, Any]:
    from audit.pipeline import load_card
    from audit.quality.stage import ScoreStats, score_batch

    ctx = _checked(fp)
    stats = ScoreStats()
    total = score_batch(ctx.engine, load_card(ctx.settings), ctx.settings.quality, ids, stats)
    return {"stats": asdict(stats), "total": total}


@app.task(base=StageTask, bind=True)
def alerts(self: Task, fp: dict[str, str]) -> dict[str, Any]:
    from audit.pipeline import raise_alerts

    ctx = _checked(fp)
    aside: dict[str, int] = {}
    stats = raise_alerts(ctx.settings, ctx.engine, aside)
    return {"alerts": asdict(stats), "set_aside": aside}


@app.task(base=StageTask, bind=True)
def daily(self: Task, fp: dict[str, str]) -> dict[str, Any]:
    from audit.store.daily import refresh_daily

    return asdict(refresh_daily(_checked(fp).engine))
