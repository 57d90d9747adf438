"""Raising alerts from findings and scores: one alert per incident.

An incident is "this message, this category": however many rules or overlapping spans fired
on the message, it gives one alert (unique on ``(message_id, category)``), led by its most
severe finding (then the highest score, then the first); the other findings of the message and
category are its evidence. A fatal scorecard item is the same incident as the findings that
caused it: it is recorded on their alerts (``causes``, severity critical) instead of raising a
second critical alert; only a fatal item without such findings raises a quality alert of its
own. Every alert is keyed by ``dedupe_key`` so that re-running the stage (or rescanning) never
raises the same alert twice. Alerts carry the store and staff member of their conversation,
which is what scopes them for supervisors.

Titles are stored masked (:func:`audit.export.masking.stored_masker`): a title is shown in
queues, digests and exports, to roles that may not see personal data.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from audit.domain import Category
from audit.export.masking import stored_masker
from audit.quality.alert_sync import sync_alerts
from audit.store.db import insert_ignore, session_scope, stage_mark
from audit.store.models import (
    Alert,
    AlertState,
    Conversation,
    ConversationKind,
    Finding,
    Message,
    Score,
    Severity,
    Staff,
)
from audit.store.types import utcnow

STAGE = "stage:alerts"
QUALITY_STAGE = "stage:quality_alerts"
TITLE_MAX = 255

CATEGORY_LABELS = {c.value: c.label for c in Category}


@dataclass
class AlertStats:
    considered: int = 0
    raised: int = 0


def finding_title(category: str, text: str, start: int, end: int) -> str:
    """The stored title of a finding alert: its category and the matched words, masked.

    The message ``text`` is masked whole and the finding's span read from the masked text,
    so that a recognizer needing context (a WeChat id after 微信) still sees it.
    """
    masked = stored_masker().mask(text)
    lo, hi = masked.span(start, end) if 0 <= start <= end <= len(text) else (0, 0)
    matched = " ".join(masked.text[lo:hi].split())
    return f"{CATEGORY_LABELS.get(category, category)}：{matched}"[:TITLE_MAX]


def _lead_rank(severity: Any, score: float | None, start: int, finding_id: int) -> tuple[Any, ...]:
    """Which finding leads an incident: the most severe, then the highest score, then the first."""
    return (Severity(severity).rank, float(score or 0.0), -start, -finding_id)


@dataclass(frozen=True)
class _Lead:
    """The leading finding of one (message, category) incident, with what its alert needs."""

    finding_id: int
    message_id: int
    msgid: str
    category: str
    severity: Severity
    rank: tuple[Any, ...]
    title: str
    conversation_id: int | None
    org_unit_id: int | None
    staff_id: int | None


def _finding_rows(session: Session, where: Sequence[Any], limit: int | None = None) -> list[Any]:
    query = (
        select(
            Finding.id,
            Finding.category,
            Finding.severity,
            Finding.score,
            Finding.start,
            Finding.end,
            Finding.conversation_id,
            Finding.message_id,
            Message.msgid,
            Message.text,
            Message.staff_id,
            func.coalesce(Conversation.org_unit_id, Staff.org_unit_id).label("org_unit_id"),
        )
        .join(Message, Message.id == Finding.message_id)
        .outerjoin(Conversation, Conversation.id == Finding.conversation_id)
        .outerjoin(Staff, Staff.id == Message.staff_id)
        .where(*where)
        .order_by(Finding.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.execute(query).all())


def _leads(rows: Iterable[Any]) -> dict[tuple[int, str], _Lead]:
    """The leading finding per (message, category) among ``rows``."""
    out: dict[tuple[int, str], _Lead] = {}
    for r in rows:
        rank = _lead_rank(r.severity, r.score, r.start, r.id)
        key = (r.message_id, r.category)
        if key in out and out[key].rank >= rank:
            continue
        out[key] = _Lead(
            finding_id=r.id,
            message_id=r.message_id,
            msgid=r.msgid,
            category=r.category,
            severity=Severity(r.severity),
            rank=rank,
            title=finding_title(r.category, r.text or "", r.start, r.end),
            conversation_id=r.conversation_id,
            org_unit_id=r.org_unit_id,
            staff_id=r.staff_id,
        )
    return out


def _incident_alerts(
    session: Session, keys: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], Alert]:
    """The existing alerts of these (message, category) incidents."""
    keys = set(keys)
    if not keys:
        return {}
    alerts = session.scalars(
        select(Alert).where(Alert.message_id.in_(sorted({m for m, _ in keys})))
    ).all()
    return {
        (a.message_id, a.category): a
        for a in alerts
        if a.message_id is not None and (a.message_id, a.category) in keys
    }


def _merge_leads(
    session: Session,
    leads: dict[tuple[int, str], _Lead],
    now: dt.datetime,
    severity_floor: Severity | None = None,
    cause: str | None = None,
) -> tuple[int, dict[tuple[int, str], int]]:
    """Make each incident's alert exist and be led by its best finding.

    A new incident gets a new alert; an existing one takes a better-ranked finding as its lead
    while it is still open (a reviewed alert keeps what was reviewed), never loses severity,
    and is raised to ``severity_floor`` and given ``cause`` when those are set. Returns how
    many alerts were new, and the alert id of every incident.
    """
    existing = _incident_alerts(session, leads)
    lead_ranks: dict[int, tuple[Any, ...]] = {}
    lead_ids = [a.finding_id for a in existing.values() if a.finding_id is not None]
    if lead_ids:
        for f in session.execute(
            select(Finding.id, Finding.severity, Finding.score, Finding.start).where(
                Finding.id.in_(lead_ids)
            )
        ):
            lead_ranks[f.id] = _lead_rank(f.severity, f.score, f.start, f.id)
    fresh: list[dict[str, Any]] = []
    for key, lead in leads.items():
        severity = lead.severity
        if severity_floor is not None and severity_floor.rank > severity.rank:
            severity = severity_floor
        alert = existing.get(key)
        if alert is None:
            row = _alert_row(
                f"finding:{lead.msgid}:{lead.category}",
                lead.category,
                severity,
                lead.title,
                now,
                conversation_id=lead.conversation_id,
                org_unit_id=lead.org_unit_id,
                staff_id=lead.staff_id,
                finding_id=lead.finding_id,
                message_id=lead.message_id,
            )
            if cause:
                row["causes"] = [cause]
            fresh.append(row)
            continue
        changed = False
        current = lead_ranks.get(alert.finding_id) if alert.finding_id is not None else None
        if AlertState(alert.state) is AlertState.OPEN and (current is None or lead.rank > current):
            alert.finding_id, alert.title = lead.finding_id, lead.title
            changed = True
        if severity.rank > Severity(alert.severity).rank:
            alert.severity = severity
            changed = True
        if cause and cause not in (alert.causes or []):
            alert.causes = [*(alert.causes or []), cause]
            changed = True
        if changed:
            alert.updated_at = now
    raised = _insert_alerts(session, fresh)
    session.flush()
    ids = {key: a.id for key, a in _incident_alerts(session, leads).items()}
    return raised, ids


def raise_finding_alerts(
    engine: Engine, min_severity: Severity, batch_size: int = 5000
) -> AlertStats:
    """One alert per (message, category) with a finding of at least ``min_severity``."""
    levels = [s for s in Severity if s.rank >= min_severity.rank]
    stats = AlertStats()
    while True:
        with session_scope(engine) as session:
            mark = stage_mark(session, STAGE)
            rows = _finding_rows(session, [Finding.id > mark.seq], limit=batch_size)
            if not rows:
                return stats
            leads = _leads(r for r in rows if Severity(r.severity) in levels)
            raised, _ = _merge_leads(session, leads, utcnow())
            mark.seq = rows[-1].id
            stats.considered += len(rows)
            stats.raised += raised


def raise_quality_alerts(
    engine: Engine, low_score: float, streak: int = 3, batch_size: int = 5000
) -> AlertStats:
    """Alerts from scores: a fatal scorecard item (critical: on the alerts of the findings
    that caused it, else its own), a negative customer left unanswered (high), a score under
    ``low_score`` (medium), one per cause and conversation; and a staff member whose last
    ``streak`` conversations all missed the SLA (medium)."""
    stats = AlertStats()
    while True:
        with session_scope(engine) as session:
            mark = stage_mark(session, QUALITY_STAGE)
            rows = session.execute(
                select(
                    Score.id,
                    Score.score,
                    Score.scorecard_version,
                    Score.metrics,
                    Score.deductions,
                    Conversation.id.label("conversation_id"),
                    Conversation.org_unit_id,
                    Conversation.staff_id,
                )
                .join(Conversation, Conversation.id == Score.conversation_id)
                .where(Score.id > mark.seq)
                .order_by(Score.id)
                .limit(batch_size)
            ).all()
            if not rows:
                return stats
            now = utcnow()
            new: list[dict[str, Any]] = []
            for r in rows:
                attached, raised_here = _attach_fatal(session, r, now)
                stats.raised += raised_here
                for key, severity, title in _quality_causes(r, low_score, attached):
                    new.append(
                        _alert_row(
                            f"quality:{key}:{r.conversation_id}",
                            "quality",
                            severity,
                            title,
                            now,
                            conversation_id=r.conversation_id,
                            org_unit_id=r.org_unit_id,
                            staff_id=r.staff_id,
                        )
                    )
            convs = [r.conversation_id for r in rows]
            streaks, replaced = _sla_streaks(
                session, _dirty_spans(session, convs), streak, rows[-1].scorecard_version, now
            )
            new += streaks
            # a rescored conversation's alerts follow its new score (audit.quality.alert_sync)
            scope = (Alert.kind == "quality") & (
                (Alert.conversation_id.in_(convs) & ~Alert.dedupe_key.like(_STREAK + "%"))
                | Alert.id.in_(replaced)
            )
            raised = sync_alerts(session, new, scope)
            mark.seq = rows[-1].id
            stats.considered += len(rows)
            stats.raised += raised


def _alert_row(
    dedupe_key: str,
    category: str,
    severity: Severity,
    title: str,
    now: dt.datetime,
    *,
    conversation_id: int | None,
    org_unit_id: int | None,
    staff_id: int | None,
    finding_id: int | None = None,
    message_id: int | None = None,
) -> dict[str, Any]:
    """A new open alert; ``kind`` is "quality" for the quality category, else "finding"."""
    return {
        "dedupe_key": dedupe_key,
        "kind": "quality" if category == "quality" else "finding",
        "category": category,
        "severity": severity,
        "state": AlertState.OPEN,
        "title": title,
        "finding_id": finding_id,
        "message_id": message_id,
        "causes": [],
        "conversation_id": conversation_id,
        "org_unit_id": org_unit_id,
        "staff_id": staff_id,
        "created_at": now,
        "updated_at": now,
    }


def _insert_alerts(session: Any, rows: list[dict[str, Any]]) -> int:
    """Insert the alerts whose cause has none yet; returns how many were new."""
    unique = {r["dedupe_key"]: r for r in rows}
    if not unique:
        return 0
    existing = set(
        session.scalars(select(Alert.dedupe_key).where(Alert.dedupe_key.in_(list(unique))))
    )
    fresh = [r for key, r in unique.items() if key not in existing]
    insert_ignore(session, Alert, fresh)  # still safe against a concurrent run
    return len(fresh)


_STREAK = "quality:sla_streak:"
# a walk out of the new conversations: its first step, how many steps are read for all the
# staff members at once (by time), and how many time ranges one statement reads
_FIRST_STEP = dt.timedelta(hours=4)
_SHARED_STEPS = 3
_JOIN_GAP = dt.timedelta(hours=12)
_SPANS_PER_QUERY = 200
_BY_START = "ix_conversations_started_at"


def _dirty_spans(session: Session, conversation_ids: Sequence[int]) -> dict[int, list[Span]]:
    """Per staff member, the spans of these (newly scored) conversations: the staff member's
    own, and for a conversation between two staff members both of theirs (a late message
    can move it from one to the other)."""
    out: dict[int, list[Span]] = {}
    pairs: list[tuple[tuple[str, ...], Span]] = []
    for i in range(0, len(conversation_ids), 1000):
        for staff_id, kind, thread, started, ended in session.execute(
            select(
                Conversation.staff_id,
                Conversation.kind,
                Conversation.thread,
                Conversation.started_at,
                Conversation.ended_at,
            ).where(Conversation.id.in_(conversation_ids[i : i + 1000]))
        ):
            if staff_id is not None:
                out.setdefault(staff_id, []).append((started, ended))
            if ConversationKind(kind) is ConversationKind.INTERNAL:
                pairs.append((tuple(thread.split(":")[1:]), (started, ended)))
    if pairs:
        users = sorted({u for pair, _ in pairs for u in pair})
        ids = dict(
            session.execute(select(Staff.userid, Staff.id).where(Staff.userid.in_(users))).all()
        )
        for pair, span in pairs:
            for user in pair:
                if user in ids:
                    out.setdefault(ids[user], []).append(span)
    return out


@dataclass(frozen=True)
class _Place:
    """A scored conversation in its staff member's order (by start, then key)."""

    id: int
    staff_id: int
    started_at: dt.datetime
    key: str
    org_unit_id: int | None
    missed: bool  # it missed the SLA


