"""``audit inspect`` from the scan cache (parsed word lists, compiled classifiers) prints what
it prints with everything loaded afresh, and reads an edited word list afresh."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from audit.config import load_settings
from audit.pipeline import load_classifiers, load_scanner
from audit.resources import SOURCE_ROOT
from audit.scan.inspect import inspect_stream

LINES = [
    {"id": 1, "text": "加我微 信 13800138000", "role": "staff"},
    {"id": 2, "text": "我要去12315投诉你们，你们太差劲了", "role": "customer"},
    {"id": 3, "text": "说了多少遍了，自己看", "role": "staff"},
    {"id": 4, "text": "走我自己的号，私下找我", "role": None},
    {"id": 5, "text": "1-" * 3000 + "加我微信", "role": "staff"},
    {"id": 6, "text": "您好，请问有什么可以帮您", "role": "staff"},
    {"id": "bad", "text": 5},
]


def _input() -> str:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in LINES)


def _cli(cache: Path, wordlists: Path | None = None) -> str:
    env = {**os.environ, "AUDIT_SCAN_CACHE": str(cache)}
    env.pop("AUDIT_CONFIG", None)
    if wordlists is not None:
        env["AUDIT_SCAN__WORDLISTS"] = str(wordlists)
    done = subprocess.run(
        [sys.executable, "-m", "audit", "inspect"],
        input=_input(), capture_output=True, text=True, env=env, cwd=SOURCE_ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _afresh(wordlists: Path | None = None) -> str:
    overrides = {"scan": {"wordlists": str(wordlists)}} if wordlists else {}
    settings = load_settings(None, environ={}, overrides=overrides)
    scorers = load_classifiers(settings)
    assert scorers is not None
    out = io.StringIO()
    inspect_stream(
        _input().splitlines(keepends=True),
        out,
        load_scanner(settings),
        classify=scorers.score,
        detect=scorers.detect_many,
    )
    return out.getvalue()


def test_inspect_from_the_cache_prints_what_a_fresh_load_prints(tmp_path: Path) -> None:
    expected = _afresh()
    cold = _cli(tmp_path / "cache")
    kept = {p.name.split("-")[0] for p in (tmp_path / "cache").iterdir()}
    assert {"wordlists", "scorers"} <= kept
    warm = _cli(tmp_path / "cache")
    assert cold == expected and warm == expected
    records = [json.loads(line) for line in warm.splitlines()]
    assert [r["id"] for r in records] == [1, 2, 3, 4, 5, 6, "bad"]
    assert records[0]["findings"] and records[2]["scores"]["staff_discourtesy"] > 0.5
    assert "error" in records[-1]


def test_an_edited_word_list_is_read_afresh(tmp_path: Path) -> None:
    lists = tmp_path / "wordlists"
    shutil.copytree(SOURCE_ROOT / "wordlists", lists)
    cache = tmp_path / "cache"
    before = _cli(cache, lists)
    assert before == _afresh(lists)
    with (lists / "abuse.txt").open("a", encoding="utf-8") as fh:
        fh.write("\n请问有什么可以帮\n")
    after = _cli(cache, lists)
    assert after == _afresh(lists) and after != before
    assert any(
        f["matched"] == "请问有什么可以帮" for f in json.loads(after.splitlines()[5])["findings"]
    )
