"""Results are a function of the set of messages: a simulated archive delivered shuffled, in
several pulls, with bridging and opening messages last and one key added only at the end,
gives the same conversations, findings, scores and alerts as a clean run, row for row."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from arrival import Late, append_items, deliveries, late_messages
from simfixtures import SimArchive
from sqlalchemy import Engine, func, select

from audit.archive import simulator
from audit.archive.ingest import retry_failed
from audit.archive.keys import KeyRing
from audit.archive.sources import FileSource, SimulatedServer
from audit.config import Settings, load_settings
from audit.pipeline import load_scanner, run, sync_simulated_directory
from audit.quality.merge import ACTION
from audit.store.db import make_engine, session_scope
from audit.store.models import AuditLog, Envelope, EnvelopeState
from audit.store.results import ResultRows, result_rows


def _settings() -> Settings:
    return load_settings(None, environ={}, overrides={"archive": {"workers": 1}})


@pytest.fixture(scope="module")
def clean(
    sim_archive: SimArchive, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ResultRows, Late]:
    """The archive pulled once, in order, with every key (on SQLite)."""
    path = tmp_path_factory.mktemp("clean") / "clean.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    settings = _settings()
    keys = KeyRing.from_files(simulator.key_files(sim_archive.directory))
    run(settings, engine, SimulatedServer(sim_archive.directory), keys, load_scanner(settings))
    rows, late = result_rows(engine), late_messages(engine)
    engine.dispose()
    return rows, late


def test_shuffled_arrival_gives_the_clean_results(
    engine: Engine,
    sim_archive: SimArchive,
    clean: tuple[ResultRows, Late],
    tmp_path: Path,
) -> None:
    expected, late = clean
    assert len(late.bridging) >= 24 and len(late.opening) >= 24  # the archive has them
    settings = _settings()
    scanner = load_scanner(settings)
    files = simulator.key_files(sim_archive.directory)
    first_key = KeyRing.from_files({min(files): files[min(files)]})
    sync_simulated_directory(engine, SimulatedServer(sim_archive.directory))
    archive = tmp_path / "archive.jsonl"
    parts = deliveries(sim_archive.items(), late, pulls=4, seed=7, held=24)
    merged = 0
    for part in parts:
        append_items(archive, part)
        # the rotated key is missing until the end: its messages fail and wait
        report = run(settings, engine, FileSource(archive), first_key, scanner)
        assert report.conversations is not None
        assert report.conversations is not None
    merged += report.conversations.merged
    with session_scope(engine) as session:
        waiting = session.scalar(select(func.count()).where(Envelope.state == EnvelopeState.FAILED))
    assert waiting and waiting > 100
    retry_failed(engine)
    report = run(settings, engine, FileSource(archive), KeyRing.from_files(files), scanner)
    assert report.conversations is not None
    merged += report.conversations.merged

    got = result_rows(engine)
    assert got.differences(expected) == dict.fromkeys(expected.counts(), 0)
    assert got == expected
    # late messages merged conversations, and the trail says which into which
    with session_scope(engine) as session:
        trail = session.scalars(select(AuditLog.detail).where(AuditLog.action == ACTION)).all()
    assert merged >= 10 and sum(len(d["merged"]) for d in trail) == merged
