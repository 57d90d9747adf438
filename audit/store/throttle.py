"""Sign-in throttling: too many refused sign-ins lock the name, or the address, for a while.

A name is locked once it has ``max_failures`` refused sign-ins within ``window``; the lock
lasts ``lockout`` from the last of them. An address (the browser's IP) is locked the same way
after ``max_failures_ip`` refusals across every name, which stops one client from trying
one password on many accounts. Attempts made while locked are logged but not counted, so the
lock ends on time and an attacker cannot keep a user locked out for ever at no cost: they
must keep guessing wrong.

The failures are rows in ``signin_failures``, so every dashboard process sees the same count;
``now`` is a parameter so that tests use their own clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from audit.store.models import SigninFailure


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int = 5  # per user name
    max_failures_ip: int = 20  # per address, over every name (an office behind one NAT); 0: off
    window: dt.timedelta = dt.timedelta(minutes=1)
    lockout: dt.timedelta = dt.timedelta(minutes=15)

    @property
    def horizon(self) -> dt.timedelta:
        """How far back a failure can still matter."""
        return self.window + self.lockout


DEFAULT_POLICY = ThrottlePolicy()


def _locked_by(
    session: Session,
    where: ColumnElement[bool],
    limit: int,
    now: dt.datetime,
    policy: ThrottlePolicy,
) -> dt.datetime | None:
    times = list(
        session.scalars(
            select(SigninFailure.at)
            .where(where, SigninFailure.at > now - policy.horizon, SigninFailure.at <= now)
            .order_by(SigninFailure.at)
        )
    )
    until: dt.datetime | None = None
    for i in range(limit - 1, len(times)):
        if times[i] - times[i - limit + 1] <= policy.window:
            until = times[i] + policy.lockout
    return until if until is not None and until > now else None


def locked_until(
    session: Session, username: str | None, ip: str, now: dt.datetime, policy: ThrottlePolicy
) -> dt.datetime | None:
    """When the lock on this name or this address ends; ``None`` when neither is locked.

    ``username`` None: the address only (a WeCom sign-in before WeCom has said who it is).
    """
    ends = []
    if username is not None:
        ends.append(
            _locked_by(
                session, SigninFailure.username == username, policy.max_failures, now, policy
            )
        )
    if ip and policy.max_failures_ip:
        ends.append(
            _locked_by(session, SigninFailure.ip == ip, policy.max_failures_ip, now, policy)
        )
    found = [e for e in ends if e is not None]
    return max(found) if found else None


def record_failure(
    session: Session, username: str, ip: str, now: dt.datetime, policy: ThrottlePolicy
) -> None:
    """Count a refused sign-in, and forget failures too old to matter (the table stays small)."""
    session.execute(delete(SigninFailure).where(SigninFailure.at < now - policy.horizon))
    session.add(SigninFailure(at=now, username=username, ip=ip))
    session.flush()
