"""Quality scoring throughput on one core: tokenization and both classifiers.

On the text messages of the simulated telecom chats (role from the sender: external ids are
customers, the rest staff), with the committed ``models/``:

- ``tokenize``: normalization + jieba words alone (caches cleared before each run);
- ``batch``: ``Scorers.score_many`` over all messages, each scored by the model of its role;
- ``batch_both``: ``score_many`` with role None, every message through both models;
- ``one_by_one``: ``Scorers.score`` per message (the cost ``audit inspect`` pays).

Then the scorecard (conversations/s), filled in by ``bench_scorecard``. Results are printed
and written to ``bench/results/score.json``.

    python bench/score.py                     # 20,000 simulated messages
    python bench/score.py --messages 2000     # a smoke run
"""

from __future__ import annotations

import os

# one core: no BLAS / OpenMP threads (set before numpy is imported)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from audit.quality import clf_text  # noqa: E402
from audit.quality.classifiers import Scorers, load_scorers  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "score.json"


def simulated_messages(count: int) -> list[tuple[str, str]]:
    """(text, role) of the simulator's text messages."""
    from audit.archive.simulator.chats import generate_messages
    from audit.archive.simulator.world import build_world
    from audit.config import SimulatorConfig

    cfg = SimulatorConfig(messages=count)
    rng = random.Random(cfg.seed)
    world = build_world(cfg, rng)
    out = []
    for m in generate_messages(world, cfg, rng):
        if m.plain.get("msgtype") != "text":
            continue
        sender = str(m.plain.get("from", ""))
        role = "customer" if sender.startswith(("wo", "wm")) else "staff"
        out.append((m.plain["text"]["content"], role))
    return out


def clear_caches() -> None:
    # tokenization is memoized per message; a fair run starts without it
    clf_text.normalize.cache_clear()
    clf_text._words.cache_clear()


def best_rate(run: Callable[[], object], count: int, repeat: int) -> float:
    """Messages per second, best of ``repeat`` runs (the least disturbed by the machine)."""
    best = float("inf")
    for _ in range(repeat):
        clear_caches()
        gc.collect()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best


def bench_classifiers(
    scorers: Scorers, texts: Sequence[str], roles: Sequence[str | None], repeat: int
) -> dict[str, Any]:
    scorers.score_many(list(texts[:200]), list(roles[:200]))  # warm up: jieba's dictionary
    single = min(len(texts), 2000)
    both: list[str | None] = [None] * len(texts)
    return {
        "tokenize": round(
            best_rate(
                lambda: [clf_text.tokenize(clf_text.normalize(t)) for t in texts],
                len(texts),
                repeat,
            )
        ),
        "batch": round(best_rate(lambda: scorers.score_many(texts, roles), len(texts), repeat)),
        "batch_both": round(best_rate(lambda: scorers.score_many(texts, both), len(texts), repeat)),
        "one_by_one": round(
            best_rate(
                lambda: [
                    scorers.score(t, r) for t, r in zip(texts[:single], roles[:single], strict=True)
                ],
                single,
                repeat,
            )
        ),
    }


def simulated_conversations(count: int) -> list[tuple[str, list[Any], list[Any]]]:
    """(kind, messages, finding refs) of simulated conversations, split on a 30-minute gap,
    with findings from the scanner, as the scoring stage sees them."""
    import datetime as dt

    from audit.archive.simulator.chats import generate_messages
    from audit.archive.simulator.world import build_world
    from audit.config import SimulatorConfig
    from audit.quality.conversations import thread_of
    from audit.quality.metrics import Msg
    from audit.quality.scorecard import FindingRef
    from audit.scan.scanner import Scanner

    cfg = SimulatorConfig(messages=count * 4, seed=11)
    rng = random.Random(cfg.seed)
    world = build_world(cfg, rng)
    scanner = Scanner.from_directory(ROOT / "wordlists")
    gap = dt.timedelta(minutes=30)
    open_: dict[str, tuple[str, list[Any], list[Any]]] = {}
    done: list[tuple[str, list[Any], list[Any]]] = []
    for sim in generate_messages(world, cfg, rng):
        p = sim.plain
        if p.get("action") != "send":
            continue
        thread = thread_of(p["from"], list(p.get("tolist", [])), p.get("roomid", ""))
        if thread is None:
            continue
        at = dt.datetime.fromtimestamp(p["msgtime"] / 1000, dt.UTC)
        kind = "customer" if p["from"].startswith(("wo", "wm")) else "staff"
        text = p["text"]["content"] if p["msgtype"] == "text" else ""
        conv = open_.get(thread.key)
        if conv is not None and at - conv[1][-1].at > gap:
            done.append(conv)
            conv = None
        if conv is None:
            conv = (thread.kind.value, [], [])
            open_[thread.key] = conv
        conv[1].append(Msg(at, kind, p["from"], text, p["msgtype"]))
        for f in scanner.scan(text, kind) if text else ():
            conv[2].append(FindingRef(f.category, f.rule, f.severity.value, kind))
        if len(done) >= count:
            break
    return done[:count]


def bench_scorecard(conversations: int = 5000, repeat: int = 3) -> dict[str, Any] | None:
    """Conversations/s for metrics + scorecard evaluation (the scoring stage without the DB)."""
    from audit.config import QualityConfig
    from audit.quality.metrics import BusinessClock, compute_metrics
    from audit.quality.scorecard import evaluate, load_scorecard

    convs = simulated_conversations(conversations)
    card = load_scorecard()
    quality = QualityConfig()
    clock = BusinessClock.from_config(quality)

    def run() -> None:
        for kind, msgs, findings in convs:
            evaluate(card, compute_metrics(msgs, clock, quality.sla_minutes, kind), findings)

    best = min(_timed(run) for _ in range(repeat))
    return {
        "conversations": len(convs),
        "mean_messages": round(sum(len(m) for _, m, _ in convs) / max(1, len(convs)), 1),
        "scorecard": card.version,
        "conversations_per_s": round(len(convs) / best, 1),
    }


def _timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="simulated messages")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement")
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    scorers = load_scorers(args.models)
    pairs = simulated_messages(args.messages)
    texts = [t for t, _ in pairs]
    roles: list[str | None] = [r for _, r in pairs]
    rates = bench_classifiers(scorers, texts, roles, args.repeat)
    result = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "models": scorers.versions,
        "messages": len(texts),
        "customer_share": round(roles.count("customer") / max(1, len(roles)), 3),
        "mean_chars": round(sum(map(len, texts)) / max(1, len(texts)), 1),
        "msgs_per_s": rates,
        "scorecard": bench_scorecard(),
    }
    print(json.dumps(result, ensure_ascii=False, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
