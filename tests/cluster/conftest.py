"""A real broker, real PostgreSQL databases, real worker processes.

RabbitMQ is found through ``AUDIT_TEST_BROKER_URL`` (default: the local server, vhost ``/``);
every test session uses queues of its own (a unique ``cluster.queue_prefix``). The tests are
skipped, with the reason shown, when the broker or PostgreSQL cannot be reached, and fail
instead under CI (``AUDIT_REQUIRE_PG`` / ``AUDIT_REQUIRE_BROKER``).

The baseline is a single-process ``audit run`` of the same simulated archive into a database
of its own; every distributed run is compared with it row for row (:mod:`rows`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_support import (
    ARCHIVE,
    BROKER_URL,
    HERE,
    PREFIX,
    Worker,
    delete_queues,
    environment,
)
from sqlalchemy import text

from audit.store.db import make_engine, migrate

sys.path.insert(0, str(HERE))


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


@pytest.fixture(scope="session")
def make_db(pg_database: str) -> Iterator[Callable[[], str]]:
    """Fresh migrated PostgreSQL databases, dropped at the end of the session (the server
    of ``pg_database``, which skips or fails when it cannot be reached)."""
    server = make_engine(pg_database).url
    admin = make_engine(server.render_as_string(hide_password=False)).execution_options(
        isolation_level="AUTOCOMMIT"
    )
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


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start worker processes (each in a process group of its own); stopped after the test.

    ``prefix`` goes before the command (``OtherHost.prefix``: in a network namespace).
    ``armed=(table, n)`` starts one that SIGKILLs itself before its n-th write to ``table``
    (:mod:`crashpoint`): killed in the middle of a task's transaction, the same point on
    every run; ``pause=directory`` makes that one stop there instead, until released."""
    started: list[Worker] = []

    def start(
        name: str,
        env: dict[str, str],
        armed: tuple[str, int] | None = None,
        pause: Path | None = None,
        prefix: list[str] | None = None,
    ) -> Worker:
        log = tmp_path / f"{name}.log"
        cmd = list(prefix or [])  # e.g. `ip netns exec NAME`: on another host (OtherHost)
        if armed:
            cmd += [sys.executable, str(HERE / "armed_worker.py")]
            cmd += [armed[0], str(armed[1])]
            cmd += ["--pause", str(pause)] if pause else []
        else:
            cmd += [sys.executable, "-m", "audit"]
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
