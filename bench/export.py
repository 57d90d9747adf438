"""QA export throughput and memory: JSONL, CSV and XLSX at two sizes, masked.

Seeds a database with bulk inserts (10 messages a conversation, a phone number or e-mail in
one message of ten, a finding on one in twenty, a score for every conversation, alerts and
reviews on the findings) over ten days, then exports the first two days (20% of the
messages) and all ten. For each format and size it reports the wall time (one run without
tracing) and the peak traced Python memory (a second run under ``tracemalloc``). The export
streams, so the peak should stay about the same while the size grows five-fold.

    python bench/export.py                      # 100,000 messages (about 20k and 100k exported)
    python bench/export.py --messages 10000     # a smoke run
    python bench/export.py --db postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, text

from audit.export.run import FORMATS, export_packs
from audit.export.selection import PackQuery
from audit.store.access import Principal
from audit.store.db import make_engine, migrate
from audit.store.models import (
    Alert,
    Conversation,
    Customer,
    Envelope,
    Finding,
    Message,
    OrgUnit,
    Review,
    ScanRun,
    Score,
    Staff,
    User,
)

DAYS = 10
PER_CONVERSATION = 10
START = dt.date(2026, 11, 1)
CHINA = dt.timezone(dt.timedelta(hours=8))
LINES = [
    "您好，请问有什么可以帮您？",
    "我想把套餐换成5G畅享199元的",
    "好的，这边帮您查询一下当前的合约期",
    "宽带一直断线，已经三天了，怎么回事",
    "非常抱歉给您带来不便，我马上给您报障",
    "话费怎么突然多扣了二十块",
    "您的流量包本月已经用完，超出部分按标准计费",
    "好的谢谢",
]


def _chunks(rows: list[dict[str, Any]], size: int = 5000) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def seed(engine: Engine, messages: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    conversations = messages // PER_CONVERSATION
    stores, staff_per_store = 20, 6
    with engine.begin() as conn:

        def put(model: Any, rows: list[dict[str, Any]]) -> None:
            for chunk in _chunks(rows):
                conn.execute(insert(model), chunk)

        put(OrgUnit, [{"id": 1, "code": "R1", "name": "华东区", "kind": "region", "path": "/1/"}])
        put(
            OrgUnit,
            [
                {"id": 2 + s, "code": f"S{s:03d}", "name": f"门店{s:03d}", "kind": "store",
                 "parent_id": 1, "path": f"/1/{2 + s}/"}
                for s in range(stores)
            ],
        )  # fmt: skip
        staff = [
            {"id": 1 + i, "userid": f"staff{i}", "name": f"员工{i}号",
             "org_unit_id": 2 + i // staff_per_store}
            for i in range(stores * staff_per_store)
        ]  # fmt: skip
        put(Staff, staff)
        put(Customer, [
            {"id": 1 + i, "external_userid": f"wm{i:07d}", "name": f"客户{i}", "consent": "agree"}
            for i in range(conversations)
        ])  # fmt: skip
        put(
            ScanRun,
            [{"id": 1, "wordlist_hash": "h", "scanner_version": "bench", "model_versions": {}}],
        )
        put(User, [{"id": 1, "username": "qa", "role": "compliance"}])
        convs, envs, msgs, finds, scores, alerts, reviews = [], [], [], [], [], [], []
        n = 0
        for c in range(conversations):
            st = staff[c % len(staff)]
            day = START + dt.timedelta(days=c * DAYS // conversations)
            begin = dt.datetime.combine(day, dt.time(9), tzinfo=CHINA) + dt.timedelta(
                seconds=rng.randrange(12 * 3600)
            )
            convs.append({
                "id": c + 1, "key": f"single:{st['userid']}:wm{c:07d}:{c}",
                "thread": f"single:{st['userid']}:wm{c:07d}", "kind": "single",
                "staff_id": st["id"], "customer_id": c + 1, "org_unit_id": st["org_unit_id"],
                "started_at": begin, "ended_at": begin + dt.timedelta(minutes=20),
                "message_count": PER_CONVERSATION, "staff_messages": 5, "customer_messages": 5,
            })  # fmt: skip
            deductions: list[dict[str, Any]] = []
            for k in range(PER_CONVERSATION):
                n += 1
                staff_turn = k % 2 == 1
                line = rng.choice(LINES)
                if rng.random() < 0.1:
                    line += f"，联系电话1{rng.randrange(3, 10)}{rng.randrange(10**9):09d}"
                elif rng.random() < 0.03:
                    line += f"，邮箱 user{n}@example.com"
                envs.append(
                    {"id": n, "source": "bench", "seq": n, "msgid": f"b{n}", "state": "decrypted"}
                )
                msgs.append({
                    "id": n, "envelope_id": n, "msgid": f"b{n}", "seq": n, "action": "send",
                    "msgtype": "text", "sender": st["userid"] if staff_turn else f"wm{c:07d}",
                    "sender_kind": "staff" if staff_turn else "customer", "tolist": [], "raw": {},
                    "msgtime": begin + dt.timedelta(minutes=2 * k), "text": line,
                    "conversation_id": c + 1, "staff_id": st["id"] if staff_turn else None,
                    "customer_id": None if staff_turn else c + 1,
                })  # fmt: skip
                if rng.random() < 0.05:
                    fid = len(finds) + 1
                    finds.append({
                        "id": fid, "message_id": n, "conversation_id": c + 1, "scan_run_id": 1,
                        "category": "promise", "rule": "promise.guarantee", "severity": "high",
                        "start": 0, "end": 2, "matched": line[:2], "explanation": "term bench",
                    })  # fmt: skip
                    alerts.append({
                        "id": fid, "dedupe_key": f"finding:b{n}", "kind": "finding",
                        "category": "promise", "severity": "high", "state": "confirmed",
                        "title": f"违规承诺：{line[:2]}", "finding_id": fid,
                        "conversation_id": c + 1, "org_unit_id": st["org_unit_id"],
                        "staff_id": st["id"],
                    })  # fmt: skip
                    reviews.append({
                        "alert_id": fid, "user_id": 1, "action": "confirm", "from_state": "open",
                        "to_state": "confirmed", "comment": "已核实",
                        "finding_rule": "promise.guarantee",
                    })  # fmt: skip
                    deductions.append({"item": "promise", "points": -10, "reason": "违规承诺"})
            scores.append({
                "conversation_id": c + 1, "scorecard_version": "v1",
                "score": max(0.0, 100.0 - 10 * len(deductions) - rng.random() * 20),
                "deductions": deductions, "metrics": {"sla_rate": rng.random()},
            })  # fmt: skip
        for model, rows in (
            (Conversation, convs), (Envelope, envs), (Message, msgs), (Finding, finds),
            (Score, scores), (Alert, alerts), (Review, reviews),
        ):  # fmt: skip
            put(model, rows)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def measure(engine: Engine, query: PackQuery, fmt: str, path: Path) -> dict[str, Any]:
    with path.open("wb") as fh:  # a file, not memory: the bytes written are not the export's
        t0 = time.perf_counter()
        result = export_packs(engine, query, fmt, fh, Principal.operator("bench"))  # type: ignore[arg-type]
        seconds = time.perf_counter() - t0
    tracemalloc.start()
    with path.open("wb") as fh:
        export_packs(engine, query, fmt, fh, Principal.operator("bench"))  # type: ignore[arg-type]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    c = result.counts
    return {
        "messages": c.messages,
        "conversations": c.conversations,
        "seconds": round(seconds, 2),
        "msgs_per_s": round(c.messages / seconds) if seconds else None,
        "peak_mib": round(peak / 2**20, 1),
        "file_mib": round(path.stat().st_size / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "export.json"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/bench.db"
        engine = make_engine(url)
        migrate(engine)
        t0 = time.perf_counter()
        seed(engine, args.messages)
        seeded = time.perf_counter() - t0
        print(
            f"seeded {args.messages} messages in {seeded:.1f}s ({engine.dialect.name})",
            file=sys.stderr,
        )
        sizes = {
            "small": PackQuery(start=START, end=START + dt.timedelta(days=1)),  # 2 of 10 days
            "full": PackQuery(),
        }
        results: dict[str, dict[str, Any]] = {}
        for fmt in FORMATS:
            results[fmt] = {}
            for name, query in sizes.items():
                row = measure(engine, query, fmt, Path(tmp) / f"export.{fmt}")
                results[fmt][name] = row
                print(f"{fmt:<5} {name:<5} {json.dumps(row)}", file=sys.stderr)
        engine.dispose()
    report = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "database": "sqlite" if not args.db else make_engine(args.db).dialect.name,
        "messages_seeded": args.messages,
        "seed_seconds": round(seeded, 1),
        "masked": True,
        "note": "seconds: one untraced run; peak_mib: tracemalloc peak of a second run "
        "(Python allocations, not RSS); 'small' is 2 of 10 days, 'full' all of them",
        "formats": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
