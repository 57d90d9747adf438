"""Analysing while the pull goes on (``archive.analyse_while_pulling``) writes what analysing
after the pull writes, row for row, on both databases.

The archive here holds back its second half until a pass of the stages has run alongside the
pull, so that the passes really happen mid-pull whatever the machine's speed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster.rows import differences, dump
from simfixtures import SimArchive
from sqlalchemy import Engine, select

from audit.archive import simulator
from audit.archive.keys import KeyRing
from audit.archive.sources import Page, SimulatedServer
from audit.config import load_settings
from audit.pipeline import load_scanner, run
from audit.quality.conversations import STAGE
from audit.store.db import make_engine, session_scope
from audit.store.models import Checkpoint

pytestmark = pytest.mark.slow

PAGE = 100  # messages a page: the archive of 2,500 comes in 25 pages
HELD_AT = 15  # pages pulled before the archive waits for a pass alongside
WAIT_SECONDS = 300  # for the pass to happen: generous; the test fails if it never does


class HeldArchive(SimulatedServer):
    """The simulated archive, whose pages after ``HELD_AT`` come only once the stages have
    placed messages in conversations: a pass alongside the pull has run."""

    def __init__(self, directory: Path, url: str) -> None:
        super().__init__(directory)
        self.url = url
        self.held = False

    def pages(self, after_seq: int, limit: int) -> Iterator[Page]:
        for n, page in enumerate(super().pages(after_seq, limit)):
            if n == HELD_AT:
                self._wait_for_a_pass()
            yield page

    def _wait_for_a_pass(self) -> None:
        engine = make_engine(self.url)
        deadline = time.monotonic() + WAIT_SECONDS
        try:
            while time.monotonic() < deadline:
                with session_scope(engine) as session:
                    placed = session.scalar(
                        select(Checkpoint.seq).where(Checkpoint.source == STAGE)
                    )
                if placed:
                    self.held = True
                    return
                time.sleep(0.05)
        finally:
            engine.dispose()
        raise AssertionError(f"no pass of the stages alongside the pull in {WAIT_SECONDS} s")


def _settings(every: int) -> Any:
    return load_settings(
        None,
        environ={},
        overrides={"archive": {"workers": 1, "page_size": PAGE, "analyse_while_pulling": every}},
    )


def _run(engine: Engine, sim: SimArchive, every: int, source: SimulatedServer) -> Any:
    settings = _settings(every)
    keys = KeyRing.from_files(simulator.key_files(sim.directory))
    return run(settings, engine, source, keys, load_scanner(settings))


def test_analysing_while_pulling_writes_what_analysing_after_writes(
    empty_again: Callable[[str], None], db_url: str, sim_archive: SimArchive
) -> None:
    engine = make_engine(db_url)
    after = _run(engine, sim_archive, 0, SimulatedServer(sim_archive.directory))
    assert after.alongside == 0
    expected = dump(engine)
    engine.dispose()

    empty_again(db_url)
    engine = make_engine(db_url)
    held = HeldArchive(sim_archive.directory, db_url)
    report = _run(engine, sim_archive, 300, held)
    try:
        assert held.held
        assert report.alongside >= 1
        rows = dump(engine)
    finally:
        engine.dispose()
    assert not differences(expected, rows, show=6), "\n".join(differences(expected, rows, show=6))
    assert rows == expected
    # the passes and the last one together did the work once: every message placed and
    # scanned once, the same findings
    assert report.conversations.messages == after.conversations.messages
    assert report.scan.messages == after.scan.messages
    assert report.scan.findings == after.scan.findings
    assert report.decrypt.decrypted == after.decrypt.decrypted


def test_a_small_pull_is_analysed_after_it(sqlite_url: str, sim_archive: SimArchive) -> None:
    """Fewer messages than a pass needs: the stages run once, after the pull (whatever the
    backend: the process alongside only counts messages)."""
    engine = make_engine(sqlite_url)
    report = _run(engine, sim_archive, 10**6, SimulatedServer(sim_archive.directory))
    engine.dispose()
    assert report.alongside == 0
    assert report.scan.messages > 2000
