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
half. For a tagged set the report adds recall per violation technique (over the labels of the
messages carrying the tag) and false alarms per clean tag: the share of clean messages with at
least one counted finding, of any category. The errors of a test half are never kept.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from audit.scan.finding import Finding
from audit.scan.scanner import ROLES
from audit.scan.wordlist import CATEGORIES

DEFAULT_EVAL_SET = Path("tests/data/eval/messages.jsonl")
V2_DIR = Path("tests/data/eval/v2")
V3_DIR = Path("tests/data/eval/v3")
TEST_HALF = "test.jsonl"
V2_HALVES = (V2_DIR / "tuning.jsonl", V2_DIR / TEST_HALF)
V3_HALVES = (V3_DIR / "tuning.jsonl", V3_DIR / TEST_HALF)
# what `audit eval` measures without --data: both halves of both split sets
DEFAULT_HALVES = (*V2_HALVES, *V3_HALVES)
DEFAULT_MIN_SCORE = 0.5
# Findings of a message-level detector carry this rule prefix ("model.diversion"): they judge
# the message as a whole, so they overlap every label of their category in it.
MODEL_RULE_PREFIX = "model."
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
# A violation may also say which word next to it looks like it cancels it and does not
# ("不用去投诉，加我私人微信就行": a negation; "你敢不敢退？骗子": a question) ...
VIOLATION_CUES = (
    "with_negation",
    "with_question",
    "with_past",
    "with_condition",
    "with_quote",
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


class MessageScanner(Protocol):
    """What evaluate() scans with: the Scanner, or the Scanner joined with a message model."""

    @property
    def version(self) -> str: ...

    @property
    def wordlist_hash(self) -> str: ...

    def scan(self, text: str, role: str | None = None) -> list[Finding]: ...


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
    # from VIOLATION_TECHNIQUES (and VIOLATION_CUES) or CLEAN_TAGS; () if untagged
    techniques: tuple[str, ...] = ()

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
class TechniqueScore:
    """Recall over the labels of the messages carrying one violation technique tag."""

    technique: str
    messages: int
    labels: int
    found: int

    @property
    def recall(self) -> float:
        return self.found / self.labels if self.labels else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "technique": self.technique,
            "messages": self.messages,
            "labels": self.labels,
            "found": self.found,
            "recall": round(self.recall, 4),
        }


@dataclass(frozen=True)
class FalseAlarms:
    """Clean messages (of one tag, or all of them) and how many raised a counted finding."""

    tag: str
    messages: int
    alarmed: int

    @property
    def rate(self) -> float:
        return self.alarmed / self.messages if self.messages else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "messages": self.messages,
            "alarmed": self.alarmed,
            "rate": round(self.rate, 4),
        }


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
    techniques: tuple[TechniqueScore, ...] = field(default=())  # tagged sets only
    clean_tags: tuple[FalseAlarms, ...] = field(default=())  # tagged sets only
    clean: FalseAlarms = FalseAlarms("clean", 0, 0)  # every message without a label
    misses_withheld: bool = False  # a test half: its errors are not for reading

    def category(self, name: str) -> Score:
        return next(s for s in self.categories if s.category == name)

    def technique(self, name: str) -> TechniqueScore:
        return next(s for s in self.techniques if s.technique == name)

    def clean_tag(self, name: str) -> FalseAlarms:
        return next(s for s in self.clean_tags if s.tag == name)

    def format(self, show_misses: int = 20) -> str:
        """Tables for the terminal, then the first ``show_misses`` errors."""
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
        if self.techniques:
            lines += ["", f"{'technique':<18} {'messages':>8} {'labels':>6} {'recall':>7}"]
            for tech in self.techniques:
                lines.append(
                    f"{tech.technique:<18} {tech.messages:>8} {tech.labels:>6} {tech.recall:>7.3f}"
                )
        lines += ["", f"{'clean messages':<18} {'messages':>8} {'alarmed':>7} {'rate':>7}"]
        for alarms in (*self.clean_tags, self.clean):
            name = "all clean" if alarms is self.clean else alarms.tag
            lines.append(f"{name:<18} {alarms.messages:>8} {alarms.alarmed:>7} {alarms.rate:>7.3f}")
        if self.misses_withheld:
            lines += ["", "errors withheld: this is a test half (tune against the tuning half)"]
        elif self.misses and show_misses:
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
            "techniques": {s.technique: s.as_dict() for s in self.techniques},
            "clean_tags": {s.tag: s.as_dict() for s in self.clean_tags},
            "clean": self.clean.as_dict(),
            "misses_withheld": self.misses_withheld,
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
    allowed, kind = (
        (VIOLATION_TECHNIQUES + VIOLATION_CUES, "violation") if violation else (CLEAN_TAGS, "clean")
    )
    if not tags or any(x not in allowed for x in tags):
        raise EvalSetError(
            f"{where}: tags {','.join(tags) or '(none)'} are not all {kind} tags "
            f"({' '.join(allowed)})"
        )


