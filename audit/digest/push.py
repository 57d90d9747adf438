"""Real-time push: each new critical alert, once, to the supervisors of its store.

After each ``audit watch`` cycle (and after ``audit run`` with ``push.after_run``) the
:class:`Pusher` selects the open critical alerts raised in the last ``push.max_age_minutes``
and sends each recipient whose scope holds the alert's store one short markdown message
through the digest's channels (:mod:`audit.digest.wecom_app`, :mod:`audit.digest.webhook`):
store, category, the stored (masked) title, a masked excerpt, the message time in the
configured time zone and the dashboard deep link ``<dashboard_url>/?alert=ID``.

Recipients: dashboard users of ``push.roles`` (supervisors by their scope; compliance and
admin: the company) as WeCom members (``push.userids`` maps a username to its WeCom userid;
default the username), and ``digest.routes`` on the push channels (a group robot per region).

Exactly once: a row of ``alert_pushes`` per (alert, channel, recipient) is **claimed** in a
transaction of its own (:mod:`audit.store.claims`) before sending (the unique key refuses a
second claim, from this process after a restart or from a concurrent watcher), then marked
``sent``, ``summarised`` or ``failed``. A failed push is claimed again by the next cycle, up
to ``push.max_attempts``.

Throttle: at most ``push.max_per_minute`` messages to one recipient in any 60 seconds,
counted from the table (so across restarts and watchers). When more alerts wait than the
minute allows, the last allowed message is one summary, "另有 K 条严重预警", and those alerts
are recorded ``summarised``: nothing is dropped silently.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, and_, func, select, update
from sqlalchemy.orm import Session, selectinload

from audit.config import PUSH_CHANNELS, Settings
from audit.days import local_time
from audit.digest.channel import Channel, DeliveryError
from audit.digest.content import ALERT_CONTEXT, alert_excerpt, masked_names, with_alert_context
from audit.digest.recipients import Recipient, from_routes, unique
from audit.digest.render import RenderedDigest, markdown_safe
from audit.domain import AlertState, Category, Severity, label_of
from audit.export.masking import Masker
from audit.store.access import ALL_STORES_ROLES, expand
from audit.store.claims import claim_row
from audit.store.db import session_scope
from audit.store.models import (
    Alert,
    AlertPush,
    Conversation,
    Message,
    Role,
    User,
)
from audit.store.types import utcnow

log = logging.getLogger(__name__)

WINDOW = dt.timedelta(seconds=60)  # the throttle's minute
STALE_CLAIM = dt.timedelta(minutes=5)  # a claim this old is a crashed sender's: taken over
DONE = ("sent", "summarised")


# --------------------------------------------------------------------------- recipients


def user_recipients(
    session: Session, roles: Iterable[str], userids: Mapping[str, str]
) -> list[Recipient]:
    """Active users of ``roles`` as WeCom members (application message), by their scope."""
    wanted = [Role(r) for r in roles]
    users = session.scalars(
        select(User)
        .where(User.active.is_(True), User.role.in_(wanted))
        .options(selectinload(User.scopes))
        .order_by(User.id)
    )
    out = []
    for user in users:
        if user.role in ALL_STORES_ROLES:
            scope: tuple[int, ...] | None = None
        else:
            scope = tuple(sorted(s.org_unit_id for s in user.scopes))
            if not scope:
                continue  # a supervisor without stores has no store's alerts
        userid = userids.get(user.username, user.username)
        out.append(
            Recipient(
                channel="wecom_app",
                key=f"user:{user.username}",
                address=userid,
                name=user.display_name or user.username,
                org_unit_ids=scope,
            )
        )
    return out


def push_recipients(session: Session, settings: Settings) -> list[Recipient]:
    """Who gets pushes, as ``[push]`` says; deduplicated by (channel, key)."""
    from audit.digest.configured import routes

    cfg = settings.push
    found: list[Recipient] = []
    if "wecom_app" in cfg.channels:
        found += user_recipients(session, cfg.roles, cfg.userids)
    if cfg.routes:
        found += [r for r in from_routes(session, routes(settings)) if r.channel in cfg.channels]
    return unique(found)


def push_channels(settings: Settings) -> dict[str, Channel]:
    """The digest's channels named in ``push.channels`` (wecom_app needs digest.app_agentid)."""
    from audit.digest.configured import configured_channels

    return {
        name: channel
        for name, channel in configured_channels(settings).items()
        if name in settings.push.channels and name in PUSH_CHANNELS
    }


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class PushAlert:
    id: int
    category: str
    title: str
    org_unit_id: int | None
    store: str
    at: dt.datetime  # the message's time (the alert's when it has no message)
    excerpt: str


