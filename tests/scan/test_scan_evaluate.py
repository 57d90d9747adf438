"""The evaluation set and evaluate(): the scanner must stay at least this good on it."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import unicodedata
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import pytest
from wordlist_dirs import write_lists

from audit.scan.evaluate import (
    CLEAN_TAGS,
    DEFAULT_HALVES,
    VIOLATION_CUES,
    VIOLATION_TECHNIQUES,
    EvalMessage,
    EvalSetError,
    evaluate,
    load_eval_set,
    parse_marked,
    score_messages,
)
from audit.scan.finding import Finding
from audit.scan.scanner import Scanner
from audit.scan.wordlist import CATEGORIES
from audit.store.models import Severity

ROOT = Path(__file__).resolve().parents[2]
EVAL_DIR = ROOT / "tests" / "data" / "eval"
EVAL_SET = EVAL_DIR / "messages.jsonl"
SCANNER = Scanner.from_directory(ROOT / "wordlists")

# Set a little below what the lists reached when they were last tuned (see report.format()).
THRESHOLDS: dict[str, tuple[float, float]] = {  # category: (precision, recall)
    "privacy": (0.95, 0.95),
    "diversion": (0.93, 0.97),
    "promise": (0.95, 0.97),
    "abuse": (0.94, 0.97),
    "complaint": (0.92, 0.97),
    "fraud": (0.95, 0.97),
    "illegal": (0.95, 0.97),
    "overall": (0.96, 0.98),
}


@pytest.fixture(scope="module")
def report():  # type: ignore[no-untyped-def]
    return evaluate(SCANNER, EVAL_SET)


def test_the_set_is_big_enough_and_covers_every_category() -> None:
    messages = load_eval_set(EVAL_SET)

    assert len(messages) >= 300
    for category in CATEGORIES:
        assert sum(x.category == category for m in messages for x in m.labels) >= 25
    assert sum(not m.labels for m in messages) >= 100  # clean messages and look-alikes


def _load_build(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"eval_build_{path.parent.name}", path)
    assert spec and spec.loader
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build


def test_the_jsonl_is_built_from_the_hand_written_source() -> None:
    build = _load_build(EVAL_DIR / "build.py")

    assert EVAL_SET.read_text(encoding="utf-8") == build.render(build.build()), (
        "messages.jsonl is stale: run python tests/data/eval/build.py"
    )


@pytest.mark.parametrize("category", [*CATEGORIES, "overall"])
def test_precision_and_recall_stay_above_their_thresholds(report, category: str) -> None:  # type: ignore[no-untyped-def]
    score = report.overall if category == "overall" else report.category(category)
    precision, recall = THRESHOLDS[category]

    assert score.precision >= precision, report.format()
    assert score.recall >= recall, report.format()


def test_report_formats_for_the_terminal_and_as_json(report) -> None:  # type: ignore[no-untyped-def]
    text = report.format()
    data = json.loads(json.dumps(report.as_dict()))

    assert "category" in text and "overall" in text and "diversion" in text
    assert set(data["categories"]) == set(CATEGORIES)
    assert data["messages"] == report.messages
    overall = report.overall
    assert data["overall"] == {
        "category": "overall",
        "labels": overall.labels,
        "found": overall.found,
        "findings": overall.findings,
        "correct": overall.correct,
        "precision": round(overall.correct / overall.findings, 4),
        "recall": round(overall.found / overall.labels, 4),
    }
    assert overall.labels == sum(data["categories"][c]["labels"] for c in CATEGORIES)


def test_when_a_line_is_marked_then_labels_point_at_the_words() -> None:
    message = parse_marked("staff\t先[[diversion|加我vx]]，电话[[privacy|138]]", "m1")

    assert message.text == "先加我vx，电话138"
    assert [(x.category, message.text[x.start : x.end]) for x in message.labels] == [
        ("diversion", "加我vx"),
        ("privacy", "138"),
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("robot\t你好", "expected '<staff|customer><TAB><text>'"),
        ("staff\t[[spam|买]]", "unknown category 'spam'"),
        ("staff\t[[abuse|傻", "unbalanced"),
    ],
)
def test_when_a_marked_line_is_bad_then_it_says_why(line: str, reason: str) -> None:
    with pytest.raises(EvalSetError, match=reason):
        parse_marked(line, "m1")


def test_when_a_label_is_outside_the_text_then_loading_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(
        '{"id": "a", "text": "你好", "role": "staff", "labels": []}\n'
        '{"id": "b", "text": "你好", "role": "staff", '
        '"labels": [{"category": "abuse", "start": 0, "end": 9}]}\n',
        encoding="utf-8",
    )

    with pytest.raises(EvalSetError, match=f"{path}:2: label"):
        load_eval_set(path)


def test_when_a_downgraded_hit_is_all_there_is_then_it_does_not_count(tmp_path: Path) -> None:
    lists = write_lists(tmp_path / "lists", {"illegal.txt": "口交\n"})
    path = tmp_path / "set.jsonl"
    path.write_text(
        '{"id": "a", "text": "路口交通", "role": "customer", "labels": []}\n', encoding="utf-8"
    )

    result = evaluate(Scanner.from_directory(lists, categories=()), path)

    assert result.category("illegal").findings == 0


# ----------------------------------------------------------------- sets v2, v3 and context

# v2 and v3 are split into tuning and test halves; the context set (clean messages using the
# listed kinds of words innocently, violations next to words that look like they cancel them)
# into train and dev halves, to fit and compare context judgement on.
SPLIT_SETS = {name: _load_build(EVAL_DIR / name / "build.py") for name in ("v2", "v3", "context")}
SPLIT_MESSAGES = {name: build.build() for name, build in SPLIT_SETS.items()}
each_split_set = pytest.mark.parametrize("name", sorted(SPLIT_SETS))
HALVES = ("tuning.jsonl", "test.jsonl")


def test_audit_eval_measures_both_halves_of_every_split_set_by_default() -> None:
    expected = {EVAL_DIR / name / half for name in ("v2", "v3") for half in HALVES}
    assert {ROOT / path for path in DEFAULT_HALVES} == expected
    assert all((ROOT / path).is_file() for path in DEFAULT_HALVES)


@each_split_set
def test_halves_are_exactly_what_build_py_produces(name: str) -> None:
    directory = EVAL_DIR / name
    for file, text in SPLIT_SETS[name].outputs().items():
        assert (directory / file).read_text(encoding="utf-8") == text, (
            f"{name}/{file} differs from build.py's output: the split is made once, never changes"
        )
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    source = (directory / manifest["source"]["file"]).read_bytes()
    assert hashlib.sha256(source).hexdigest() == manifest["source"]["sha256"]
    for half, entry in manifest["halves"].items():
        data = (directory / f"{half}.jsonl").read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]


@each_split_set
def test_split_is_seeded_disjoint_complete_and_stratified(name: str) -> None:
    build, messages = SPLIT_SETS[name], SPLIT_MESSAGES[name]
    halves = build.split(messages)
    first, second = build.SET.halves
    tuning = [m.id for m in halves[first]]
    test = [m.id for m in halves[second]]

    assert build.split(messages) == halves  # the same seed gives the same halves
    assert build.split(messages, seed=1) != halves  # and the seed is what decides them
    assert not set(tuning) & set(test)
    assert sorted(tuning + test) == sorted(m.id for m in messages)
    assert abs(len(tuning) - len(test)) <= 1
    per_half = {h: Counter(build.stratum(m) for m in halves[h]) for h in halves}
    for key in per_half[first] | per_half[second]:
        assert abs(per_half[first][key] - per_half[second][key]) <= 1, key
    directory = EVAL_DIR / name
    loaded = [
        *load_eval_set(directory / f"{first}.jsonl"),
        *load_eval_set(directory / f"{second}.jsonl"),
    ]
    assert sorted(loaded, key=lambda m: m.id) == sorted(messages, key=lambda m: m.id)


class _Coverage(NamedTuple):
    """The least a set holds (and the most of its violations that may be tagged plain)."""

    messages: int
    violations: int
    clean: int
    per_category: int  # messages whose first mark is of the category
    per_technique: int
    plain_share: float
    per_clean_tag: int
    per_cue: int = 0  # violations written next to each kind of cue that does not cancel them


_COVERAGE = {
    "v2": _Coverage(650, 400, 220, 45, 12, 0.25, 15),
    "v3": _Coverage(640, 400, 240, 60, 15, 0.15, 20),
    "context": _Coverage(800, 300, 500, 45, 1, 0.5, 50, per_cue=14),
}


@each_split_set
def test_covers_every_category_technique_and_clean_tag(name: str) -> None:
    least = _COVERAGE[name]
    messages = SPLIT_MESSAGES[name]
    violations = [m for m in messages if m.labels]
    clean = [m for m in messages if not m.labels]
    first = Counter(m.labels[0].category for m in violations)
    techniques = Counter(t for m in violations for t in m.techniques)
    clean_tags = Counter(t for m in clean for t in m.techniques)

    assert len(messages) >= least.messages and len(violations) >= least.violations
    assert len(clean) >= least.clean
    assert all(first[c] >= least.per_category for c in CATEGORIES), first
    assert all(techniques[t] >= least.per_technique for t in VIOLATION_TECHNIQUES), techniques
    assert techniques["plain"] <= least.plain_share * len(violations)
    assert all(clean_tags[t] >= least.per_clean_tag for t in CLEAN_TAGS), clean_tags
    assert all(techniques[t] >= least.per_cue for t in VIOLATION_CUES), techniques
    assert {m.role for m in messages} == {"staff", "customer"}


@each_split_set
def test_labels_sit_on_the_marked_words(name: str) -> None:
    messages = SPLIT_MESSAGES[name]
    by_id = {m.id: m for m in messages}
    source = (EVAL_DIR / name / "messages.txt").read_text(encoding="utf-8").splitlines()
    checked = 0
    for number, line in enumerate(source, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        message = by_id[SPLIT_SETS[name].SET.ident.format(number)]
        marked = re.findall(r"\[\[([a-z]+)\|(.+?)\]\]", line)
        spans = [(x.category, message.text[x.start : x.end]) for x in message.labels]
        assert spans == marked, line
        assert "[[" not in message.text
        checked += len(marked)
    assert checked == sum(len(m.labels) for m in messages)


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _valid_number(digits: str) -> bool:
    """A mainland mobile, a GB 11643 resident ID or a Luhn-valid card number."""
    if len(digits) == 11:
        return re.fullmatch(r"1[3-9]\d{9}", digits) is not None
    if len(digits) == 18:
        total = sum(int(d) * w for d, w in zip(digits[:17], _ID_WEIGHTS, strict=True))
        return "10X98765432"[total % 11] == digits[17].upper()
    if len(digits) in (16, 19):
        total = 0
        for i, ch in enumerate(reversed(digits)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        return total % 10 == 0
    return False


_LOOKALIKE_DIGITS = str.maketrans("Oo〇lI|幺", "0001111")


def _digits(words: str) -> str:
    """The digits a reader sees in a written-out number: ①, ⒈, ㈠, 一, full-width, O for 0."""
    out = []
    for ch in unicodedata.normalize("NFKC", words).translate(_LOOKALIKE_DIGITS):
        if ch in " -.()":
            continue
        value = unicodedata.numeric(ch, -1)
        out.append(str(int(value)) if 0 <= value <= 9 and value == int(value) else ch)
    return "".join(out)


# name: how many privacy marks hold a number
_PRIVACY_NUMBERS = {"v2": 43, "v3": 54, "context": 43}


@each_split_set
def test_personal_numbers_are_valid_looking(name: str) -> None:
    """Every phone, ID and card number shown in a privacy mark, however it is written."""
    checked = []
    for message in SPLIT_MESSAGES[name]:
        for label in message.labels:
            number = re.search(r"\d{10,18}[\dX]", _digits(message.text[label.start : label.end]))
            if label.category == "privacy" and number:
                assert _valid_number(number.group()), (message.id, number.group())
                checked.append(number.group())
    assert len(checked) == _PRIVACY_NUMBERS[name]  # every privacy mark holding a number
    assert {len(d) for d in checked} == {11, 16, 18, 19}


def test_the_number_checks_can_fail() -> None:
    assert not _valid_number("6225887123991528")  # a wrong Luhn digit
    assert not _valid_number("420102200002071296")  # a wrong ID check digit


def test_when_a_line_is_tagged_then_tags_are_read_and_checked() -> None:
    message = parse_marked("staff\tinitials,spacing\t[[diversion|加 v x]]吧", "t1", tagged=True)

    assert message.techniques == ("initials", "spacing")
    assert message.as_dict()["techniques"] == ["initials", "spacing"]
    with pytest.raises(EvalSetError, match="t1: tags ordinary are not all violation tags"):
        parse_marked("staff\tordinary\t[[diversion|加v]]", "t1", tagged=True)
    with pytest.raises(EvalSetError, match="t1: tags pinyin are not all clean tags"):
        parse_marked("staff\tpinyin\t你好", "t1", tagged=True)
    with pytest.raises(EvalSetError, match="<tags><TAB><text>"):
        parse_marked("staff\t你好", "t1", tagged=True)


# --------------------------------------------------------------------------- the computations


class _WithModel:
    """The scanner joined with a stand-in message-level detector: a promise model that fires
    on 补给 without saying where (its span is empty, as a message-level finding may be)."""

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self.version = scanner.version
        self.wordlist_hash = scanner.wordlist_hash

    def scan(self, text: str, role: str | None = None) -> list[Finding]:
        found = self.scanner.scan(text, role)
        if "补给" in text:
            found.append(Finding("promise", "model.promise", Severity.HIGH, 0.9, 0, 0, "", "model"))
        return found


TINY = [
    "staff\tplain\t[[diversion|加我微信]]",
    "staff\tparaphrase\t[[diversion|私下找我]]",
    "staff\tplain,paraphrase\t[[diversion|加我微信]]吧，[[diversion|私下找我]]",
    "customer\tlookalike\t想表扬师傅",
    "customer\tnumber,question\t订单123到了吗",
    "staff\tquestion\t要加我微信吗",  # a staff offer put as a question is still one
    "staff\tparaphrase\t您放心，[[promise|到时候我自己补给您]]",
]


@pytest.fixture(scope="module")
def tiny_scanner(tmp_path_factory: pytest.TempPathFactory) -> _WithModel:
    lists = write_lists(
        tmp_path_factory.mktemp("lists"), {"diversion.txt": "加我微信\n", "complaint.txt": "表扬\n"}
    )
    return _WithModel(Scanner.from_directory(lists))


def _tiny() -> list[EvalMessage]:
    return [parse_marked(line, f"t{n}", tagged=True) for n, line in enumerate(TINY, start=1)]


def test_per_technique_recall_and_false_alarms_on_a_tiny_set(tiny_scanner: _WithModel) -> None:
    report = score_messages(tiny_scanner, _tiny(), "tiny")

    assert report.technique("plain").as_dict() == {
        "technique": "plain", "messages": 2, "labels": 3, "found": 2, "recall": 0.6667
    }  # fmt: skip
    assert report.technique("paraphrase").as_dict() == {
        "technique": "paraphrase", "messages": 3, "labels": 4, "found": 2, "recall": 0.5
    }  # fmt: skip
    assert [t.technique for t in report.techniques] == ["plain", "paraphrase"]
    assert [(a.tag, a.messages, a.alarmed) for a in report.clean_tags] == [
        ("lookalike", 1, 1),
        ("number", 1, 0),
        ("question", 2, 1),
    ]
    assert (report.clean.messages, report.clean.alarmed) == (3, 2)
    assert report.clean.rate == pytest.approx(2 / 3)
    diversion = report.category("diversion")
    assert (diversion.labels, diversion.found, diversion.findings, diversion.correct) == (
        4,
        2,
        3,
        2,
    )
    complaint = report.category("complaint")
    assert (complaint.labels, complaint.findings, complaint.correct) == (0, 1, 0)
    promise = report.category("promise")  # the model's finding covers its whole message
    assert (promise.labels, promise.found, promise.findings, promise.correct) == (1, 1, 1, 1)
    overall = report.overall
    assert (overall.labels, overall.found, overall.findings, overall.correct) == (5, 3, 5, 3)
    assert sorted((m.kind, m.id, m.span) for m in report.misses) == [
        ("false positive", "t4", "表扬"),
        ("false positive", "t6", "加我微信"),
        ("missed", "t2", "私下找我"),
        ("missed", "t3", "私下找我"),
    ]


def test_a_test_half_never_shows_its_errors(tiny_scanner: _WithModel, tmp_path: Path) -> None:
    lines = "".join(json.dumps(m.as_dict(), ensure_ascii=False) + "\n" for m in _tiny())
    (tmp_path / "tuning.jsonl").write_text(lines, encoding="utf-8")
    (tmp_path / "test.jsonl").write_text(lines, encoding="utf-8")

    tuning = evaluate(tiny_scanner, tmp_path / "tuning.jsonl")
    test = evaluate(tiny_scanner, tmp_path / "test.jsonl")

    assert len(tuning.misses) == 4 and not tuning.misses_withheld
    assert test.misses == () and test.misses_withheld
    assert test.overall == tuning.overall and test.techniques == tuning.techniques
    assert "errors withheld" in test.format() and "私下找我" not in test.format()
    data = test.as_dict()
    assert data["misses"] == [] and data["clean"] == {
        "tag": "clean", "messages": 3, "alarmed": 2, "rate": 0.6667
    }  # fmt: skip
    assert data["techniques"]["paraphrase"]["recall"] == 0.5
    assert data["clean_tags"]["question"]["rate"] == 0.5


def test_when_the_set_is_missing_then_the_error_names_it(tmp_path: Path) -> None:
    with pytest.raises(EvalSetError, match=r"none\.jsonl: cannot read the set"):
        load_eval_set(tmp_path / "none.jsonl")


# ------------------------------------------------------------------ the technique probes

PROBES = EVAL_DIR / "probes"


@pytest.mark.parametrize("stem", ["techniques", "holdout"])
def test_the_probe_jsonl_is_built_from_the_hand_written_source(stem: str) -> None:
    build = _load_build(PROBES / "build.py")

    assert (PROBES / f"{stem}.jsonl").read_text(encoding="utf-8") == build.render(
        build.build(stem)
    ), "a probe set is stale: run python tests/data/eval/probes/build.py"


def test_every_technique_probe_is_found_and_the_clean_ones_stay_clean() -> None:
    """The probes of each writing technique on the listed meanings: a generator or a list
    change that loses one of them shows here (two known misses: 人炸 after 个, read as 个人,
    and 私聊我 in a group, which the lists keep for its spaced, evasive forms)."""
    result = evaluate(SCANNER, PROBES / "techniques.jsonl")

    assert result.overall.recall >= 0.99, result.format()
    assert result.clean.rate <= 0.015, result.format()
    assert all(t.recall >= 0.97 for t in result.techniques), result.format()
