"""Results are a function of the set of messages: a simulated archive delivered shuffled, in
several pulls, with bridging and opening messages last and one key added only at the end,
gives the same conversations, findings, scores and alerts as a clean run, row for row."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest
from arrival import Late, append_items, deliveries, late_messages
from crashpoint import STAGE_TABLES, run_killed
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
    assert merged >= 12 and sum(len(d["merged"]) for d in trail) == merged


@pytest.mark.slow
def test_kills_in_every_stage_and_shuffled_arrival_give_the_clean_results(
    db_url: str,
    sim_archive: SimArchive,
    clean: tuple[ResultRows, Late],
    tmp_path: Path,
) -> None:
    """SIGKILL at seeded points (counted in writes, not time) of every stage, while the
    archive arrives shuffled in three pulls with bridging and opening messages last and the
    rotated key added at the end; then the runs finish: the clean run's rows, row for row."""
    expected, late = clean
    rng = random.Random(int(os.environ.get("AUDIT_KILL_SEED", "5")))
    files = simulator.key_files(sim_archive.directory)
    first_key = KeyRing.from_files({min(files): files[min(files)]})
    engine = make_engine(db_url)
    sync_simulated_directory(engine, SimulatedServer(sim_archive.directory))
    engine.dispose()  # the forked runs open their own connections
    parts = deliveries(sim_archive.items(), late, pulls=3, seed=rng.randrange(1000), held=24)
    # every stage dies once in the first two pulls, and the stages that merge conversations
    # and follow them up die again while the held-back messages arrive
    stages = list(STAGE_TABLES)
    rng.shuffle(stages)
    order = list(STAGE_TABLES).index  # a run that died in a stage did none of the later ones
    plans = [sorted(stages[:4], key=order), sorted(stages[4:], key=order)]
    plans.append(["conversations", "scores", "alerts"])
    archive = tmp_path / "archive.jsonl"
    killed: list[str] = []
    for part, plan in zip(parts, plans, strict=True):
        append_items(archive, part)
        for stage in plan:
            n = rng.randint(1, _KILL_RANGE[stage])
            if run_killed(db_url, (stage, n), archive, first_key):
                killed.append(stage)
        assert not run_killed(db_url, None, archive, first_key)
    # the rotated key arrives: the failed messages are retried (and the decrypt dies once)
    if run_killed(db_url, ("decrypt", rng.randint(1, 3)), archive, KeyRing.from_files(files)):
        killed.append("decrypt")
    assert not run_killed(db_url, None, archive, KeyRing.from_files(files))

    assert sorted(set(killed)) == sorted(STAGE_TABLES) and len(killed) == 11, killed
    got = result_rows(engine)
    engine.dispose()
    assert got.differences(expected) == dict.fromkeys(expected.counts(), 0)
    assert got == expected


# the n-th write of a stage's table to die at is drawn from 1..this: within what one pull of
# a part of this archive writes, on both backends (PostgreSQL batches more rows per statement)
_KILL_RANGE = {
    "pull": 12,  # a page of 97 envelopes per INSERT: 13 pages in a pull
    "decrypt": 6,
    "conversations": 1,
    "scan": 1,
    "scores": 1,
    "alerts": 1,
    "daily": 1,
}
