"""One pipeline run per database: a second `audit run` refuses in one line, or waits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from simfixtures import SimArchive
from sqlalchemy import Engine

from audit.cli import cli
from audit.store.db import make_engine
from audit.store.runlock import PipelineBusy, pipeline_lock


def _run_args(db_url: str, sim: SimArchive, *extra: str) -> list[str]:
    return ["--db", db_url, "run", "--source", "simulator", "--path", str(sim.directory), *extra]


def _envelopes(db_url: str) -> int:
    result = CliRunner().invoke(cli, ["--db", db_url, "status", "--json"])
    assert result.exit_code == 0, result.output
    return int(json.loads(result.output)["envelopes"]["total"])


def test_while_a_run_holds_the_database_a_second_run_refuses_in_one_line(
    db_url: str, engine: Engine, sim_archive: SimArchive
) -> None:
    with pipeline_lock(engine):
        result = CliRunner().invoke(cli, _run_args(db_url, sim_archive))
    assert result.exit_code == 1
    assert result.output.startswith("Error: another `audit run` or `audit watch` is working")
    assert result.output.count("\n") == 1 and "--wait" in result.output
    assert _envelopes(db_url) == 0  # it did nothing
    # released: the same command runs
    assert CliRunner().invoke(cli, _run_args(db_url, sim_archive)).exit_code == 0
    assert _envelopes(db_url) == sim_archive.manifest["messages"]


def test_the_lock_is_taken_by_one_holder_at_a_time(engine: Engine, db_url: str) -> None:
    other = make_engine(db_url)  # another process's engine
    try:
        with pipeline_lock(engine), pytest.raises(PipelineBusy), pipeline_lock(other):
            pass
        with pipeline_lock(other):  # free again once the first holder let go
            pass
    finally:
        other.dispose()


def test_with_wait_the_second_run_waits_then_runs(
    db_url: str, engine: Engine, sim_archive: SimArchive
) -> None:
    env = {**os.environ, "AUDIT_ARCHIVE__WORKERS": "1"}
    with pipeline_lock(engine):
        proc = subprocess.Popen(
            [sys.executable, "-m", "audit", *_run_args(db_url, sim_archive, "--wait")],
            stderr=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stderr is not None
        first = proc.stderr.readline()  # printed once it has found the lock taken
        assert first.startswith("waiting for the other run to finish"), first
        assert proc.poll() is None
    _out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert _envelopes(db_url) == sim_archive.manifest["messages"]


def test_a_killed_holder_leaves_no_stale_lock(db_url: str, engine: Engine, tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from audit.store.db import make_engine;"
            "from audit.store.runlock import pipeline_lock\n"
            f"with pipeline_lock(make_engine({db_url!r})):\n"
            "    print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    with pytest.raises(PipelineBusy), pipeline_lock(engine):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    with pipeline_lock(engine):
        pass
