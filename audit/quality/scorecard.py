"""The scorecard: a YAML file a QA lead edits, turning findings, metrics and classifier scores
into a 0-100 score per conversation where every deducted point says why.

Format (``scorecard.yaml`` next to this module is the default)::

    version: telecom-store-2026.1        # names the card; the stored version adds a hash
    items:
      - id: slow_first_response          # permanent: reports and old scores refer to it
        label: 首次响应超过5分钟
        when: first_response_business_seconds > 300
        points: 5                        # deducted once ...
      - id: replies_over_sla
        label: 回复超出时效
        when: sla_breaches > 0
        points: 2
        per: sla_breaches                # ... or per finding / per unit of a metric
        cap: 10                          # at most this much for the item
      - id: id_number_leak
        label: 员工泄露客户身份证号
        when: finding rule == privacy.resident_id, role == staff
        fatal: true                      # the score is 0, whatever else happened

``when`` is clauses joined by ``and``:

- a metric: ``sla_rate < 0.8``, ``unanswered_at_end`` (is true), ``not greeting``,
  ``greeting == false`` (see :data:`audit.quality.metrics.METRIC_NAMES`);
- a classifier score, the highest in the conversation: ``max staff_discourtesy >= 0.7``;
- findings, at most one clause: ``finding`` and filters separated by commas on ``category``,
  ``rule`` (``*`` is a wildcard: ``diversion.*``), ``severity`` (compared by rank: ``severity
  >= high``) and ``role`` (who sent the message: ``staff``, ``customer``).

A clause on a missing value (no customer message to answer, no classifier score) is false:
nothing is deducted for what was not measured. ``kinds: [single]`` limits an item to some
conversation kinds (``single``, ``room``, ``internal``).

``greetings`` (optional) lists the phrases a staff message greets with, for the ``greeting``
metric: compared with case, width and punctuation ignored; ``^`` first means only at the start
of a message (``^在的``), ``…`` stands for a few characters (``我是…店的``). Without it the
built-in list (:data:`audit.quality.metrics.DEFAULT_GREETING_WORDS`) is used.

Loading validates everything and lists every problem as ``<file>:<line>: <reason>``.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import hashlib
import importlib.resources
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from audit.domain import CATEGORIES as DOMAIN_CATEGORIES
from audit.domain import ConversationKind, SenderKind, Severity
from audit.quality.metrics import (
    DEFAULT_GREETING_WORDS,
    METRIC_NAMES,
    SCORE_ROLES,
    ConversationMetrics,
    phrase_problem,
)

DEFAULT_RESOURCE = "scorecard.yaml"
MAX_SCORE = 100.0

# the stable finding categories (the word lists and recognizers); a typo must not silently
# match nothing
CATEGORIES = frozenset(DOMAIN_CATEGORIES)
SEVERITY_RANK = {s.value: s.rank for s in Severity}
ROLES = frozenset(k.value for k in SenderKind)
KINDS = frozenset(k.value for k in ConversationKind)
SCORE_KEYS = frozenset(SCORE_ROLES)
BOOL_METRICS = frozenset(
    f.name
    for f in dataclasses.fields(ConversationMetrics)
    if f.name in METRIC_NAMES and "bool" in str(f.type)
)

Op = Literal["==", "!=", "<", "<=", ">", ">="]
_OPS: dict[str, Any] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_COMPARISON = re.compile(r"^([A-Za-z_][\w.]*)\s*(==|!=|<=|>=|<|>|=)\s*(\S.*?)\s*$")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$")
_ITEM_KEYS = {"id", "label", "when", "points", "per", "cap", "fatal", "kinds", "note"}
_TOP_KEYS = {"version", "description", "greetings", "items"}


class ScorecardError(ValueError):
    """One or more problems; ``errors`` holds each ``<file>:<line>: <reason>``."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("invalid scorecard:\n" + "\n".join(f"  {e}" for e in self.errors))


