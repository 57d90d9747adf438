"""Delivering a simulated archive out of order: shuffled, in several pulls, with the messages
that bridge or open conversations held back to the last one. Shared by the arrival-order and
crash tests and by bench/arrival.py."""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from audit.store.db import session_scope
from audit.store.models import Message

GAP = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class Late:
    """Messages of a clean run whose late arrival changes conversations."""

    bridging: tuple[str, ...]  # without it, its conversation is two
    opening: tuple[str, ...]  # the first message of a conversation of several


def late_messages(engine: Engine, gap: dt.timedelta = GAP) -> Late:
    by_conv: dict[int, list[tuple[dt.datetime, str]]] = {}
    with session_scope(engine) as session:
        for conv_id, at, msgid in session.execute(
            select(Message.conversation_id, Message.msgtime, Message.msgid).where(
                Message.conversation_id.is_not(None)
            )
        ):
            by_conv.setdefault(int(conv_id), []).append((at, msgid))
    bridging, opening = [], []
    for msgs in by_conv.values():
        msgs.sort()
        if len(msgs) > 1:
            opening.append(msgs[0][1])
        for before, (_, msgid), after in zip(msgs, msgs[1:], msgs[2:], strict=False):
            if after[0] - before[0] > gap:
                bridging.append(msgid)
    return Late(tuple(sorted(bridging)), tuple(sorted(opening)))


def deliveries(
    items: list[dict[str, Any]], late: Late, pulls: int, seed: int, held: int = 40
) -> list[list[dict[str, Any]]]:
    """The archive shuffled (seeded) in ``pulls`` parts, all but the last of equal size;
    ``held`` bridging and ``held`` opening messages (where there are that many) make the
    last part."""
    rng = random.Random(seed)
    last = set(rng.sample(late.bridging, min(held, len(late.bridging))))
    last |= set(rng.sample(late.opening, min(held, len(late.opening))))
    rest = [i for i in items if i["msgid"] not in last]
    rng.shuffle(rest)
    size = -(-len(rest) // (pulls - 1))
    parts = [rest[i : i + size] for i in range(0, len(rest), size)]
    tail = [i for i in items if i["msgid"] in last]
    rng.shuffle(tail)
    return [*parts, tail]


def append_items(path: Path, items: list[dict[str, Any]]) -> None:
    """Append items to a file archive under new seqs after those already in it: the archive
    hands out seqs in the order it delivers."""
    last = 0
    if path.exists():
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                last = max(last, json.loads(line)["seq"])
    with path.open("a", encoding="utf-8") as fh:
        for seq, item in enumerate(items, last + 1):
            fh.write(json.dumps({**item, "seq": seq}) + "\n")
