"""Alert precision against a simulated archive's ground truth (``audit eval --simulated``).

The simulator writes ``ground_truth.jsonl``: per msgid, the violations it injected. Once the
archive has been run through the pipeline, every alert of a finding category in the database
is judged against it:

* an alert with a finding is right when the finding's message had a violation of the alert's
  category injected;
* an alert without one (its finding was merged into an incident, or it was raised for a whole
  conversation) is right when some message of its conversation had one;
* quality alerts (category ``quality``) are not judged: the ground truth says nothing of them.

Recall is per injected (message, category): found when an alert of that category points at
the message (or, without a finding, at its conversation). Only injected violations whose
message is in the database count, so a partly ingested archive is measured on what it holds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from audit.archive.simulator import GROUND_TRUTH_FILE
from audit.scan.evaluate import Score
from audit.scan.wordlist import CATEGORIES
from audit.store.db import session_scope
from audit.store.models import Alert, Finding, Message

_IN_CHUNK = 500  # msgids per IN (...) query


class GroundTruthError(ValueError):
    """The ground truth cannot be read, or the database holds none of its messages."""


@dataclass(frozen=True)
class AlertPrecisionReport:
    directory: str
    injected: int  # injected (message, category) pairs whose message is in the database
    missing_messages: int  # ground-truth messages the database does not hold
    unjudged: int  # alerts outside the finding categories (quality)
    categories: tuple[Score, ...]
    overall: Score

    def category(self, name: str) -> Score:
        return next(s for s in self.categories if s.category == name)

    def format(self) -> str:
        lines = [
            f"alerts against the ground truth of {self.directory}: {self.injected} injected "
            f"violations in the database ({self.missing_messages} ground-truth messages absent), "
            f"{self.unjudged} quality alerts not judged",
            "",
            f"{'category':<10} {'injected':>8} {'alerts':>6} {'precision':>9} {'recall':>7}",
        ]
        for score in (*self.categories, self.overall):
            lines.append(
                f"{score.category:<10} {score.labels:>8} {score.findings:>6} "
                f"{score.precision:>9.3f} {score.recall:>7.3f}"
            )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "injected": self.injected,
            "missing_messages": self.missing_messages,
            "unjudged": self.unjudged,
            "categories": {s.category: _score_dict(s) for s in self.categories},
            "overall": _score_dict(self.overall),
        }


def _score_dict(score: Score) -> dict[str, Any]:
    """Score.as_dict with this report's names: labels are injected, findings are alerts."""
    data = score.as_dict()
    data["injected"] = data.pop("labels")
    data["alerts"] = data.pop("findings")
    return data


def load_ground_truth(directory: Path) -> dict[str, set[str]]:
    """msgid -> the categories injected into it; the error names the file and line."""
    path = directory / GROUND_TRUTH_FILE
    if not path.is_file():
        raise GroundTruthError(f"{path}: no ground truth here (is it a simulated archive?)")
    truth: dict[str, set[str]] = defaultdict(set)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            msgid = str(data["msgid"])
            categories = {str(v["category"]) for v in data["violations"]}
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise GroundTruthError(f"{path}:{number}: bad line ({exc})") from None
        truth[msgid] |= categories
    return dict(truth)


def alert_precision(engine: Engine, directory: Path) -> AlertPrecisionReport:
    """Judge every alert in the database against ``directory``'s ground truth."""
    truth = load_ground_truth(directory)
    with session_scope(engine) as session:
        conversation_of: dict[str, int | None] = {}
        msgids = sorted(truth)
        for i in range(0, len(msgids), _IN_CHUNK):
            chunk = msgids[i : i + _IN_CHUNK]
            rows = session.execute(
                select(Message.msgid, Message.conversation_id).where(Message.msgid.in_(chunk))
            )
            conversation_of.update((msgid, conversation) for msgid, conversation in rows)
        alerts = session.execute(
            select(Alert.category, Alert.conversation_id, Message.msgid)
            .outerjoin(Finding, Finding.id == Alert.finding_id)
            .outerjoin(Message, Message.id == Finding.message_id)
        ).all()
    if truth and not conversation_of:
        raise GroundTruthError(
            f"the database holds none of the {len(truth)} messages of {directory}'s ground "
            "truth: run the pipeline on that archive first"
        )
    injected = {(m, c) for m, cats in truth.items() if m in conversation_of for c in cats}
    in_conversation = {
        (conversation_of[m], c) for m, c in injected if conversation_of[m] is not None
    }
    counts = {c: [0, 0, 0, 0] for c in CATEGORIES}  # injected, found, alerts, correct
    alerted_messages: set[tuple[str, str]] = set()
    alerted_conversations: set[tuple[int, str]] = set()
    unjudged = 0
    for category, conversation_id, msgid in alerts:
        if category not in counts:
            unjudged += 1
            continue
        counts[category][2] += 1
        if msgid is not None:
            counts[category][3] += (msgid, category) in injected
            alerted_messages.add((msgid, category))
        elif conversation_id is not None:
            counts[category][3] += (conversation_id, category) in in_conversation
            alerted_conversations.add((conversation_id, category))
    for msgid, category in injected:
        counts[category][0] += 1
        counts[category][1] += (msgid, category) in alerted_messages or (
            conversation_of[msgid],
            category,
        ) in alerted_conversations
    categories = tuple(Score(c, *counts[c]) for c in CATEGORIES)
    overall = Score("overall", *(sum(counts[c][i] for c in CATEGORIES) for i in range(4)))
    return AlertPrecisionReport(
        directory=str(directory),
        injected=len(injected),
        missing_messages=len(truth) - len(conversation_of),
        unjudged=unjudged,
        categories=categories,
        overall=overall,
    )