# --------------------------------------------------------------------------- the card


@dataclass(frozen=True)
class FindingRef:
    """A finding of the conversation, as the scorecard sees it."""

    category: str
    rule: str
    severity: str  # low | medium | high | critical (Severity values work too)
    role: str  # the sender_kind of the message it was found in
    id: int | None = None  # the stored finding, when there is one


@dataclass(frozen=True)
class Clause:
    """``metric op value`` or ``max score op value``."""

    source: Literal["metric", "score"]
    name: str
    op: Op
    value: float | bool

    def test(self, metrics: ConversationMetrics, scores_max: Mapping[str, float]) -> str | None:
        """The reason text when the clause holds, else None."""
        if self.source == "score":
            actual: float | bool | None = scores_max.get(self.name)
            shown = f"max {self.name}"
        else:
            actual = metrics.value(self.name)
            shown = self.name
        if actual is None or not _OPS[self.op](actual, self.value):
            return None
        if isinstance(self.value, bool):
            return f"{shown} = {str(actual).lower()}"
        return f"{shown} = {_num(float(actual))} {self.op} {_num(float(self.value))}"


@dataclass(frozen=True)
class FindingFilter:
    field: Literal["category", "rule", "severity", "role"]
    op: Op
    value: str

    def test(self, finding: FindingRef) -> bool:
        if self.field == "severity":
            actual = SEVERITY_RANK.get(str(finding.severity), 0)
            result: bool = _OPS[self.op](actual, SEVERITY_RANK[self.value])
            return result
        text = str(getattr(finding, self.field))
        matched = (
            fnmatch.fnmatchcase(text, self.value) if self.field == "rule" else (text == self.value)
        )
        return matched if self.op == "==" else not matched


@dataclass(frozen=True)
class Item:
    id: str
    label: str
    when: str  # as written, for display
    clauses: tuple[Clause, ...]
    finding: tuple[FindingFilter, ...] | None  # None: no finding clause
    points: float
    per: str  # "once", "finding" or a metric name
    cap: float | None
    fatal: bool
    kinds: frozenset[str] | None
    line: int


@dataclass(frozen=True)
class Scorecard:
    id: str  # the file's ``version``
    sha256: str  # of the file's bytes
    items: tuple[Item, ...]
    source: str
    greetings: tuple[str, ...] = DEFAULT_GREETING_WORDS  # phrases for the greeting metric

    @property
    def version(self) -> str:
        """What ``Score.scorecard_version`` stores: the card's name and its content hash."""
        return f"{self.id}@{self.sha256[:12]}"


@dataclass(frozen=True)
class Deduction:
    item: str
    label: str
    points: float  # 0 for a fatal item: it zeroes the score instead
    reason: str
    fatal: bool = False
    # the stored findings a finding clause matched: a fatal item's alert is theirs
    findings: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.findings:
            out["findings"] = list(self.findings)
        else:
            del out["findings"]  # most items name no finding
        return out


@dataclass(frozen=True)
class ScoreResult:
    score: float  # 0-100
    deductions: tuple[Deduction, ...]
    fatal: bool

    def deductions_json(self) -> list[dict[str, Any]]:
        """For ``Score.deductions``."""
        return [d.as_dict() for d in self.deductions]


# --------------------------------------------------------------------------- evaluation


