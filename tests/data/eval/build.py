"""Turn the hand-written messages.txt into messages.jsonl: python tests/data/eval/build.py"""

from __future__ import annotations

import json
from pathlib import Path

from audit.scan.evaluate import EvalMessage, read_marked

HERE = Path(__file__).resolve().parent


def build(source: Path = HERE / "messages.txt") -> list[EvalMessage]:
    return read_marked(source)


def render(messages: list[EvalMessage]) -> str:
    return "".join(json.dumps(m.as_dict(), ensure_ascii=False) + "\n" for m in messages)


if __name__ == "__main__":
    (HERE / "messages.jsonl").write_text(render(build()), encoding="utf-8")
