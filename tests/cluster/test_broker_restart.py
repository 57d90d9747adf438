"""The broker restarted in the middle of ``audit run --distributed`` changes nothing in the
results and loses nothing: the coordinator, waiting for a stage's results, reconnects; the
worker, inside a task when the broker went, finishes it, reconnects and runs it again.

The broker restarted is a RabbitMQ node of this test's own (``rabbitmqctl stop_app`` then
``start_app``, which drops every connection), so that the tests sharing the usual broker are
not disturbed. The restart happens at a fixed point: a worker stops before its first write of
findings (inside a scan task's transaction), the broker is stopped, and it is started again
once the coordinator has seen the connection go.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_support import OwnBroker, Worker, coordinator, environment
from rows import differences, dump

from audit.store.db import make_engine

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LOST = "lost the broker"


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnBroker]:
    """Started before the baseline is computed (it boots meanwhile); always shut down."""
    try:
        broker = OwnBroker(tmp_path_factory.mktemp("rabbitmq"))
    except FileNotFoundError as exc:
        reason = f"no RabbitMQ node of the test's own to restart: {exc}"
        if os.environ.get("AUDIT_REQUIRE_BROKER"):  # CI: the restart is part of the contract
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield broker
    finally:
        broker.shutdown()


class Lines:
    """A process's stderr read as it comes, to wait for a line without blocking on it."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc, self.lines = proc, list[str]()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None or self.thread.is_alive(), self.text()[-3000:]
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.text()[-3000:]}"
            time.sleep(0.05)

    def text(self) -> str:
        return "".join(self.lines)


def _wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before {path.name}"
        assert time.monotonic() < deadline, f"no {path} within {timeout}s"
        time.sleep(0.05)


def test_a_broker_restart_mid_run_changes_nothing_and_loses_nothing(
    own_broker: OwnBroker,
    baseline: dict[str, Any],
    make_db: Callable[[], str],
    archive: Path,
    workers: Callable[..., Worker],
    tmp_path: Path,
) -> None:
    own_broker.wait_ready()
    url = make_db()
    env = environment(url, archive, AUDIT_CLUSTER__BROKER_URL=own_broker.url)
    gate = tmp_path / "gate"
    gate.mkdir()
    worker = workers("paused", env, armed=("findings", 1), pause=gate)
    run = coordinator(env, archive)
    err = Lines(run)
    try:
        _wait_for_file(gate / "paused", run)  # the scan stage: its first task holds
        own_broker.ctl("stop_app")
        try:
            err.wait_for(LOST)  # the coordinator, waiting for the scan, saw the broker go
        finally:
            own_broker.ctl("start_app")
    finally:
        (gate / "go").touch()
    assert run.wait(1200) == 0, err.text()[-4000:]
    err.thread.join(60)
    assert "scan: broker back, waiting for the results" in err.text()
    assert worker.proc.poll() is None, worker.log.read_text()[-3000:]  # it reconnected

    engine = make_engine(url)
    try:
        rows = dump(engine)
        with engine.connect() as conn:
            from sqlalchemy import text

            failures = conn.execute(text("select stage, item from stage_failures")).all()
    finally:
        engine.dispose()
    assert not differences(baseline["rows"], rows)
    assert rows == baseline["rows"]
    assert failures == []
