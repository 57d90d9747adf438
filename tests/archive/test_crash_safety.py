"""Kill the puller with SIGKILL at random points; restart; nothing lost, nothing doubled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from audit.config import SimulatorConfig
from audit.reports.status import status
from audit.store.db import make_engine, session_scope
from audit.store.models import Checkpoint, Conversation, Envelope, EnvelopeState, Message

LARGE = SimulatorConfig(
    seed=23,
    regions=1,
    cities_per_region=2,
    stores=4,
    staff_per_store=3,
    customers_per_staff=10,
    days=3,
    messages=16000,
    key_bits=1024,
)


@pytest.fixture(scope="module")
def large_archive(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from simfixtures import build

    return build(tmp_path_factory.mktemp("large") / "sim", LARGE)


def _pull_process(db_url: str, sim_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AUDIT_ARCHIVE__PAGE_SIZE": "97",  # many small transactions: many places to die in
        "AUDIT_ARCHIVE__WORKERS": "2",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "audit",
            "--db",
            db_url,
            "run",
            "--source",
            "simulator",
            "--path",
            str(sim_dir),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the decrypt workers die with it
    )


def test_sigkill_at_random_points_loses_and_duplicates_nothing(db_url: str, large_archive) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(int(os.environ.get("AUDIT_KILL_SEED", "0")) or None)
    kills = 0
    for _ in range(6):
        proc = _pull_process(db_url, large_archive.directory)
        time.sleep(rng.uniform(0.7, 2.5))
        if proc.poll() is not None:
            break  # it finished before we could kill it
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
    assert kills >= 3, "the pull finished too fast to be interrupted; enlarge the archive"
    proc = _pull_process(db_url, large_archive.directory)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()

    engine = make_engine(db_url)
    with session_scope(engine) as session:
        msgids = list(session.scalars(select(Envelope.msgid)))
        message_ids = list(session.scalars(select(Message.msgid)))
        checkpoint = session.get(Checkpoint, "simulator")
        max_seq = session.scalar(select(func.max(Envelope.seq)))
        st = status(session)
        pending = session.scalar(
            select(func.count()).where(Envelope.state == EnvelopeState.PENDING)
        )
        # the later stages were killed too: each message is in at most one conversation, and
        # every conversation's counters match the messages that point at it
        placed = session.scalar(select(func.count()).where(Message.conversation_id.is_not(None)))
        counted = session.scalar(select(func.sum(Conversation.message_count)))
        unscanned = session.scalar(
            select(func.count()).where(Message.text != "", Message.scanned_run_id.is_(None))
        )
    engine.dispose()
    expected = large_archive.msgids()
    assert len(msgids) == len(set(msgids)) == len(expected)
    assert set(msgids) == expected
    assert sorted(message_ids) == sorted(expected)  # every envelope decrypted exactly once
    assert (
        checkpoint is not None and checkpoint.seq == max_seq == large_archive.manifest["last_seq"]
    )
    assert pending == 0
    assert placed == counted and placed > 0
    assert unscanned == 0
    env = st["envelopes"]
    assert env["total"] == env["decrypted"] + env["failed"] + env["pending"] == len(expected)
    assert st["messages"]["by_type"] == large_archive.manifest["by_type"]
