"""Which conversations a QA export holds, as one SQL query streamed by id.

Filters: local calendar days (by the conversation's start), org scope, finding categories,
the state of the conversation's alerts (e.g. confirmed ones for coaching), and a score band:
the best or worst N scored conversations of each store. Conversations with a customer who
refused archiving (a message flagged ``consent_withheld``, or the customer's consent now
``disagree``) are never selected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select

from audit.export.window import ExportWindow
from audit.store.access import in_scope
from audit.store.models import Alert, AlertState, Conversation, Customer, Finding, Message, Score

Band = Literal["best", "worst"]


@dataclass(frozen=True)
class PackQuery(ExportWindow):  # conversations that started on the window's days
    categories: tuple[str, ...] = ()  # any finding of these
    review_states: tuple[AlertState, ...] = ()  # any alert in these states
    band: Band | None = None
    per_store: int = 10
    conversation_ids: tuple[int, ...] = ()  # exactly these (the dashboard's selection)

    def describe(self) -> dict[str, object]:
        """The filters as plain data, for the audit log."""
        return {
            **super().describe(),
            "categories": list(self.categories),
            "review_states": [s.value for s in self.review_states],
            "band": self.band,
            "per_store": self.per_store if self.band else None,
            "conversation_ids": list(self.conversation_ids),
        }


def consent_ok(conversation_id: ColumnElement[int] | object) -> ColumnElement[bool]:
    """No message of the conversation was sent against the customer's refusal."""
    withheld = exists().where(
        Message.conversation_id == conversation_id, Message.consent_withheld.is_(True)
    )
    refused = exists().where(
        Customer.id == Conversation.customer_id, Customer.consent == "disagree"
    )
    return and_(~withheld, ~refused)


def latest_scores() -> Any:
    """The newest score row per conversation (a rescore with a new scorecard adds one):
    a ``Select`` of ``conversation_id, score_id``."""
    return select(Score.conversation_id, func.max(Score.id).label("score_id")).group_by(
        Score.conversation_id
    )


def conversation_ids(query: PackQuery) -> Select[Any]:
    conditions: list[ColumnElement[bool]] = [
        in_scope(Conversation.org_unit_id, query.org_unit_ids),
        consent_ok(Conversation.id),
    ]
    conditions += query.days(Conversation.started_at)
    if query.conversation_ids:
        conditions.append(Conversation.id.in_(query.conversation_ids))
    if query.categories:
        conditions.append(
            or_(
                exists().where(
                    Finding.conversation_id == Conversation.id,
                    Finding.category.in_(query.categories),
                ),
                exists().where(
                    Alert.conversation_id == Conversation.id, Alert.category.in_(query.categories)
                ),
            )
        )
    if query.review_states:
        conditions.append(
            exists().where(
                Alert.conversation_id == Conversation.id, Alert.state.in_(query.review_states)
            )
        )
    order = (Conversation.org_unit_id, Conversation.started_at, Conversation.id)
    if query.band is None:
        return select(Conversation.id).where(*conditions).order_by(*order)
    latest = latest_scores().subquery()
    by_score = Score.score.desc() if query.band == "best" else Score.score.asc()
    ranked = (
        select(
            Conversation.id,
            Conversation.org_unit_id,
            Conversation.started_at,
            func.row_number()
            .over(partition_by=Conversation.org_unit_id, order_by=(by_score, Conversation.id))
            .label("rank"),
        )
        .join(latest, latest.c.conversation_id == Conversation.id)
        .join(Score, Score.id == latest.c.score_id)
        .where(*conditions)
        .subquery()
    )
    return (
        select(ranked.c.id)
        .where(ranked.c.rank <= query.per_store)
        .order_by(ranked.c.org_unit_id, ranked.c.rank)
    )
