"""Precision and recall of the scanner on a labelled set of chat messages (``audit eval``).

The set is JSON lines, one message each::

    {"id": "m0042", "text": "加我vx：zhang_88", "role": "staff",
     "labels": [{"category": "diversion", "start": 0, "end": 4}, ...]}

``labels`` is empty for a clean message. A finding counts when its score reaches
``min_score`` (a downgraded match, 口交 in 路口交通, does not) and is a true positive when it
overlaps a label of the same category; a label is found when some counted finding of its
category overlaps it. Precision is per finding (same category and span counted once),
recall per label.

The labelled set is written by hand in ``tests/data/eval/messages.txt`` with inline marks,
``[[diversion|加我vx]]``; ``parse_marked`` reads that form. The second set,
``tests/data/eval/v2``, adds a column of technique tags per message (how a violation is
written, or what kind of clean message it is) and is split once into a tuning half and a test
half.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.scan.scanner import ROLES, Scanner
from audit.scan.wordlist import CATEGORIES

DEFAULT_EVAL_SET = Path("tests/data/eval/messages.jsonl")
DEFAULT_MIN_SCORE = 0.5
_MARK = re.compile(r"\[\[([a-z]+)\|(.+?)\]\]")

# How a violation is written (tags of a message with labels) ...
VIOLATION_TECHNIQUES = (
    "plain",
    "pinyin",
    "initials",
    "homophone",
    "polite",
    "traditional",
    "numerals",
    "letters_for_digits",
    "emoji_symbol",
    "split_char",
    "gap",
    "spelled_email",
    "slang_app",
    "spacing",
    "fullwidth",
    "paraphrase",
    "wechat_id",
)
# ... and what makes a clean message a test of false alarms (tags of a message without).
CLEAN_TAGS = (
    "ordinary",
    "lookalike",
    "number",
    "negation",
    "question",
    "past",
    "conditional",
    "quotation",
    "self_directed",
    "rights_notice",
)


class EvalSetError(ValueError):
    """A line of the evaluation set that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Label:
    category: str
    start: int
    end: int


@dataclass(frozen=True)
class EvalMessage:
    id: str
    text: str
    role: str | None
    labels: tuple[Label, ...]
    techniques: tuple[str, ...] = ()  # from VIOLATION_TECHNIQUES or CLEAN_TAGS; () if untagged

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "role": self.role,
            "labels": [
                {"category": x.category, "start": x.start, "end": x.end} for x in self.labels
            ],
        }
        if self.techniques:  # the first set has none; its JSON lines stay as they were
            data["techniques"] = list(self.techniques)
        return data


@dataclass(frozen=True)
class Score:
    """Counts and ratios for one category (or all of them)."""

    category: str
    labels: int  # labelled spans
    found: int  # labels overlapped by a finding of their category
    findings: int  # counted findings
    correct: int  # findings overlapping a label of their category

    @property
    def precision(self) -> float:
        return self.correct / self.findings if self.findings else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.labels if self.labels else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "labels": self.labels,
            "found": self.found,
            "findings": self.findings,
            "correct": self.correct,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
        }


@dataclass(frozen=True)
class Miss:
    """A false positive or false negative, for the report."""

    kind: str  # "false positive" | "missed"
    id: str
    category: str
    text: str
    span: str


@dataclass(frozen=True)
class EvalReport:
    path: str
    messages: int
    min_score: float
    wordlist_hash: str
    scanner_version: str
    categories: tuple[Score, ...]
    overall: Score
    misses: tuple[Miss, ...] = field(default=())

    def category(self, name: str) -> Score:
        return next(s for s in self.categories if s.category == name)

    def format(self, show_misses: int = 20) -> str:
        """A table for the terminal, then the first ``show_misses`` errors."""
        lines = [
            f"{self.messages} messages from {self.path} "
            f"(scanner {self.scanner_version}, lists {self.wordlist_hash[:12]}, "
            f"score >= {self.min_score})",
            "",
            f"{'category':<10} {'labels':>6} {'findings':>8} {'precision':>9} {'recall':>7}",
        ]
        for score in (*self.categories, self.overall):
            lines.append(
                f"{score.category:<10} {score.labels:>6} {score.findings:>8} "
                f"{score.precision:>9.3f} {score.recall:>7.3f}"
            )
        if self.misses and show_misses:
            lines += ["", f"errors ({len(self.misses)}):"]
            for miss in self.misses[:show_misses]:
                lines.append(
                    f"  {miss.kind:<14} {miss.category:<9} {miss.id}: '{miss.span}' in {miss.text}"
                )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "messages": self.messages,
            "min_score": self.min_score,
            "wordlist_hash": self.wordlist_hash,
            "scanner_version": self.scanner_version,
            "categories": {s.category: s.as_dict() for s in self.categories},
            "overall": self.overall.as_dict(),
            "misses": [vars(m) for m in self.misses],
        }