Span = tuple[dt.datetime, dt.datetime]


def _merged(spans: Iterable[Span], gap: dt.timedelta = dt.timedelta(0)) -> list[Span]:
    """Closed time ranges, overlapping or touching ones (or at most ``gap`` apart) made one."""
    out: list[Span] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + gap:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


class _Orders:
    """What is read of some staff members' orders: per staff member, the time ranges in
    which every scored conversation is read (``cover``), and those conversations."""

    def __init__(self, session: Session, version: str, staff: Iterable[int]) -> None:
        self.session, self.version = session, version
        self.places: dict[int, dict[int, _Place]] = {s: {} for s in staff}
        self.cover: dict[int, list[Span]] = {s: [] for s in self.places}

    def _query(self) -> Any:
        missed = func.coalesce(Score.metrics["sla_breaches"].as_integer(), 0) > 0
        return (
            select(
                Conversation.id,
                Conversation.staff_id,
                Conversation.started_at,
                Conversation.key,
                Conversation.org_unit_id,
                missed.label("missed"),
            )
            .join(Score, Score.conversation_id == Conversation.id)
            .where(Score.scorecard_version == self.version)
        )

    def read(self, spans: Iterable[Span], staff: Collection[int], by_time: bool = True) -> None:
        """Read the conversations of ``staff`` starting in ``spans``: by the index on the
        start (the other conversations of those times are skipped in the database), or, for
        one sparse staff member, by the index on the staff member."""
        spans = _merged(spans)
        members = sorted(staff)
        for i in range(0, len(spans), _SPANS_PER_QUERY):
            part = spans[i : i + _SPANS_PER_QUERY]
            query = self._query().where(
                Conversation.staff_id.in_(members),
                or_(*[Conversation.started_at.between(a, b) for a, b in part]),
            )
            if by_time:  # SQLite would take the staff index, and read whole histories
                query = query.with_hint(Conversation, f"INDEXED BY {_BY_START}", "sqlite")
            for r in self.session.execute(query):
                self.places[r.staff_id][r.id] = _Place(
                    r.id, r.staff_id, r.started_at, r.key, r.org_unit_id, bool(r.missed)
                )
        for s in members:
            self.cover[s] = _merged([*self.cover[s], *spans])

    def boundary(self, staff_id: int, before: dt.datetime | None, after: dt.datetime | None) -> Any:
        """The start of the staff member's nearest conversation that kept the SLA, before
        ``before`` or after ``after``; None when there is none."""
        missed = func.coalesce(Score.metrics["sla_breaches"].as_integer(), 0) > 0
        query = (
            select(
                func.max(Conversation.started_at)
                if before is not None
                else func.min(Conversation.started_at)
            )
            .join(Score, Score.conversation_id == Conversation.id)
            .where(
                Score.scorecard_version == self.version,
                Conversation.staff_id == staff_id,
                ~missed,
                Conversation.started_at < before
                if before is not None
                else Conversation.started_at > after,
            )
        )
        return self.session.scalar(query)

    def ranges(self, staff_id: int, spans: list[Span], history: Span) -> list[_Range]:
        """The covered ranges of the staff member's order that hold ``spans`` (of their new
        conversations), each with whether it reaches a conversation that kept the SLA (or
        the start of the history) before the first span in it, and one (or the end) after
        the last."""
        kept = sorted(p.started_at for p in self.places[staff_id].values() if not p.missed)
        out: list[_Range] = []
        cover = iter(self.cover[staff_id])
        lo, hi = next(cover)
        for a, b in spans:  # both sorted; every span lies in one covered range
            while not (lo <= a and b <= hi):
                lo, hi = next(cover)
            if out and out[-1].lo == lo:
                out[-1].last = b
            else:
                out.append(_Range(lo, hi, a, b))
        for r in out:
            r.left = r.lo <= history[0] or bisect_left(kept, r.lo) < bisect_left(kept, r.first)
            r.right = r.hi >= history[1] or bisect_right(kept, r.last) < bisect_right(kept, r.hi)
        return out


