"""Ingest throughput: simulate -> pull -> decrypt -> conversations -> scan -> alerts.

Measures the whole path on SQLite and PostgreSQL beside the decrypt-only rate (RSA + AES +
parse, no database) of the same envelopes in the same run, and reports messages/s and the
ratio to decrypt-only, which is the floor any puller pays.

    python bench/ingest.py                   # 100,000 messages
    python bench/ingest.py --messages 5000   # a smoke run
    AUDIT_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python bench/ingest.py
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text

from audit.archive import simulator
from audit.archive.ingest import Decryptor, Job
from audit.archive.keys import KeyRing
from audit.archive.sources import SimulatedServer
from audit.config import load_settings
from audit.pipeline import load_scanner, run
from audit.store.db import make_engine, migrate

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def decrypt_only(server: SimulatedServer, keys: KeyRing, workers: int) -> tuple[int, float]:
    jobs: list[Job] = []
    for page in server.pages(0, 1000):
        for i, item in enumerate(page.items):
            jobs.append(
                (
                    len(jobs) + i,
                    item.msgid,
                    item.seq,
                    item.publickey_ver,
                    item.encrypt_random_key,
                    item.encrypt_chat_msg,
                )
            )
    with Decryptor(keys, workers) as dec:
        dec.run(jobs[:400])  # start the worker processes outside the timing
        t0 = time.perf_counter()
        out = dec.run(jobs)
        seconds = time.perf_counter() - t0
    ok = sum(1 for _, row, _ in out if row is not None)
    return ok, seconds


def pg_database(admin_url: str) -> tuple[str, Any]:
    name = f"audit_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_engine(admin_url).url.set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return url, drop


def run_backend(url: str, sim_dir: Path, workers: int, alongside: int | None) -> dict[str, Any]:
    archive: dict[str, Any] = {"workers": workers, "simulator_dir": str(sim_dir)}
    if alongside is not None:
        archive["analyse_while_pulling"] = alongside
    settings = load_settings(
        None,
        environ={},
        # pictures have their own benchmark (bench/images.py): this one is the text pipeline
        overrides={
            "database": {"url": url},
            "archive": archive,
            "images": {"enabled": False},
        },
    )
    engine = make_engine(url)
    migrate(engine)
    server = SimulatedServer(sim_dir)
    keys = KeyRing.from_files(simulator.key_files(sim_dir))
    scanner = load_scanner(settings)
    t0 = time.perf_counter()
    report = run(settings, engine, server, keys, scanner)
    total = time.perf_counter() - t0
    engine.dispose()
    assert report.decrypt is not None
    return {
        "messages": report.decrypt.decrypted,
        "seconds": round(total, 2),
        "stages": report.seconds,
        "rate": round(report.decrypt.decrypted / total, 1),
        "passes_alongside": report.alongside,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=0, help="decrypt processes (0: per core)")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument(
        "--alongside",
        type=int,
        help="archive.analyse_while_pulling (default: as configured, 0: analyse after the pull)",
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--keep",
        type=Path,
        help="an empty directory to simulate into and hold the SQLite database (kept after)",
    )
    args = parser.parse_args()
    workers = args.workers or os.cpu_count() or 1

    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            if any(args.keep.iterdir()):
                parser.error(f"--keep {args.keep}: not empty")
            tmp = str(args.keep.resolve())
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
        sim_dir = Path(tmp) / "sim"
        cfg = load_settings(None, environ={}).simulator.model_copy(
            update={"messages": args.messages, "images": False}
        )
        t0 = time.perf_counter()
        sim = simulator.simulate(cfg, sim_dir)
        sim_seconds = time.perf_counter() - t0

        server = SimulatedServer(sim_dir)
        keys = KeyRing.from_files(simulator.key_files(sim_dir))
        n, dec_seconds = decrypt_only(server, keys, workers)
        results: dict[str, Any] = {
            "machine": (
                f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
            ),
            "messages": sim.messages,
            "workers": workers,
            "simulate": {
                "seconds": round(sim_seconds, 2),
                "rate": round(sim.messages / sim_seconds, 1),
            },
            "decrypt_only": {
                "messages": n,
                "seconds": round(dec_seconds, 2),
                "rate": round(n / dec_seconds, 1),
            },
        }
        results["sqlite"] = run_backend(
            f"sqlite:///{tmp}/bench.db", sim_dir, workers, args.alongside
        )
        if not args.no_pg:
            admin = os.environ.get("AUDIT_BENCH_PG_URL", PG_DEFAULT)
            try:
                url, drop = pg_database(admin)
            except Exception as exc:
                results["postgresql"] = {"skipped": f"{type(exc).__name__}: {exc}".splitlines()[0]}
            else:
                try:
                    results["postgresql"] = run_backend(url, sim_dir, workers, args.alongside)
                finally:
                    drop()
    base = results["decrypt_only"]["rate"]
    print(f"{'stage':<24}{'msgs/s':>12}{'x decrypt-only':>16}")
    print(f"{'simulate':<24}{results['simulate']['rate']:>12,.0f}")
    print(f"{'decrypt only':<24}{base:>12,.0f}{1.0:>16.2f}")
    for backend in ("sqlite", "postgresql"):
        r = results.get(backend)
        if r and "rate" in r:
            print(f"{'pipeline on ' + backend:<24}{r['rate']:>12,.0f}{r['rate'] / base:>16.2f}")
            print("    " + ", ".join(f"{k} {v:.1f}s" for k, v in r["stages"].items()))
            print(f"    passes of the stages alongside the pull: {r['passes_alongside']}")
        elif r:
            print(f"pipeline on {backend}: skipped ({r['skipped']})")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
