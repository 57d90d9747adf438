"""Customers who refused archiving (``disagree``), and what happens to their messages.

WeCom records a customer's choice as ``agree`` / ``disagree`` messages in the archive, and the
``check_single_agree`` API reports the current state. Both end up here: the customer's
``consent`` is updated, and every message exchanged with the customer while consent was
withheld is flagged ``consent_withheld``. Flagged messages are kept (the archive is the
record), shown as such, and never exported; with ``consent_mode = "skip_scan"`` they are not
scanned either.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Engine, and_, or_, select, update

from audit.archive.values import timestamp
from audit.store.db import session_scope
from audit.store.models import Conversation, Customer, Message

_FAR_FUTURE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


@dataclass
class ConsentStats:
    events: int = 0
    customers: int = 0
    flagged: int = 0


def _event_time(raw: dict[str, object], kind: str, fallback: dt.datetime) -> dt.datetime:
    payload = raw.get(kind)
    ms = payload.get(f"{kind}_time") if isinstance(payload, dict) else None
    if isinstance(ms, int) and ms > 0:
        try:
            return timestamp(ms)
        except ValueError:  # a time no datetime holds: the message's own time instead
            return fallback
    return fallback


def _customer_of(raw: dict[str, object], kind: str, sender: str) -> str:
    payload = raw.get(kind)
    userid = payload.get("userid") if isinstance(payload, dict) else None
    return userid if isinstance(userid, str) and userid else sender


def _like(text: str) -> str:
    """Escape LIKE wildcards: external userids may contain ``_``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def withheld_windows(
    events: list[tuple[dt.datetime, str]],
) -> list[tuple[dt.datetime, dt.datetime]]:
    """From (time, "agree"|"disagree") events, the periods during which consent was withheld."""
    windows: list[tuple[dt.datetime, dt.datetime]] = []
    start: dt.datetime | None = None
    for at, kind in sorted(events):
        if kind == "disagree" and start is None:
            start = at
        elif kind == "agree" and start is not None:
            windows.append((start, at))
            start = None
    if start is not None:
        windows.append((start, _FAR_FUTURE))
    return windows


def apply_consent(engine: Engine) -> ConsentStats:
    """Update customers' consent from the archive and flag messages sent while it was withheld.

    Idempotent: it recomputes the windows from all consent events each time and only flags
    messages not flagged yet.
    """
    stats = ConsentStats()
    with session_scope(engine) as session:
        events: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
        for kind, sender, raw, msgtime in session.execute(
            select(Message.msgtype, Message.sender, Message.raw, Message.msgtime).where(
                Message.msgtype.in_(("agree", "disagree"))
            )
        ):
            who = _customer_of(raw, kind, sender)
            events[who].append((_event_time(raw, kind, msgtime), kind))
            stats.events += 1
        customers = {
            c.external_userid: c
            for c in session.scalars(
                select(Customer).where(
                    or_(Customer.external_userid.in_(list(events)), Customer.consent != "unknown")
                )
            )
        }
        for userid, known in customers.items():
            # the API's current answer counts as one more event at its time
            if known.consent in ("agree", "disagree") and known.consent_changed_at:
                events[userid].append((known.consent_changed_at, known.consent))
        for userid, evs in events.items():
            latest_at, latest = max(evs)
            found = customers.get(userid)
            if found is None:
                found = Customer(external_userid=userid)
                session.add(found)
                customers[userid] = found
            customer = found
            customer.consent, customer.consent_changed_at = latest, latest_at
            session.flush()
            windows = withheld_windows(evs)
            if not windows:
                continue
            stats.customers += 1
            in_window = or_(*[and_(Message.msgtime >= a, Message.msgtime < b) for a, b in windows])
            result = session.execute(
                update(Message)
                .where(
                    or_(
                        Message.customer_id == customer.id,
                        # customers not (yet) in the directory: by their one-to-one threads
                        Message.conversation_id.in_(
                            select(Conversation.id).where(
                                Conversation.thread.like(f"single:%:{_like(userid)}", escape="\\")
                            )
                        ),
                    ),
                    Message.consent_withheld.is_(False),
                    Message.msgtype.not_in(("agree", "disagree")),
                    in_window,
                )
                .values(consent_withheld=True)
            )
            stats.flagged += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return stats