def evaluate(
    card: Scorecard,
    metrics: ConversationMetrics,
    findings: Sequence[FindingRef] = (),
    scores_max: Mapping[str, float] | None = None,
) -> ScoreResult:
    """Score one conversation. ``scores_max`` defaults to ``metrics.scores_max``."""
    scores = metrics.scores_max if scores_max is None else scores_max
    deductions: list[Deduction] = []
    for item in card.items:
        if item.kinds is not None and metrics.kind not in item.kinds:
            continue
        hit = _match(item, metrics, findings, scores)
        if hit is None:
            continue
        occurrences, reasons, matched = hit
        ids = tuple(sorted(f.id for f in matched if f.id is not None))
        if item.fatal:
            reason = "; ".join([*reasons, "fatal: the score is 0"])
            deductions.append(Deduction(item.id, item.label, 0.0, reason, fatal=True, findings=ids))
            continue
        points = item.points * (1 if item.per == "once" else occurrences)
        if item.per != "once":
            reasons.append(f"{_num(occurrences)} × {_num(item.points)}")
        if item.cap is not None and points > item.cap:
            points = item.cap
            reasons.append(f"capped at {_num(item.cap)}")
        deductions.append(Deduction(item.id, item.label, points, "; ".join(reasons), findings=ids))
    fatal = any(d.fatal for d in deductions)
    total = sum(d.points for d in deductions)
    score = 0.0 if fatal else max(0.0, MAX_SCORE - total)
    return ScoreResult(round(score, 2), tuple(deductions), fatal)


def _match(
    item: Item,
    metrics: ConversationMetrics,
    findings: Sequence[FindingRef],
    scores: Mapping[str, float],
) -> tuple[float, list[str], list[FindingRef]] | None:
    """(occurrences, reasons, matched findings) when every clause holds, else None."""
    reasons: list[str] = []
    matched: list[FindingRef] = []
    for clause in item.clauses:
        reason = clause.test(metrics, scores)
        if reason is None:
            return None
        reasons.append(reason)
    occurrences = 1.0
    if item.finding is not None:
        filters = item.finding
        matched = [f for f in findings if all(flt.test(f) for flt in filters)]
        if not matched:
            return None
        rules = Counter(f"{f.rule} ({f.role})" for f in matched)
        listed = ", ".join(f"{r} ×{n}" if n > 1 else r for r, n in sorted(rules.items()))
        reasons.insert(0, f"{len(matched)} finding{'s' if len(matched) > 1 else ''}: {listed}")
        if item.per == "finding":
            occurrences = float(len(matched))
    if item.per not in ("once", "finding"):
        value = metrics.value(item.per)
        occurrences = float(value or 0)
        if occurrences <= 0:
            return None
    return occurrences, reasons, matched


def _num(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.0f}"


# --------------------------------------------------------------------------- loading


def default_scorecard_text() -> str:
    return importlib.resources.files("audit.quality").joinpath(DEFAULT_RESOURCE).read_text("utf-8")


def load_scorecard(path: Path | None = None) -> Scorecard:
    """The card at ``path``, or the one shipped with the package."""
    if path is None:
        resource = importlib.resources.files("audit.quality").joinpath(DEFAULT_RESOURCE)
        return parse_scorecard(resource.read_bytes(), f"<package>/{DEFAULT_RESOURCE}")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ScorecardError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    return parse_scorecard(data, str(path))


def parse_scorecard(content: str | bytes, source: str = "<string>") -> Scorecard:
    raw = content.encode("utf-8") if isinstance(content, str) else content
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScorecardError([f"{source}: not UTF-8: {exc}"]) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScorecardError([f"{source}{line}: not valid YAML: {problem}"]) from None
    reader = _Reader(source)
    card = reader.card(root, hashlib.sha256(raw).hexdigest())
    if reader.errors or card is None:
        raise ScorecardError(reader.errors or [f"{source}: empty scorecard"])
    return card