@dataclass(frozen=True)
class PushOptions:
    timezone: str = "Asia/Shanghai"
    dashboard_url: str = ""
    max_per_minute: int = 5
    max_age: dt.timedelta = dt.timedelta(minutes=60)
    max_attempts: int = 10


def alert_message(alert: PushAlert, options: PushOptions) -> RenderedDigest:
    """One alert as a short markdown message (everything shown is masked)."""
    category = label_of(alert.category, Category)
    severity = Severity.CRITICAL.label
    lines = [
        f"**【{severity}预警】{markdown_safe(category)}**",
        f"> 门店：{markdown_safe(alert.store or '（未归属门店）')}",
        f"> 标题：{markdown_safe(alert.title)}",
    ]
    if alert.excerpt:
        lines.append(f"> 摘录：{markdown_safe(alert.excerpt)}")
    at = local_time(alert.at, options.timezone)
    lines.append(f"> 时间：{at:%Y-%m-%d %H:%M}（{options.timezone}）")
    if options.dashboard_url:
        lines.append(
            f"[查看预警 #{alert.id}]({options.dashboard_url.rstrip('/')}/?alert={alert.id})"
        )
    else:
        lines.append(f"预警编号 #{alert.id}")
    text = "\n".join(lines)
    subject = f"{severity}预警：{category} {alert.store}"
    return RenderedDigest(subject, text, "", text, 1)


def summary_message(alerts: Sequence[PushAlert], options: PushOptions) -> RenderedDigest:
    """The throttled rest: how many, where, and where to look (and K more critical alerts)."""
    stores = "、".join(dict.fromkeys(a.store or "（未归属门店）" for a in alerts))
    severity = Severity.CRITICAL.label
    lines = [
        f"**【{severity}预警】另有 {len(alerts)} 条{severity}预警**",
        f"> 门店：{markdown_safe(stores)}",
        f"> 推送限流：每分钟最多 {options.max_per_minute} 条，其余请在看板查看",
    ]
    if options.dashboard_url:
        lines.append(f"[打开预警列表]({options.dashboard_url.rstrip('/')}/)")
    text = "\n".join(lines)
    return RenderedDigest(f"另有 {len(alerts)} 条{severity}预警", text, "", text, len(alerts))


# --------------------------------------------------------------------------- the run


@dataclass
class PushReport:
    sent: int = 0  # messages for one alert each
    summaries: int = 0  # summary messages
    summarised: int = 0  # alerts counted in them
    failed: int = 0  # alert pushes that failed (retried next cycle)
    deferred: int = 0  # alert pushes waiting for the recipient's minute to pass
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        text = (
            f"push: {self.sent} sent, {self.summarised} in {self.summaries} summary message(s), "
            f"{self.failed} failed, {self.deferred} deferred"
        )
        if self.errors:
            text += "; " + "; ".join(dict.fromkeys(self.errors))
        return text


def _candidates(session: Session, since: dt.datetime) -> list[PushAlert]:
    """Open critical alerts raised since ``since``, with what a message shows (masked as the
    digest masks: staff and customer names as tokens, personal data as labels)."""
    rows = session.execute(
        with_alert_context(
            select(
                Alert.id,
                Alert.category,
                Alert.title,
                func.coalesce(Alert.org_unit_id, Conversation.org_unit_id).label("unit"),
                Alert.created_at,
                Message.msgtime,
                *ALERT_CONTEXT,
            ).outerjoin(Conversation, Conversation.id == Alert.conversation_id)
        )
        .where(
            Alert.severity == Severity.CRITICAL,
            Alert.state == AlertState.OPEN,
            Alert.created_at >= since,
        )
        .order_by(Alert.id)
    ).all()
    masker = Masker()  # one push run: the same person is the same token throughout
    out = []
    for r in rows:
        names = masked_names(masker, r)
        excerpt = alert_excerpt(masker, r, names)
        out.append(
            PushAlert(
                id=r.id,
                category=r.category,
                # stored masked already; masked again in case an older row was not
                title=masker.mask(r.title, names).text,
                org_unit_id=r.unit,
                store=r.store or "",
                at=r.msgtime or r.created_at,
                excerpt=excerpt,
            )
        )
    return out


