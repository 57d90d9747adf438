"""A real broker, real PostgreSQL databases, real worker processes.

RabbitMQ is found through ``AUDIT_TEST_BROKER_URL`` (default: the local server, vhost ``/``);
every test session uses queues of its own (a unique ``cluster.queue_prefix``). The tests are
skipped, with the reason shown, when the broker or PostgreSQL cannot be reached, and fail
instead under CI (``AUDIT_REQUIRE_PG`` / ``AUDIT_REQUIRE_BROKER``).

The baseline is a single-process ``audit run`` of the same simulated archive into a database
of its own; every distributed run is compared with it row for row (:mod:`rows`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from audit.config import SimulatorConfig
from audit.store.db import make_engine, migrate

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

BROKER_URL = os.environ.get("AUDIT_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
PREFIX = f"audittest{uuid.uuid4().hex[:8]}"
ARCHIVE = SimulatorConfig(
    seed=23,
    regions=1,
    cities_per_region=2,
    stores=3,
    staff_per_store=3,
    customers_per_staff=8,
    days=2,
    messages=2000,
    key_bits=1024,
    images=False,
)
# several tasks per stage, so that a worker can die in the middle of one and others remain
TASK_SIZES = {
    "AUDIT_CLUSTER__DECRYPT_BATCH": "500",
    "AUDIT_CLUSTER__SCAN_BATCH": "500",
    "AUDIT_CLUSTER__SCORE_BATCH": "150",
    "AUDIT_CLUSTER__PARTITIONS": "4",
    "AUDIT_CLUSTER__MAX_RETRIES": "2",
    "AUDIT_CLUSTER__RETRY_BACKOFF_MAX": "2",
    "AUDIT_CLUSTER__TASK_TIMEOUT": "900",
}


def _broker_skip_reason() -> str | None:
    try:
        from kombu import Connection
    except ImportError:
        return "Celery is not installed (pip install 'wecom-audit[cluster]')"
    try:
        with Connection(BROKER_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
        return None
    except Exception as exc:
        return f"RabbitMQ at {BROKER_URL} unreachable: {type(exc).__name__}: {exc}".splitlines()[0]


@pytest.fixture(scope="session", autouse=True)
def _broker() -> Iterator[None]:
    reason = _broker_skip_reason()
    if reason:
        if os.environ.get("AUDIT_REQUIRE_BROKER"):  # CI: a missing broker is a failure
            pytest.fail(reason)
        pytest.skip(reason)
    yield
    delete_queues(BROKER_URL, PREFIX)


def delete_queues(broker: str, prefix: str) -> None:
    """The session's queues (durable: they would outlive it)."""
    from kombu import Connection

    from audit.cluster.app import KINDS

    with Connection(broker, connect_timeout=3) as conn:
        for kind in KINDS:
            channel = conn.channel()
            try:
                channel.queue_delete(queue=f"{prefix}.{kind}")
            except Exception:  # never declared in this session
                pass
            finally:
                with contextlib.suppress(Exception):
                    channel.close()


@pytest.fixture(scope="session")
def make_db(pg_database: str) -> Iterator[Callable[[], str]]:
    """Fresh migrated PostgreSQL databases, dropped at the end of the session (the server
    of ``pg_database``, which skips or fails when it cannot be reached)."""
    server = make_engine(pg_database).url
    admin = make_engine(server).execution_options(isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = f"audit_cluster_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        url = server.set(database=name).render_as_string(hide_password=False)
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        return url

    yield make
    with admin.connect() as conn:
        for name in made:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from audit.archive import simulator

    directory = tmp_path_factory.mktemp("cluster") / "sim"
    simulator.simulate(ARCHIVE, directory)
    return directory


def environment(db_url: str, archive: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIT_")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]),
            "AUDIT_DATABASE__URL": db_url,
            "AUDIT_ARCHIVE__SIMULATOR_DIR": str(archive),
            "AUDIT_IMAGES__ENABLED": "false",
            "AUDIT_CLUSTER__BROKER_URL": BROKER_URL,
            "AUDIT_CLUSTER__QUEUE_PREFIX": PREFIX,
            "C_FORCE_ROOT": "1",  # containers run as root
            **TASK_SIZES,
            **extra,
        }
    )
    if os.environ.get("AUDIT_SCAN_CACHE"):
        env["AUDIT_SCAN_CACHE"] = os.environ["AUDIT_SCAN_CACHE"]
    return env


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start worker processes (each in a process group of its own); stopped after the test.

    ``armed=(table, n)`` starts one that SIGKILLs itself before its n-th write to ``table``
    (:mod:`crashpoint`): killed in the middle of a task's transaction, the same point on
    every run."""
    started: list[Worker] = []

    def start(name: str, env: dict[str, str], armed: tuple[str, int] | None = None) -> Worker:
        log = tmp_path / f"{name}.log"
        if armed:
            cmd = [sys.executable, str(HERE / "armed_worker.py")]
            cmd += [armed[0], str(armed[1])]
        else:
            cmd = [sys.executable, "-m", "audit"]
        cmd += ["worker", "--name", name, "--loglevel", "WARNING"]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        worker = Worker(name, proc, log)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def coordinator(env: dict[str, str], archive: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "audit", "run", "--distributed", "--path", str(archive), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 1200) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{err[-4000:]}"
    return out, err


@pytest.fixture(scope="session")
def baseline(make_db: Callable[[], str], archive: Path) -> dict[str, Any]:
    """A single-process ``audit run`` of the archive, as rows."""
    from rows import dump

    url = make_db()
    proc = subprocess.run(
        [sys.executable, "-m", "audit", "run", "--path", str(archive)],
        env=environment(url, archive, AUDIT_CLUSTER__BROKER_URL=""),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    engine = make_engine(url)
    try:
        return {"url": url, "rows": dump(engine), "stderr": proc.stderr}
    finally:
        engine.dispose()
