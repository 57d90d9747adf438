"""Arrival order and crashes at scale: the same simulated archive analysed twice, on SQLite.

* clean: pulled once, in order, with every key;
* disorderly: delivered shuffled in three pulls (the messages that bridge or open a
  conversation held back to the last; the rotated key added only at the end, so its
  messages fail and are retried), each pull's run SIGKILLed at seeded points of every stage
  (the n-th write of the stage's table, see tests/crashpoint.py) and then finished.

It prints, and writes to ``bench/results/arrival.json``, the counts of conversations,
messages, findings, scores and alerts of both, and how many rows differ (ids aside).

    python bench/arrival.py                   # 50,000 messages
    python bench/arrival.py --messages 3000   # smoke run
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the delivery plan and the crash points

from arrival import append_items, deliveries, late_messages  # noqa: E402
from crashpoint import STAGE_TABLES, run_killed  # noqa: E402

from audit.archive import simulator  # noqa: E402
from audit.archive.keys import KeyRing  # noqa: E402
from audit.archive.sources import SimulatedServer  # noqa: E402
from audit.config import SimulatorConfig, load_settings  # noqa: E402
from audit.pipeline import load_scanner, run, sync_simulated_directory  # noqa: E402
from audit.store.db import make_engine, migrate  # noqa: E402
from audit.store.results import result_rows  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "arrival.json"
# kill at the n-th write of the stage's table, n drawn from 1..(rate x messages in the pull)
# (at least 1): under what one pull writes on SQLite, which writes the conversations and
# scores of a pull row by row, envelopes per page and as they are decrypted, the rest per batch
KILL_RATE = {
    "pull": 0.2,
    "decrypt": 0.005,
    "conversations": 0.05,
    "scan": 0.0005,
    "scores": 0.05,
    "alerts": 0.0,
    "daily": 0.0,
}


def kill_at(rng: random.Random, stage: str, messages: int) -> int:
    return rng.randint(1, max(1, int(KILL_RATE[stage] * messages)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=5, help="delivery order and kill points")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    out: dict[str, Any] = {"messages": args.messages, "seed": args.seed}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cfg = SimulatorConfig(messages=args.messages, days=max(2, args.messages // 7000))
        simulator.simulate(cfg, work / "sim")
        files = simulator.key_files(work / "sim")
        settings = load_settings(None, environ={}, overrides={"archive": {"workers": 1}})

        t0 = time.perf_counter()
        clean = make_engine(f"sqlite:///{work / 'clean.db'}")
        migrate(clean)
        run(settings, clean, SimulatedServer(work / "sim"), KeyRing.from_files(files),
            load_scanner(settings))  # fmt: skip
        expected, late = result_rows(clean), late_messages(clean)
        clean.dispose()
        out["clean_seconds"] = round(time.perf_counter() - t0, 1)

        t0 = time.perf_counter()
        url = f"sqlite:///{work / 'disorderly.db'}"
        engine = make_engine(url)
        migrate(engine)
        sync_simulated_directory(engine, SimulatedServer(work / "sim"))
        engine.dispose()
        items = [json.loads(line) for line in (work / "sim" / "archive.jsonl").open()]
        parts = deliveries(items, late, pulls=3, seed=rng.randrange(1000), held=200)
        first_key = KeyRing.from_files({min(files): files[min(files)]})
        archive = work / "archive.jsonl"
        kills: list[tuple[str, int]] = []
        runs = 0
        for i, part in enumerate(parts):
            append_items(archive, part)
            stages = list(STAGE_TABLES) if i < 2 else ["conversations", "scores", "alerts"]
            for stage in stages:  # in pipeline order: a dead run did none of the later stages
                n = kill_at(rng, stage, len(part))
                runs += 1
                if run_killed(url, (stage, n), archive, first_key):
                    kills.append((stage, n))
            runs += 1
            assert not run_killed(url, None, archive, first_key)
        all_keys = KeyRing.from_files(files)
        n = kill_at(rng, "decrypt", sum(len(p) for p in parts) // 3)
        if run_killed(url, ("decrypt", n), archive, all_keys):
            kills.append(("decrypt", n))
        assert not run_killed(url, None, archive, all_keys)
        runs += 2
        engine = make_engine(url)
        got = result_rows(engine)
        engine.dispose()
        out["disorderly_seconds"] = round(time.perf_counter() - t0, 1)

    out.update(
        parts=[len(p) for p in parts],
        held_back={"bridging": len(late.bridging), "opening": len(late.opening)},
        runs=runs,
        kills=[f"{stage}@{n}" for stage, n in kills],
        killed_stages=sorted({s for s, _ in kills}),
        clean=expected.counts(),
        disorderly=got.counts(),
        differing_rows=got.differences(expected),
        identical=got == expected,
    )
    print(json.dumps(out, indent=2, ensure_ascii=False))
    RESULTS.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
