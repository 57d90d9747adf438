"""The analysis results as rows without ids: what two runs over the same messages agree on.

Ids depend on the order rows were written in, so every reference is replaced by what it
stands for: a message by its msgid, a conversation by its key (thread and first message), a
staff member, customer or store by its WeCom id or code. Two stores that analysed the same
archive, whatever order its messages arrived in and wherever the runs were interrupted, give
equal :class:`ResultRows`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Engine, select

from audit.store.db import session_scope
from audit.store.models import (
    Alert,
    Conversation,
    Customer,
    Finding,
    Message,
    OrgUnit,
    Score,
    Staff,
)

Row = tuple[Any, ...]


def _name(names: dict[int, str], ref: int | None) -> str | None:
    return names.get(ref) if ref is not None else None


@dataclass(frozen=True)
class ResultRows:
    """Each table's rows, sorted; conversations carry the msgids of their messages."""

    conversations: tuple[Row, ...]
    messages: tuple[Row, ...]
    findings: tuple[Row, ...]
    scores: tuple[Row, ...]
    alerts: tuple[Row, ...]

    def counts(self) -> dict[str, int]:
        return {f.name: len(getattr(self, f.name)) for f in fields(self)}

    def differences(self, other: ResultRows) -> dict[str, int]:
        """Per table, how many rows one side has that the other has not (0: equal)."""
        out = {}
        for f in fields(self):
            mine, theirs = set(getattr(self, f.name)), set(getattr(other, f.name))
            out[f.name] = len(mine ^ theirs)
        return out


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def result_rows(engine: Engine) -> ResultRows:
    with session_scope(engine) as session:
        staff = {i: u for i, u in session.execute(select(Staff.id, Staff.userid))}
        customers = {
            i: u for i, u in session.execute(select(Customer.id, Customer.external_userid))
        }
        units = {i: c for i, c in session.execute(select(OrgUnit.id, OrgUnit.code))}
        convs = {c.id: c for c in session.scalars(select(Conversation))}
        msgids: dict[int, str] = {}
        members: dict[int, list[str]] = {}
        messages = []
        for m in session.execute(
            select(
                Message.id,
                Message.msgid,
                Message.conversation_id,
                Message.staff_id,
                Message.customer_id,
                Message.consent_withheld,
                Message.scores,
            )
        ):
            msgids[m.id] = m.msgid
            conv = convs.get(m.conversation_id) if m.conversation_id else None
            if conv is not None:
                members.setdefault(conv.id, []).append(m.msgid)
            messages.append(
                (
                    m.msgid,
                    conv.key if conv else None,
                    _name(staff, m.staff_id),
                    _name(customers, m.customer_id),
                    bool(m.consent_withheld),
                    _json(m.scores),
                )
            )

        def key(conv_id: int | None) -> str | None:
            return convs[conv_id].key if conv_id in convs else None

        conversations = [
            (
                c.key,
                c.thread,
                str(c.kind),
                _name(staff, c.staff_id),
                _name(customers, c.customer_id),
                c.roomid,
                _name(units, c.org_unit_id),
                c.started_at.isoformat(),
                c.ended_at.isoformat(),
                c.message_count,
                c.staff_messages,
                c.customer_messages,
                tuple(sorted(members.get(c.id, []))),
            )
            for c in convs.values()
        ]
        findings = {}
        finding_rows = []
        for f in session.scalars(select(Finding)):
            ref = (msgids[f.message_id], f.rule, f.start, f.end)
            findings[f.id] = ref
            finding_rows.append(
                (*ref, key(f.conversation_id), f.category, str(f.severity), f.score,
                 f.matched, f.explanation)
            )  # fmt: skip
        scores = [
            (key(s.conversation_id), s.scorecard_version, s.score,
             _json(_named_deductions(s.deductions, findings)), _json(s.metrics))
            for s in session.scalars(select(Score))
        ]  # fmt: skip
        by_id = {i: c.key for i, c in convs.items()}
        alerts = [
            (
                _named_key(a.dedupe_key, by_id),
                a.kind,
                a.category,
                str(a.severity),
                str(a.state),
                a.title,
                findings.get(a.finding_id) if a.finding_id else None,
                key(a.conversation_id),
                _name(units, a.org_unit_id),
                _name(staff, a.staff_id),
            )
            for a in session.scalars(select(Alert))
        ]
    return ResultRows(
        *(tuple(sorted(rows, key=repr)) for rows in
          (conversations, messages, finding_rows, scores, alerts))
    )  # fmt: skip


def _named_deductions(deductions: Any, findings: dict[int, Any]) -> Any:
    """Deductions with the ids of the findings that caused them spelled as those findings."""
    return [
        {**d, "findings": sorted(repr(findings.get(int(i))) for i in d["findings"])}
        if isinstance(d, dict) and d.get("findings")
        else d
        for d in deductions or []
    ]


def _named_key(dedupe_key: str, keys: dict[int, str]) -> str:
    """A quality alert's dedupe key with its conversation id spelled as the conversation key."""
    return rekeyed(dedupe_key, keys)


def rekeyed(dedupe_key: str, moves: Mapping[int, object]) -> str:
    """An alert's dedupe key with a merged conversation's id replaced by the survivor's.

    Quality alerts end in the id of their conversation ("quality:low_score:<id>",
    "quality:sla_streak:<staff>:<first id>"); finding alerts name no conversation."""
    head, _, last = dedupe_key.rpartition(":")
    if dedupe_key.startswith("quality:") and last.isdigit() and int(last) in moves:
        return f"{head}:{moves[int(last)]}"
    return dedupe_key
