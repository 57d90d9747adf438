"""Ordinary service messages from the simulator: what the classifiers and detectors must stay
quiet on, and the traffic a model card's base rate is measured on.

"Ordinary" means the simulator injected no violation into the message: its service flows
(plan changes, broadband faults, bills, complaints about service, promotions ...) as written
in ``audit.archive.simulator.texts``. Seeded: the same seed and size give the same messages.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from audit.archive.simulator.chats import generate_messages
from audit.archive.simulator.world import build_world
from audit.config import SimulatorConfig

# External contacts (customers) have ids starting wm/wo; everyone else is staff.
_EXTERNAL = re.compile(r"^w[mo]")
# A chat silent this long starts a new conversation (the pipeline's default idle gap).
_IDLE_MS = 30 * 60 * 1000


@dataclass(frozen=True)
class SimText:
    text: str
    role: str  # "staff" | "customer"
    sender: str  # the sender's id: a customer's messages share it
    conversation: str  # the chat (room or pair of people) and its n-th idle-separated session


def ordinary_messages(seed: int, messages: int = 6000) -> list[SimText]:
    """The text messages without an injected violation of a small simulated archive."""
    cfg = SimulatorConfig(
        seed=seed, regions=1, cities_per_region=2, stores=4, staff_per_store=4,
        customers_per_staff=15, days=2, messages=messages, violation_rate=0.0,
    )  # fmt: skip
    rng = random.Random(cfg.seed)
    world = build_world(cfg, rng)
    out = []
    last: dict[str, tuple[int, int]] = {}  # chat -> (time of its last message, session)
    for sim in generate_messages(world, cfg, rng):
        plain = sim.plain
        if plain.get("action") != "send":
            continue
        sender = str(plain["from"])
        chat = str(plain.get("roomid") or "|".join(sorted([sender, *plain.get("tolist", [])])))
        at = int(plain["msgtime"])
        previous, session = last.get(chat, (at, 0))
        session += at - previous > _IDLE_MS
        last[chat] = (at, session)
        if plain.get("msgtype") != "text" or sim.violations:
            continue
        role = "customer" if _EXTERNAL.match(sender) else "staff"
        out.append(SimText(str(plain["text"]["content"]), role, sender, f"{chat}#{session}"))
    return out
