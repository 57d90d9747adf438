"""Sending the day's digests: once per (day, channel, recipient), whatever happens.

For each recipient the runner first **claims** its ``digests_sent`` row (status ``sending``)
in a transaction of its own (:mod:`audit.store.claims`), then renders and delivers, then
records ``sent`` or ``failed`` with the error. So:

- re-running a day sends nothing that was sent (``resend=True`` sends again);
- a failed delivery is retried by the next run, and one failing channel or recipient never
  stops the others;
- two overlapping runs (cron and a hand-started one) do not both send: the second finds the
  row claimed (a claim older than ``stale_after`` is taken to be a crashed run's and taken over).

Each attempt also appends an ``audit_log`` row (action ``digest``), so re-sends stay visible
even though ``digests_sent`` keeps only the latest state per key. Dry runs (``record=False``,
usually with the file channel) neither check nor write either table.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import ColumnElement, Engine, and_, or_, select, true

from audit.days import DEFAULT_ZONE, local_date
from audit.digest.channel import Channel, DeliveryError
from audit.digest.content import build_digest
from audit.digest.recipients import Recipient
from audit.digest.render import RenderedDigest, render
from audit.domain import Action
from audit.store.access import Principal, expand, record
from audit.store.claims import claim_row
from audit.store.db import session_scope
from audit.store.models import DigestSent, OrgUnit
from audit.store.types import utcnow

log = logging.getLogger(__name__)
Status = Literal["sent", "skipped", "failed", "dry_run"]
STALE_CLAIM = dt.timedelta(hours=1)
DIGEST_SENDER = Principal.service("digest")  # who the trail says sent a digest


@dataclass(frozen=True)
class Delivery:
    channel: str
    recipient: str
    status: Status
    alert_count: int = 0
    messages: int = 0  # messages the channel needed (split markdown)
    detail: str = ""  # why skipped, or the error


@dataclass
class DigestRun:
    day: dt.date
    deliveries: list[Delivery] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for d in self.deliveries if d.status == status)


@dataclass(frozen=True)
class DigestOptions:
    timezone: str = DEFAULT_ZONE
    dashboard_url: str = ""
    top: int = 10
    worst: int = 5


def default_day(timezone: str, now: dt.datetime | None = None) -> dt.date:
    """Yesterday in ``timezone``."""
    return local_date(now or utcnow(), timezone) - dt.timedelta(days=1)


def send_digests(
    engine: Engine,
    day: dt.date,
    recipients: Sequence[Recipient],
    channels: Mapping[str, Channel],
    options: DigestOptions = DigestOptions(),
    *,
    resend: bool = False,
    record: bool = True,
    now: Callable[[], dt.datetime] = utcnow,
    stale_after: dt.timedelta = STALE_CLAIM,
) -> DigestRun:
    run = DigestRun(day)
    rendered: dict[tuple[tuple[int, ...] | None, bool], RenderedDigest] = {}
    for recipient in recipients:
        ch, key = recipient.channel, recipient.key
        channel = channels.get(ch)
        if channel is None:
            run.deliveries.append(Delivery(ch, key, "failed", detail="channel not configured"))
            continue
        if record:
            reason = _claim(engine, day, recipient, resend, now(), stale_after)
            if reason:
                run.deliveries.append(Delivery(ch, key, "skipped", detail=reason))
                continue
        digest: RenderedDigest | None = None
        try:
            scope = (recipient.org_unit_ids, recipient.show_staff_names)
            if scope not in rendered:
                rendered[scope] = _render(engine, day, recipient, options)
            digest = rendered[scope]
            messages = channel.send(recipient, digest)
        except DeliveryError as exc:
            delivery = Delivery(ch, key, "failed", _count(digest), detail=str(exc))
        except Exception as exc:  # a bug or a database error: this recipient only
            log.exception("digest for %s %s failed", ch, key)
            detail = f"{type(exc).__name__}: {exc}"
            delivery = Delivery(ch, key, "failed", _count(digest), detail=detail)
        else:
            status: Status = "sent" if record else "dry_run"
            delivery = Delivery(ch, key, status, digest.alert_count, messages)
        if record:
            _record(engine, day, delivery, now())
        run.deliveries.append(delivery)
    return run


def _count(digest: RenderedDigest | None) -> int:
    return digest.alert_count if digest else 0


def _render(
    engine: Engine, day: dt.date, recipient: Recipient, options: DigestOptions
) -> RenderedDigest:
    with session_scope(engine) as session:
        scope = expand(session, recipient.org_unit_ids)
        label = "全公司"
        if recipient.org_unit_ids is not None:
            names = session.scalars(
                select(OrgUnit.name)
                .where(OrgUnit.id.in_(recipient.org_unit_ids))
                .order_by(OrgUnit.name)
            ).all()
            label = "、".join(names) or "（无门店）"
        content = build_digest(
            session.connection(),
            day,
            scope,
            scope_label=label,
            timezone=options.timezone,
            dashboard_url=options.dashboard_url,
            top=options.top,
            worst=options.worst,
            show_staff_names=recipient.show_staff_names,
        )
    return render(content)


def _claim(
    engine: Engine,
    day: dt.date,
    recipient: Recipient,
    resend: bool,
    now: dt.datetime,
    stale_after: dt.timedelta,
) -> str | None:
    """Take the (day, channel, recipient) row for this run; else say why not.

    Taken over: a failed send, a claim older than ``stale_after`` (a crashed run's), and with
    ``resend`` any row."""
    key = {"day": day, "channel": recipient.channel, "recipient": recipient.key}
    retake = (
        true()
        if resend
        else or_(
            DigestSent.status.not_in(("sent", "sending")),
            and_(DigestSent.status == "sending", DigestSent.sent_at <= now - stale_after),
        )
    )
    claimed = {"status": "sending", "error": None, "sent_at": now}
    if claim_row(engine, DigestSent, key, claimed, new={"alert_count": 0}, retake=retake):
        return None
    with session_scope(engine) as session:
        sent_at = session.scalar(
            select(DigestSent.sent_at).where(
                *_row(day, recipient.channel, recipient.key), DigestSent.status == "sent"
            )
        )
    if sent_at is not None:
        return f"already sent at {sent_at:%Y-%m-%d %H:%M} UTC (--resend to send again)"
    return "being sent by another run"


def _row(day: dt.date, channel: str, recipient: str) -> tuple[ColumnElement[bool], ...]:
    """The ``digests_sent`` row of one (day, channel, recipient), as a condition."""
    return (
        DigestSent.day == day,
        DigestSent.channel == channel,
        DigestSent.recipient == recipient,
    )


def _record(engine: Engine, day: dt.date, delivery: Delivery, now: dt.datetime) -> None:
    with session_scope(engine) as session:
        row = session.scalar(
            select(DigestSent).where(*_row(day, delivery.channel, delivery.recipient))
        )
        if row is not None:
            row.status = delivery.status
            row.alert_count = delivery.alert_count
            row.error = delivery.detail or None
            row.sent_at = now
        record(
            session,
            DIGEST_SENDER,
            Action.DIGEST,
            f"{day}:{delivery.channel}:{delivery.recipient}",
            day=day.isoformat(),
            channel=delivery.channel,
            recipient=delivery.recipient,
            status=delivery.status,
            alert_count=delivery.alert_count,
            messages=delivery.messages,
            error=delivery.detail or None,
        )