def _messages_in_window(session: Session, recipient: Recipient, since: dt.datetime) -> int:
    """Messages this recipient got since ``since``: single pushes plus summaries."""
    rows = session.execute(
        select(AlertPush.status, AlertPush.sent_at).where(
            AlertPush.channel == recipient.channel,
            AlertPush.recipient == recipient.key,
            AlertPush.status.in_(DONE),
            AlertPush.sent_at >= since,
        )
    ).all()
    singles = sum(1 for s, _ in rows if s == "sent")
    return singles + len({at for s, at in rows if s == "summarised"})


def _claim(
    engine: Engine,
    alert_id: int,
    recipient: Recipient,
    row: tuple[str, int] | None,
    now: dt.datetime,
    max_attempts: int,
) -> bool:
    """Take the (alert, channel, recipient) push for this sender; False when someone has it.

    ``row`` is the (status, attempts) this cycle read: a failed push is taken only if no one
    retried it since, a ``sending`` one only when its sender died between claiming and
    recording."""
    retake = None
    if row is not None:
        status, attempts = row
        if status == "failed":
            cond = and_(AlertPush.status == "failed", AlertPush.attempts == attempts)
        else:
            cond = and_(AlertPush.status == "sending", AlertPush.claimed_at < now - STALE_CLAIM)
        retake = and_(cond, AlertPush.attempts < max_attempts)
    key = {"alert_id": alert_id, "channel": recipient.channel, "recipient": recipient.key}
    claimed = {"status": "sending", "claimed_at": now}
    return claim_row(engine, AlertPush, key, claimed, new={"attempts": 0}, retake=retake)


def _record(
    engine: Engine,
    alert_ids: Sequence[int],
    recipient: Recipient,
    status: str,
    now: dt.datetime,
    error: str | None = None,
) -> None:
    with session_scope(engine) as session:
        session.execute(
            update(AlertPush)
            .where(
                AlertPush.alert_id.in_(alert_ids),
                AlertPush.channel == recipient.channel,
                AlertPush.recipient == recipient.key,
                AlertPush.status == "sending",
            )
            .values(
                status=status,
                attempts=AlertPush.attempts + 1,
                error=error[:2000] if error else None,
                sent_at=now if status in DONE else None,
            )
        )


def _pushable(
    row: tuple[str, int, dt.datetime] | None, now: dt.datetime, max_attempts: int
) -> bool:
    if row is None:
        return True
    status, attempts, claimed_at = row
    if attempts >= max_attempts or status in DONE:
        return False
    if status == "sending":
        if claimed_at.tzinfo is None:
            claimed_at = claimed_at.replace(tzinfo=dt.UTC)
        return now - claimed_at >= STALE_CLAIM
    return True


