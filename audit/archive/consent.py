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
import hashlib
import string
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, delete, or_, select, update
from sqlalchemy.orm import Session

from audit.archive.values import timestamp
from audit.store.db import session_scope, stage_mark
from audit.store.models import Checkpoint, Conversation, Customer, Message

_FAR_FUTURE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
STAGE = "stage:consent"
SETTLED = "stage:consent:customer:"
# the sessionizer's mark (audit.quality.conversations.STAGE): messages up to it are placed
PLACED = "stage:conversations"
_CHUNK = 500


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


def _fingerprint(consent: str, changed_at: dt.datetime | None) -> int:
    """A customer's consent state as a positive 62-bit number (a ``checkpoints`` seq)."""
    at = changed_at.astimezone(dt.UTC).isoformat() if changed_at is not None else ""
    digest = hashlib.sha256(f"{consent}|{at}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2 or 1


def _fold(text: str, dialect: str) -> str:
    """How LIKE compares on this database: SQLite folds ASCII letters, PostgreSQL does not."""
    return text.translate(_ASCII_LOWER) if dialect == "sqlite" else text


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def apply_consent(engine: Engine, full: bool = False) -> ConsentStats:
    """Update customers' consent from the archive and flag messages sent while it was withheld.

    Incremental, with the same flags as recomputing everything: a customer whose windows may
    have changed since the last pass (a new agree/disagree message, an answer of the API,
    no pass yet) has all its messages checked; the others only the messages placed in
    conversations since the last pass (the sessionizer runs first: an unplaced message
    names no customer). With nothing new it reads no message at all. ``full`` checks every
    customer's messages, as the first pass does.

    Bookkeeping, in ``checkpoints``: ``stage:consent`` is the message id up to which placed
    messages were checked; ``stage:consent:customer:<id>`` the consent state (a
    fingerprint) the pass left on the customer, 0 when the next pass must look again.
    Flags are only ever added, never taken away.
    """
    stats = ConsentStats()
    with session_scope(engine) as session:
        dialect = session.get_bind().dialect.name
        mark = stage_mark(session, STAGE)
        placed = session.get(Checkpoint, PLACED)
        upto = max(mark.seq, placed.seq if placed is not None else 0)
        settled = {
            int(source[len(SETTLED) :]): seq
            for source, seq in session.execute(
                select(Checkpoint.source, Checkpoint.seq).where(
                    Checkpoint.source.startswith(SETTLED)
                )
            )
        }
        # customers whose state is not the one the last pass left (an answer of the API
        # since); one who only ever agreed, by the API, has no windows and needs no row
        changed = set(settled)
        for cid, consent, at in session.execute(
            select(Customer.id, Customer.consent, Customer.consent_changed_at).where(
                Customer.consent != "unknown"
            )
        ):
            if cid in settled:
                if settled[cid] == _fingerprint(consent, at):
                    changed.discard(cid)
            elif consent != "agree":
                changed.add(cid)
        if not full and not changed and upto == mark.seq:
            return stats  # nothing new: no event, no message, no answer of the API
        events: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
        fresh: set[str] = set()  # customers with an event the last pass did not see
        for msg_id, kind, sender, raw, msgtime in session.execute(
            select(Message.id, Message.msgtype, Message.sender, Message.raw, Message.msgtime).where(
                Message.msgtype.in_(("agree", "disagree"))
            )
        ):
            who = _customer_of(raw, kind, sender)
            events[who].append((_event_time(raw, kind, msgtime), kind))
            if msg_id > mark.seq:
                fresh.add(who)
            stats.events += 1
        customers = {
            c.external_userid: c
            for c in session.scalars(
                select(Customer).where(
                    or_(Customer.external_userid.in_(list(events)), Customer.consent != "unknown")
                )
            )
        }
        clean: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
        for userid in [*events, *(u for u in customers if u not in events)]:
            arch = events.get(userid, [])
            customer = customers.get(userid)
            evs = list(arch)
            # the API's current answer counts as one more event at its time
            stated = customer.consent if customer is not None else "unknown"
            if (
                customer is not None
                and stated in ("agree", "disagree")
                and customer.consent_changed_at
            ):
                evs.append((customer.consent_changed_at, stated))
            if not evs:  # a state without a time: no event, but seen
                if customer is not None and customer.id in changed:
                    _settle(session, customer.id, _fingerprint(stated, None))
                continue
            latest_at, latest = max(evs)
            if customer is None:
                customer = Customer(external_userid=userid)
                session.add(customer)
                customers[userid] = customer
            customer.consent, customer.consent_changed_at = latest, latest_at
            session.flush()
            windows = withheld_windows(evs)
            if not (full or customer.id in changed or userid in fresh):
                if windows:
                    clean[userid] = windows
                continue
            # the next pass counts the state left now as the API's event: when that gives
            # other windows (an answer overtaken by a later message), it looks again
            again = withheld_windows([*arch, (latest_at, latest)]) != windows
            if arch or windows or customer.id in settled:
                _settle(session, customer.id, 0 if again else _fingerprint(latest, latest_at))
            if windows:
                stats.customers += 1
                stats.flagged += _flag_all(session, customer.id, userid, windows)
        gone = changed - {c.id for c in customers.values()}  # back to "unknown", no event
        if gone:
            session.execute(
                delete(Checkpoint).where(Checkpoint.source.in_([f"{SETTLED}{c}" for c in gone]))
            )
        if clean and upto > mark.seq:
            stats.customers += len(clean)
            stats.flagged += _flag_new(session, customers, clean, mark.seq, upto, dialect)
        mark.seq = upto
    return stats


def _settle(session: Session, customer_id: int, fingerprint: int) -> None:
    name = f"{SETTLED}{customer_id}"
    row = session.get(Checkpoint, name)
    if row is None:
        session.add(Checkpoint(source=name, seq=fingerprint))
    elif row.seq != fingerprint:
        row.seq = fingerprint


def _unflagged() -> list[Any]:
    return [
        Message.consent_withheld.is_(False),
        Message.msgtype.not_in(("agree", "disagree")),
    ]


def _flag_all(
    session: Session,
    customer_id: int,
    userid: str,
    windows: list[tuple[dt.datetime, dt.datetime]],
) -> int:
    """Flag every message exchanged with the customer inside ``windows``: the customer's
    own (by id), and those of its one-to-one threads (customers not yet in the directory
    when their messages were placed). Two statements, so that each can use its index."""
    in_window = or_(*[and_(Message.msgtime >= a, Message.msgtime < b) for a, b in windows])
    threads = select(Conversation.id).where(
        Conversation.thread.like(f"single:%:{_like(userid)}", escape="\\")
    )
    flagged = 0
    for whose in (Message.customer_id == customer_id, Message.conversation_id.in_(threads)):
        result = session.execute(
            update(Message)
            .where(whose, *_unflagged(), in_window)
            .values(consent_withheld=True)
            .execution_options(synchronize_session=False)
        )
        flagged += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return flagged


def _flag_new(
    session: Session,
    customers: Mapping[str, Customer],
    windows: Mapping[str, list[tuple[dt.datetime, dt.datetime]]],
    after: int,
    upto: int,
    dialect: str,
) -> int:
    """Flag the messages placed since the last pass (ids ``after`` < id <= ``upto``) that were
    exchanged with one of these customers inside their ``windows``: what :func:`_flag_all`
    would add, read once for all of them."""
    by_id = {customers[u].id: u for u in windows}
    by_name: dict[str, list[str]] = defaultdict(list)
    for userid in windows:
        by_name[_fold(userid, dialect)].append(userid)
    hits: list[int] = []
    rows = session.execute(
        select(Message.id, Message.msgtime, Message.customer_id, Conversation.thread)
        .outerjoin(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Message.id > after,
            Message.id <= upto,
            or_(Message.customer_id.is_not(None), Message.conversation_id.is_not(None)),
            *_unflagged(),
        )
    )
    for msg_id, at, customer_id, thread in rows:
        whose = [by_id[customer_id]] if customer_id in by_id else []
        whose += _thread_customers(thread, by_name, dialect)
        if any(a <= at < b for u in whose for a, b in windows[u]):
            hits.append(msg_id)
    for i in range(0, len(hits), _CHUNK):
        session.execute(
            update(Message)
            .where(Message.id.in_(hits[i : i + _CHUNK]))
            .values(consent_withheld=True)
            .execution_options(synchronize_session=False)
        )
    return len(hits)


def _thread_customers(
    thread: str | None, by_name: Mapping[str, list[str]], dialect: str
) -> list[str]:
    """The customers whose ``single:%:<userid>`` pattern the thread matches."""
    prefix = "single:"
    if not thread or not _fold(thread, dialect).startswith(prefix):
        return []
    folded = _fold(thread, dialect)
    out: list[str] = []
    at = folded.find(":", len(prefix))
    while at != -1:
        out += by_name.get(folded[at + 1 :], [])
        at = folded.find(":", at + 1)
    return out
