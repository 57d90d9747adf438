"""Turn the hand-written techniques.txt into techniques.jsonl:

    python tests/data/eval/probes/build.py

The probes are checked with ``audit eval --data tests/data/eval/probes/techniques.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path

from audit.scan.evaluate import EvalMessage, read_marked

HERE = Path(__file__).resolve().parent


def build(source: Path = HERE / "techniques.txt") -> list[EvalMessage]:
    return read_marked(source, ident="p-{:04d}", tagged=True)


def render(messages: list[EvalMessage]) -> str:
    return "".join(json.dumps(m.as_dict(), ensure_ascii=False) + "\n" for m in messages)


if __name__ == "__main__":
    (HERE / "techniques.jsonl").write_text(render(build()), encoding="utf-8")
