"""Incremental cost: what an `audit run` costs after the first, with nothing new and with 1%
new messages, at several sizes, on SQLite and PostgreSQL.

A simulated archive is delivered as a file archive: all but its newest 1% of messages
first (the load), then a run with nothing new, then the newest 1% (a day's trickle). Each
run's seconds are reported whole and per stage. A stage whose cost follows the new work
takes about the same time with nothing new at every size, and 1% new costs about 1% of the
load; one that rereads everything grows with the size.

    python bench/incremental.py                          # 10,000 and 100,000 messages
    python bench/incremental.py --messages 5000 --no-pg  # a smoke run
    python bench/incremental.py --scattered              # the 1% late, from all over
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from ingest import PG_DEFAULT, pg_database  # noqa: E402

from audit.archive import simulator  # noqa: E402
from audit.archive.keys import KeyRing  # noqa: E402
from audit.archive.sources import ARCHIVE_FILE, FileSource, SimulatedServer  # noqa: E402
from audit.config import load_settings  # noqa: E402
from audit.pipeline import load_scanner, run, sync_simulated_directory  # noqa: E402
from audit.store.db import make_engine, migrate  # noqa: E402

NEW_SHARE = 0.01


def _run(settings: Any, engine: Any, archive: Path, keys: KeyRing, scanner: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    report = run(settings, engine, FileSource(archive), keys, scanner)
    return {
        "seconds": round(time.perf_counter() - t0, 2),
        "messages": report.decrypt.decrypted if report.decrypt else 0,
        "stages": {k: round(v, 3) for k, v in report.seconds.items()},
    }


def run_backend(url: str, sim_dir: Path, work: Path, scattered: bool = False) -> dict[str, Any]:
    settings = load_settings(
        None,
        environ={},
        overrides={
            "database": {"url": url},
            "archive": {"workers": 2},
            "images": {"enabled": False},
        },
    )
    engine = make_engine(url)
    migrate(engine)
    sync_simulated_directory(engine, SimulatedServer(sim_dir))
    keys = KeyRing.from_files(simulator.key_files(sim_dir))
    scanner = load_scanner(settings)
    lines = (sim_dir / ARCHIVE_FILE).read_text(encoding="utf-8").splitlines(keepends=True)
    cut = len(lines) - max(1, int(len(lines) * NEW_SHARE))
    if scattered:  # late messages from all over the history, not the newest; the archive
        # hands out seqs in the order it delivers
        random.Random(14).shuffle(lines)
        lines = [
            json.dumps({**json.loads(line), "seq": seq}) + "\n" for seq, line in enumerate(lines, 1)
        ]
    archive = work / "archive.jsonl"
    archive.write_text("".join(lines[:cut]), encoding="utf-8")
    out = {"load": _run(settings, engine, archive, keys, scanner)}
    out["nothing_new"] = _run(settings, engine, archive, keys, scanner)
    with archive.open("a", encoding="utf-8") as fh:
        fh.write("".join(lines[cut:]))
    out["one_percent_new"] = _run(settings, engine, archive, keys, scanner)
    engine.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument(
        "--scattered", action="store_true", help="the 1%% new drawn from the whole history"
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "new_share": NEW_SHARE,
        "new": "drawn from the whole history" if args.scattered else "the newest",
        "sizes": {},
    }
    for n in args.messages:
        with tempfile.TemporaryDirectory() as tmp:
            sim_dir = Path(tmp) / "sim"
            cfg = load_settings(None, environ={}).simulator.model_copy(
                update={"messages": n, "images": False}
            )
            simulator.simulate(cfg, sim_dir)
            size: dict[str, Any] = {}
            work = Path(tmp) / "sqlite"
            work.mkdir()
            size["sqlite"] = run_backend(
                f"sqlite:///{work}/bench.db", sim_dir, work, args.scattered
            )
            if not args.no_pg:
                admin = os.environ.get("AUDIT_BENCH_PG_URL", PG_DEFAULT)
                try:
                    url, drop = pg_database(admin)
                except Exception as exc:
                    size["postgresql"] = {"skipped": f"{type(exc).__name__}: {exc}"}
                else:
                    try:
                        work = Path(tmp) / "pg"
                        work.mkdir()
                        size["postgresql"] = run_backend(url, sim_dir, work, args.scattered)
                    finally:
                        drop()
            results["sizes"][str(n)] = size
            _print(n, size)
            if args.out:  # after each size: a long run cut short keeps what it measured
                args.out.write_text(
                    json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8"
                )
    return 0


def _print(n: int, size: dict[str, Any]) -> None:
    for backend, r in size.items():
        if "skipped" in r:
            print(f"{n:>8,} {backend}: skipped ({r['skipped']})")
            continue
        for phase in ("load", "nothing_new", "one_percent_new"):
            p = r[phase]
            top = sorted(p["stages"].items(), key=lambda kv: -kv[1])[:4]
            stages = ", ".join(f"{k} {v:.2f}s" for k, v in top)
            print(
                f"{n:>8,} {backend:<10} {phase:<16} {p['seconds']:>8.2f}s "
                f"({p['messages']} new)  {stages}"
            )


if __name__ == "__main__":
    sys.exit(main())
