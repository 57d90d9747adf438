"""``audit inspect`` as a user runs it: one process per input, start included.

(Not ``bench/inspect.py``: a script's folder comes first on ``sys.path``, and that name would
hide the standard library's ``inspect`` from every other bench.)

Inputs: one short line (the start alone) and one message of 1 MB for each hostile shape
(``"1-"`` repeated, ``"1\\u200b"`` repeated, ``加我微信`` repeated, a seeded random mix of
digits, separators, zero-width and full-width characters, contact words and letters; phone
numbers, e-mail addresses, random CJK characters, every listed term and variant in a seeded
order, the most findings per character; ``加我们微信，`` repeated, a gap jieba rejects each
time and a paraphrase detector's hit; ``我没说要投诉，`` repeated, a term context judgement
excuses each time).

Each is run twice: as ``audit inspect`` now starts (the scan cache warm: parsed word lists,
compiled classifiers) and, as the baseline of the same run, with everything loaded afresh
the way the pipeline loads it (word lists parsed, scikit-learn imported, models unpickled:
how ``audit inspect`` started before). The short line also runs with an empty cache (the
first start after an upgrade or an edited word list: it parses and compiles).
Wall and CPU seconds (user + system of the process) are printed and written to
``bench/results/inspect.json``.

    python bench/inspect_cli.py              # 3 repeats, the best of each
    python bench/inspect_cli.py --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "inspect.json"
SIZE = 1_000_000
# the start as it was: the pipeline's loaders, then the same filter
AFRESH = (
    "import sys\n"
    "from audit.config import load_settings\n"
    "from audit.pipeline import load_classifiers, load_scanner\n"
    "from audit.scan.inspect import inspect_stream\n"
    "s = load_settings(None)\n"
    "c = load_classifiers(s)\n"
    "inspect_stream(open(sys.argv[1], encoding='utf-8'), sys.stdout, load_scanner(s),\n"
    "    classify=c.score, detect=c.detect_many)\n"
)


def shapes() -> dict[str, str]:
    rng = random.Random(11)
    alphabet = [*"0123456789-\u200b 加我微信电话号码qQ@.abcxyz，。！？"]
    alphabet += ["\u3000", "\ufeff", "１", "＠"]
    listed = _listed()
    return {
        "1-": "1-" * (SIZE // 2),
        "1\\u200b": "1\u200b" * (SIZE // 2),
        "加我微信": "加我微信" * (SIZE // 4),
        "random mix": "".join(rng.choice(alphabet) for _ in range(SIZE)),
        "phones": _filled(lambda: f"1{rng.randrange(3, 10)}{rng.randrange(10**9):09d}，"),
        "e-mails": _filled(lambda: f"u{rng.randrange(10**6)}@qq.com "),
        "random CJK": "".join(chr(rng.randrange(0x4E00, 0x9FA6)) for _ in range(SIZE)),
        # every listed term and variant, in a seeded order: the most findings per character
        "dense terms": _filled(lambda: rng.choice(listed) + rng.choice(("，", "", " "))),
        # a gap jieba rejects in every piece (我们 is a word), and a paraphrase detector's hit
        "加我们微信，": "加我们微信，" * (SIZE // 6),
        # a listed term that context judgement excuses every time (negated)
        "我没说要投诉，": "我没说要投诉，" * (SIZE // 7),
    }


def _listed() -> list[str]:
    from audit.scan.wordlist import load_wordlists

    lists = load_wordlists(ROOT / "wordlists")
    return sorted({t.term for t in lists.terms} | {v for t in lists.terms for v in t.variants})


def _filled(piece: Callable[[], str]) -> str:
    """Pieces one after another up to SIZE characters."""
    parts: list[str] = []
    size = 0
    while size < SIZE:
        parts.append(piece())
        size += len(parts[-1])
    return "".join(parts)[:SIZE]


def timed(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu}


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(min(r[k] for r in runs), 3) for k in ("wall", "cpu")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    python = sys.executable
    inspect = [python, "-m", "audit", "inspect", "--input"]
    out: dict[str, Any] = {"size": SIZE, "repeat": args.repeat, "cpus": os.cpu_count()}
    # wall seconds mean little on a busy machine: the load says how busy it was
    out["load average (1 min) at start"] = round(os.getloadavg()[0], 1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = {**os.environ, "PYTHONPATH": str(ROOT)}
        base.pop("AUDIT_CONFIG", None)
        warm = {**base, "AUDIT_SCAN_CACHE": str(work / "cache")}
        tiny = work / "tiny.jsonl"
        tiny.write_text('{"id": 1, "text": "您好", "role": "staff"}\n', encoding="utf-8")
        files = {}
        for name, text in shapes().items():
            files[name] = work / f"{len(files)}.jsonl"
            record = {"id": name, "text": text, "role": "staff"}
            files[name].write_text(json.dumps(record, ensure_ascii=False) + "\n", "utf-8")

        cold = [{**base, "AUDIT_SCAN_CACHE": str(work / f"cold{i}")} for i in range(args.repeat)]
        out["first start (empty cache)"] = best([timed([*inspect, str(tiny)], e) for e in cold])
        subprocess.run([*inspect, str(tiny)], env=warm, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip  # the cache filled once
        for name, path in {"start (short line)": tiny, **files}.items():
            # the automaton cache warm for both: what differs is what the cache now holds
            afresh = best([timed([python, "-c", AFRESH, str(path)], warm) for _ in cold])
            now = best([timed([*inspect, str(path)], warm) for _ in cold])
            out[name] = {
                "before (loaded afresh)": afresh,
                "after (warm cache)": now,
                "cpu ratio": round(afresh["cpu"] / now["cpu"], 2),
            }
    out["load average (1 min) at end"] = round(os.getloadavg()[0], 1)
    print(json.dumps(out, indent=2, ensure_ascii=False))
    RESULTS.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