@dataclass
class _Range:
    """A covered range of a staff member's order holding some of their new conversations
    (from the start of the first ``first`` to the end of the last ``last``)."""

    lo: dt.datetime
    hi: dt.datetime
    first: dt.datetime
    last: dt.datetime
    left: bool = False  # bounded before the first: by a conversation that kept the SLA
    right: bool = False  # ... and after the last

    @property
    def bounded(self) -> bool:
        return self.left and self.right


def _sla_streaks(
    session: Session, dirty: dict[int, list[Span]], streak: int, version: str, now: dt.datetime
) -> tuple[list[dict[str, Any]], list[int]]:
    """The streak alerts around the new conversations, and the existing ones they replace.

    One alert per run of at least ``streak`` consecutive conversations of a staff member
    (scored with scorecard ``version``, in order of their start) that all missed the SLA,
    keyed by the run's first conversation: every such run, whenever its conversations came
    in, so that the alerts are the same whatever order the messages arrived in.

    ``dirty``: per staff member, the spans (start to end) of the conversations scored since
    the last pass. Only runs near them can have changed: a new or rescored conversation sits
    in its span, and so does the old place of one that moved (a conversation only grows) or
    was merged (into one whose span covers it). So each staff member's order is read only
    out from those spans, in steps that double, until a conversation that kept the SLA (or
    the end of the history) bounds them on each side; the runs between those bounds are
    recomputed, and the existing alerts keyed by a conversation between them are what the
    result replaces. Far from the new conversations, nothing is read.
    """
    if streak <= 0 or not dirty:
        return [], []
    # a staff member's new conversations close together are read as one range: what lies
    # between them has to be read to bound them anyway
    dirty = {s: _merged(spans, _JOIN_GAP) for s, spans in dirty.items()}
    orders = _Orders(session, version, dirty)
    orders.read((span for spans in dirty.values() for span in spans), dirty)
    first, last = session.execute(
        select(func.min(Conversation.started_at), func.max(Conversation.started_at))
    ).one()
    history = (first, last)
    step = _FIRST_STEP
    for attempt in range(_SHARED_STEPS + 1):
        wanted = [
            (s, r)
            for s, spans in dirty.items()
            for r in orders.ranges(s, spans, history)
            if not r.bounded
        ]
        if not wanted:
            break
        if attempt < _SHARED_STEPS:  # a step out, for all of them at once
            reads = [(r.lo - step, r.lo) for _, r in wanted if not r.left]
            reads += [(r.hi, r.hi + step) for _, r in wanted if not r.right]
            orders.read(reads, {s for s, _ in wanted})
            step *= 2
            continue
        for s, r in wanted:  # a sparse staff member: straight to the bounds
            if not r.left:
                bound = orders.boundary(s, r.lo, None) or first
                orders.read([(bound, r.lo)], {s}, by_time=False)
            if not r.right:
                bound = orders.boundary(s, None, r.hi) or last
                orders.read([(r.hi, bound)], {s}, by_time=False)
    out: list[dict[str, Any]] = []
    scoped: dict[int, set[int]] = {}
    for s, spans in dirty.items():
        places = sorted(orders.places[s].values(), key=lambda p: (p.started_at, p.key))
        starts = [p.started_at for p in places]
        for r in orders.ranges(s, spans, history):
            inside = places[bisect_left(starts, r.lo) : bisect_right(starts, r.hi)]
            kept = [i for i, p in enumerate(inside) if not p.missed]
            # the runs that may go on beyond the range are not this pass's to judge
            start = 0 if r.lo <= first else (kept[0] if kept else len(inside))
            end = len(inside) if r.hi >= last else (kept[-1] + 1 if kept else 0)
            window = inside[start:end]
            scoped.setdefault(s, set()).update(p.id for p in window)
            for run in _runs_of_true([p.missed for p in window]):
                if len(run) < streak:
                    continue
                head, tail = window[run[0]], window[run[-1]]
                out.append(
                    _alert_row(
                        f"{_STREAK}{s}:{head.id}",
                        "quality",
                        Severity.MEDIUM,
                        f"服务质量：连续 {len(run)} 个会话回复超时",
                        now,
                        conversation_id=tail.id,
                        org_unit_id=head.org_unit_id,
                        staff_id=s,
                    )
                )
    return out, _streak_alerts(session, scoped)


