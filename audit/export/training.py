"""Supervisors' labels as training data, in the JSON lines ``audit train --with-reviews`` reads.

One line per labelled message::

    {"text": "...", "role": "staff"|"customer", "label": <label>, "value": 0|1}

``label`` is ``customer_negative`` or ``staff_discourtesy`` for an alert raised by a classifier
(its category is the classifier's name), otherwise the rule of the finding behind the alert
(``abuse.insult``, ``privacy.phone``, ...). ``value`` is 1 when the latest decisive review
confirmed or escalated the alert, 0 when it was a false positive; alerts never judged, or only
resolved, give no line. The rule recorded on the review wins over the finding's, because a
rescan may have renamed or removed the finding since.

Text is masked by default like every export (numbers become ``[手机号1]`` and so on, which the
word lists and classifiers never learn from); messages of customers who refused archiving
never appear.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy import Connection, func, or_, select

from audit.export.counts import Counts
from audit.export.masking import Masker
from audit.export.window import ExportWindow
from audit.store.access import in_scope
from audit.store.models import (
    Alert,
    AlertState,
    Conversation,
    Customer,
    Finding,
    Message,
    Review,
    SenderKind,
)

CLASSIFIER_LABELS = ("customer_negative", "staff_discourtesy")
VALUES = {
    AlertState.CONFIRMED: 1,
    AlertState.ESCALATED: 1,
    AlertState.FALSE_POSITIVE: 0,
}
ROLES = {SenderKind.STAFF: "staff", SenderKind.CUSTOMER: "customer"}


@dataclass(frozen=True)
class TrainingQuery(ExportWindow):  # reviews made on the window's days
    labels: tuple[str, ...] = ()  # only these labels (rules or classifier names)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "labels": list(self.labels)}


def _latest_decisive() -> Any:
    """The latest decisive review per alert: reviews are append-only, the newest counts."""
    return (
        select(func.max(Review.id).label("review_id"))
        .where(Review.to_state.in_(list(VALUES)))
        .group_by(Review.alert_id)
        .subquery()
    )


def _msgid_of(dedupe_key: str) -> str:
    """A finding-less (classifier) alert names its message in its key: ``<kind>:<msgid>:...``."""
    parts = dedupe_key.split(":")
    return parts[1] if len(parts) > 1 else ""


def iter_examples(
    conn: Connection, query: TrainingQuery, masker: Masker
) -> Iterator[dict[str, Any]]:
    latest = _latest_decisive()
    allowed = (
        Message.consent_withheld.is_(False),
        or_(Customer.id.is_(None), Customer.consent != "disagree"),
    )
    scope = in_scope(func.coalesce(Alert.org_unit_id, Conversation.org_unit_id), query.org_unit_ids)
    reviewed = select(Review.id, Review.to_state, Review.finding_rule, Alert.category).join(
        latest, latest.c.review_id == Review.id
    )
    reviewed = reviewed.where(*query.days(Review.created_at))
    # alerts on a finding: the finding's message
    by_finding = (
        reviewed.add_columns(Finding.rule, Message.id.label("message_id"))
        .add_columns(Message.text, Message.sender_kind)
        .join(Alert, Alert.id == Review.alert_id)
        .join(Finding, Finding.id == Alert.finding_id)
        .join(Message, Message.id == Finding.message_id)
        .outerjoin(Conversation, Conversation.id == Message.conversation_id)
        .outerjoin(Customer, Customer.id == Message.customer_id)
        .where(*allowed, scope)
        .order_by(Review.id)
    )
    # classifier alerts have no finding: few, so their messages are looked up one by one
    without_finding = (
        reviewed.add_columns(Alert.dedupe_key)
        .join(Alert, Alert.id == Review.alert_id)
        .outerjoin(Conversation, Conversation.id == Alert.conversation_id)
        .where(Alert.finding_id.is_(None), Alert.category.in_(CLASSIFIER_LABELS), scope)
        .order_by(Review.id)
    )
    seen: set[tuple[int, str]] = set()  # one line per message and label, however many alerts

    def example(row: Any, label: str | None, message: Any) -> dict[str, Any] | None:
        role = ROLES.get(message.sender_kind)
        if role is None or not message.text or not label:
            return None
        if query.labels and label not in query.labels:
            return None
        key = (message.message_id, label)
        if key in seen:
            return None
        seen.add(key)
        return {
            "text": masker.text(message.text),
            "role": role,
            "label": label,
            "value": VALUES[row.to_state],
        }

    streamed = conn.execution_options(stream_results=True, yield_per=1000)
    for row in streamed.execute(by_finding):
        label = row.category if row.category in CLASSIFIER_LABELS else row.finding_rule or row.rule
        line = example(row, label, row)
        if line:
            yield line
    for row in conn.execute(without_finding).all():
        message = conn.execute(
            select(Message.id.label("message_id"), Message.text, Message.sender_kind)
            .outerjoin(Customer, Customer.id == Message.customer_id)
            .where(Message.msgid == _msgid_of(row.dedupe_key), *allowed)
        ).first()
        if message is not None:
            line = example(row, row.category, message)
            if line:
                yield line


def write_training(conn: Connection, query: TrainingQuery, masker: Masker, out: BinaryIO) -> Counts:
    counts = Counts()
    for example in iter_examples(conn, query, masker):
        out.write(json.dumps(example, ensure_ascii=False).encode("utf-8") + b"\n")
        counts.rows += 1
        counts.messages += 1
    return counts
