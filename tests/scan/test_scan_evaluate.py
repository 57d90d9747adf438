"""The evaluation set and evaluate(): the scanner must stay at least this good on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.scan.evaluate import EvalSetError, evaluate, load_eval_set, parse_marked
from audit.scan.scanner import Scanner
from audit.scan.wordlist import CATEGORIES

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


def test_the_jsonl_is_built_from_the_hand_written_source() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("eval_build", EVAL_DIR / "build.py")
    assert spec and spec.loader
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)

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
    assert 0 <= data["overall"]["precision"] <= 1


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
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "illegal.txt").write_text("口交\n", encoding="utf-8")
    path = tmp_path / "set.jsonl"
    path.write_text(
        '{"id": "a", "text": "路口交通", "role": "customer", "labels": []}\n', encoding="utf-8"
    )

    result = evaluate(Scanner.from_directory(lists, categories=()), path)

    assert result.category("illegal").findings == 0
