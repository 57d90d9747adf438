"""Turn the hand-written messages.txt into messages.jsonl: python tests/data/eval/build.py"""

from __future__ import annotations

import json
from pathlib import Path

from audit.scan.evaluate import EvalMessage, parse_marked

HERE = Path(__file__).resolve().parent


def build(source: Path = HERE / "messages.txt") -> list[EvalMessage]:
    messages = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip() and not line.startswith("#"):
            messages.append(parse_marked(line, f"m{number:04d}"))
    return messages


def render(messages: list[EvalMessage]) -> str:
    return "".join(json.dumps(m.as_dict(), ensure_ascii=False) + "\n" for m in messages)


if __name__ == "__main__":
    (HERE / "messages.jsonl").write_text(render(build()), encoding="utf-8")
