"""Every exported message names its real sender, on a pipeline-built database.

A message's ``staff_id``/``customer_id`` name the conversation's pair whoever spoke, so the
export must decide the sender by sender kind and id: a customer's message is never shown
under the staff member's pseudonym (nor the reverse)."""

from __future__ import annotations

import io
import json

from simfixtures import SimArchive
from sqlalchemy import Engine, select

from audit.archive import simulator
from audit.archive.keys import KeyRing
from audit.archive.sources import SimulatedServer
from audit.config import load_settings
from audit.export.run import export_packs
from audit.export.selection import PackQuery
from audit.pipeline import load_scanner, run
from audit.store.access import Principal
from audit.store.db import session_scope
from audit.store.models import Message


def test_when_exported_then_customer_messages_carry_the_customer_pseudonym(
    engine: Engine, sim_archive: SimArchive
) -> None:
    settings = load_settings(None, environ={}, overrides={"archive": {"workers": 1}})
    keys = KeyRing.from_files(simulator.key_files(sim_archive.directory))
    run(settings, engine, SimulatedServer(sim_archive.directory), keys, load_scanner(settings))
    out = io.BytesIO()
    export_packs(engine, PackQuery(), "jsonl", out, Principal.operator("t"))
    packs = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    with session_scope(engine) as session:
        kind_of = {i: k for i, k in session.execute(select(Message.id, Message.sender_kind))}
    one_to_one = [p for p in packs if p["customer"] and p["staff"]]
    assert len(one_to_one) >= 50
    checked = {"staff": 0, "customer": 0}
    for pack in one_to_one:
        for m in pack["messages"]:
            kind = str(kind_of[m["id"]])
            assert m["sender_kind"] == kind
            if kind == "customer":
                assert m["sender"] == pack["customer"], (pack["conversation_id"], m)
                checked["customer"] += 1
            elif kind == "staff":
                assert m["sender"] == pack["staff"], (pack["conversation_id"], m)
                checked["staff"] += 1
    assert checked["customer"] >= 100 and checked["staff"] >= 100, checked