class _Reader:
    """Walks the composed YAML nodes, so that every error can name its line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[str] = []
        self._constructor = SafeConstructor()

    def error(self, node: Node | None, reason: str) -> None:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        self.errors.append(f"{self.source}{line}: {reason}")

    def scalar(self, node: Node) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except ConstructorError as exc:
            self.error(node, f"cannot read value: {exc.problem}")
            return None

    def mapping(self, node: Node, what: str, allowed: set[str]) -> dict[str, Node] | None:
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping (key: value)")
            return None
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if key is None:
                self.error(key_node, f"{what}: keys must be plain names")
            elif key in out:
                self.error(key_node, f"{what}: {key!r} given twice")
            elif key not in allowed:
                self.error(key_node, f"{what}: unknown key {key!r}{_hint(key, allowed)}")
            else:
                out[key] = value_node
        return out

    def card(self, root: Node | None, sha: str) -> Scorecard | None:
        if root is None:
            self.error(None, "empty file: expected version and items")
            return None
        top = self.mapping(root, "scorecard", _TOP_KEYS)
        if top is None:
            return None
        version = ""
        if "version" not in top:
            self.error(root, "scorecard: missing 'version'")
        else:
            value = self.scalar(top["version"])
            if not isinstance(value, str | int | float) or not _VERSION.match(str(value)):
                self.error(
                    top["version"],
                    "version must be 1-48 letters, digits, '.', '_' or '-' (e.g. store-2026.1)",
                )
            else:
                version = str(value)
        items_node = top.get("items")
        items: list[Item] = []
        if items_node is None:
            self.error(root, "scorecard: missing 'items'")
        elif not isinstance(items_node, SequenceNode) or not items_node.value:
            self.error(items_node, "items must be a non-empty list")
        else:
            seen: dict[str, int] = {}
            for node in items_node.value:
                item = self.item(node, seen)
                if item is not None:
                    items.append(item)
        greetings = self.phrases(top.get("greetings"), "greetings")
        return Scorecard(
            version, sha, tuple(items), self.source, greetings or DEFAULT_GREETING_WORDS
        )

    def phrases(self, node: Node | None, key: str) -> tuple[str, ...]:
        """A list of phrases; each bad one is reported on its own line."""
        if node is None:
            return ()
        if not isinstance(node, SequenceNode) or not node.value:
            self.error(node, f"{key} must be a non-empty list of phrases")
            return ()
        out: list[str] = []
        for item in node.value:
            value = self.scalar(item)
            if not isinstance(value, str) or not value.strip():
                self.error(item, f"{key}: {value!r} is not a phrase")
                continue
            problem = phrase_problem(value.strip())
            if problem:
                self.error(item, f"{key}: {value.strip()!r}: {problem}")
                continue
            out.append(value.strip())
        return tuple(out)

    def item(self, node: Node, seen: dict[str, int]) -> Item | None:
        """One item; ``seen`` maps the ids read so far to their lines."""
        fields = self.mapping(node, "item", _ITEM_KEYS)
        if fields is None:
            return None
        before = len(self.errors)
        for key in ("id", "label", "when"):
            if key not in fields:
                self.error(node, f"item: missing {key!r}")
        item_id = self.text(fields.get("id"), "id")
        if item_id and not _ID.match(item_id):
            self.error(fields["id"], f"id {item_id!r}: lower-case letters, digits and _")
        elif item_id in seen:
            self.error(fields["id"], f"item id {item_id!r} repeats the one on line {seen[item_id]}")
        elif item_id:
            seen[item_id] = node.start_mark.line + 1
        label = self.text(fields.get("label"), "label")
        when = self.text(fields.get("when"), "when")
        clauses: tuple[Clause, ...] = ()
        finding: tuple[FindingFilter, ...] | None = None
        if when and "when" in fields:
            clauses, finding = self.condition(when, fields["when"])
        fatal = self.flag(fields.get("fatal"), "fatal")
        points = self.number(fields.get("points"), "points")
        cap = self.number(fields.get("cap"), "cap")
        per = self.text(fields.get("per"), "per") if "per" in fields else "once"
        if fatal:
            if "points" in fields:
                self.error(fields["points"], "points: a fatal item sets the score to 0; remove it")
            if "cap" in fields:
                self.error(fields["cap"], "cap: a fatal item sets the score to 0; remove it")
        elif "points" not in fields:
            self.error(node, "item: missing 'points' (or 'fatal: true')")
        if per not in ("once", "finding") and per not in METRIC_NAMES:
            self.error(
                fields.get("per"),
                f"per {per!r}: 'once', 'finding' or a numeric metric{_hint(per, METRIC_NAMES)}",
            )
        elif per in BOOL_METRICS:
            self.error(fields.get("per"), f"per {per!r}: a yes/no metric cannot be counted")
        elif per == "finding" and finding is None and when:
            self.error(fields.get("per"), "per finding: 'when' has no finding clause")
        if cap is not None:
            if per == "once":
                self.error(fields["cap"], "cap: only meaningful with per (finding or a metric)")
            elif points is not None and cap < points:
                self.error(fields["cap"], f"cap {_num(cap)} is less than points {_num(points)}")
        kinds = self.kinds(fields.get("kinds"))
        if len(self.errors) > before:
            return None
        return Item(
            id=item_id,
            label=label,
            when=when,
            clauses=clauses,
            finding=finding,
            points=points or 0.0,
            per=per,
            cap=cap,
            fatal=fatal,
            kinds=kinds,
            line=node.start_mark.line + 1,
        )

    def text(self, node: Node | None, key: str) -> str:
        if node is None:
            return ""
        value = self.scalar(node)
        if not isinstance(value, str) or not value.strip():
            self.error(node, f"{key} must be non-empty text")
            return ""
        return value.strip()

    def flag(self, node: Node | None, key: str) -> bool:
        if node is None:
            return False
        value = self.scalar(node)
        if not isinstance(value, bool):
            self.error(node, f"{key} must be true or false")
            return False
        return value

    def number(self, node: Node | None, key: str) -> float | None:
        if node is None:
            return None
        value = self.scalar(node)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(node, f"{key} must be a number, not {value!r}")
            return None
        if value < 0:
            self.error(node, f"{key} {value} is negative: give the points to deduct")
        elif value == 0:
            self.error(node, f"{key} is 0: deduct something or remove the item")
        elif value > MAX_SCORE:
            self.error(node, f"{key} {value} exceeds {MAX_SCORE:g}: use fatal: true to zero")
        return float(value)

    def kinds(self, node: Node | None) -> frozenset[str] | None:
        if node is None:
            return None
        value = self.scalar(node)
        if not isinstance(value, list) or not value or not all(isinstance(k, str) for k in value):
            self.error(node, "kinds must be a list such as [single, room]")
            return None
        unknown = sorted(set(value) - KINDS)
        if unknown:
            self.error(
                node, f"kinds: unknown {', '.join(unknown)} (use {', '.join(sorted(KINDS))})"
            )
        return frozenset(value)

    # ----------------------------------------------------------------------- conditions

    def condition(
        self, when: str, node: Node
    ) -> tuple[tuple[Clause, ...], tuple[FindingFilter, ...] | None]:
        clauses: list[Clause] = []
        finding: tuple[FindingFilter, ...] | None = None
        for part in re.split(r"\s+and\s+", when.strip()):
            words = part.split(None, 1)
            head = words[0] if words else ""
            if head == "finding":
                if finding is not None:
                    self.error(node, "when: only one 'finding' clause per item")
                finding = self.finding(words[1] if len(words) > 1 else "", node)
            elif head == "max":
                clause = self.score_clause(words[1] if len(words) > 1 else "", node)
                if clause:
                    clauses.append(clause)
            else:
                clause = self.metric_clause(part, node)
                if clause:
                    clauses.append(clause)
        return tuple(clauses), finding

    def metric_clause(self, text: str, node: Node) -> Clause | None:
        negated = re.fullmatch(r"not\s+(\w+)", text)
        bare = re.fullmatch(r"\w+", text)
        if negated or bare:
            name = negated[1] if negated else text
            if not self.known_metric(name, node):
                return None
            if name not in BOOL_METRICS:
                self.error(node, f"when: {name} is a number: compare it, e.g. {name} > 0")
                return None
            return Clause("metric", name, "==", not negated)
        parsed = self.comparison(text, node)
        if parsed is None:
            return None
        name, op, raw = parsed
        if not self.known_metric(name, node):
            return None
        if name in BOOL_METRICS:
            if op not in ("==", "!=") or raw.lower() not in ("true", "false"):
                self.error(node, f"when: {name} is true or false: write {name} == false")
                return None
            return Clause("metric", name, op, raw.lower() == "true")
        value = _float(raw)
        if value is None:
            self.error(node, f"when: {name} {op} {raw!r}: {raw!r} is not a number")
            return None
        return Clause("metric", name, op, value)

    def score_clause(self, text: str, node: Node) -> Clause | None:
        parsed = self.comparison(text, node)
        if parsed is None:
            return None
        name, op, raw = parsed
        if name not in SCORE_KEYS:
            known = ", ".join(sorted(SCORE_KEYS))
            self.error(node, f"when: unknown classifier score {name!r} (known: {known})")
            return None
        value = _float(raw)
        if value is None or not 0 <= value <= 1:
            self.error(node, f"when: max {name} {op} {raw}: a score is a number from 0 to 1")
            return None
        return Clause("score", name, op, value)

    def finding(self, text: str, node: Node) -> tuple[FindingFilter, ...] | None:
        filters: list[FindingFilter] = []
        parts = [p.strip() for p in re.split(r"[,，]", text) if p.strip()]
        if not parts:
            self.error(node, "when: 'finding' needs filters, e.g. finding category == privacy")
            return None
        for part in parts:
            parsed = self.comparison(part, node)
            if parsed is None:
                continue
            name, op, value = parsed
            if name not in ("category", "rule", "severity", "role"):
                self.error(
                    node,
                    f"when: finding has no field {name!r} (use category, rule, severity, role)",
                )
                continue
            if name != "severity" and op not in ("==", "!="):
                self.error(node, f"when: finding {name} compares with == or != only, not {op}")
                continue
            if name == "severity" and value not in SEVERITY_RANK:
                self.error(node, f"when: unknown severity {value!r} (low, medium, high, critical)")
                continue
            if name == "role" and value not in ROLES:
                self.error(node, f"when: unknown role {value!r} (staff, customer, ...)")
                continue
            if name == "category" and value not in CATEGORIES:
                hint = _hint(value, CATEGORIES) or f" (known: {', '.join(sorted(CATEGORIES))})"
                self.error(node, f"when: unknown finding category {value!r}{hint}")
                continue
            if name == "rule" and not re.fullmatch(r"[a-z*][a-z0-9_*]*\.[a-z0-9_*]+", value):
                self.error(node, f"when: rule {value!r} is not <category>.<slug>")
                continue
            filters.append(FindingFilter(name, op, value))  # type: ignore[arg-type]
        return tuple(filters)

    def comparison(self, text: str, node: Node) -> tuple[str, Op, str] | None:
        match = _COMPARISON.match(text.strip())
        if not match:
            self.error(node, f"when: cannot read {text.strip()!r}: expected <name> <op> <value>")
            return None
        name, op, value = match.groups()
        if op == "=":
            self.error(node, f"when: bad operator '=' in {text.strip()!r}: use ==")
            return None
        return name, op, value.strip().strip("'\"")  # type: ignore[return-value]

    def known_metric(self, name: str, node: Node) -> bool:
        if name in METRIC_NAMES:
            return True
        self.error(node, f"when: unknown metric {name!r}{_hint(name, METRIC_NAMES)}")
        return False


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def score_values(result: ScoreResult, metrics: ConversationMetrics) -> dict[str, Any]:
    """The columns of a ``Score`` row; ``metrics`` also keeps ``fatal`` for the rollups."""
    return {
        "score": result.score,
        "deductions": result.deductions_json(),
        "metrics": {**metrics.to_json(), "fatal": result.fatal},
    }
