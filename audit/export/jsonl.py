"""JSON lines: one conversation pack per line, the shape of :meth:`Pack.as_dict`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import BinaryIO

from audit.export.counts import Counts
from audit.export.packs import Pack


def write_jsonl(packs: Iterable[Pack], out: BinaryIO) -> Counts:
    counts = Counts()
    for pack in packs:
        line = json.dumps(pack.as_dict(), ensure_ascii=False, separators=(",", ":"))
        out.write(line.encode("utf-8") + b"\n")
        counts.add(pack)
        counts.rows += 1
    return counts
