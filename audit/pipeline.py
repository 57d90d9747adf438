"""The pipeline, stage by stage: source -> envelopes -> messages -> conversations -> findings
-> alerts. Every stage is incremental and idempotent; :func:`run` runs them in order.

This module wires configuration to the stages; the stages themselves live with their concern
(``archive``, ``quality``, ``scan``) and know nothing about configuration or the terminal.
The stages after decryption run under :func:`audit.isolation.run_isolated`: an item that
breaks one is set aside with the reason, and the stage goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select

from audit.alerts import AlertStats, raise_finding_alerts, raise_quality_alerts
from audit.archive import simulator
from audit.archive.consent import ConsentStats, apply_consent
from audit.archive.ingest import (
    Decryptor,
    DecryptorLike,
    DecryptStats,
    DecryptStream,
    PullStats,
    decrypt_pending,
    pull,
)
from audit.archive.keys import KeyRing
from audit.archive.media import DownloadedMedia, MediaError, MediaFetcher
from audit.archive.sources import ArchiveSource, FileSource, SimulatedServer, SourceError
from audit.config import ConfigError, Settings
from audit.images.status import not_read
from audit.isolation import (
    alerts_guard,
    conversations_guard,
    quality_alerts_guard,
    run_isolated,
    scan_guard,
)
from audit.progress import ProgressFactory, no_progress
from audit.quality.classifiers import Scorers, ScorersUnavailable
from audit.quality.conversations import ConversationStats, build_conversations
from audit.quality.scorecard import Scorecard, load_scorecard
from audit.quality.stage import ScoreStats, score_conversations
from audit.resources import data_path
from audit.scan.overlay import apply_overlay
from audit.scan.scanner import Scanner
from audit.scan.stage import ScanStats, scan_messages
from audit.scan.wordlist import load_wordlists
from audit.store import wordlist_edits
from audit.store.daily import DailyStats, refresh_daily
from audit.store.db import make_engine, refresh_statistics, require_schema, session_scope
from audit.store.directory import DirectoryStats, load_directory
from audit.store.models import Message, Severity

if TYPE_CHECKING:
    from audit.archive.sdk_worker import IsolatedSdkClient

log = logging.getLogger(__name__)


def open_engine(settings: Settings, check_schema: bool = True) -> Engine:
    engine = make_engine(settings.database.url, echo=settings.database.echo)
    if check_schema:
        require_schema(engine)
    return engine


def make_source(
    settings: Settings, kind: str | None = None, path: Path | None = None
) -> ArchiveSource:
    kind = kind or settings.archive.source
    if kind == "simulator":
        return SimulatedServer(path or settings.archive.simulator_dir)
    if kind == "file":
        file = path or settings.archive.path
        if file is None:
            raise SourceError("the file source needs a path: --path FILE or archive.path in config")
        return FileSource(file)
    if kind == "sdk":
        from audit.archive.sdk_source import SdkSource

        return SdkSource(sdk_client(settings, "the sdk source"))
    raise SourceError(f"unknown archive source {kind!r} (use simulator, file or sdk)")


def key_files(
    settings: Settings, source: ArchiveSource, extra: dict[int, Path] | None = None
) -> dict[int, Path]:
    files = dict(settings.archive.keys)
    if isinstance(source, SimulatedServer):
        # a simulated archive brings its own keys; configured ones take precedence
        files = {**simulator.key_files(source.path.parent), **files}
    files.update(extra or {})
    return files


def make_decryptor(settings: Settings, keys: KeyRing) -> DecryptorLike:
    """Ours by default; the official SDK's DecryptData (isolated in child processes) if asked."""
    if settings.archive.decryptor == "sdk":
        from audit.archive.sdk import SdkDecryptor

        return SdkDecryptor(keys, settings.archive.sdk_library, settings.archive.workers)
    return Decryptor(keys, settings.archive.workers)