def push_alerts(
    engine: Engine,
    recipients: Sequence[Recipient],
    channels: Mapping[str, Channel],
    options: PushOptions = PushOptions(),
    *,
    now: Callable[[], dt.datetime] = utcnow,
) -> PushReport:
    """Push every new critical alert to every recipient whose scope holds it, once."""
    report = PushReport()
    start = now()
    with session_scope(engine) as session:
        alerts = _candidates(session, start - options.max_age)
        if not alerts:
            return report
        ids = [a.id for a in alerts]
        done: dict[tuple[int, str, str], tuple[str, int, dt.datetime]] = {}
        for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
            for p in session.execute(
                select(
                    AlertPush.alert_id,
                    AlertPush.channel,
                    AlertPush.recipient,
                    AlertPush.status,
                    AlertPush.attempts,
                    AlertPush.claimed_at,
                ).where(AlertPush.alert_id.in_(chunk))
            ):
                done[(p.alert_id, p.channel, p.recipient)] = (p.status, p.attempts, p.claimed_at)
        scopes = {r.org_unit_ids: expand(session, r.org_unit_ids) for r in recipients}
        used = {
            (r.channel, r.key): _messages_in_window(session, r, start - WINDOW) for r in recipients
        }
    for recipient in recipients:
        channel = channels.get(recipient.channel)
        if channel is None:
            report.errors.append(f"channel {recipient.channel} not configured")
            continue
        scope = scopes[recipient.org_unit_ids]
        pending = [
            a
            for a in alerts
            if (scope is None or a.org_unit_id in scope)
            and _pushable(
                done.get((a.id, recipient.channel, recipient.key)), start, options.max_attempts
            )
        ]
        if not pending:
            continue
        budget = options.max_per_minute - used[(recipient.channel, recipient.key)]
        if budget <= 0:
            report.deferred += len(pending)
            continue
        singles = pending if len(pending) <= budget else pending[: budget - 1]
        rest = pending[len(singles) :]
        failing = False
        for n, alert in enumerate(singles):
            row = done.get((alert.id, recipient.channel, recipient.key))
            state = None if row is None else (row[0], row[1])
            if not _claim(engine, alert.id, recipient, state, now(), options.max_attempts):
                continue
            error = _send(channel, recipient, alert_message(alert, options))
            if error is None:
                _record(engine, [alert.id], recipient, "sent", now())
                report.sent += 1
            else:
                _record(engine, [alert.id], recipient, "failed", now(), error)
                report.failed += 1
                report.errors.append(f"{recipient.channel} {recipient.key}: {error}")
                # this recipient's channel is in trouble: the rest wait for the next cycle
                report.deferred += len(pending) - n - 1
                failing = True
                break
        if rest and not failing:
            claimed = []
            for alert in rest:
                row = done.get((alert.id, recipient.channel, recipient.key))
                state = None if row is None else (row[0], row[1])
                if _claim(engine, alert.id, recipient, state, now(), options.max_attempts):
                    claimed.append(alert)
            if not claimed:
                continue
            error = _send(channel, recipient, summary_message(claimed, options))
            claimed_ids = [a.id for a in claimed]
            if error is None:
                _record(engine, claimed_ids, recipient, "summarised", now())
                report.summaries += 1
                report.summarised += len(claimed)
            else:
                _record(engine, claimed_ids, recipient, "failed", now(), error)
                report.failed += len(claimed)
                report.errors.append(f"{recipient.channel} {recipient.key}: {error}")
    for problem in dict.fromkeys(report.errors):
        log.warning("push: %s", problem)
    return report


def _send(channel: Channel, recipient: Recipient, message: RenderedDigest) -> str | None:
    """None when delivered, else what went wrong (one recipient's trouble stays its own)."""
    try:
        channel.send(recipient, message)
    except DeliveryError as exc:
        return str(exc)
    except Exception as exc:  # a bug or a network surprise: this push only, retried later
        log.exception("push to %s %s failed", recipient.channel, recipient.key)
        return f"{type(exc).__name__}: {exc}"
    return None


class Pusher:
    """The push as ``[push]`` configures it; call it after each cycle."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        channels: Mapping[str, Channel] | None = None,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        cfg = settings.push
        self.settings, self.engine, self.now = settings, engine, now
        self.channels = dict(channels) if channels is not None else push_channels(settings)
        self.options = PushOptions(
            timezone=settings.quality.timezone,
            dashboard_url=settings.digest.dashboard_url,
            max_per_minute=cfg.max_per_minute,
            max_age=dt.timedelta(minutes=cfg.max_age_minutes),
            max_attempts=cfg.max_attempts,
        )

    def __call__(self) -> PushReport:
        with session_scope(self.engine) as session:
            recipients = push_recipients(session, self.settings)
        return push_alerts(self.engine, recipients, self.channels, self.options, now=self.now)


__all__ = [
    "PushAlert",
    "PushOptions",
    "PushReport",
    "Pusher",
    "alert_message",
    "push_alerts",
    "push_channels",
    "push_recipients",
    "summary_message",
    "user_recipients",
]
