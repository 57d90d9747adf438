"""The overview page: totals of the latest day, 7 and 30 days, the picked range by store and
by day, and the stores that moved most, all from one pass over the data (:func:`daily_counts`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Connection, Engine, func, select

from audit.days import as_date
from audit.reports.common import (
    OrgNode,
    Period,
    ReportFilter,
    aggregated,
    in_scope,
    local_day,
    org_tree,
    scoped,
    stores_in_scope,
)
from audit.reports.figures import (
    OverviewTotals,
    alert_tally,
    conversations_in,
    findings_by_category,
    on_store_days,
    store_rows,
    summarize,
)
from audit.store import daily as aggregates
from audit.store.access import Principal, expand
from audit.store.db import session_scope
from audit.store.models import Conversation, Finding, Message, Score, StoreDay, StoreDayFinding


@dataclass(frozen=True)
class Window:
    label: str
    period: Period
    totals: OverviewTotals
    findings_by_category: dict[str, int]
    score_avg: float | None
    scored: int
    sla_rate: float | None


# --------------------------------------------------------------------------- overview, in one pass

Day = tuple[int | None, dt.date]


@dataclass(frozen=True)
class DailyCounts:
    """The store table's measures per (store, local day): one pass serves every window.

    The overview shows several periods (the latest day, 7 and 30 days, the picked range, two
    weeks for the movers); counting each in SQL would scan the messages six times.
    """

    nodes: dict[int, OrgNode]
    stores: set[int]
    messages: dict[Day, int]
    conversations: dict[Day, int]
    findings: dict[tuple[int | None, dt.date, str], int]
    alerts: dict[Day, tuple[int, int]]
    scores: dict[dt.date, tuple[float, int, float, float]]  # sum, n, within SLA, responses

    def store_table(self, period: Period, units: set[int] | None = None) -> pd.DataFrame:
        """:func:`store_table` for ``period``, restricted to ``units`` (ids, already expanded)."""

        def keep(unit: int | None, day: dt.date) -> bool:
            inside = units is None or (unit is not None and unit in units)
            return inside and period.start <= day <= period.end

        messages: dict[int | None, int] = {}
        for (u, d), n in self.messages.items():
            if keep(u, d):
                messages[u] = messages.get(u, 0) + n
        conversations: dict[int | None, int] = {}
        for (u, d), n in self.conversations.items():
            if keep(u, d):
                conversations[u] = conversations.get(u, 0) + n
        findings: dict[tuple[int | None, str], int] = {}
        for (u, d, c), n in self.findings.items():
            if keep(u, d):
                findings[(u, c)] = findings.get((u, c), 0) + n
        alerts: dict[int | None, tuple[int, int]] = {}
        for (u, d), (o, t) in self.alerts.items():
            if keep(u, d):
                before = alerts.get(u, (0, 0))
                alerts[u] = (before[0] + o, before[1] + t)
        stores = self.stores if units is None else self.stores & units
        return store_rows(self.nodes, stores, messages, conversations, findings, alerts)

    def per_day(self, period: Period, units: set[int] | None = None) -> pd.DataFrame:
        counts: dict[dt.date, int] = {}
        for (u, d), n in self.messages.items():
            if (
                units is None or (u is not None and u in units)
            ) and period.start <= d <= period.end:
                counts[d] = counts.get(d, 0) + n
        days = period.days()
        return pd.DataFrame({"day": days, "messages": [counts.get(d, 0) for d in days]})

    def score(self, period: Period) -> tuple[float | None, int, float | None]:
        total = n = within = responses = 0.0
        for d, (s_, n_, w_, r_) in self.scores.items():
            if period.start <= d <= period.end:
                total, n, within, responses = total + s_, n + n_, within + w_, responses + r_
        return (total / n if n else None, int(n), within / responses if responses else None)


_DailyParts = tuple[
    dict[Day, int],
    dict[Day, int],
    dict[tuple[int | None, dt.date, str], int],
    dict[dt.date, tuple[float, int, float, float]],
]


def daily_counts(engine: Engine, f: ReportFilter) -> DailyCounts:
    """Per (store, day) counts over ``f`` (already scoped: see :func:`scoped`)."""
    nodes = {n.id: n for n in org_tree(engine)}
    with engine.connect() as conn:
        if aggregated(conn, f.period.tz):
            messages, conversations, findings, scores = _daily_from_tables(conn, f)
        else:
            messages, conversations, findings, scores = _daily_live(conn, f)
        alerts = _daily_alerts(conn, f)
        stores = stores_in_scope(nodes.values(), conn, f)
    return DailyCounts(nodes, stores, messages, conversations, findings, alerts, scores)


def _daily_from_tables(conn: Connection, f: ReportFilter) -> _DailyParts:
    """:func:`_daily_live` from ``store_day`` and ``store_day_findings``."""
    messages: dict[Day, int] = {}
    conversations: dict[Day, int] = {}
    for u, d, m, c in conn.execute(
        select(StoreDay.org_unit_id, StoreDay.day, StoreDay.messages, StoreDay.conversations).where(
            *on_store_days(StoreDay, f)
        )
    ):
        if m:
            messages[(u, as_date(d))] = int(m)
        if c:
            conversations[(u, as_date(d))] = int(c)
    findings = {
        (u, as_date(d), c): int(n)
        for u, d, c, n in conn.execute(
            select(
                StoreDayFinding.org_unit_id,
                StoreDayFinding.day,
                StoreDayFinding.category,
                StoreDayFinding.n,
            ).where(*on_store_days(StoreDayFinding, f), StoreDayFinding.n > 0)
        )
    }
    scores: dict[dt.date, tuple[float, int, float, float]] = {}
    for d, total, n, w, r in conn.execute(
        select(
            StoreDay.day,
            func.sum(StoreDay.score_sum),
            func.sum(StoreDay.scored),
            func.sum(StoreDay.within_sla),
            func.sum(StoreDay.responses),
        )
        .where(*on_store_days(StoreDay, f))
        .group_by(StoreDay.day)
    ):
        if n:
            scores[as_date(d)] = (float(total or 0), int(n), float(w or 0), float(r or 0))
    return messages, conversations, findings, scores


def _daily_live(conn: Connection, f: ReportFilter) -> _DailyParts:
    lo, hi = f.period.utc_bounds()
    unit = Conversation.org_unit_id
    day = local_day(conn, Message.msgtime, f.period)
    messages = {
        (u, as_date(d)): int(n)
        for u, d, n in conn.execute(
            select(unit, day, func.count(Message.id))
            .select_from(Message)
            .outerjoin(Conversation, Message.conversation_id == Conversation.id)
            .where(Message.msgtime >= lo, Message.msgtime < hi, in_scope(unit, f.org_unit_ids))
            .group_by(unit, day)
        )
    }
    findings = {
        (u, as_date(d), c): int(n)
        for u, d, c, n in conn.execute(
            select(unit, day, Finding.category, func.count(Finding.id))
            .select_from(Finding)
            .join(Message, Finding.message_id == Message.id)
            .outerjoin(Conversation, Message.conversation_id == Conversation.id)
            .where(Message.msgtime >= lo, Message.msgtime < hi, in_scope(unit, f.org_unit_ids))
            .group_by(unit, day, Finding.category)
        )
    }
    started = local_day(conn, Conversation.started_at, f.period)
    conversations = {
        (u, as_date(d)): int(n)
        for u, d, n in conn.execute(
            select(unit, started, func.count(Conversation.id))
            .where(*conversations_in(f))
            .group_by(unit, started)
        )
    }
    scores: dict[dt.date, tuple[float, int, float, float]] = {}
    version = aggregates.latest_scorecard(conn)
    if version is not None:
        within = Score.metrics["within_sla"].as_float()
        responses = Score.metrics["responses"].as_float()
        for d, total, n, w, r in conn.execute(
            select(
                started,
                func.sum(Score.score),
                func.count(Score.id),
                func.sum(within),
                func.sum(responses),
            )
            .select_from(Conversation)
            .join(Score, Score.conversation_id == Conversation.id)
            .where(*conversations_in(f), Score.scorecard_version == version)
            .group_by(started)
        ):
            scores[as_date(d)] = (float(total or 0), int(n), float(w or 0), float(r or 0))
    return messages, conversations, findings, scores


def _daily_alerts(conn: Connection, f: ReportFilter) -> dict[Day, tuple[int, int]]:
    """Always live: reviews change alert states between pipeline runs."""
    return {
        (u, as_date(d)): (int(o or 0), int(t)) for u, d, o, t in alert_tally(conn, f, by_day=True)
    }


@dataclass(frozen=True)
class Overview:
    windows: list[Window]
    table: pd.DataFrame
    per_day: pd.DataFrame
    movers: pd.DataFrame


def overview(
    engine: Engine,
    principal: Principal,
    period: Period,
    units: tuple[int, ...] | None,
    last_day: dt.date,
) -> Overview:
    """Everything the overview page shows, from one :func:`daily_counts` pass."""
    span = period.shifted(
        min(period.start, last_day - dt.timedelta(days=29)), max(period.end, last_day)
    )
    daily = daily_counts(engine, scoped(engine, principal, ReportFilter(span)))
    picked: set[int] | None = None
    if units is not None:
        roots = scoped(engine, principal, ReportFilter(period, units)).org_unit_ids
        with session_scope(engine) as s:
            picked = set(expand(s, roots or ()) or ())
    wins = []
    for label, length in (("yesterday", 1), ("7d", 7), ("30d", 30)):
        p = period.shifted(last_day - dt.timedelta(days=length - 1), last_day)
        table = daily.store_table(p)
        by_cat = findings_by_category(table)
        avg, n, sla = daily.score(p)
        wins.append(
            Window(
                label=label,
                period=p,
                totals=summarize(table),
                findings_by_category=dict(zip(by_cat["category"], by_cat["findings"], strict=True)),
                score_avg=avg,
                scored=n,
                sla_rate=sla,
            )
        )
    now = period.shifted(last_day - dt.timedelta(days=6), last_day)
    before = period.shifted(now.start - dt.timedelta(days=7), now.start - dt.timedelta(days=1))
    return Overview(
        windows=wins,
        table=daily.store_table(period, picked),
        per_day=daily.per_day(period, picked),
        movers=_movers(daily.store_table(now), daily.store_table(before)),
    )


def _movers(cur: pd.DataFrame, prev: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    cols = ["org_unit_id", "store", "city", "messages", "findings", "findings_per_1k"]
    merged = cur[cols].merge(
        prev[["org_unit_id", "messages", "findings_per_1k"]],
        on="org_unit_id",
        suffixes=("", "_before"),
    )
    merged = merged[merged["org_unit_id"].notna()]
    merged = merged[(merged["messages"] >= 50) & (merged["messages_before"] >= 50)]
    merged["change"] = merged["findings_per_1k"] - merged["findings_per_1k_before"]
    return merged.sort_values("change", ascending=False).head(top).reset_index(drop=True)