def load_keys(settings: Settings, files: dict[int, Path]) -> KeyRing:
    passphrase = settings.archive.key_passphrase
    return KeyRing.from_files(files, passphrase.get_secret_value().encode() if passphrase else None)


def load_scanner(settings: Settings, engine: Engine | None = None) -> Scanner:
    """The scanner of the configured word lists; with a database, with the officers' edits
    applied (:mod:`audit.store.wordlist_edits`)."""
    lists = load_wordlists(data_path(settings.scan.wordlists))
    if engine is not None:
        with session_scope(engine) as session:
            applied = apply_overlay(lists, wordlist_edits.overlay(session))
        for ref, problem in applied.problems.items():
            log.warning("word-list edit left out: %s (%s)", ref, problem)
        lists = applied.lists
    return Scanner(lists)


def current_scanner(settings: Settings, engine: Engine, scanner: Scanner) -> Scanner:
    """``scanner``, or a new one when the officers' edits changed since it was made (a long
    running ``audit watch`` or worker sees an edit at its next cycle or task)."""
    with session_scope(engine) as session:
        key = wordlist_edits.overlay(session).key
    if key == scanner.lists.overlay_key:
        return scanner
    return load_scanner(settings, engine)


@dataclass
class RunReport:
    directory: DirectoryStats | None = None
    pull: PullStats | None = None
    decrypt: DecryptStats | None = None
    conversations: ConversationStats | None = None
    consent: ConsentStats | None = None
    scan: ScanStats | None = None
    scores: ScoreStats | None = None
    alerts: AlertStats | None = None
    daily: DailyStats | None = None
    images: Any = None  # audit.images.status.ImageStats, when the image stage ran
    analysed: list[str] = field(default_factory=list)  # tables given fresh planner statistics
    seconds: dict[str, float] = field(default_factory=dict)
    set_aside: dict[str, int] = field(default_factory=dict)  # items per stage, this run
    alongside: int = 0  # passes of the stages while the pull went on (audit.pipeline.Alongside)

    def add(self, other: RunReport) -> None:
        """Count in the stages of another pass of :func:`analyse` over the same run."""
        for name in ("conversations", "consent", "scan", "scores", "alerts", "daily"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is None:
                continue
            if mine is None:
                setattr(self, name, theirs)
                continue
            _add_stats(mine, theirs)
        self.analysed = sorted({*self.analysed, *other.analysed})
        self.alongside += 1 + other.alongside
        for key, spent in other.seconds.items():
            self.seconds[key] = self.seconds.get(key, 0.0) + spent
        for key, count in other.set_aside.items():
            self.set_aside[key] = self.set_aside.get(key, 0) + count

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in (
            "directory",
            "pull",
            "decrypt",
            "conversations",
            "consent",
            "scan",
            "scores",
            "alerts",
            "daily",
            "images",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = asdict(value)
        out["analysed"] = list(self.analysed)
        out["seconds"] = {k: round(v, 3) for k, v in self.seconds.items()}
        out["set_aside"] = dict(self.set_aside)
        out["alongside"] = self.alongside
        return out


def _add_stats(mine: Any, theirs: Any) -> None:
    """Counts add (a mean weighted by its count), the newest scan run is named, and the rest
    (a mode, a reason) stays ``mine``'s: the later pass's."""
    if isinstance(mine, ScoreStats):
        means = [
            (x.mean_score, x.conversations) for x in (mine, theirs) if x.mean_score is not None
        ]
        weight = sum(n for _, n in means)
        mine.mean_score = round(sum(m * n for m, n in means) / weight, 2) if weight else None
    for f in fields(mine):
        a, b = getattr(mine, f.name), getattr(theirs, f.name)
        if f.name == "run_id":
            setattr(mine, f.name, max(a, b))
        elif f.name != "mean_score" and isinstance(a, int | float) and isinstance(b, int | float):
            setattr(mine, f.name, a + b)


class _Timer:
    def __init__(self, report: RunReport, name: str) -> None:
        self.report, self.name = report, name

    def __enter__(self) -> None:
        self.t0 = dt.datetime.now()

    def __exit__(self, *exc: object) -> None:
        spent = (dt.datetime.now() - self.t0).total_seconds()
        self.report.seconds[self.name] = self.report.seconds.get(self.name, 0.0) + spent


def sync_simulated_directory(engine: Engine, source: ArchiveSource) -> DirectoryStats | None:
    if not isinstance(source, SimulatedServer):
        return None
    world = simulator.load_world(source.path.parent)
    with session_scope(engine) as session:
        return load_directory(session, world)


def ingest(
    settings: Settings,
    engine: Engine,
    source: ArchiveSource,
    keys: KeyRing,
    progress: ProgressFactory = no_progress,
    report: RunReport | None = None,
    stop: Callable[[], bool] | None = None,
) -> RunReport:
    """Pull the source and decrypt what arrived (``audit pull``)."""
    report = report or RunReport()
    with _Timer(report, "directory"):
        report.directory = sync_simulated_directory(engine, source)
    total = len(source) if isinstance(source, SimulatedServer) else None
    with (
        make_decryptor(settings, keys) as decryptor,
        progress("pull+decrypt", total) as advance,
    ):
        # decrypt each page while the next is pulled; then anything left pending earlier
        stream = DecryptStream(engine, decryptor, advance)
        with _Timer(report, "pull"):
            try:
                report.pull = pull(
                    engine,
                    source,
                    settings.archive.page_size,
                    stop=stop,
                    on_stored=stream.feed,
                )
            finally:
                close = getattr(source, "close", None)
                if close is not None:  # the sdk source's child process
                    close()
        with _Timer(report, "decrypt"):
            report.decrypt = stream.finish()
            rest = decrypt_pending(engine, decryptor, progress=advance)
            report.decrypt.decrypted += rest.decrypted
            report.decrypt.failed += rest.failed
            report.decrypt.recalls_linked += rest.recalls_linked
            report.decrypt.conflicts_read += rest.conflicts_read
    return report


# the tables a stage fills that the next one reads (their statistics refreshed in between)
_SCANNED = ("findings",)
_SCORED = ("scores",)


def analyse(
    settings: Settings,
    engine: Engine,
    scanner: Scanner,
    progress: ProgressFactory = no_progress,
    report: RunReport | None = None,
    full_scan: bool = False,
    pictures: bool = True,
) -> RunReport:
    """The stages after decryption: conversations, scan, alerts.

    A rescan queued by a word-list edit makes the scan a full one, with the lists as they
    are now, and is marked done by it. Every stage of the pass reads the messages stored when
    it began, and no later ones: what a pull going on meanwhile stores (:class:`Alongside`)
    is left whole to the next pass, not read by some stages and not by others.
    ``pictures``: whether the image stage runs (the passes alongside leave the pictures to
    the pass after the pull)."""
    report = report or RunReport()
    with session_scope(engine) as session:
        upto = session.scalar(select(func.max(Message.id))) or 0
    full_consent = full_scan  # asked for, not queued by a word-list edit (which is about words)
    with session_scope(engine) as session:
        rescan = wordlist_edits.pending_rescan(session)
    if rescan is not None:
        scanner = current_scanner(settings, engine, scanner)
        full_scan = True
    aside = report.set_aside
    gap = dt.timedelta(minutes=settings.conversations.idle_gap_minutes)
    with _Timer(report, "conversations"), progress("conversations", None) as advance:
        report.conversations = run_isolated(
            engine,
            conversations_guard(),
            lambda size: build_conversations(
                engine, gap, batch_size=size, progress=advance, upto=upto
            ),
            20_000,
            aside,
        )
    with _Timer(report, "statistics"):  # a load: the stages after it plan with its rows
        report.analysed = refresh_statistics(engine)
    with _Timer(report, "consent"):
        # a full scan asked for re-reads everything: consent too
        report.consent = apply_consent(engine, full=full_consent)
    card = load_card(settings)
    skip_withheld = settings.archive.consent_mode == "skip_scan"
    scorers = load_classifiers(settings)
    with _Timer(report, "scan"), progress("scan", None) as advance:
        report.scan = run_isolated(
            engine,
            scan_guard(full_scan, skip_withheld),
            lambda size: scan_messages(
                engine,
                scanner,
                full=full_scan,
                batch_size=size,
                progress=advance,
                skip_withheld=skip_withheld,
                scorers=scorers,
                scorecard_version=card.version,
                workers=settings.scan.workers or os.cpu_count() or 1,
                id_range=(0, upto),
            ),
            settings.scan.batch_size,
            aside,
        )
    if rescan is not None:
        with session_scope(engine) as session:
            wordlist_edits.finish_rescans(session, rescan, report.scan.run_id or None)
    if pictures:
        with _Timer(report, "images"), progress("images", None) as advance:
            report.images = read_pictures(settings, engine, scanner, advance)
    with _Timer(report, "statistics"):
        # the scores read findings by conversation: planned on an empty findings table (a
        # first load), each batch would read all of them (quadratic; 80 s at 1M messages)
        report.analysed = sorted({*report.analysed, *refresh_statistics(engine, only=_SCANNED)})
    with _Timer(report, "scores"), progress("scores", None) as advance:
        report.scores = score_conversations(
            engine,
            card,
            settings.quality,
            batch_size=settings.quality.batch_size,
            progress=advance,
            upto=upto,
            workers=settings.quality.workers or os.cpu_count() or 1,
        )
        if report.scores.set_aside:
            aside["scores"] = aside.get("scores", 0) + report.scores.set_aside
    with _Timer(report, "statistics"):  # and the alerts read the scores just written
        report.analysed = sorted({*report.analysed, *refresh_statistics(engine, only=_SCORED)})
    with _Timer(report, "alerts"):
        report.alerts = raise_alerts(settings, engine, aside)
    with _Timer(report, "daily"):  # the dashboard's pre-aggregated store-day tables
        report.daily = refresh_daily(engine, tz=settings.quality.timezone)
    with _Timer(report, "statistics"):  # the planner's, for the tables this run filled
        report.analysed = sorted({*report.analysed, *refresh_statistics(engine)})
    return report


def raise_alerts(settings: Settings, engine: Engine, aside: dict[str, int]) -> AlertStats:
    """The alert stage: from findings, then from scores (items that fail are set aside)."""
    min_severity = Severity(settings.alerts.min_severity)
    stats = run_isolated(
        engine,
        alerts_guard(),
        lambda size: raise_finding_alerts(engine, min_severity, batch_size=size),
        5000,
        aside,
    )
    quality = run_isolated(
        engine,
        quality_alerts_guard(),
        lambda size: raise_quality_alerts(
            engine, settings.alerts.low_score, settings.alerts.sla_streak, batch_size=size
        ),
        5000,
        aside,
    )
    stats.considered += quality.considered
    stats.raised += quality.raised
    return stats


def reads_pictures(settings: Settings) -> bool:
    """Whether the image stage runs (where its pictures come from: :func:`media_fetcher`)."""
    return settings.images.enabled


@contextmanager
def media_fetcher(settings: Settings, engine: Engine) -> Iterator[MediaFetcher]:
    """Where the source's pictures come from, open for one run of the image stage: the
    simulator's media folder; the official SDK's GetMediaData (one SDK process for the run);
    for an exported archive file, what ``audit media`` downloaded into ``[media] directory``
    (a picture not downloaded waits, in the backlog). SourceError (or the SDK's own errors,
    :class:`audit.archive.sdk.SdkError`) when the source cannot serve pictures now."""
    kind = settings.archive.source
    if kind == "simulator":
        from audit.archive.simulator.pictures import SimulatedMediaFetcher

        yield SimulatedMediaFetcher(settings.archive.simulator_dir)
    elif kind == "sdk":
        from audit.archive.sdk_worker import SdkMediaFetcher

        with sdk_client(settings, "reading the sdk archive's pictures") as client:
            client.open()  # bad credentials or binary: the stage's error, not every picture's
            yield SdkMediaFetcher(client)
    elif kind == "file":
        yield DownloadedMedia(engine, settings.media.directory)
    else:
        raise SourceError(f"unknown archive source {kind!r} (use simulator, file or sdk)")


def read_pictures(
    settings: Settings,
    engine: Engine,
    scanner: Scanner,
    progress: Callable[[int], None] | None = None,
    message_ids: Sequence[int] | None = None,
    workers: int | None = None,
) -> Any:
    """The image stage (:mod:`audit.images.stage`) over the source's pictures
    (:func:`media_fetcher`); None when it is off or the ``images`` extra is not installed.
    When the source cannot serve pictures now (no SDK credentials, say), nothing is read and
    the stats say why (``error``); the pictures stay in the backlog. ``message_ids``: only
    those messages (a distributed task's share); ``workers``: reading processes (default:
    ``images.workers``, 0 for one per core)."""
    cfg = settings.images
    if not reads_pictures(settings):
        return None
    try:
        from audit.archive.sdk import SdkError, SdkLibraryError
        from audit.images.stage import ImagePolicy, read_images
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] == "audit":
            raise  # our own code broken, not an extra missing
        log.warning("images not read: %s (pip install 'wecom-audit[images]')", exc)
        return None
    policy = ImagePolicy(
        directory=settings.media.directory,
        ocr=cfg.ocr,
        allow=tuple(cfg.allow_payloads),
        max_bytes=cfg.max_bytes,
        workers=workers or cfg.workers or (os.cpu_count() or 1),
        batch_size=cfg.batch_size,
    )
    unavailable = (SourceError, SdkError, SdkLibraryError, MediaError)
    try:
        with media_fetcher(settings, engine) as fetcher:
            return read_images(engine, fetcher, scanner, policy, progress, message_ids=message_ids)
    except unavailable as exc:
        log.warning("images not read: %s", exc)
        with session_scope(engine) as session:
            return not_read(session, f"{type(exc).__name__}: {exc}", policy.max_attempts)


def load_card(settings: Settings) -> Scorecard:
    return load_scorecard(settings.quality.scorecard)


def load_classifiers(settings: Settings) -> Scorers | None:
    """The message classifiers, or None (with a warning) when they are not trained.

    Compiled to arrays (:mod:`audit.quality.compiled`: the same probabilities, bit for bit,
    a fraction of scikit-learn's time on a batch) and kept in the scan cache, so that a
    run, a watch cycle or a worker starts without unpickling the pipelines."""
    from audit.quality.compiled import load_fast
    from audit.scan.automaton import cache_dir

    try:
        return load_fast(data_path(settings.quality.models), cache_dir())
    except (ScorersUnavailable, ConfigError) as exc:
        log.warning("classifiers not used: %s", exc)
        return None


def run(
    settings: Settings,
    engine: Engine,
    source: ArchiveSource,
    keys: KeyRing,
    scanner: Scanner,
    progress: ProgressFactory = no_progress,
    full_scan: bool = False,
) -> RunReport:
    """Every stage, incrementally (``audit run``).

    With ``archive.analyse_while_pulling`` set, the stages after decryption also run while
    the pull goes on (:class:`Alongside`); a last pass after the pull analyses the rest, so
    what is written is what analysing after the pull writes (the stages are incremental and
    independent of how their input is cut)."""
    every = 0 if full_scan else settings.archive.analyse_while_pulling
    if engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:"):
        every = 0  # a database of this process's own: no other process can open it
    alongside = Alongside(settings, engine, scanner, every) if every else None
    try:
        report = ingest(settings, engine, source, keys, progress)
    finally:
        passes = alongside.stop() if alongside is not None else []
    report = analyse(settings, engine, scanner, progress, report, full_scan=full_scan)
    for other in passes:
        report.add(other)
    return report


class Alongside:
    """A process that analyses what has been decrypted while the pull goes on: a pass of
    :func:`analyse` whenever ``every`` messages wait for the conversation stage, none when
    fewer do (a small pull is analysed after it, as without this). Forked before the pull's
    decrypting processes, with the loaded scanner, and with an engine of its own.

    The passes only take work off the pass after the pull: a pass that fails is logged and
    ends the process, and the last pass does what it left. :meth:`stop` waits for the pass
    under way and returns the passes' reports."""

    POLL_SECONDS = 1.0

    def __init__(self, settings: Settings, engine: Engine, scanner: Scanner, every: int) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        url = engine.url.render_as_string(hide_password=False)
        self._stop = context.Event()
        self._reports, sending = context.Pipe(duplex=False)
        self._process = context.Process(
            target=self._main,
            args=(settings, url, scanner, every, self._stop, sending),
            name="audit-alongside",
        )
        self._process.start()
        sending.close()

    def stop(self) -> list[RunReport]:
        self._stop.set()
        reports: list[RunReport] = []
        try:
            while True:
                reports.append(self._reports.recv())
        except EOFError:  # the process is done and has closed its end
            pass
        self._process.join()
        if self._process.exitcode:
            log.warning("the analysis alongside the pull ended with %s", self._process.exitcode)
        return reports

    @staticmethod
    def _main(
        settings: Settings, url: str, scanner: Scanner, every: int, stop: Any, sending: Any
    ) -> None:
        from audit.quality.conversations import STAGE
        from audit.store.models import Checkpoint

        engine = make_engine(url, echo=settings.database.echo)  # the run's database, its own pool
        passes: list[RunReport] = []  # sent at the end: a full pipe would stall the passes
        try:
            while not stop.wait(Alongside.POLL_SECONDS):
                with session_scope(engine) as session:
                    placed = session.scalar(
                        select(Checkpoint.seq).where(Checkpoint.source == STAGE)
                    )
                    newest = session.scalar(select(func.max(Message.id))) or 0
                if newest - (placed or 0) >= every:
                    passes.append(analyse(settings, engine, scanner, pictures=False))
        except Exception as exc:  # the pass after the pull does what this one left
            log.warning("analysis alongside the pull stopped: %s: %s", type(exc).__name__, exc)
        finally:
            for report in passes:
                sending.send(report)
            sending.close()
            engine.dispose()


def sdk_client(settings: Settings, purpose: str) -> IsolatedSdkClient:
    """The official SDK in its own process (:class:`audit.archive.sdk_worker.IsolatedSdkClient`)
    with the archive's credentials; SourceError naming what to set when they are missing."""
    from audit.archive.sdk_worker import IsolatedSdkClient

    arc = settings.archive
    if not arc.corpid or not arc.secret.get_secret_value():
        raise SourceError(
            f"{purpose} needs archive.corpid and archive.secret "
            "(give the secret as AUDIT_ARCHIVE__SECRET)"
        )
    return IsolatedSdkClient(
        arc.corpid,
        arc.secret.get_secret_value(),
        arc.sdk_library,
        proxy=arc.proxy,
        passwd=arc.proxy_password.get_secret_value(),
        timeout=arc.timeout,
    )


def fetch_media(settings: Settings, engine: Engine, progress: ProgressFactory = no_progress) -> Any:
    """Download the attachments of conversations with findings through the official SDK."""
    from audit.archive.media import download_media
    from audit.archive.sdk_worker import SdkMediaFetcher

    media = settings.media
    with (
        sdk_client(settings, "media download") as client,
        progress("media", None) as advance,
    ):
        return download_media(
            engine,
            SdkMediaFetcher(client),
            media.directory,
            media.max_bytes,
            max_attempts=media.max_attempts,
            progress=advance,
        )
