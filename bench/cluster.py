"""The pipeline on Celery workers: single-process ``audit run`` against ``audit run
--distributed`` with one and with two worker processes, on the same simulated archive, in one
run, each into a fresh PostgreSQL database.

Reports messages/s (archive messages / wall seconds of the run, pull to daily tables) and the
scaling efficiency of n workers: rate(n) / (n x rate(1)). The workers are started and
answering before the clock starts; the coordinator's interpreter start is inside it, as it is
for the single-process run.

    python bench/cluster.py                       # 10,000 messages
    python bench/cluster.py --messages 2000       # a smoke run
    AUDIT_BENCH_PG_URL=... AUDIT_BENCH_BROKER_URL=amqp://USER:PASSWORD@HOST:5672// \
        python bench/cluster.py
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text

from audit.archive import simulator
from audit.config import SimulatorConfig
from audit.store.db import make_engine, migrate

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BROKER_DEFAULT = "amqp://guest:guest@127.0.0.1:5672//"
ROOT = Path(__file__).resolve().parent.parent


def _database(server: str) -> str:
    name = f"audit_bench_cluster_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_engine(server).url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def _drop(server: str, url: str) -> None:
    name = make_engine(url).url.database
    admin = make_engine(server).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _env(url: str, archive: Path, broker: str, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIT_")}
    env.update(
        PYTHONPATH=str(ROOT),
        AUDIT_DATABASE__URL=url,
        AUDIT_ARCHIVE__SIMULATOR_DIR=str(archive),
        AUDIT_IMAGES__ENABLED="false",
        AUDIT_CLUSTER__BROKER_URL=broker,
        AUDIT_CLUSTER__QUEUE_PREFIX=prefix,
        C_FORCE_ROOT="1",
    )
    if os.environ.get("AUDIT_SCAN_CACHE"):
        env["AUDIT_SCAN_CACHE"] = os.environ["AUDIT_SCAN_CACHE"]
    return env


def _timed_run(env: dict[str, str], archive: Path, *extra: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "audit", "run", *extra, "--path", str(archive)],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"audit run {' '.join(extra)} failed:\n{proc.stderr[-3000:]}")
    return seconds


def _ready(env: dict[str, str], names: list[str]) -> None:
    """Wait until every worker answers a ping (outside the timing)."""
    from audit.cluster.app import configure
    from audit.config import load_settings

    app = configure(load_settings(environ=env))
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        alive = {name.split("@")[0] for reply in replies for name in reply}
        if set(names) <= alive:
            return
    raise SystemExit(f"workers {names} did not answer within 600 s")


def _with_workers(n: int, env: dict[str, str], archive: Path, logs: Path) -> float:
    names = [f"bench{uuid.uuid4().hex[:6]}-{i}" for i in range(n)]
    procs = []
    for name in names:
        with (logs / f"{name}.log").open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "audit", "worker", "--name", name, "-l", "WARNING"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    try:
        _ready(env, names)
        return _timed_run(env, archive, "--distributed")
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(120)


def _delete_queues(broker: str, prefix: str) -> None:
    from kombu import Connection

    from audit.cluster.app import KINDS

    with Connection(broker, connect_timeout=3) as conn:
        for kind in KINDS:
            with contextlib.suppress(Exception):
                conn.channel().queue_delete(queue=f"{prefix}.{kind}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    server = os.environ.get("AUDIT_BENCH_PG_URL", PG_DEFAULT)
    broker = os.environ.get("AUDIT_BENCH_BROKER_URL", BROKER_DEFAULT)
    prefix = f"auditbench{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "sim"
        stores = max(3, args.messages // 2000)
        cfg = SimulatorConfig(seed=args.seed, messages=args.messages, stores=stores, days=3)
        simulator.simulate(cfg.model_copy(update={"images": False}), archive)
        results: dict[str, Any] = {
            "messages": args.messages,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "runs": {},
        }
        for label, workers in (("single", 0), ("workers_1", 1), ("workers_2", 2)):
            url = _database(server)
            try:
                env = _env(url, archive, broker if workers else "", prefix)
                if workers:
                    seconds = _with_workers(workers, env, archive, Path(tmp))
                else:
                    seconds = _timed_run(env, archive)
            finally:
                _drop(server, url)
            rate = args.messages / seconds
            results["runs"][label] = {"seconds": round(seconds, 2), "rate": round(rate, 1)}
            print(f"{label:<12}{seconds:>10.1f} s {rate:>10.1f} msgs/s", flush=True)
    _delete_queues(broker, prefix)
    runs = results["runs"]
    one = runs["workers_1"]["rate"]
    results["efficiency_2"] = round(runs["workers_2"]["rate"] / (2 * one), 3)
    results["distributed_1_vs_single"] = round(one / runs["single"]["rate"], 3)
    print(f"2 workers vs 1: efficiency {results['efficiency_2']:.2f} (1.00: linear)")
    print(f"1 worker vs single process: {results['distributed_1_vs_single']:.2f}x")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
