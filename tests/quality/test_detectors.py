"""The paraphrase detectors: findings with rule model.<category> from `audit inspect` and the
scan stage (SQLite and PostgreSQL), quiet on ordinary service talk; their seed file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from linecount import lines_run
from sqlalchemy import Engine, select
from text_messages import add_text_messages

from audit.cli import cli
from audit.domain import Severity
from audit.quality import clf_text
from audit.quality.classifiers import Scorers, load_scorers
from audit.quality.clf_data import DataError
from audit.quality.detect_train import read_seeds, read_supervisor
from audit.quality.detectors import CATEGORIES, GENERIC, NEGATED_WEIGHT, _aligned
from audit.quality.sim_messages import ordinary_messages
from audit.scan.evaluate import load_eval_set
from audit.scan.finding import LISTED_SCORE, listed_categories
from audit.scan.finding import Finding as ScanFinding
from audit.scan.scanner import Scanner
from audit.scan.stage import scan_messages
from audit.store.db import session_scope
from audit.store.models import Finding, ScanRun

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
SEEDS = ROOT / "tests" / "data" / "quality" / "detector_examples.txt"
SCANNER = Scanner.from_directory(ROOT / "wordlists")
TUNING = ROOT / "tests" / "data" / "eval" / "v2" / "tuning.jsonl"

# Paraphrases no word list holds, none of them a seed message: (text, role, category).
PARAPHRASES = (
    ("以后别在这里聊了，直接打我自己的手机", "staff", "diversion"),
    ("钱别交到店里，直接转到我个人账户", "staff", "diversion"),
    ("这个套餐一辈子都不涨价，你放心", "staff", "promise"),
    ("这事我要找电视台曝光", "customer", "complaint"),
    ("我要去找你们领导投诉到底", "customer", "complaint"),
    ("手机上刚来的那串数字，您直接打出来给我", "staff", "privacy"),
    ("码是305512，你那边输一下", "customer", "privacy"),
    ("周末有个牌局，输赢红包结，来不来", "staff", "illegal"),
    ("这台机器放车里开一圈，附近的手机都能收到广告", "staff", "illegal"),
    ("有没有那种能冒充别人号码打电话的软件，卖我一个", "customer", "illegal"),
)
# Ordinary service talk with the look-alike words: no model finding.
ORDINARY = (
    ("您的个人账户余额还有三十元", "staff"),
    ("我在店里，您到了直接找我", "staff"),
    ("价格以合同为准，有调整会提前通知", "staff"),
    ("办卡需要本人带身份证原件", "staff"),
    ("请问店长今天在吗，我想办个宽带", "customer"),
    ("上次的问题已经解决了，谢谢", "customer"),
    ("验证码请您在页面上自己输入，不用告诉我", "staff"),
    ("最近老收到卖彩票的垃圾短信，能拦截吗", "customer"),
    ("打游戏上分卡的话，可以升级电竞宽带", "staff"),
)
# The same words said, and negated or reported: (role, category, said, excused); none a seed.
CONTEXT = (
    ("staff", "diversion", "以后别在这里聊了，直接打我自己的手机",
     "公司规定不能让您以后别在这里聊了直接打我自己的手机"),
    ("staff", "diversion", "私下找我，价格好商量", "不要私下找我，价格好商量"),
    ("staff", "promise", "稳赚不赔，您放心", "不存在稳赚不赔，您放心"),
    ("customer", "complaint", "我要去找你们领导投诉到底", "我不会去找你们领导投诉到底"),
    ("customer", "abuse", "你们客服都是一群吃白饭的", "我老公说你们客服都是一群吃白饭的"),
    ("staff", "privacy", "您把那串数字复制给我，我这边帮您点确认",
     "不用把那串数字复制给我，您在页面上自己点确认"),
    ("staff", "illegal", "今晚开个局，一把三百，来的带现金",
     "我们从不组织今晚开个局这种事，一把三百的更没有"),
)  # fmt: skip


@pytest.fixture(scope="module")
def scorers() -> Scorers:
    return load_scorers(MODELS)


def test_test_messages_are_not_seeds() -> None:
    seeds = {s.text for s in read_seeds(SEEDS)}
    assert not seeds & ({t for t, _, _ in PARAPHRASES} | {t for t, _ in ORDINARY})
    assert not seeds & {t for _, _, *pair in CONTEXT for t in pair}


def inspect(lines: list[dict[str, object]]) -> list[dict[str, Any]]:
    stdin = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines)
    result = CliRunner().invoke(cli, ["inspect"], input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def test_when_paraphrase_inspected_then_model_finding_with_score(scorers: Scorers) -> None:
    out = inspect([{"id": i, "text": t, "role": r} for i, (t, r, _) in enumerate(PARAPHRASES)])
    judged = 0
    for (text, _, category), record in zip(PARAPHRASES, out, strict=True):
        models = [f for f in record["findings"] if f["rule"].startswith("model.")]
        listed = {f["category"] for f in record["findings"] if not f["rule"].startswith("model.")}
        if category in listed:  # the word lists found it: the detector stays out
            assert all(f["category"] != category for f in models), record
            continue
        (found,) = [f for f in models if f["category"] == category]
        threshold = scorers.metadata["detectors"]["thresholds"][category]
        assert found == {
            "category": category,
            "rule": f"model.{category}",
            "severity": "medium",
            "start": 0,
            "end": len(text),
            "matched": text,
            "score": found["score"],
            "explanation": f"model {category} p={found['score']:.2f}",
            "technique": "exact",
        }
        assert threshold <= found["score"] <= 1.0
        judged += 1
    assert judged >= 3  # paraphrases no list holds, or the test judges nothing


def test_when_ordinary_talk_inspected_then_no_model_finding() -> None:
    out = inspect([{"id": i, "text": t, "role": r} for i, (t, r) in enumerate(ORDINARY)])
    for record in out:
        assert [f for f in record["findings"] if f["rule"].startswith("model.")] == [], record


def test_detectors_read_only_their_roles(scorers: Scorers) -> None:
    text = "以后别在这里聊了，直接打我自己的手机"
    (as_staff,), (as_customer,) = (scorers.detect_many([text], [r]) for r in ("staff", "customer"))
    assert "diversion" in {f.category for f in as_staff}
    assert "diversion" not in {f.category for f in as_customer}


def test_ordinary_simulated_chats_stay_quiet(scorers: Scorers) -> None:
    rows = ordinary_messages(404)
    found = scorers.detect_many([m.text for m in rows], [m.role for m in rows])
    hits = sum(1 for f in found if f)
    assert hits <= len(rows) // 1000, [m.text for m, f in zip(rows, found, strict=True) if f]


def test_scan_stage_stores_model_findings_and_versions(engine: Engine, scorers: Scorers) -> None:
    rows = [(t, r) for t, r, _ in PARAPHRASES] + list(ORDINARY)
    ids = add_text_messages(engine, rows, "det")
    expected = {
        (i, f.rule, f.score, f.start, f.end, f.explanation)
        for i, found in zip(ids, scorers.detect_many(
            [t for t, _ in rows], [r for _, r in rows],
            [{f.category for f in SCANNER.scan(t, r)} for t, r in rows],
        ), strict=True)
        for f in found
    }  # fmt: skip
    assert {rule for _, rule, *_ in expected} >= {f"model.{c}" for _, _, c in PARAPHRASES} - {
        f"model.{c}" for t, r, c in PARAPHRASES if c in {f.category for f in SCANNER.scan(t, r)}
    }
    stats = scan_messages(engine, SCANNER, scorers=scorers, batch_size=4)
    with session_scope(engine) as s:
        stored = {
            (f.message_id, f.rule, f.score, f.start, f.end, f.explanation)
            for f in s.scalars(select(Finding).where(Finding.rule.like("model.%")))
        }
        run = s.get(ScanRun, stats.run_id)
        assert run is not None
        assert run.model_versions == scorers.versions
        assert set(run.model_versions) == {"customer_negative", "staff_discourtesy", "detectors"}
    assert stored == expected
    assert not {i for i, *_ in stored} & set(ids[len(PARAPHRASES) :])  # ordinary stays quiet


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[diversion=1 staff]\n", "bad section header"),
        ("[diversion=1 customer d-x]\n", "diversion is detected in staff messages"),
        ("加我\n", "message before the first section header"),
    ],
)
def test_when_seed_file_bad_then_error_names_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "detector_examples.txt"
    path.write_text("# seeds\n" + text, encoding="utf-8")
    with pytest.raises(DataError, match=rf"detector_examples\.txt:2: {message}"):
        read_seeds(path)


def test_supervisor_labels_of_a_category_feed_its_detector(tmp_path: Path) -> None:
    path = tmp_path / "reviews.jsonl"
    rows = [
        {"text": "走我这边的单", "role": "staff", "label": "model.diversion", "value": 1},
        {"text": "加我微信", "role": "staff", "label": "diversion.jia_wo_wei_xin", "value": 0},
        {"text": "我要曝光你们", "role": "customer", "label": "complaint.media", "value": 1},
        {"text": "我自己的号", "role": "customer", "label": "diversion.own", "value": 1},
        {"text": "好的谢谢", "role": "customer", "label": "customer_negative", "value": 0},
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    got = [(s.category, s.value, s.role, s.text) for s in read_supervisor(path)]
    assert got == [
        ("diversion", 1, "staff", "走我这边的单"),
        ("diversion", 0, "staff", "加我微信"),
        ("complaint", 1, "customer", "我要曝光你们"),
    ]  # a customer's diversion is not what the staff-only detector reads


def test_every_category_has_seeds_of_both_values() -> None:
    seeds = read_seeds(SEEDS)
    for category in CATEGORIES:
        values = {s.value for s in seeds if s.category == category}
        assert values == {0, 1}, category


# ------------------------------------------------------ context judgement of model findings


def test_aligned_maps_each_normalized_character_to_its_original() -> None:
    text = "您好 ，我們的ＶＸ是 138 0013  8000哦"
    aligned = _aligned(text)
    assert aligned is not None
    norm, owners = aligned
    assert norm == clf_text.normalize(text) == "你好 ,我们的vx是 0 0 0"
    assert [text[a:b] for a, b in owners] == [
        "您", "好", " ", "，", "我", "們", "的", "Ｖ", "Ｘ", "是", " ", "138", " ", "0013",
        "  ", "8000",
    ]  # fmt: skip


def test_clean_tuning_messages_raise_no_model_finding(scorers: Scorers) -> None:
    """The thresholds were calibrated on them (the model card's "tuning alarms")."""
    clean = [m for m in load_eval_set(TUNING) if not m.labels]
    found = scorers.detect_many([m.text for m in clean], [m.role for m in clean])
    assert [f for f in found if f] == []
    files = {d["path"] for d in scorers.metadata["detectors"]["data"]}
    assert TUNING.name in files


@pytest.mark.parametrize(
    ("role", "category", "said", "excused"),
    CONTEXT,
)
def test_when_a_paraphrase_is_negated_or_reported_then_no_model_finding(
    scorers: Scorers, role: str, category: str, said: str, excused: str
) -> None:
    bank = scorers.detectors
    assert bank is not None
    k = CATEGORIES.index(category)
    said_p, excused_p = bank.predict_proba([said, excused])[:, k]
    # both weigh as the violation: what tells them apart is the context, not the model
    assert min(said_p, excused_p) >= bank.thresholds[category]
    (said_found,), (excused_found,) = (bank.detect_many([t], [role]) for t in (said, excused))
    assert category in {f.category for f in said_found}
    assert category not in {f.category for f in excused_found}


# A disclaimer opening with generic words (这个), and guarantees whose negator is the promise
DISCLAIMER = "这个基金不保本，也不保证收益，请看风险提示"
NEGATED_PROMISES = ("这套餐往后都不会涨价，放心办", "这个卡以后每月都不会多扣钱")


def test_seeds_hold_none_of_the_located_examples() -> None:
    seeds = {s.text for s in read_seeds(SEEDS)}
    assert not seeds & {DISCLAIMER, *NEGATED_PROMISES}


def test_when_generic_words_open_a_disclaimer_then_it_is_located_on_its_words(
    scorers: Scorers,
) -> None:
    bank = scorers.detectors
    assert bank is not None
    located = bank.locate(DISCLAIMER, "promise")
    assert located is not None
    words = DISCLAIMER[slice(*located)]
    assert "保" in words and words[0] not in GENERIC and words[-1] not in GENERIC
    assert bank.detect_many([DISCLAIMER], ["staff"]) == [[]]  # 不 negates what it speaks of


@pytest.mark.parametrize("text", NEGATED_PROMISES)
def test_when_the_negator_is_the_promise_then_model_finding(scorers: Scorers, text: str) -> None:
    bank = scorers.detectors
    assert bank is not None
    located = bank.locate(text, "promise")
    assert located is not None
    # the model weighs 不会涨 / 不会多扣 as the promise: the negator is part of it
    assert bank.negated_weight(text, "promise", located) >= NEGATED_WEIGHT
    assert (
        bank.negated_weight(DISCLAIMER, "promise", bank.locate(DISCLAIMER, "promise") or (0, 0))
        < NEGATED_WEIGHT
    )
    (found,) = bank.detect_many([text], ["staff"])
    assert [f.category for f in found] == ["promise"]


def test_when_a_listed_hit_scores_under_the_cut_then_it_keeps_no_detector_out() -> None:
    def hit(category: str, score: float) -> ScanFinding:
        return ScanFinding(category, f"{category}.x", Severity.HIGH, score, 0, 2, "稳赚", "")

    # a downgraded listed hit (稳|赚钱 crossing a word boundary) leaves room for the detector
    assert listed_categories([hit("promise", 0.36), hit("fraud", 0.9)]) == {"fraud"}
    assert listed_categories([hit("promise", LISTED_SCORE)]) == {"promise"}


def test_when_a_message_normalizes_to_one_character_then_no_model_finding(
    scorers: Scorers,
) -> None:
    texts = ["人呢", "人", "人呢~"]  # 「人呢」 is 人 once its particle is dropped
    assert all(len(clf_text.normalize(t)) == 1 for t in texts)
    for role in ("customer", "staff"):
        assert scorers.detect_many(texts, [role] * len(texts)) == [[], [], []]


def test_a_long_message_is_judged_by_its_beginning_at_a_chat_messages_cost(
    scorers: Scorers,
) -> None:
    """The models read the first MAX_CLASSIFIED characters: the finding is located, judged
    and reported there, and a message ten times as long costs no more."""
    unit = "以后别在这里聊了，直接打我自己的手机。"
    short, long = unit * 200, unit * 2000  # 2,000+ and 20,000+ characters

    def found(text: str) -> list[ScanFinding]:
        return scorers.detect_many([text], ["staff"], [set()])[0]

    head = short[: clf_text.MAX_CLASSIFIED]
    for text in (short, long):
        model = [f for f in found(text) if f.rule == "model.diversion"]
        assert [(f.start, f.end, f.matched) for f in model] == [(0, len(head), head)]
    found(long)  # once, so that lazy loading is not counted
    assert lines_run(lambda: found(long)) <= 1.05 * lines_run(lambda: found(short))