def _streak_alerts(session: Session, scoped: dict[int, set[int]]) -> list[int]:
    """The ids of the streak alerts of these staff members keyed by these conversations."""
    if not scoped:
        return []
    ids: list[int] = []
    staff = sorted(scoped)
    for i in range(0, len(staff), _SPANS_PER_QUERY):
        part = staff[i : i + _SPANS_PER_QUERY]
        for alert_id, key in session.execute(
            select(Alert.id, Alert.dedupe_key).where(
                Alert.category == "quality",  # indexed: the quality alerts only
                Alert.kind == "quality",
                or_(*[Alert.dedupe_key.like(f"{_STREAK}{s}:%") for s in part]),
            )
        ):
            s, _, rest = key[len(_STREAK) :].partition(":")
            head = rest.partition(":")[0]
            if head.isdigit() and int(head) in scoped.get(int(s), set()):
                ids.append(alert_id)
    return ids


def _runs_of_true(flags: list[bool]) -> list[list[int]]:
    """The index runs of consecutive true flags."""
    runs: list[list[int]] = []
    for i, flag in enumerate(flags):
        if not flag:
            continue
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _attach_fatal(session: Session, row: Any, now: dt.datetime) -> tuple[bool, int]:
    """Record a fatal score on the alerts of the findings that caused it.

    ``(attached, raised)``: attached when every fatal item of the score named its findings
    (scorecards record them in ``deductions[].findings``) and so is carried by finding
    alerts: the score raises no
    "fatal" alert of its own. A fatal item without findings (a metric, or a score stored
    before findings were recorded) leaves it to :func:`_quality_causes`; ``raised`` counts
    the finding alerts that had to be made (a finding under ``alerts.min_severity``).
    """
    fatal = [d for d in row.deductions or [] if d.get("fatal")]
    if not fatal or not (row.metrics or {}).get("fatal"):
        return False, 0
    if not all(d.get("findings") for d in fatal):
        return False, 0
    found = [
        _finding_rows(session, [Finding.id.in_([int(i) for i in d["findings"]])]) for d in fatal
    ]
    if not all(found):
        return False, 0  # the findings are gone (a rescan): the score speaks for itself
    raised = 0
    for d, rows in zip(fatal, found, strict=True):
        new, _ = _merge_leads(
            session,
            _leads(rows),
            now,
            severity_floor=Severity.CRITICAL,
            cause=f"scorecard:fatal:{d.get('item', '')}",
        )
        raised += new
    return True, raised


def _quality_causes(
    row: Any, low_score: float, fatal_attached: bool = False
) -> list[tuple[str, Severity, str]]:
    causes: list[tuple[str, Severity, str]] = []
    metrics = row.metrics or {}
    if metrics.get("fatal") and not fatal_attached:
        labels = "、".join(
            d.get("label", d.get("item", "")) for d in row.deductions if d.get("fatal")
        )
        causes.append(("fatal", Severity.CRITICAL, f"服务质量：致命项（{labels}）"))
    if metrics.get("negative_unanswered"):
        causes.append(("negative", Severity.HIGH, "服务质量：客户负面情绪未回复"))
    if row.score < low_score and not metrics.get("fatal"):
        causes.append(("low_score", Severity.MEDIUM, f"服务质量：会话得分 {row.score:.0f}"))
    return causes
