"""The word lists page: hits per rule and the reviewers' verdicts on its alerts."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, func, select

from audit.reports.common import ReportFilter, in_scope, scoped
from audit.store.access import AccessDenied, Principal
from audit.store.models import Alert, AlertState, Conversation, Finding, Message, Review


def rule_table(engine: Engine, principal: Principal, f: ReportFilter) -> pd.DataFrame:
    """Per rule: hits in the period, and the reviewers' verdicts on its alerts (all time).

    A verdict is the latest review of each alert; ``false_positive_rate`` is false positives
    over reviewed alerts (confirmed, escalated or resolved count as true). Reviews are keyed
    by the rule recorded at review time, so they survive rescans.
    """
    if not principal.sees_wordlists:
        raise AccessDenied("this role does not see the word lists")
    f = scoped(engine, principal, f)
    lo, hi = f.period.utc_bounds()
    unit = Conversation.org_unit_id
    with engine.connect() as conn:
        hits = pd.DataFrame(
            conn.execute(
                select(
                    Finding.rule,
                    Finding.category,
                    func.count(Finding.id),
                    func.count(func.distinct(Finding.matched)),
                )
                .join(Message, Message.id == Finding.message_id)
                .outerjoin(Conversation, Conversation.id == Message.conversation_id)
                .where(Message.msgtime >= lo, Message.msgtime < hi, in_scope(unit, f.org_unit_ids))
                .group_by(Finding.rule, Finding.category)
            ).all(),
            columns=["rule", "category", "hits", "variants"],
        )
        latest = select(func.max(Review.id).label("id")).group_by(Review.alert_id).subquery()
        alert_unit = func.coalesce(Alert.org_unit_id, Conversation.org_unit_id)
        verdicts = pd.DataFrame(
            conn.execute(
                select(Review.finding_rule, Review.to_state, func.count(Review.id))
                .join(latest, latest.c.id == Review.id)
                .join(Alert, Alert.id == Review.alert_id)
                .outerjoin(Conversation, Conversation.id == Alert.conversation_id)
                .where(Review.finding_rule.is_not(None), in_scope(alert_unit, f.org_unit_ids))
                .group_by(Review.finding_rule, Review.to_state)
            ).all(),
            columns=["rule", "state", "n"],
        )
    if not verdicts.empty:
        verdicts["state"] = verdicts["state"].map(lambda v: AlertState(v).value)
        pivot = verdicts.pivot_table(index="rule", columns="state", values="n", aggfunc="sum")
    else:
        pivot = pd.DataFrame()
    fp = pivot.get("false_positive", pd.Series(dtype=float))
    true = sum(
        (
            pivot.get(c, pd.Series(dtype=float)).fillna(0)
            for c in ("confirmed", "escalated", "resolved")
        ),
        pd.Series(dtype=float),
    )
    judged = pd.DataFrame({"false_positives": fp, "confirmed": true}).fillna(0)
    out = hits.set_index("rule").join(judged, how="outer")
    out["category"] = out["category"].fillna(out.index.to_series().str.split(".").str[0])
    for column in ("hits", "variants", "false_positives", "confirmed"):
        out[column] = out[column].fillna(0).astype("int64")
    reviewed = out["false_positives"] + out["confirmed"]
    out["false_positive_rate"] = out["false_positives"] / reviewed.where(reviewed > 0)
    out = out.reset_index().rename(columns={"index": "rule"})
    return out.sort_values(["false_positives", "hits"], ascending=False).reset_index(drop=True)[
        [
            "rule",
            "category",
            "hits",
            "variants",
            "confirmed",
            "false_positives",
            "false_positive_rate",
        ]
    ]


def rule_examples(
    engine: Engine, principal: Principal, f: ReportFilter, rule: str, limit: int = 20
) -> pd.DataFrame:
    """The matched texts of one rule, most frequent first (quotes message text)."""
    if not (principal.sees_wordlists and principal.reads_messages):
        raise AccessDenied("this role does not read matched text")
    f = scoped(engine, principal, f)
    lo, hi = f.period.utc_bounds()
    with engine.connect() as conn:
        rows = conn.execute(
            select(Finding.matched, func.count(Finding.id).label("hits"))
            .join(Message, Message.id == Finding.message_id)
            .outerjoin(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Finding.rule == rule,
                Message.msgtime >= lo,
                Message.msgtime < hi,
                in_scope(Conversation.org_unit_id, f.org_unit_ids),
            )
            .group_by(Finding.matched)
            .order_by(func.count(Finding.id).desc())
            .limit(limit)
        ).all()
    return pd.DataFrame(rows, columns=["matched", "hits"])
