"""one alert per incident: merge duplicate alerts, unique (message_id, category)

Finding alerts were keyed by rule and offset, so one message could carry several alerts of one
category, and a fatal scorecard item raised a "quality:fatal" alert next to the alert of the
finding that caused it. This revision:

1. adds ``alerts.message_id`` (the incident's message) and ``alerts.causes``;
2. merges the finding alerts of one (message, category) into the one led by the most severe
   finding (then the highest score, then the first), and merges each "quality:fatal" alert
   into the finding alerts of its conversation whose rule (and sender role) its fatal
   deduction names. The survivor keeps the highest severity, takes the state of the newest
   review in the group, and lists what it absorbed in ``causes``; reviews are re-pointed to
   it. The audit log cannot be rewritten (it is append-only), so an ``alert.merge`` row is
   added per merged alert, naming the alert it went into;
3. stores every finding alert's title masked and keys it ``finding:<msgid>:<category>``;
4. adds the unique index that keeps it so.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}
# "1 finding: privacy.resident_id (staff); fatal: ..." -> ("privacy.resident_id", "staff")
_RULE_IN_REASON = re.compile(r"([a-z0-9_*]+\.[a-z0-9_*]+) \((\w+)\)")

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_meta = sa.MetaData()
_alerts = sa.Table(
    "alerts",
    _meta,
    sa.Column("id", sa.BigInteger),
    sa.Column("dedupe_key", sa.String),
    sa.Column("kind", sa.String),
    sa.Column("category", sa.String),
    sa.Column("severity", sa.String),
    sa.Column("state", sa.String),
    sa.Column("title", sa.String),
    sa.Column("finding_id", sa.BigInteger),
    sa.Column("message_id", sa.BigInteger),
    sa.Column("causes", _JSON),
    sa.Column("conversation_id", sa.BigInteger),
    sa.Column("assignee_id", sa.Integer),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)
_findings = sa.Table(
    "findings",
    _meta,
    sa.Column("id", sa.BigInteger),
    sa.Column("message_id", sa.BigInteger),
    sa.Column("conversation_id", sa.BigInteger),
    sa.Column("category", sa.String),
    sa.Column("rule", sa.String),
    sa.Column("severity", sa.String),
    sa.Column("score", sa.Float),
    sa.Column("start", sa.Integer),
    sa.Column("end", sa.Integer),
)
_messages = sa.Table(
    "messages",
    _meta,
    sa.Column("id", sa.BigInteger),
    sa.Column("msgid", sa.String),
    sa.Column("text", sa.Text),
    sa.Column("sender_kind", sa.String),
)
_reviews = sa.Table(
    "reviews",
    _meta,
    sa.Column("id", sa.BigInteger),
    sa.Column("alert_id", sa.BigInteger),
    sa.Column("to_state", sa.String),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)
_scores = sa.Table(
    "scores",
    _meta,
    sa.Column("id", sa.BigInteger),
    sa.Column("conversation_id", sa.BigInteger),
    sa.Column("deductions", _JSON),
    sa.Column("metrics", _JSON),
)
_audit_log = sa.Table(
    "audit_log",
    _meta,
    sa.Column("id", sa.BigInteger),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("actor", sa.String),
    sa.Column("action", sa.String),
    sa.Column("target_type", sa.String),
    sa.Column("target_id", sa.String),
    sa.Column("detail", _JSON),
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # SQLite adds a column with a REFERENCES clause in place; a batch copy of ``alerts``
        # would have to drop the table the reviews point at
        op.execute(
            "ALTER TABLE alerts ADD COLUMN message_id INTEGER "
            "CONSTRAINT fk_alerts_message_id_messages REFERENCES messages (id)"
        )
    else:
        op.add_column("alerts", sa.Column("message_id", sa.BigInteger(), nullable=True))
        op.create_foreign_key(
            op.f("fk_alerts_message_id_messages"), "alerts", "messages", ["message_id"], ["id"]
        )
    op.add_column(
        "alerts",
        sa.Column("causes", _JSON, nullable=False, server_default=sa.text("'[]'")),
    )
    merge_duplicates(bind)
    op.create_index(
        "uq_alerts_message_id_category", "alerts", ["message_id", "category"], unique=True
    )


def downgrade() -> None:
    # merged alerts stay merged: their reviews now belong to the survivors
    op.drop_index("uq_alerts_message_id_category", table_name="alerts")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE alerts DROP COLUMN causes")  # in place, as it was added
    else:
        op.drop_column("alerts", "causes")
    if op.get_bind().dialect.name != "sqlite":
        # SQLite cannot drop a column with a foreign key in place, nor copy ``alerts`` while
        # reviews point at it: there the (nullable, unused) column stays
        op.drop_constraint(op.f("fk_alerts_message_id_messages"), "alerts", type_="foreignkey")
        op.drop_column("alerts", "message_id")


def merge_duplicates(bind: sa.Connection) -> dict[str, int]:
    """Steps 2 and 3 of the module docstring; returns what was merged, for the log."""
    from audit.alerts import finding_title  # the same masked title the stage stores

    now = dt.datetime.now(dt.UTC)
    alerts = {r.id: r._asdict() for r in bind.execute(sa.select(_alerts)).all()}
    lead_ids = {a["finding_id"] for a in alerts.values() if a["finding_id"] is not None}
    findings = _by_id(bind, _findings, lead_ids)
    msgids: dict[str, int | None] = {}
    for a in alerts.values():
        parts = a["dedupe_key"].split(":")
        if a["kind"] == "finding" and a["finding_id"] not in findings and len(parts) > 1:
            msgids[parts[1]] = None  # the finding is gone: the key still names the message
    if msgids:
        for m_id, msgid in bind.execute(
            sa.select(_messages.c.id, _messages.c.msgid).where(_messages.c.msgid.in_(list(msgids)))
        ):
            msgids[msgid] = m_id
    incidents: dict[tuple[int, str], list[int]] = defaultdict(list)
    for a in alerts.values():
        if a["kind"] != "finding":
            continue
        f = findings.get(a["finding_id"])
        message_id = f["message_id"] if f else msgids.get(a["dedupe_key"].split(":")[1])
        a["message_id"] = message_id
        if message_id is not None:
            incidents[(message_id, a["category"])].append(a["id"])
    messages = _by_id(bind, _messages, {m for m, _ in incidents})
    reviews: dict[int, list[Any]] = defaultdict(list)
    for r in bind.execute(sa.select(_reviews).order_by(_reviews.c.created_at, _reviews.c.id)):
        reviews[r.alert_id].append(r)

    def rank(alert_id: int) -> tuple[Any, ...]:
        a = alerts[alert_id]
        f = findings.get(a["finding_id"]) or {}
        return (
            _RANK.get(a["severity"], 0),
            f.get("score") or 0.0,
            -(f.get("start") or 0),
            -a["id"],
        )

    merged: dict[int, int] = {}  # merged alert -> survivor
    for ids in incidents.values():
        ids.sort(key=rank, reverse=True)
        for other in ids[1:]:
            merged[other] = ids[0]

    # fatal quality alerts -> the finding alerts of the rules their deduction names
    fatal = [a for a in alerts.values() if a["dedupe_key"].startswith("quality:fatal:")]
    causes: dict[int, list[str]] = defaultdict(list)
    if fatal:
        convs = {a["conversation_id"] for a in fatal}
        latest: dict[int, Any] = {}
        for s in bind.execute(
            sa.select(_scores).where(_scores.c.conversation_id.in_(convs)).order_by(_scores.c.id)
        ):
            if (s.metrics or {}).get("fatal"):
                latest[s.conversation_id] = s
        for a in fatal:
            score = latest.get(a["conversation_id"])
            if score is None:
                continue
            items = [d for d in score.deductions or [] if d.get("fatal")]
            named = {m for d in items for m in _RULE_IN_REASON.findall(d.get("reason", ""))}
            targets = _fatal_targets(bind, a["conversation_id"], named, alerts, merged)
            if not targets:
                continue  # a fatal item without findings: its quality alert is the incident
            merged[a["id"]] = targets[0]
            for t in targets:
                causes[t] += [f"scorecard:fatal:{d.get('item', '')}" for d in items]
                alerts[t]["severity"] = "critical"

    survivors = set(merged.values())
    for old, new in merged.items():
        causes[new].append(f"merged:{alerts[old]['dedupe_key']}")
        alerts[new]["severity"] = max(
            (alerts[new]["severity"], alerts[old]["severity"]), key=lambda s: _RANK.get(s, 0)
        )
        if alerts[new]["assignee_id"] is None:
            alerts[new]["assignee_id"] = alerts[old]["assignee_id"]
    # re-point reviews first: the merged alerts are deleted after
    for old, new in merged.items():
        bind.execute(_reviews.update().where(_reviews.c.alert_id == old).values(alert_id=new))
        bind.execute(
            _audit_log.insert().values(
                at=now,
                actor="migration:0005",
                action="alert.merge",
                target_type="alert",
                target_id=str(old),
                detail={"into": new, "dedupe_key": alerts[old]["dedupe_key"]},
            )
        )
    group_reviews: dict[int, list[Any]] = defaultdict(list)
    for alert_id, rows in reviews.items():
        group_reviews[merged.get(alert_id, alert_id)] += rows
    if merged:
        bind.execute(_alerts.delete().where(_alerts.c.id.in_(list(merged))))

    for a in alerts.values():
        if a["id"] in merged:
            continue
        values: dict[str, Any] = {}
        if a["id"] in survivors:
            newest = max(
                group_reviews.get(a["id"], []), key=lambda r: (r.created_at, r.id), default=None
            )
            values |= {
                "severity": a["severity"],
                "assignee_id": a["assignee_id"],
                "causes": list(dict.fromkeys([*(a["causes"] or []), *causes[a["id"]]])),
                "updated_at": now,
                **({"state": newest.to_state} if newest is not None else {}),
            }
        elif causes.get(a["id"]):
            values |= {"severity": a["severity"], "causes": causes[a["id"]], "updated_at": now}
        if a["kind"] == "finding" and a["message_id"] is not None:
            message = messages.get(a["message_id"], {})
            f = findings.get(a["finding_id"])
            values["message_id"] = a["message_id"]
            values["dedupe_key"] = f"finding:{message.get('msgid', '')}:{a['category']}"
            if f is not None:
                values["title"] = finding_title(
                    a["category"], message.get("text") or "", f["start"], f["end"]
                )
        if values:
            bind.execute(_alerts.update().where(_alerts.c.id == a["id"]).values(**values))
    return {"merged": len(merged), "survivors": len(survivors)}


def _by_id(bind: sa.Connection, table: sa.Table, ids: set[Any]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    wanted = sorted(i for i in ids if i is not None)
    for lo in range(0, len(wanted), 500):
        for row in bind.execute(sa.select(table).where(table.c.id.in_(wanted[lo : lo + 500]))):
            out[row.id] = row._asdict()
    return out


def _fatal_targets(
    bind: sa.Connection,
    conversation_id: int,
    named: set[tuple[str, str]],
    alerts: dict[int, dict[str, Any]],
    merged: dict[int, int],
) -> list[int]:
    """The surviving finding alerts of the conversation's findings with a named rule and role,
    most severe first."""
    if not named:
        return []
    rows = bind.execute(
        sa.select(
            _findings.c.message_id, _findings.c.category, _findings.c.rule, _messages.c.sender_kind
        )
        .join(_messages, _messages.c.id == _findings.c.message_id)
        .where(_findings.c.conversation_id == conversation_id)
    ).all()
    wanted = {(r.message_id, r.category) for r in rows if (r.rule, str(r.sender_kind)) in named}
    targets = [
        a["id"]
        for a in alerts.values()
        if a["kind"] == "finding"
        and a["id"] not in merged
        and (a["message_id"], a["category"]) in wanted
    ]
    return sorted(targets, key=lambda i: (-_RANK.get(alerts[i]["severity"], 0), i))
