"""Expand the hand-written chat_examples.txt into the labelled JSON lines the models train on.

    python tests/data/quality/build.py

Each hand-written message gives a few variants (slot values, an opening word, the closing
punctuation, and for a share of them traditional characters via OpenCC ``s2t``), all kept in
the split of their family, so that no held-out message is a variant of a training one.
Deterministic: the same source gives the same files byte for byte.
"""

from __future__ import annotations

import json
import random
import re
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from opencc import OpenCC

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "chat_examples.txt"
SEED = 20261116
VARIANTS = {"train": 3, "heldout": 2}
TRADITIONAL_SHARE = 0.2  # of the variants after the first

SLOTS: dict[str, tuple[str, ...]] = {
    "plan": ("5G畅享套餐", "融合宽带套餐", "流量王套餐", "家庭套餐", "5G智享套餐"),
    "price": ("59", "99", "129", "169", "199"),
    "hotline": ("10086", "10000", "10010"),
    "operator": ("中国移动", "中国电信", "中国联通"),
    "phone": ("iPhone 17", "华为Mate 80", "小米17", "vivo X300"),
    "n": ("5", "20", "30", "50", "100"),
    "order": ("GD20261118001", "WX5521873", "BX0098123"),
    "slot": ("明天上午", "下午2点到5点", "今天傍晚"),
    "xiaoqu": ("阳光花园", "翠苑一区", "万科城", "幸福里"),
    "biz": ("视频彩铃", "会员权益包", "流量加油包", "来电提醒"),
}
OPENINGS = {
    "staff": ("", "", "", "哦，", "嗯，", "那个，"),
    "customer": ("", "", "你好，", "在吗？", "喂，", "那个，"),
}
CLOSINGS = {
    "staff": ("", "", "。", "！", "…", "～"),
    "customer": ("", "", "。", "！", "？？", "…"),
}
HEADER = re.compile(
    r"^\[(?P<label>customer_negative|staff_discourtesy)=(?P<value>[01]) "
    r"(?P<split>train|heldout) (?P<family>[a-z0-9-]+)\]$"
)
ROLE = {"customer_negative": "customer", "staff_discourtesy": "staff"}


@dataclass(frozen=True)
class Source:
    label: str
    value: int
    split: str
    family: str
    text: str
    line: int


def parse(path: Path = SOURCE) -> list[Source]:
    out: list[Source] = []
    header: re.Match[str] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            header = HEADER.match(line)
            if header is None:
                raise SystemExit(f"{path}:{number}: bad section header {line!r}")
            continue
        if header is None:
            raise SystemExit(f"{path}:{number}: message before the first section header")
        unknown = set(re.findall(r"\{(\w+)\}", line)) - set(SLOTS)
        if unknown:
            raise SystemExit(f"{path}:{number}: unknown slot(s) {sorted(unknown)}")
        out.append(
            Source(
                header["label"], int(header["value"]), header["split"], header["family"], line,
                number,
            )
        )  # fmt: skip
    return out


def _fill(rng: random.Random, slot: re.Match[str]) -> str:
    return rng.choice(SLOTS[slot.group(1)])


def expand(sources: list[Source], seed: int = SEED) -> list[dict[str, object]]:
    s2t = OpenCC("s2t")
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    for src in sources:
        role = ROLE[src.label]
        # seeded per message: editing one message leaves the variants of the others alone
        rng = random.Random(f"{seed}:{src.family}:{src.text}")
        for k in range(VARIANTS[src.split]):
            text = re.sub(r"\{(\w+)\}", partial(_fill, rng), src.text)
            if k > 0:
                text = (
                    rng.choice(OPENINGS[role])
                    + text.rstrip("。！？?!")
                    + rng.choice(CLOSINGS[role])
                )
                if rng.random() < TRADITIONAL_SHARE:
                    text = s2t.convert(text)
            if text in seen:
                continue
            seen.add(text)
            rows.append(
                {
                    "id": f"{src.family}:{src.line}.{k}",
                    "text": text,
                    "role": role,
                    "label": src.label,
                    "value": src.value,
                    "family": src.family,
                    "split": src.split,
                }
            )
    return rows


def _grams(text: str) -> set[str]:
    return {text[i : i + 3] for i in range(max(1, len(text) - 2))}


def check_overlap(rows: list[dict[str, object]], limit: float = 0.5) -> list[str]:
    """Held-out messages too close to a training message (character trigram Jaccard)."""
    problems = []
    for label in ROLE:
        train = [
            _grams(str(r["text"])) for r in rows if r["label"] == label and r["split"] == "train"
        ]
        for r in rows:
            if r["label"] != label or r["split"] != "heldout":
                continue
            g = _grams(str(r["text"]))
            best = max(len(g & t) / len(g | t) for t in train)
            if best >= limit:
                problems.append(f"{r['id']} {r['text']!r}: {best:.2f}")
    return problems


def main() -> int:
    rows = expand(parse())
    problems = check_overlap(rows)
    if problems:
        print("held-out messages too close to training ones:", *problems, sep="\n  ")
        return 1
    for label in ROLE:
        for split in ("train", "heldout"):
            part = [r for r in rows if r["label"] == label and r["split"] == split]
            path = HERE / f"{label}.{split}.jsonl"
            path.write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part), encoding="utf-8"
            )
            ones = sum(int(str(r["value"])) for r in part)
            print(f"{path.name}: {len(part)} messages ({ones} positive)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
