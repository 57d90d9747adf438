"""Decrypted text messages stored directly (an envelope each), for tests of the stages after
decryption: ``add_text_messages(engine, [(text, role), ...])`` returns their ids."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Engine

from audit.store.db import session_scope
from audit.store.models import Envelope, Message, SenderKind

SENDERS = {SenderKind.STAFF: "zhangwei", SenderKind.CUSTOMER: "wmcust0"}


def add_text_messages(
    engine: Engine, rows: Sequence[tuple[str, str]], prefix: str = "t"
) -> list[int]:
    """``rows``: (text, "staff" | "customer" | a SenderKind), one minute apart; msgids are
    ``prefix`` and a number."""
    ids = []
    with session_scope(engine) as s:
        for n, (text, role) in enumerate(rows, start=1):
            kind = SenderKind(role)
            env = Envelope(source="test", seq=n, msgid=f"{prefix}{n}")
            s.add(env)
            s.flush()
            msg = Message(
                envelope_id=env.id, msgid=env.msgid, seq=n, action="send", msgtype="text",
                sender=SENDERS.get(kind, "system"), sender_kind=kind, text=text, tolist=[],
                msgtime=dt.datetime(2026, 11, 16, 2, n, tzinfo=dt.UTC), raw={},
            )  # fmt: skip
            s.add(msg)
            s.flush()
            ids.append(msg.id)
    return ids
