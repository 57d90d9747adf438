"""``audit watch``: pull continuously and run the downstream stages incrementally.

Each cycle pulls whatever is new (every ``interval`` seconds, or at once when a
``msgaudit_notify`` callback arrives), decrypts it, and runs conversations, scan and alerts on
it (with ``--distributed``: pulls here and hands the stages to the workers, as ``audit run
--distributed`` does). One log line per cycle says what happened and how far behind the
newest message is.
SIGTERM or SIGINT stops after the page in flight: nothing is cut in half. Each cycle holds the
database's pipeline lock (:mod:`audit.store.runlock`); while an ``audit run`` holds it, the
cycle is skipped and tried again after the interval.

With ``push.enabled`` each cycle then pushes its new critical alerts to the supervisors of
their stores (:mod:`audit.digest.push`), right after the alert stage and before media
downloads, so that the time from pull to push is the cycle's analysis plus the sending; a push
that fails is logged and retried by the next cycle.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from sqlalchemy import Engine, func, select

from audit.archive.keys import KeyRing
from audit.archive.sources import ArchiveSource
from audit.config import Settings
from audit.digest.push import PushReport
from audit.pipeline import RunReport, analyse, current_scanner, ingest
from audit.scan.scanner import Scanner
from audit.store.db import session_scope
from audit.store.models import Message
from audit.store.runlock import PipelineBusy, pipeline_lock

log = logging.getLogger("audit.watch")


@dataclass
class CycleSummary:
    cycle: int
    report: RunReport
    lag_seconds: float | None
    seconds: float
    push: PushReport | None = None

    def line(self) -> str:
        r = self.report
        pulled = r.pull.stored if r.pull else 0
        dec = r.decrypt
        lag = "-" if self.lag_seconds is None else f"{self.lag_seconds:.0f}s"
        return (
            f"cycle {self.cycle}: +{pulled} envelopes, +{dec.decrypted if dec else 0} messages, "
            f"{dec.failed if dec else 0} failed, "
            f"+{r.scan.findings if r.scan else 0} findings, "
            f"+{r.alerts.raised if r.alerts else 0} alerts, "
            f"checkpoint {r.pull.checkpoint if r.pull else '-'}, lag {lag}, {self.seconds:.1f}s"
        )


def message_lag(engine: Engine, now: dt.datetime | None = None) -> float | None:
    """Seconds between now and the newest stored message (None when there is none)."""
    with session_scope(engine) as session:
        newest = session.scalar(select(func.max(Message.msgtime)))
    if newest is None:
        return None
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=dt.UTC)
    return max(0.0, ((now or dt.datetime.now(dt.UTC)) - newest).total_seconds())


class Watcher:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        source_factory: Callable[[], ArchiveSource],
        keys: KeyRing,
        scanner: Scanner,
        interval: float,
        emit: Callable[[str], None] | None = None,
        pusher: Callable[[], PushReport] | None = None,
        distributed: Callable[[ArchiveSource, Callable[[], bool]], RunReport] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.source_factory = source_factory
        self.keys = keys
        self.scanner = scanner
        self.interval = interval
        self.emit = emit or log.info
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.cycles: list[CycleSummary] = []
        self.pusher = pusher
        # pull here, the stages on the workers (``audit watch --distributed``): the callable
        # runs a cycle's stages, the cycle holding the lock (:mod:`audit.cluster.cli`)
        self.distributed = distributed
        if pusher is None and settings.push.enabled:
            from audit.digest.push import Pusher

            self.pusher = Pusher(settings, engine)

    def notify(self) -> None:
        """Pull now (called by the msgaudit_notify callback)."""
        self.wake.set()

    def stop(self, *_args: object) -> None:
        self.stopping.set()
        self.wake.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            self.emit(f"received {signal.Signals(signum).name}: stopping after the current page")
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def cycle(self) -> CycleSummary:
        """One pull-and-analyse pass; :class:`PipelineBusy` when another run holds the lock."""
        t0 = time.perf_counter()
        with pipeline_lock(self.engine):
            source = self.source_factory()  # fresh each cycle: it re-reads what has arrived
            if self.distributed is not None:
                report = self.distributed(source, self.stopping.is_set)
            else:
                report = ingest(
                    self.settings, self.engine, source, self.keys, stop=self.stopping.is_set
                )
                if not self.stopping.is_set():
                    # an officer's word-list edit since the last cycle: its lists from now on
                    self.scanner = current_scanner(self.settings, self.engine, self.scanner)
                    analyse(self.settings, self.engine, self.scanner, report=report)
            push = None
            if not self.stopping.is_set():
                push = self.push()  # before the media: the alert is what is urgent
            if self.settings.media.enabled and not self.stopping.is_set():
                from audit.pipeline import fetch_media

                fetch_media(self.settings, self.engine)
        summary = CycleSummary(
            len(self.cycles) + 1, report, message_lag(self.engine), time.perf_counter() - t0, push
        )
        self.cycles.append(summary)
        self.emit(summary.line())
        if push is not None and (push.sent or push.summaries or push.failed or push.deferred):
            self.emit(push.line())
        return summary

    def push(self) -> PushReport | None:
        """This cycle's critical alerts to their supervisors; never stops the watcher."""
        if self.pusher is None:
            return None
        try:
            return self.pusher()
        except Exception as exc:  # the database or a bug: logged, the next cycle tries again
            log.exception("push failed")
            self.emit(f"push failed: {type(exc).__name__}: {exc} (retried next cycle)")
            return None

    def run(self, max_cycles: int | None = None) -> None:
        while not self.stopping.is_set():
            self.wake.clear()
            try:
                self.cycle()
            except PipelineBusy as exc:
                self.emit(f"cycle skipped: {exc}")
            if max_cycles is not None and len(self.cycles) >= max_cycles:
                break
            self.wake.wait(self.interval)
        self.emit(f"stopped after {len(self.cycles)} cycle(s)")
