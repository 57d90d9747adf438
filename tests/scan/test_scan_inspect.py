"""``inspect_stream``: the ``audit inspect`` JSON-lines contract."""

from __future__ import annotations

import io
import json
from pathlib import Path

from audit.scan.inspect import InspectStats, inspect_stream
from audit.scan.scanner import Scanner

DEFAULT_LISTS = Path(__file__).resolve().parents[2] / "wordlists"
SCANNER = Scanner.from_directory(DEFAULT_LISTS)


def run(lines: list[str], **kwargs: object) -> tuple[list[dict[str, object]], InspectStats, str]:
    out = io.StringIO()
    stats = inspect_stream(lines, out, SCANNER, **kwargs)  # type: ignore[arg-type]
    raw = out.getvalue()
    return [json.loads(line) for line in raw.splitlines()], stats, raw


def test_when_lines_are_good_then_each_gets_its_findings_in_order() -> None:
    lines = [
        '{"id": "m1", "text": "加我vx", "role": "staff"}\n',
        '{"id": 2, "text": "我要打12315投诉", "role": "customer"}\n',
        '{"id": "m3", "text": "您好", "role": "staff"}\n',
    ]

    records, stats, _ = run(lines)

    assert records == [
        {
            "id": "m1",
            "findings": [
                {
                    "category": "diversion",
                    "rule": "diversion.jia_wo_wei_xin",
                    "severity": "high",
                    "start": 0,
                    "end": 4,
                    "matched": "加我vx",
                    "score": 0.9,
                    "explanation": "term 加我微信 (variant 加我vx)",
                    "technique": "variant",
                }
            ],
            "scores": {},
        },
        {
            "id": 2,
            "findings": [
                {
                    "category": "complaint",
                    "rule": "complaint.12315",
                    "severity": "high",
                    "start": 2,
                    "end": 8,
                    "matched": "打12315",
                    "score": 0.9,
                    "explanation": "term 12315 (variant 打12315)",
                    "technique": "variant",
                },
                {
                    "category": "complaint",
                    "rule": "complaint.tou_su",
                    "severity": "medium",
                    "start": 8,
                    "end": 10,
                    "matched": "投诉",
                    "score": 1.0,
                    "explanation": "term 投诉",
                    "technique": "exact",
                },
            ],
            "scores": {},
        },
        {"id": "m3", "findings": [], "scores": {}},
    ]
    assert stats == InspectStats(ok=3, errors=0, findings=3)


def test_when_output_is_written_then_chinese_is_not_escaped() -> None:
    _, _, raw = run(['{"id": "a", "text": "傻逼"}'])

    assert '"matched": "傻逼"' in raw
    assert "\\u" not in raw


def test_when_lines_are_bad_then_each_gets_an_error_and_the_rest_go_on() -> None:
    lines = [
        '{"id": "ok1", "text": "你好"}\n',
        "{not json\n",
        "\n",
        '{"id": "m4", "role": "staff"}\n',
        '{"id": "m5", "text": 42}\n',
        '["id", "text"]\n',
        '{"id": "m7", "text": "你好", "role": "robot"}\n',
        '{"text": "傻逼"}\n',
    ]

    records, stats, _ = run(lines)

    assert records == [
        {"id": "ok1", "findings": [], "scores": {}},
        {"id": None, "error": "line 2: invalid JSON: Expecting property name enclosed in double "
         "quotes (column 2)"},
        {"id": "m4", "error": "line 4: missing 'text'"},
        {"id": "m5", "error": "line 5: 'text' must be a string"},
        {"id": None, "error": "line 6: expected a JSON object"},
        {"id": "m7", "error": "line 7: unknown role 'robot' (expected 'staff' or 'customer')"},
        {
            "id": None,
            "findings": [
                {
                    "category": "abuse",
                    "rule": "abuse.sha_bi",
                    "severity": "high",
                    "start": 0,
                    "end": 2,
                    "matched": "傻逼",
                    "score": 1.0,
                    "explanation": "term 傻逼",
                    "technique": "exact",
                }
            ],
            "scores": {},
        },
    ]  # fmt: skip
    assert stats == InspectStats(ok=2, errors=5, findings=1)


def test_when_scorers_are_given_then_each_line_gets_their_scores() -> None:
    seen: list[tuple[str, str | None]] = []

    def angry(text: str, role: str | None) -> float:
        seen.append((text, role))
        return 0.75 if "投诉" in text else 0.125

    def constant(text: str, role: str | None) -> float:
        return 0.5

    records, stats, _ = run(
        ['{"id": 1, "text": "我要投诉", "role": "customer"}', '{"id": 2, "text": "好的"}'],
        scorers={"angry": angry, "constant": constant},
    )

    assert [(r["id"], r["scores"]) for r in records] == [
        (1, {"angry": 0.75, "constant": 0.5}),
        (2, {"angry": 0.125, "constant": 0.5}),
    ]
    assert seen == [("我要投诉", "customer"), ("好的", None)]
    assert stats == InspectStats(ok=2, errors=0, findings=1)


def test_when_input_is_empty_then_nothing_is_written() -> None:
    records, stats, raw = run(["", "  \n"])

    assert (records, stats, raw) == ([], InspectStats(ok=0, errors=0, findings=0), "")
