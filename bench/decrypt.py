"""Decryption throughput: our decryptor vs the official SDK, and what the pull path adds.

In one run, on the same simulated envelopes (2048-bit keys) and the same number of worker
processes:

* native decrypt-only: RSA + our DecryptData + parsing, no database;
* SDK decrypt-only: RSA (ours; DecryptData takes the opened random key) + the official
  DecryptData in isolated child processes + parsing;
* the pull path: pull (envelopes stored raw, checkpoint per page) + decrypt into messages,
  on SQLite and PostgreSQL, as time per message relative to native decrypt-only.

    python bench/decrypt.py                 # 20,000 messages
    python bench/decrypt.py --messages 3000 # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from audit.archive import simulator
from audit.archive.ingest import Decryptor, DecryptorLike, DecryptStream, Job, pull
from audit.archive.keys import KeyRing
from audit.archive.sources import SimulatedServer
from audit.config import load_settings
from audit.store.db import make_engine, migrate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import PG_DEFAULT, pg_database  # bench/ingest.py, same folder


def jobs_of(server: SimulatedServer) -> list[Job]:
    jobs: list[Job] = []
    for page in server.pages(0, 1000):
        for item in page.items:
            jobs.append(
                (len(jobs) + 1, item.msgid, item.seq, item.publickey_ver,
                 item.encrypt_random_key, item.encrypt_chat_msg)
            )  # fmt: skip
    return jobs


def time_decryptor(decryptor: DecryptorLike, jobs: list[Job]) -> dict[str, Any]:
    with decryptor as dec:
        dec.run(jobs[:300])  # start the workers outside the timing
        t0 = time.perf_counter()
        out = dec.run(jobs)
        seconds = time.perf_counter() - t0
    ok = sum(1 for _, row, _ in out if row is not None)
    return {"messages": ok, "seconds": round(seconds, 2), "rate": round(ok / seconds, 1)}


def time_pull_path(url: str, sim_dir: Path, keys: KeyRing, workers: int) -> dict[str, Any]:
    engine = make_engine(url)
    migrate(engine)
    with Decryptor(keys, workers) as dec:
        dec.run(jobs_of(SimulatedServer(sim_dir))[:300])  # workers up, as in time_decryptor
        t0 = time.perf_counter()
        stream = DecryptStream(engine, dec)  # decrypt each page while the next is pulled
        pulled = pull(engine, SimulatedServer(sim_dir), 1000, on_stored=stream.feed)
        t1 = time.perf_counter()
        stats = stream.finish()
        t2 = time.perf_counter()
    engine.dispose()
    n = stats.decrypted
    return {
        "messages": n,
        "envelopes": pulled.stored,
        "pull_seconds": round(t1 - t0, 2),
        "drain_seconds": round(t2 - t1, 2),
        "seconds": round(t2 - t0, 2),
        "rate": round(n / (t2 - t0), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    workers = args.workers or os.cpu_count() or 1
    results: dict[str, Any] = {"workers": workers}
    with tempfile.TemporaryDirectory() as tmp:
        sim_dir = Path(tmp) / "sim"
        cfg = load_settings(None, environ={}).simulator.model_copy(
            update={"messages": args.messages}
        )
        simulator.simulate(cfg, sim_dir)
        keys = KeyRing.from_files(simulator.key_files(sim_dir))
        jobs = jobs_of(SimulatedServer(sim_dir))
        results["messages"] = len(jobs)
        results["native"] = time_decryptor(Decryptor(keys, workers), jobs)
        try:
            from audit.archive.sdk import SdkDecryptor, SdkLibraryError

            results["sdk"] = time_decryptor(SdkDecryptor(keys, None, workers), jobs)
        except SdkLibraryError as exc:
            results["sdk"] = {"skipped": str(exc).splitlines()[0]}
        results["pull_sqlite"] = time_pull_path(f"sqlite:///{tmp}/bench.db", sim_dir, keys, workers)
        if not args.no_pg:
            try:
                url, drop = pg_database(os.environ.get("AUDIT_BENCH_PG_URL", PG_DEFAULT))
            except Exception as exc:  # report and go on
                results["pull_postgresql"] = {"skipped": str(exc).splitlines()[0]}
            else:
                try:
                    results["pull_postgresql"] = time_pull_path(url, sim_dir, keys, workers)
                finally:
                    drop()
    base = results["native"]["rate"]
    print(f"{len(jobs):,} messages, {workers} worker processes, 2048-bit keys")
    print(f"{'':<28}{'msgs/s':>10}{'time/msg vs native':>22}")
    for name, label in (
        ("native", "native decrypt-only"),
        ("sdk", "SDK decrypt-only"),
        ("pull_sqlite", "pull + decrypt, SQLite"),
        ("pull_postgresql", "pull + decrypt, PostgreSQL"),
    ):
        r = results.get(name)
        if r and "rate" in r:
            r["time_ratio_vs_native"] = round(base / r["rate"], 2)
            print(f"{label:<28}{r['rate']:>10,.0f}{r['time_ratio_vs_native']:>22.2f}")
        elif r:
            print(f"{label:<28}  skipped: {r['skipped']}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
