"""``audit run --distributed`` (and each cycle of ``audit watch --distributed``): pull here,
let the workers do the rest, stage by stage.

The coordinator takes the database's pipeline lock (a PostgreSQL advisory lock,
:mod:`audit.store.runlock`) and keeps it until the work it enqueued is finished, so that a
second coordinator on the same archive waits and then finds nothing new to pull. It syncs the
directory and stores the pulled envelopes as ``audit run`` does, then for each stage enqueues
its tasks (ranges of ids, partitions of threads, batches of conversations) and waits for all
of them before the next stage, whose input they are. The report has the shape of
``audit run``'s, so the same summary is printed.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from typing import Any

from sqlalchemy import Engine, delete, select

from audit.alerts import AlertStats
from audit.archive.consent import ConsentStats
from audit.archive.ingest import DecryptStats, pull
from audit.archive.sources import ArchiveSource
from audit.cluster import ClusterError, require_cluster
from audit.config import Settings
from audit.pipeline import RunReport, _Timer, reads_pictures, sync_simulated_directory
from audit.progress import ProgressFactory, no_progress
from audit.quality.conversations import (
    STAGE as CONVERSATIONS_MARK,
)
from audit.quality.conversations import (
    ConversationStats,
    ensure_canonical,
    partition_mark,
)
from audit.quality.stage import ScoreStats, finish_scores, plan_scores
from audit.scan.scanner import Scanner
from audit.scan.stage import SCAN_STAGE, ScanStats
from audit.store import wordlist_edits
from audit.store.daily import DailyStats
from audit.store.db import refresh_statistics, session_scope, stage_mark
from audit.store.models import Checkpoint, Envelope, EnvelopeState, Message
from audit.store.quarantine import is_set_aside
from audit.store.runlock import pipeline_lock


def ranges(ids: Sequence[int], size: int) -> list[tuple[int, int]]:
    """(lo, hi] id ranges of at most ``size`` of the sorted ``ids`` each."""
    out = []
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        out.append((chunk[0] - 1, chunk[-1]))
    return out


def _add(target: Any, values: dict[str, Any]) -> None:
    """Add a task's counts into the stage's stats (numbers add; the rest: the last one)."""
    for key, value in values.items():
        current = getattr(target, key)
        if isinstance(value, int | float) and isinstance(current, int | float) and key != "run_id":
            setattr(target, key, current + value)
        elif key == "run_id":
            setattr(target, key, max(current, value))
        else:
            setattr(target, key, value)


class Coordinator:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        scanner: Scanner,
        progress: ProgressFactory = no_progress,
        say: Callable[[str], None] | None = None,
    ) -> None:
        require_cluster(settings, engine)
        from audit.cluster.app import configure
        from audit.cluster.fingerprint import fingerprint

        self.settings, self.engine, self.progress = settings, engine, progress
        self.say = say or (lambda _line: None)
        self.app = configure(settings)
        self.scanner = scanner
        self.fp = fingerprint(settings, scanner)

    # ------------------------------------------------------------------ waiting on tasks

    def _stage(
        self, name: str, task: Any, calls: Iterable[dict[str, Any]], aside: dict[str, int]
    ) -> list[Any]:
        """Enqueue one task per kwargs in ``calls`` and wait for every one; returns the results
        of those that succeeded. A task that gave up is counted in ``aside`` (its reason is in
        ``audit failures``); a worker's refusal (another version) stops the run."""
        from celery import group

        from audit.cluster.fingerprint import VersionMismatch

        calls = list(calls)
        if not calls:
            return []
        # sent with the app's publish policy: a broker down meanwhile is waited for
        result = group(task.s(fp=self.fp, **kw) for kw in calls).apply_async()
        out: list[Any] = []
        with self.progress(f"{name} (tasks)", len(calls)) as advance:
            for res in result.results:
                try:
                    out.append(self._result(name, res))
                except VersionMismatch as exc:
                    raise ClusterError(str(exc)) from None
                except ClusterError:
                    raise
                except Exception as exc:
                    if type(exc).__name__ == "VersionMismatch":  # rebuilt by the result backend
                        raise ClusterError(str(exc)) from None
                    key = f"cluster:{name}"
                    aside[key] = aside.get(key, 0) + 1
                    self.say(f"{name}: a task failed: {type(exc).__name__}: {exc}")
                advance(1)
        return out

    def _result(self, name: str, res: Any) -> Any:
        """The task's return value, or its exception raised here. When the connection to the
        broker breaks meanwhile (a broker restart), connect again, however long the broker
        takes to come back within ``cluster.task_timeout``, and go on waiting: the result
        waits in the reply queue (:mod:`audit.cluster.results`)."""
        from celery.exceptions import TimeoutError as NoResult

        timeout = self.settings.cluster.task_timeout
        deadline = time.monotonic() + timeout
        while True:
            try:
                # propagate=False: a task's own exception is returned, so that whatever
                # raises here is about the waiting (the time, the connection)
                value = res.get(
                    timeout=max(1.0, deadline - time.monotonic()),
                    propagate=False,
                    disable_sync_subtasks=False,
                )
            except NoResult:
                raise ClusterError(
                    f"{name}: no result within cluster.task_timeout ({timeout}s); "
                    "are workers running? (audit status)"
                ) from None
            except Exception as exc:
                if not self._broker_lost(exc):
                    raise
                self.say(f"{name}: lost the broker ({type(exc).__name__}); reconnecting")
                self._reconnect(name, res, deadline)
                continue
            if res.successful():
                return value
            raise value if isinstance(value, BaseException) else RuntimeError(str(value))

    def _broker_lost(self, exc: BaseException) -> bool:
        """A connection error, or Celery giving up its own quick reconnect because of one."""
        from kombu.exceptions import OperationalError

        conn = self.app.connection_for_read()
        try:
            errors = (OperationalError, *conn.connection_errors, *conn.channel_errors)
        finally:
            conn.release()
        return isinstance(exc, errors) or (
            isinstance(exc, RuntimeError) and isinstance(exc.__cause__, errors)
        )

    def _reconnect(self, name: str, res: Any, deadline: float) -> None:
        """Wait for the broker, then consume the reply queue again on a new connection."""
        consumer = self.app.backend.result_consumer
        while True:
            consumer.on_after_fork()  # drops the broken connection and its consumer
            try:
                with self.app.connection_for_read() as conn:
                    conn.ensure_connection(
                        max_retries=None,
                        interval_start=1,
                        interval_step=1,
                        interval_max=5,
                        timeout=max(1.0, deadline - time.monotonic()),
                    )
                consumer.consume_from(res.id)  # declares the reply queue again, consumes it
            except Exception as exc:
                if self._broker_lost(exc) and time.monotonic() < deadline:
                    continue
                raise ClusterError(
                    f"{name}: the broker did not come back within cluster.task_timeout "
                    f"({self.settings.cluster.task_timeout}s): {type(exc).__name__}: {exc}"
                ) from None
            self.say(f"{name}: broker back, waiting for the results")
            return

    # ------------------------------------------------------------------ the run

    def run(
        self,
        source: ArchiveSource,
        full_scan: bool = False,
        stop: Callable[[], bool] | None = None,
        locked: bool = False,
    ) -> RunReport:
        """Pull, then every stage on the workers; takes the pipeline lock (waiting for it)
        unless the caller holds it. ``stop`` (``audit watch``'s shutdown) is asked between
        pages; once it says so, what was pulled is decrypted and the analysis left to the
        next run."""
        from audit.cluster import tasks

        report = RunReport()
        aside = report.set_aside
        engine, cfg = self.engine, self.settings.cluster
        lock = nullcontext() if locked else pipeline_lock(engine, wait=True, on_wait=self.say)
        with lock:
            with _Timer(report, "directory"):
                report.directory = sync_simulated_directory(engine, source)
            with _Timer(report, "pull"), self.progress("pull", None) as advance:
                try:
                    report.pull = pull(
                        engine, source, self.settings.archive.page_size, advance, stop=stop
                    )
                finally:
                    close = getattr(source, "close", None)
                    if close is not None:
                        close()
            with _Timer(report, "decrypt"):
                report.decrypt = DecryptStats()
                pending = self._ids(
                    select(Envelope.id).where(Envelope.state == EnvelopeState.PENDING)
                )
                calls = [{"lo": lo, "hi": hi} for lo, hi in ranges(pending, cfg.decrypt_batch)]
                for values in self._stage("decrypt", tasks.decrypt, calls, aside):
                    _add(report.decrypt, values)
            if stop is None or not stop():
                self.analyse(full_scan, report, locked=True)
        return report

    def analyse(
        self, full_scan: bool = False, report: RunReport | None = None, locked: bool = False
    ) -> RunReport:
        """The stages after decryption, on the workers (``audit scan [--full] --distributed``
        calls this alone); takes the pipeline lock unless the caller holds it."""
        from audit.cluster import tasks

        report = report or RunReport()
        aside = report.set_aside
        engine = self.engine
        lock = nullcontext() if locked else pipeline_lock(engine, wait=True, on_wait=self.say)
        with lock:
            with _Timer(report, "conversations"):
                report.conversations = self._conversations(aside)
            with _Timer(report, "statistics"):  # a load: the stages after it plan with it
                report.analysed = refresh_statistics(engine)
            with _Timer(report, "consent"):
                report.consent = ConsentStats()
                for values in self._stage("consent", tasks.consent, [{"full": full_scan}], aside):
                    _add(report.consent, values)
            with session_scope(engine) as session:
                rescan = wordlist_edits.pending_rescan(session)
            self._refresh_lists()  # an edit since this coordinator started: its lists now
            if rescan is not None:  # queued by a word-list edit: a full scan
                full_scan = True
            with _Timer(report, "scan"):
                report.scan = self._scan(full_scan, aside)
            if rescan is not None:
                with session_scope(engine) as session:
                    wordlist_edits.finish_rescans(session, rescan, report.scan.run_id or None)
            if reads_pictures(self.settings):
                with _Timer(report, "images"):
                    report.images = self._images(aside)
            with _Timer(report, "scores"):
                report.scores = self._scores(aside)
            with _Timer(report, "alerts"):
                report.alerts = AlertStats()
                for values in self._stage("alerts", tasks.alerts, [{}], aside):
                    _add(report.alerts, values["alerts"])
                    for stage, n in values["set_aside"].items():
                        aside[stage] = aside.get(stage, 0) + n
            with _Timer(report, "daily"):
                report.daily = DailyStats()
                for values in self._stage("daily", tasks.daily, [{}], aside):
                    report.daily = DailyStats(**values)
            with _Timer(report, "statistics"):
                report.analysed = sorted({*report.analysed, *refresh_statistics(engine)})
        return report

    def _refresh_lists(self) -> None:
        """The officers' word-list edits as they are now, in the fingerprint the workers
        check (each worker reloads its lists when its hash differs)."""
        from audit.pipeline import current_scanner

        scanner = current_scanner(self.settings, self.engine, self.scanner)
        if scanner is not self.scanner:
            self.scanner = scanner
            self.fp = {**self.fp, "wordlist_hash": scanner.wordlist_hash}

    def _ids(self, query: Any) -> list[int]:
        with session_scope(self.engine) as session:
            return [int(i) for i in session.scalars(query.order_by(query.selected_columns[0]))]

    def _conversations(self, aside: dict[str, int]) -> ConversationStats:
        """Each partition keeps its own mark (never behind the stage's); when all are done
        the stage's mark moves to the newest message placed and the partitions' marks go (a
        run cut short leaves them, and the next run goes on from them)."""
        from audit.cluster import tasks

        stats = ConversationStats()
        gap = dt.timedelta(minutes=self.settings.conversations.idle_gap_minutes)
        ensure_canonical(self.engine, gap, stats)
        with session_scope(self.engine) as session:
            upto = session.scalar(select(Message.id).order_by(Message.id.desc()).limit(1)) or 0
            since = stage_mark(session, CONVERSATIONS_MARK).seq
            left = session.scalars(
                select(Checkpoint.source).where(
                    Checkpoint.source.startswith(CONVERSATIONS_MARK + ":")
                )
            ).all()
            parts = self._partitions(left)
        if upto <= since:
            return stats
        calls = [{"part": p, "parts": parts, "upto": upto} for p in range(parts)]
        results = self._stage("conversations", tasks.conversations, calls, aside)
        for values in results:
            _add(stats, values)
        if len(results) == parts:
            with session_scope(self.engine) as session:
                stage_mark(session, CONVERSATIONS_MARK).seq = upto
                session.execute(
                    delete(Checkpoint).where(
                        Checkpoint.source.in_([partition_mark(p, parts) for p in range(parts)])
                    )
                )
        return stats

    def _partitions(self, left: Sequence[str]) -> int:
        """The configured number, unless a run cut short left marks of another number."""
        for name in left:
            tail = name.rsplit(":", 1)[-1]
            if "/" in tail and tail.split("/")[1].isdigit():
                return int(tail.split("/")[1])
        return self.settings.cluster.partitions

    def _scan(self, full: bool, aside: dict[str, int]) -> ScanStats:
        from audit.cluster import tasks

        query = select(Message.id).where(
            Message.text != "", ~is_set_aside(SCAN_STAGE, Message.msgid)
        )
        if not full:
            query = query.where(Message.scanned_run_id.is_(None))
        if self.settings.archive.consent_mode == "skip_scan":
            query = query.where(Message.consent_withheld.is_(False))
        ids = self._ids(query)
        calls = [
            {"lo": lo, "hi": hi, "full": full}
            for lo, hi in ranges(ids, self.settings.cluster.scan_batch)
        ]
        stats = ScanStats()
        for values in self._stage("scan", tasks.scan, calls, aside):
            _add(stats, values)
        return stats

    def _images(self, aside: dict[str, int]) -> Any:
        """One task per batch of image messages, each picture content in one batch only
        (:func:`audit.images.refs.batches_by_content`); the backlog counted when all are done."""
        from audit.cluster import tasks
        from audit.images.refs import batches_by_content
        from audit.images.status import ImageStats, image_backlog, pending_images

        cfg = self.settings.images
        with session_scope(self.engine) as session:
            rows = session.execute(pending_images().order_by(Message.id)).all()
        calls = [{"ids": ids} for ids in batches_by_content(rows, cfg.batch_size)]
        results = [v for v in self._stage("images", tasks.images, calls, aside) if v is not None]
        if calls and not results:  # the workers cannot read pictures (the images extra)
            return None
        stats = ImageStats()
        for values in results:
            _add(stats, values)
        with session_scope(self.engine) as session:
            stats.backlog = image_backlog(session)
        return stats

    def _scores(self, aside: dict[str, int]) -> ScoreStats:
        from audit.cluster import tasks
        from audit.pipeline import load_card

        plan = plan_scores(self.engine, load_card(self.settings))
        size = self.settings.cluster.score_batch
        calls = [{"ids": plan.due[i : i + size]} for i in range(0, len(plan.due), size)]
        stats, total = ScoreStats(), 0.0
        results = self._stage("scores", tasks.scores, calls, aside)
        for values in results:
            _add(stats, values["stats"])
            total += values["total"]
        if stats.set_aside:
            aside["scores"] = aside.get("scores", 0) + stats.set_aside
        if len(results) == len(calls):
            finish_scores(self.engine, plan)
        if stats.conversations:
            stats.mean_score = round(total / stats.conversations, 2)
        return stats


def run_distributed(
    settings: Settings,
    engine: Engine,
    source: ArchiveSource,
    scanner: Scanner,
    progress: ProgressFactory = no_progress,
    full_scan: bool = False,
    say: Callable[[str], None] | None = None,
) -> RunReport:
    """``audit run --distributed``."""
    return Coordinator(settings, engine, scanner, progress, say).run(source, full_scan)