def load_eval_set(path: Path) -> list[EvalMessage]:
    """The JSON-lines evaluation set; raises EvalSetError naming the bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalSetError(
            f"{path}: cannot read the set ({exc.strerror}); the default sets live in a source "
            "checkout's tests/data/eval, or pass --data"
        ) from None
    messages = []
    for number, line in enumerate(lines, start=1):
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
    scanner: MessageScanner, path: Path = DEFAULT_EVAL_SET, min_score: float = DEFAULT_MIN_SCORE
) -> EvalReport:
    """Scan every message of the set at ``path`` and score the findings.

    The errors of a test half (a file named ``test.jsonl``) are never kept: they are what one
    must not look at while tuning.
    """
    withheld = path.name == TEST_HALF
    report = score_messages(scanner, load_eval_set(path), str(path), min_score, not withheld)
    return replace(report, misses_withheld=withheld)


def score_messages(
    scanner: MessageScanner,
    messages: list[EvalMessage],
    path: str,
    min_score: float = DEFAULT_MIN_SCORE,
    keep_misses: bool = True,
) -> EvalReport:
    """Per category precision and recall, per technique recall, false alarms on clean ones."""
    counts = {c: [0, 0, 0, 0] for c in CATEGORIES}  # labels, found, findings, correct
    # messages, labels, found
    by_technique = {t: [0, 0, 0] for t in VIOLATION_TECHNIQUES + VIOLATION_CUES}
    by_clean_tag = {t: [0, 0] for t in CLEAN_TAGS}  # messages, alarmed
    clean = [0, 0]
    misses: list[Miss] = []
    for message in messages:
        text = message.text
        predicted = {
            _span(f, len(text)) for f in scanner.scan(text, message.role) if f.score >= min_score
        }
        for category, start, end in sorted(predicted):
            hit = any(
                x.category == category and x.start < end and start < x.end for x in message.labels
            )
            counts[category][2] += 1
            counts[category][3] += hit
            if not hit and keep_misses:
                misses.append(Miss("false positive", message.id, category, text, text[start:end]))
        found = 0
        for label in message.labels:
            hit = any(
                c == label.category and s < label.end and label.start < e for c, s, e in predicted
            )
            found += hit
            counts[label.category][0] += 1
            counts[label.category][1] += hit
            if not hit and keep_misses:
                span = text[label.start : label.end]
                misses.append(Miss("missed", message.id, label.category, text, span))
        if message.labels:
            for tag in message.techniques:
                by_technique[tag][0] += 1
                by_technique[tag][1] += len(message.labels)
                by_technique[tag][2] += found
        else:
            clean[0] += 1
            clean[1] += bool(predicted)
            for tag in message.techniques:
                by_clean_tag[tag][0] += 1
                by_clean_tag[tag][1] += bool(predicted)
    return EvalReport(
        path=path,
        messages=len(messages),
        min_score=min_score,
        wordlist_hash=scanner.wordlist_hash,
        scanner_version=scanner.version,
        categories=tuple(Score(c, *counts[c]) for c in CATEGORIES),
        overall=Score("overall", *(sum(counts[c][i] for c in CATEGORIES) for i in range(4))),
        misses=tuple(misses),
        techniques=tuple(TechniqueScore(t, *n) for t, n in by_technique.items() if n[0]),
        clean_tags=tuple(FalseAlarms(t, *n) for t, n in by_clean_tag.items() if n[0]),
        clean=FalseAlarms("clean", *clean),
    )


def _span(finding: Finding, length: int) -> tuple[str, int, int]:
    """A finding's category and span; a message-level detector's finding covers the message."""
    if finding.rule.startswith(MODEL_RULE_PREFIX):
        return finding.category, 0, length
    return finding.category, finding.start, finding.end


HALVES = ("tuning", "test")


@dataclass(frozen=True)
class SplitOnce:
    """A hand-marked evaluation set (``messages.txt`` in ``directory``) split ONCE into
    ``tuning.jsonl`` and ``test.jsonl``, seeded and stratified by (first marked category, or
    "clean") x first tag, so that each half holds about half of every kind of message; with
    ``manifest.json`` holding the checksums. Each set's ``build.py`` names its directory, ids
    and seed, and writes the files; a test checks that the committed files are what it
    produces. Tune only against the tuning half. A set may name its halves otherwise
    (``("train", "dev")``: one to fit on, one to compare on)."""

    directory: Path
    ident: str  # message ids, formatted with the line number: "v2-{:04d}"
    seed: int
    halves: tuple[str, str] = HALVES

    @property
    def source(self) -> Path:
        return self.directory / "messages.txt"

    def build(self) -> list[EvalMessage]:
        return read_marked(self.source, ident=self.ident, tagged=True)

    @staticmethod
    def stratum(message: EvalMessage) -> tuple[str, str]:
        first = message.labels[0].category if message.labels else "clean"
        return first, message.techniques[0]

    def split(
        self, messages: list[EvalMessage], seed: int | None = None
    ) -> dict[str, list[EvalMessage]]:
        """Half of each stratum to the first half (tuning), half to the second (test); odd
        strata give their extra message to the two halves in turn so that the halves stay the
        same size."""
        rng = random.Random(self.seed if seed is None else seed)
        strata: dict[tuple[str, str], list[EvalMessage]] = defaultdict(list)
        for message in messages:
            strata[self.stratum(message)].append(message)
        first, second = self.halves
        chosen: dict[str, str] = {}
        extra_to_tuning = True
        for key in sorted(strata):
            members = [m.id for m in strata[key]]
            rng.shuffle(members)
            take = len(members) // 2
            if len(members) % 2:
                take += extra_to_tuning
                extra_to_tuning = not extra_to_tuning
            for index, ident in enumerate(members):
                chosen[ident] = first if index < take else second
        return {half: [m for m in messages if chosen[m.id] == half] for half in self.halves}

    @staticmethod
    def render(messages: list[EvalMessage]) -> str:
        return "".join(json.dumps(m.as_dict(), ensure_ascii=False) + "\n" for m in messages)

    def manifest(self, halves: dict[str, str]) -> str:
        def digest(text: str) -> str:
            return hashlib.sha256(text.encode("utf-8")).hexdigest()

        data = {
            "source": {
                "file": self.source.name,
                "sha256": digest(self.source.read_text(encoding="utf-8")),
            },
            "seed": self.seed,
            "stratified_by": "first category (or clean) x first tag",
            "halves": {
                half: {
                    "file": f"{half}.jsonl",
                    "messages": text.count("\n"),
                    "sha256": digest(text),
                }
                for half, text in halves.items()
            },
        }
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"

    def outputs(self) -> dict[str, str]:
        """File name -> content, everything the split writes."""
        halves = {
            half: self.render(messages) for half, messages in self.split(self.build()).items()
        }
        files = {f"{half}.jsonl": text for half, text in halves.items()}
        files["manifest.json"] = self.manifest(halves)
        return files

    def main(self, argv: list[str]) -> None:
        """The set's build script: write, or exit with the reason it would change a file."""
        try:
            self.write(force="--force" in argv)
        except EvalSetError as exc:
            raise SystemExit(str(exc)) from None

    def write(self, force: bool = False) -> None:
        """Write the files; EvalSetError when one would change (the split is made once;
        ``force`` only to repair)."""
        for name, text in self.outputs().items():
            target = self.directory / name
            if target.exists() and target.read_text(encoding="utf-8") != text and not force:
                raise EvalSetError(
                    f"{target} would change: the split is made once (--force only to repair)"
                )
            target.write_text(text, encoding="utf-8")
