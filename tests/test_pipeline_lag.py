"""The pipeline's lag (newest message pulled against newest analysed), as ``audit status
--json`` and the overview page read it, over the chain of ``seed_chain.py`` on SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt

from seed_chain import seed_chain
from sqlalchemy import Engine, update

from audit.reports import pipeline_lag_for
from audit.reports.status import PipelineLag, pipeline_lag, status
from audit.scan.stage import SCAN_STAGE
from audit.store.access import Principal
from audit.store.db import session_scope
from audit.store.models import Envelope, EnvelopeState, Message, ScanRun
from audit.store.quarantine import record_failure

UTC = dt.UTC


def _half_analysed(engine: Engine) -> None:
    """The chain's messages decrypted; those up to 11-17 04:00 UTC scanned; one more envelope
    pulled and not decrypted yet."""
    seed_chain(engine)
    with session_scope(engine) as s:
        run = s.query(ScanRun).one()
        s.execute(update(Envelope).values(state=EnvelopeState.DECRYPTED))
        s.execute(
            update(Message)
            .where(Message.msgtime <= dt.datetime(2026, 11, 17, 4, 0, tzinfo=UTC))
            .values(scanned_run_id=run.id)
        )
        s.add(Envelope(source="test", seq=999, msgid="pending1"))


def test_when_half_is_analysed_then_the_lag_is_the_time_between(engine: Engine) -> None:
    _half_analysed(engine)
    with session_scope(engine) as s:
        lag = pipeline_lag(s)
        shown = status(s)["pipeline"]
    assert lag == PipelineLag(
        pulled_upto=dt.datetime(2026, 11, 18, 2, 5, tzinfo=UTC),
        analysed_upto=dt.datetime(2026, 11, 17, 4, 0, tzinfo=UTC),
        pending=1,
    )
    assert lag.seconds == 22 * 3600 + 5 * 60
    assert shown == {
        "pulled_upto": "2026-11-18T02:05:00+00:00",
        "analysed_upto": "2026-11-17T04:00:00+00:00",
        "lag_seconds": 79500.0,
        "pending_envelopes": 1,
    }


def test_when_no_text_waits_for_the_scan_then_there_is_no_lag(engine: Engine) -> None:
    """The newest message a picture (nothing to scan), one text set aside by the scan: the
    analysis is not behind."""
    _half_analysed(engine)
    with session_scope(engine) as s:
        run = s.query(ScanRun).one()
        s.execute(
            update(Message)
            .where(Message.msgtime != dt.datetime(2026, 11, 18, 2, 0, tzinfo=UTC))
            .values(scanned_run_id=run.id)
        )
        record_failure(s, SCAN_STAGE, "msg6", "ValueError: unreadable")
        env = Envelope(source="test", seq=1000, msgid="pic1", state=EnvelopeState.DECRYPTED)
        s.add(env)
        s.flush()
        newest = dt.datetime(2026, 11, 18, 3, 0, tzinfo=UTC)
        s.add(
            Message(
                envelope_id=env.id,
                msgid="pic1",
                seq=1000,
                action="send",
                msgtype="image",
                msgtime=newest,
                text="",
                raw={},
            )
        )
    with session_scope(engine) as s:
        lag = pipeline_lag(s)
    assert (lag.pulled_upto, lag.analysed_upto, lag.seconds) == (newest, newest, 0.0)


def test_when_nothing_was_pulled_or_analysed_then_no_lag_is_made_up(engine: Engine) -> None:
    with session_scope(engine) as s:
        assert pipeline_lag(s) == PipelineLag(None, None, 0)
        assert status(s)["pipeline"]["lag_seconds"] is None
    seed_chain(engine)  # pulled, nothing scanned
    with session_scope(engine) as s:
        lag = pipeline_lag(s)
    assert lag.analysed_upto is None and lag.seconds is None
    assert lag.pulled_upto == dt.datetime(2026, 11, 18, 2, 5, tzinfo=UTC)


def test_only_officers_and_admins_see_the_lag(engine: Engine) -> None:
    from audit.domain import Role

    _half_analysed(engine)
    with session_scope(engine) as s:
        seen = {role: pipeline_lag_for(s, Principal(1, "u", role, None)) for role in Role}
    assert {r for r, lag in seen.items() if lag is not None} == {Role.ADMIN, Role.COMPLIANCE}
    officer = seen[Role.COMPLIANCE]
    assert officer is not None and officer.pending == 1