def parse_marked(line: str, ident: str, tagged: bool = False) -> EvalMessage:
    """``<role>\\t<text with [[category|words]] marks>`` -> a message with its labels.

    ``tagged`` lines carry a column of comma-separated technique tags between role and text,
    ``<role>\\t<tag,tag>\\t<text>``.
    """
    role, sep, marked = line.partition("\t")
    if not sep or role not in ROLES:
        form = "<staff|customer><TAB><tags><TAB><text>" if tagged else "<staff|customer><TAB><text>"
        raise EvalSetError(f"{ident}: expected '{form}'")
    tags: tuple[str, ...] = ()
    if tagged:
        column, sep, marked = marked.partition("\t")
        if not sep:
            raise EvalSetError(f"{ident}: expected '<staff|customer><TAB><tags><TAB><text>'")
        tags = tuple(x.strip() for x in column.split(","))
    text: list[str] = []
    labels: list[Label] = []
    last = 0
    length = 0
    for mark in _MARK.finditer(marked):
        category, words = mark.groups()
        if category not in CATEGORIES:
            raise EvalSetError(f"{ident}: unknown category '{category}'")
        plain = marked[last : mark.start()]
        text.append(plain)
        length += len(plain)
        labels.append(Label(category, length, length + len(words)))
        text.append(words)
        length += len(words)
        last = mark.end()
    text.append(marked[last:])
    joined = "".join(text)
    if "[[" in joined or "]]" in joined:
        raise EvalSetError(f"{ident}: unbalanced [[category|words]] mark")
    if tagged:
        _check_tags(tags, bool(labels), ident)
    return EvalMessage(ident, joined, role, tuple(labels), tags)


def read_marked(source: Path, ident: str = "m{:04d}", tagged: bool = False) -> list[EvalMessage]:
    """Every message of a hand-marked file; ``#`` lines are comments.

    A message's id is ``ident`` formatted with its line number, so it names where to look.
    """
    messages = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip() and not line.startswith("#"):
            messages.append(parse_marked(line, ident.format(number), tagged))
    return messages


def _check_tags(tags: tuple[str, ...], violation: bool, where: str) -> None:
    """A violation is tagged by how it is written, a clean message by what it tests."""
    allowed, kind = (VIOLATION_TECHNIQUES, "violation") if violation else (CLEAN_TAGS, "clean")
    if not tags or any(x not in allowed for x in tags):
        raise EvalSetError(
            f"{where}: tags {','.join(tags) or '(none)'} are not all {kind} tags "
            f"({' '.join(allowed)})"
        )


def load_eval_set(path: Path) -> list[EvalMessage]:
    """The JSON-lines evaluation set; raises EvalSetError naming the bad line."""
    messages = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
            text, role = data["text"], data.get("role")
            labels = tuple(
                Label(x["category"], int(x["start"]), int(x["end"])) for x in data["labels"]
            )
            ident = str(data.get("id", number))
            techniques = tuple(str(x) for x in data.get("techniques", ()))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise EvalSetError(f"{where}: bad line ({exc})") from None
        if role is not None and role not in ROLES:
            raise EvalSetError(f"{where}: unknown role {role!r}")
        for label in labels:
            if label.category not in CATEGORIES:
                raise EvalSetError(f"{where}: unknown category '{label.category}'")
            if not 0 <= label.start < label.end <= len(text):
                raise EvalSetError(f"{where}: label {label} is outside the text")
        if techniques:
            _check_tags(techniques, bool(labels), where)
        messages.append(EvalMessage(ident, text, role, labels, techniques))
    return messages


def evaluate(
    scanner: Scanner, path: Path = DEFAULT_EVAL_SET, min_score: float = DEFAULT_MIN_SCORE
) -> EvalReport:
    """Scan every message of the set at ``path`` and score the findings per category."""
    messages = load_eval_set(path)
    counts = {c: [0, 0, 0, 0] for c in CATEGORIES}  # labels, found, findings, correct
    misses: list[Miss] = []
    for message in messages:
        text = message.text
        predicted = {
            (f.category, f.start, f.end)
            for f in scanner.scan(message.text, message.role)
            if f.score >= min_score
        }
        for category, start, end in sorted(predicted):
            hit = any(
                x.category == category and x.start < end and start < x.end for x in message.labels
            )
            counts[category][2] += 1
            counts[category][3] += hit
            if not hit:
                misses.append(
                    Miss("false positive", message.id, category, message.text, text[start:end])
                )
        for label in message.labels:
            found = any(
                c == label.category and s < label.end and label.start < e for c, s, e in predicted
            )
            counts[label.category][0] += 1
            counts[label.category][1] += found
            if not found:
                span = message.text[label.start : label.end]
                misses.append(Miss("missed", message.id, label.category, message.text, span))
    scores = tuple(Score(c, *counts[c]) for c in CATEGORIES)
    overall = Score("overall", *(sum(counts[c][i] for c in CATEGORIES) for i in range(4)))
    return EvalReport(
        path=str(path),
        messages=len(messages),
        min_score=min_score,
        wordlist_hash=scanner.wordlist_hash,
        scanner_version=scanner.version,
        categories=scores,
        overall=overall,
        misses=tuple(misses),
    )
