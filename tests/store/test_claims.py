"""Claiming a row so that only one sender sends it (digests and alert pushes share this)."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import Engine, select

from audit.store.claims import claim_row
from audit.store.db import make_engine, session_scope
from audit.store.models import DigestSent

DAY = dt.date(2026, 3, 2)
NOW = dt.datetime(2026, 3, 3, 8, 0, tzinfo=dt.UTC)


def _key(recipient: str) -> dict[str, object]:
    return {"day": DAY, "channel": "email", "recipient": recipient}


def _claim(engine: Engine, recipient: str, retake_failed: bool = False) -> bool:
    retake = DigestSent.status == "failed" if retake_failed else None
    claimed = {"status": "sending", "sent_at": NOW}
    return claim_row(engine, DigestSent, _key(recipient), claimed, retake=retake)


def _statuses(engine: Engine) -> dict[str, str]:
    with session_scope(engine) as s:
        return {
            r: status for r, status in s.execute(select(DigestSent.recipient, DigestSent.status))
        }


def test_when_no_row_then_the_claim_inserts_it_and_a_second_claim_is_refused(
    engine: Engine,
) -> None:
    assert _claim(engine, "a@example.com") is True
    assert _claim(engine, "a@example.com") is False
    assert _claim(engine, "a@example.com", retake_failed=True) is False  # sending, not failed
    assert _statuses(engine) == {"a@example.com": "sending"}


def test_when_a_row_exists_then_it_is_taken_only_while_the_condition_holds(
    engine: Engine,
) -> None:
    with session_scope(engine) as s:
        s.add(DigestSent(**_key("b@example.com"), status="failed", sent_at=NOW))
    assert _claim(engine, "b@example.com") is False  # no take-over asked for
    assert _claim(engine, "b@example.com", retake_failed=True) is True
    assert _statuses(engine) == {"b@example.com": "sending"}
    assert _claim(engine, "b@example.com", retake_failed=True) is False


def test_of_concurrent_senders_exactly_one_claims(engine: Engine) -> None:
    with session_scope(engine) as s:
        s.add(DigestSent(**_key("old@example.com"), status="failed", sent_at=NOW))
    senders = 4
    url = engine.url.render_as_string(hide_password=False)
    engines = [make_engine(url) for _ in range(senders)]  # one process or host each
    start = threading.Barrier(senders)
    won: dict[str, list[bool]] = {"new@example.com": [], "old@example.com": []}

    def send(own: Engine) -> None:
        start.wait(timeout=60)
        for recipient, results in won.items():
            results.append(_claim(own, recipient, retake_failed=True))

    threads = [threading.Thread(target=send, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for e in engines:
        e.dispose()
    assert {r: sorted(results) for r, results in won.items()} == {
        "new@example.com": [False] * (senders - 1) + [True],
        "old@example.com": [False] * (senders - 1) + [True],
    }
