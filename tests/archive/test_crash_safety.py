"""Kill a run with SIGKILL at seeded points while it pulls, decrypts in worker processes and
goes on through the later stages; rerun; nothing lost, nothing doubled.

The points are counted in writes to each stage's table (``crashpoint.py``), not in time, so
the test does the same on a fast machine and a busy one. The whole process group dies,
decrypt workers included, inside a transaction, as in a power cut.
"""

from __future__ import annotations

import os
import random

import pytest
from crashpoint import run_killed
from simfixtures import SimArchive
from sqlalchemy import func, select

from audit.archive import simulator
from audit.archive.keys import KeyRing
from audit.archive.sources import SimulatedServer, file_source_name
from audit.pipeline import sync_simulated_directory
from audit.reports.status import status
from audit.store.db import make_engine, session_scope
from audit.store.models import Checkpoint, Conversation, Envelope, EnvelopeState, Message

pytestmark = pytest.mark.slow  # long-running: scheduled first (tests/conftest.py)

# two decrypt workers (the process group takes them down too), and small pages and batches:
# many transactions to die in
WORKERS = {"archive": {"workers": 2, "page_size": 97}, "scan": {"batch_size": 500}}
# (stage, the n-th write of its table to die at is drawn from 1..this): the pull writes a
# page of 97 envelopes per INSERT (26 pages), the later stages fewer, larger statements
KILLS = [("pull", 12), ("pull", 8), ("decrypt", 4), ("decrypt", 3), ("conversations", 1)]
KILLS += [("scan", 1), ("scores", 1), ("alerts", 1)]


def test_sigkill_at_seeded_points_loses_and_duplicates_nothing(
    db_url: str, sim_archive: SimArchive
) -> None:
    rng = random.Random(int(os.environ.get("AUDIT_KILL_SEED", "3")))
    archive = sim_archive.archive  # read as an archive file (FileSource)
    keys = KeyRing.from_files(simulator.key_files(sim_archive.directory))
    engine = make_engine(db_url)
    sync_simulated_directory(engine, SimulatedServer(sim_archive.directory))
    engine.dispose()  # the forked runs open their own connections

    killed = [
        stage
        for stage, most in KILLS
        if run_killed(db_url, (stage, rng.randint(1, most)), archive, keys, WORKERS)
    ]
    assert killed == [stage for stage, _ in KILLS], "a run ended before its kill point"
    assert not run_killed(db_url, None, archive, keys, WORKERS)

    engine = make_engine(db_url)
    with session_scope(engine) as session:
        msgids = list(session.scalars(select(Envelope.msgid)))
        message_ids = list(session.scalars(select(Message.msgid)))
        checkpoint = session.get(Checkpoint, file_source_name(archive))
        max_seq = session.scalar(select(func.max(Envelope.seq)))
        st = status(session)
        pending = session.scalar(
            select(func.count()).where(Envelope.state == EnvelopeState.PENDING)
        )
        # each message is in at most one conversation, and every conversation's counters
        # match the messages that point at it
        placed = session.scalar(select(func.count()).where(Message.conversation_id.is_not(None)))
        counted = session.scalar(select(func.sum(Conversation.message_count)))
        unscanned = session.scalar(
            select(func.count()).where(Message.text != "", Message.scanned_run_id.is_(None))
        )
    engine.dispose()
    expected = sim_archive.msgids()
    assert len(msgids) == len(set(msgids)) == len(expected)
    assert set(msgids) == expected
    assert sorted(message_ids) == sorted(expected)  # every envelope decrypted exactly once
    assert checkpoint is not None and checkpoint.seq == max_seq == sim_archive.manifest["last_seq"]
    assert pending == 0
    assert placed == counted and placed > 0
    assert unscanned == 0
    env = st["envelopes"]
    assert env["total"] == env["decrypted"] + env["failed"] + env["pending"] == len(expected)
    assert st["messages"]["by_type"] == sim_archive.manifest["by_type"]
