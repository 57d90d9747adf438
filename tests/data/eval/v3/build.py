"""Split the hand-written messages.txt ONCE into tuning.jsonl and test.jsonl.

    python tests/data/eval/v3/build.py

The split is seeded and stratified by (first marked category, or "clean") x first tag, so each
half holds about half of every kind of message. It was made once and must never change: a
test checks that the committed halves are what this script produces, and manifest.json holds
their checksums. Tune only against tuning.jsonl; test.jsonl is for the final measurement.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

from audit.scan.evaluate import EvalMessage, read_marked

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "messages.txt"
SEED = 20261208
HALVES = ("tuning", "test")


def build(source: Path = SOURCE) -> list[EvalMessage]:
    return read_marked(source, ident="v3-{:04d}", tagged=True)


def stratum(message: EvalMessage) -> tuple[str, str]:
    first = message.labels[0].category if message.labels else "clean"
    return first, message.techniques[0]


def split(messages: list[EvalMessage], seed: int = SEED) -> dict[str, list[EvalMessage]]:
    """Half of each stratum to tuning, half to test; odd strata give their extra message to
    the two halves in turn so that the halves stay the same size."""
    rng = random.Random(seed)
    strata: dict[tuple[str, str], list[EvalMessage]] = defaultdict(list)
    for message in messages:
        strata[stratum(message)].append(message)
    chosen: dict[str, str] = {}
    extra_to_tuning = True
    for key in sorted(strata):
        members = [m.id for m in strata[key]]
        rng.shuffle(members)
        take = len(members) // 2
        if len(members) % 2:
            take += extra_to_tuning
            extra_to_tuning = not extra_to_tuning
        for index, ident in enumerate(members):
            chosen[ident] = "tuning" if index < take else "test"
    return {half: [m for m in messages if chosen[m.id] == half] for half in HALVES}


def render(messages: list[EvalMessage]) -> str:
    return "".join(json.dumps(m.as_dict(), ensure_ascii=False) + "\n" for m in messages)


def manifest(halves: dict[str, str]) -> str:
    def digest(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    data = {
        "source": {"file": SOURCE.name, "sha256": digest(SOURCE.read_text(encoding="utf-8"))},
        "seed": SEED,
        "stratified_by": "first category (or clean) x first tag",
        "halves": {
            half: {
                "file": f"{half}.jsonl",
                "messages": text.count("\n"),
                "sha256": digest(text),
            }
            for half, text in halves.items()
        },
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def outputs() -> dict[str, str]:
    """File name -> content, everything this script writes."""
    halves = {half: render(messages) for half, messages in split(build()).items()}
    files = {f"{half}.jsonl": text for half, text in halves.items()}
    files["manifest.json"] = manifest(halves)
    return files


if __name__ == "__main__":
    for name, text in outputs().items():
        target = HERE / name
        changed = target.exists() and target.read_text(encoding="utf-8") != text
        if changed and "--force" not in sys.argv:
            sys.exit(f"{target} would change: the split is made once (--force only to repair)")
        target.write_text(text, encoding="utf-8")
