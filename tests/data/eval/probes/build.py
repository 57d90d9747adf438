"""Turn the hand-written probes (techniques.txt, holdout.txt) into JSON lines:

    python tests/data/eval/probes/build.py

Checked with ``audit eval --data tests/data/eval/probes/techniques.jsonl`` (and holdout.jsonl).
"""

from __future__ import annotations

import json
from pathlib import Path

from audit.scan.evaluate import EvalMessage, read_marked

HERE = Path(__file__).resolve().parent


SETS = {"techniques": "p-{:04d}", "holdout": "h-{:04d}"}  # file stem -> message id form


def build(name: str = "techniques") -> list[EvalMessage]:
    return read_marked(HERE / f"{name}.txt", ident=SETS[name], tagged=True)


def render(messages: list[EvalMessage]) -> str:
    return "".join(json.dumps(m.as_dict(), ensure_ascii=False) + "\n" for m in messages)


if __name__ == "__main__":
    for stem in SETS:
        (HERE / f"{stem}.jsonl").write_text(render(build(stem)), encoding="utf-8")
