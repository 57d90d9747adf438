"""The committed classifiers in models/: predictions, held-out quality, and load errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from audit.quality.classifiers import MODEL_NAMES, Scorers, ScorersUnavailable, load_scorers

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
DATA = ROOT / "tests" / "data" / "quality"
# The issue's bar, on the hand-labelled held-out chat messages (not the training reviews).
MIN_ROC_AUC = {"customer_negative": 0.90, "staff_discourtesy": 0.85}


@pytest.fixture(scope="module")
def scorers() -> Scorers:
    return load_scorers(MODELS)


def heldout(name: str) -> tuple[list[str], list[int]]:
    rows = [json.loads(line) for line in (DATA / f"{name}.heldout.jsonl").open(encoding="utf-8")]
    return [r["text"] for r in rows], [r["value"] for r in rows]


@pytest.mark.parametrize(
    ("text", "role", "name", "high"),
    [
        ("你自己看短信", "staff", "staff_discourtesy", True),
        ("说了多少遍了，往上翻", "staff", "staff_discourtesy", True),
        ("这个不归我管", "staff", "staff_discourtesy", True),
        ("爱办不办", "staff", "staff_discourtesy", True),
        ("你怎么连这个都不会", "staff", "staff_discourtesy", True),
        ("說了多少遍了，自己看短信", "staff", "staff_discourtesy", True),  # traditional
        ("您好，很高兴为您服务，有什么可以帮您？", "staff", "staff_discourtesy", False),
        ("抱歉让您久等了，马上帮您查一下", "staff", "staff_discourtesy", False),
        ("已经帮您提交报修，师傅明天上午上门", "staff", "staff_discourtesy", False),
        ("我要投诉你们，乱扣费", "customer", "customer_negative", True),
        ("网速慢得要死，什么破宽带", "customer", "customer_negative", True),
        ("好的，谢谢", "customer", "customer_negative", False),
        ("请问你们店几点开门", "customer", "customer_negative", False),
        ("網路修好了，謝謝師傅", "customer", "customer_negative", False),  # traditional
    ],
)
def test_when_message_is_clear_then_its_model_agrees(
    scorers: Scorers, text: str, role: str, name: str, high: bool
) -> None:
    p = scorers.score(text, role)[name]
    assert (p > 0.7) if high else (p < 0.3), (text, p)


def test_calm_intent_to_leave_ranks_above_ordinary_questions(scorers: Scorers) -> None:
    """Calibrated to a 6% prior, a calm "I'll port out" stays under 0.5 (model card,
    Limitations), but it must still rank above every ordinary question."""
    leaving = scorers.score("合约到期我就携号转网，再也不用你们的了", "customer")
    ordinary = ["好的，谢谢", "请问你们店几点开门", "合约期内能改套餐吗", "我想从别家携号转网过来"]
    assert leaving["customer_negative"] > max(
        scorers.score(t, "customer")["customer_negative"] for t in ordinary
    )


def test_when_role_given_then_only_its_model_scores(scorers: Scorers) -> None:
    assert set(scorers.score("好的", "customer")) == {"customer_negative"}
    assert set(scorers.score("好的", "staff")) == {"staff_discourtesy"}
    assert set(scorers.score("好的", None)) == set(MODEL_NAMES)
    with pytest.raises(ValueError, match="role must be"):
        scorers.score("好的", "bot")


def test_probabilities_are_rounded_and_in_range(scorers: Scorers) -> None:
    texts, _ = heldout("staff_discourtesy")
    for scores in scorers.score_many([*texts, "", "   ", "😀"], [None] * (len(texts) + 3)):
        for p in scores.values():
            assert 0.0 <= p <= 1.0
            assert p == round(p, 4)


def test_score_many_matches_score(scorers: Scorers) -> None:
    texts = ["你自己看短信", "我要投诉", "好的谢谢", "稍等"]
    roles: list[str | None] = ["staff", "customer", None, "staff"]
    assert scorers.score_many(texts, roles) == [
        scorers.score(t, r) for t, r in zip(texts, roles, strict=True)
    ]
    with pytest.raises(ValueError, match="2 texts but 1 roles"):
        scorers.score_many(["a", "b"], ["staff"])


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_heldout_roc_auc_meets_the_bar_and_matches_the_card(scorers: Scorers, name: str) -> None:
    texts, values = heldout(name)
    role = "customer" if name == "customer_negative" else "staff"
    p = [s[name] for s in scorers.score_many(texts, [role] * len(texts))]
    auc = roc_auc_score(values, p)
    assert auc >= MIN_ROC_AUC[name]
    recorded = scorers.metadata[name]["metrics"]["heldout_chat"]
    assert recorded["examples"] == len(texts)
    assert recorded["roc_auc"] == pytest.approx(auc, abs=2e-3)  # scores are rounded here
    card = (MODELS / f"{name}.md").read_text(encoding="utf-8")
    assert scorers.versions[name] in card
    assert f"{recorded['roc_auc']:.4f}" in card


@pytest.fixture
def models_copy(tmp_path: Path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(MODELS, target)
    return target


def test_when_artifact_missing_then_error_names_it(models_copy: Path) -> None:
    (models_copy / "staff_discourtesy.joblib").unlink()
    with pytest.raises(ScorersUnavailable, match=r"staff_discourtesy\.joblib: model file missing"):
        load_scorers(models_copy)


def test_when_models_dir_missing_then_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ScorersUnavailable, match="audit train"):
        load_scorers(tmp_path / "nowhere")


def test_when_artifact_corrupt_then_error_names_it(models_copy: Path) -> None:
    artifact = models_copy / "customer_negative.joblib"
    artifact.write_bytes(artifact.read_bytes()[:1000])
    with pytest.raises(ScorersUnavailable, match=r"customer_negative\.joblib: does not match"):
        load_scorers(models_copy)


def test_when_metadata_corrupt_then_error_names_it(models_copy: Path) -> None:
    (models_copy / "customer_negative.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ScorersUnavailable, match=r"customer_negative\.json: unreadable"):
        load_scorers(models_copy)


def _edit_meta(models_dir: Path, name: str, **changes: object) -> None:
    path = models_dir / f"{name}.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if key == "sklearn":
            meta["environment"]["scikit-learn"] = value
        else:
            meta[key] = value
    path.write_text(json.dumps(meta), encoding="utf-8")


def test_when_trained_with_other_sklearn_then_incompatible(models_copy: Path) -> None:
    _edit_meta(models_copy, "staff_discourtesy", sklearn="0.24.2")
    with pytest.raises(ScorersUnavailable, match=r"trained with scikit-learn 0\.24\.2"):
        load_scorers(models_copy)


def test_when_metadata_from_another_run_then_incompatible(models_copy: Path) -> None:
    _edit_meta(models_copy, "staff_discourtesy", version="000000000000")
    with pytest.raises(ScorersUnavailable, match="version or data hash differ"):
        load_scorers(models_copy)


def test_when_other_format_then_incompatible(models_copy: Path) -> None:
    _edit_meta(models_copy, "customer_negative", format=99)
    with pytest.raises(ScorersUnavailable, match="not format-1 metadata"):
        load_scorers(models_copy)


def test_a_long_message_is_judged_by_its_beginning() -> None:
    """A megabyte-long message costs what a chat message costs: the classifiers read the first
    ``MAX_CLASSIFIED`` characters (the scanner reads everything)."""
    from audit.config import load_settings
    from audit.pipeline import load_classifiers
    from audit.quality.clf_text import MAX_CLASSIFIED

    scorers = load_classifiers(load_settings(None, environ={}, overrides={}))
    assert scorers is not None
    head = "你们这服务太差了，我要退订！" * (MAX_CLASSIFIED // 14 + 1)
    long = head + "谢谢你们，服务很好。" * 100_000
    assert scorers.score(long, "customer") == scorers.score(head[:MAX_CLASSIFIED], "customer")
    assert scorers.score(long, "customer") != scorers.score(long[-MAX_CLASSIFIED:], "customer")
