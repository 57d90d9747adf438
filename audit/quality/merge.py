"""Carrying a merged conversation's rows over to the conversation it was merged into.

A late message that bridges two conversations of a thread makes them one; the one that started
first keeps its id (so the trail's references to it stay good) and takes over the others'
messages, findings and alerts. Their scores are dropped, with the survivor's, so that the
scoring stage scores the whole and the quality-alert stage brings its alerts in line. Reviews
hang on alerts, which survive; the audit log is append-only, so a row records the merge and
whoever reads a trail entry about a merged conversation can follow it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from sqlalchemy import ColumnElement, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from audit.domain import Action
from audit.quality.alert_sync import untouched
from audit.store.access import Principal, record
from audit.store.models import (
    Alert,
    Conversation,
    Finding,
    Message,
    Review,
    Score,
)
from audit.store.results import rekeyed

ACTOR = Principal.service("sessionizer")
ACTION = Action.CONVERSATION_MERGE


def carry_over(session: Session, survivor: int, merged: Mapping[int, str]) -> None:
    """Move everything of the conversations ``merged`` (id: key) to ``survivor`` and delete
    them."""
    victims = sorted(merged)
    _move(session, Message, Message.conversation_id.in_(victims), survivor)
    _move(session, Finding, Finding.conversation_id.in_(victims), survivor)
    _carry_alerts(session, survivor, victims)
    session.execute(
        delete(Score)
        .where(Score.conversation_id.in_([survivor, *victims]))
        .execution_options(synchronize_session=False)
    )
    # the keys too: SQLite may give a merged conversation's id to a new one later
    record(session, ACTOR, ACTION, survivor, merged=victims, keys=[merged[v] for v in victims])
    session.execute(
        delete(Conversation)
        .where(Conversation.id.in_(victims))
        .execution_options(synchronize_session=False)
    )


def _carry_alerts(session: Session, survivor: int, victims: list[int]) -> None:
    moves = dict.fromkeys(victims, survivor)
    reviewed = exists().where(Review.alert_id == Alert.id)
    named = [Alert.dedupe_key.like(f"quality:%:{v}") for v in victims]
    rows = session.execute(
        select(
            Alert.id,
            Alert.dedupe_key,
            Alert.state,
            Alert.assignee_id,
            Alert.conversation_id,
            reviewed,
        )
        .where(or_(Alert.conversation_id.in_(victims), *named))
        .order_by(Alert.id)
    ).all()
    wanted = {rekeyed(r.dedupe_key, moves) for r in rows}
    taken = set(session.scalars(select(Alert.dedupe_key).where(Alert.dedupe_key.in_(wanted))))
    drop: list[int] = []
    for alert_id, key, state, assignee, conv_id, was_reviewed in rows:
        new_key = rekeyed(key, moves)
        if new_key != key and new_key in taken:
            if untouched(state, assignee, was_reviewed):
                drop.append(alert_id)  # the survivor has the same open cause: one is enough
                continue
            # both handled: neither judgement may be lost, so both stay, told apart
            new_key = f"{new_key}:merged:{key.rpartition(':')[2]}"
        taken.add(new_key)
        session.execute(
            update(Alert)
            .where(Alert.id == alert_id)
            .values(
                dedupe_key=new_key,
                conversation_id=survivor if conv_id in moves else conv_id,
            )
            .execution_options(synchronize_session=False)
        )
    if drop:
        session.execute(
            delete(Alert).where(Alert.id.in_(drop)).execution_options(synchronize_session=False)
        )


def follow_messages(session: Session, placed: Iterable[tuple[int, int]]) -> None:
    """Findings (and their alerts) of messages that were scanned before they were placed take
    the conversation the message was placed in."""
    by_conv: dict[int, list[int]] = defaultdict(list)
    for message_id, conv_id in placed:
        by_conv[conv_id].append(message_id)
    for conv_id, message_ids in by_conv.items():
        findings = select(Finding.id).where(Finding.message_id.in_(message_ids))
        _move(session, Alert, Alert.finding_id.in_(findings), conv_id)
        _move(session, Finding, Finding.message_id.in_(message_ids), conv_id)


def _move(
    session: Session,
    table: type[Message | Finding | Alert],
    rows: ColumnElement[bool],
    conversation_id: int,
) -> None:
    """The ``rows`` of ``table`` now belong to conversation ``conversation_id``."""
    session.execute(
        update(table)
        .where(rows)
        .values(conversation_id=conversation_id)
        .execution_options(synchronize_session=False)
    )
