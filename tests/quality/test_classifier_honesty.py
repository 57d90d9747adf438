"""The committed classifiers judge what a message says, not how it is dressed: counterfactual
pairs, neutral staff talk, and a believable share of unhappy customers in ordinary chats.

None of the neutral messages below is in the training data (``tests/data/quality``); of the
rude ones, only 爱办不办 is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.quality.classifiers import Scorers, load_scorers
from audit.quality.clf_checks import base_rate
from audit.quality.sim_messages import ordinary_messages

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
DATA = ROOT / "tests" / "data" / "quality"
# A seed the model cards do not use, so the bound is checked on fresh simulated chats.
SEED = 303
# Bounds an operator would believe: the simulator's service flows include complaints about
# faults and bills (about one conversation in ten is a complaint), so a few percent of
# customer messages are unhappy; a calibrated model may flag about that many and no more.
MAX_NEGATIVE_MESSAGES = 0.10
MAX_NEGATIVE_CONVERSATIONS = 0.20
MAX_DISCOURTEOUS_MESSAGES = 0.03
MAX_COUNTERFACTUAL_GAP = 0.1

NEUTRAL_STAFF = (
    "注意不要把验证码告诉别人",
    "请在合约期满后再办理降档",
    "记得带上身份证原件再过来",
    "这个月的流量下个月不能再用",
    "办理后第二天才能生效",
    "先把路由器的电源拔了，过一会儿再插上",
)
PARTICLES = ("哦", "呢", "哈", "啦", "~")
POLICY_AND_REFUSALS = (
    "按规定必须本人带身份证到店办理",
    "不好意思，这个优惠只针对新装用户，老用户办不了",
    "抱歉，系统不允许给您改成别人的名字",
    "合约没到期的话，宽带不能提前拆",
    "这个套餐流量不限量，每个月随便用",  # a promise, but not rude
    "这个号码欠费三个月了，要先补缴才能恢复",
    "实在抱歉，这款手机已经停产了，没有货",
)
RUDE = ("你自己看不懂吗", "爱办不办", "烦不烦", "跟你说了八百遍了还问")


@pytest.fixture(scope="module")
def scorers() -> Scorers:
    return load_scorers(MODELS)


def discourtesy(scorers: Scorers, texts: list[str]) -> list[float]:
    return [s["staff_discourtesy"] for s in scorers.score_many(texts, ["staff"] * len(texts))]


def test_training_data_holds_none_of_these_messages() -> None:
    trained = {
        json.loads(line)["text"]
        for name in ("staff_discourtesy.train.jsonl", "customer_negative.train.jsonl")
        for line in (DATA / name).read_text(encoding="utf-8").splitlines()
    }
    assert not trained & {*NEUTRAL_STAFF, *POLICY_AND_REFUSALS}
    assert trained & set(RUDE) == {"爱办不办"}


@pytest.mark.parametrize("text", NEUTRAL_STAFF)
def test_when_polite_pronoun_added_then_score_barely_moves(scorers: Scorers, text: str) -> None:
    plain = text.replace("您", "你")
    polite = "您" + plain if "你" not in plain else plain.replace("你", "您")
    low, high = discourtesy(scorers, [plain, polite])
    assert abs(low - high) < MAX_COUNTERFACTUAL_GAP, (plain, low, polite, high)


@pytest.mark.parametrize("text", NEUTRAL_STAFF)
def test_when_closing_particle_added_then_score_barely_moves(scorers: Scorers, text: str) -> None:
    variants = [text, *(text + p for p in PARTICLES), *(text + p + "。" for p in PARTICLES)]
    scores = discourtesy(scorers, variants)
    assert max(scores) - min(scores) < MAX_COUNTERFACTUAL_GAP, list(
        zip(variants, scores, strict=True)
    )


@pytest.mark.parametrize("text", NEUTRAL_STAFF + POLICY_AND_REFUSALS)
def test_when_staff_message_is_neutral_or_a_polite_refusal_then_low(
    scorers: Scorers, text: str
) -> None:
    assert discourtesy(scorers, [text])[0] < 0.5


@pytest.mark.parametrize("text", RUDE)
def test_when_staff_message_is_rude_then_high_with_or_without_pronoun(
    scorers: Scorers, text: str
) -> None:
    for variant in (text, text.replace("你", "您"), text + "啦"):
        assert discourtesy(scorers, [variant])[0] > 0.7, variant


def test_customer_negative_flags_a_believable_share_of_ordinary_chats(scorers: Scorers) -> None:
    def predict(texts: list[str]):  # type: ignore[no-untyped-def]
        return scorers.pipelines["customer_negative"].predict_proba(texts)[:, 1]

    rate = base_rate(predict, "customer", SEED)
    assert rate.messages > 1500
    assert rate.over_half <= MAX_NEGATIVE_MESSAGES
    assert rate.conversations_over_half <= MAX_NEGATIVE_CONVERSATIONS
    # ... while the clearly unhappy ones of those chats are still caught
    texts = {m.text for m in ordinary_messages(SEED) if m.role == "customer"}
    angry = sorted(t for t in texts if "服务真的太差" in t or "莫名其妙扣了我" in t)
    assert angry and all(
        s["customer_negative"] > 0.5 for s in scorers.score_many(angry, ["customer"] * len(angry))
    )


def test_staff_discourtesy_stays_quiet_on_ordinary_staff_talk(scorers: Scorers) -> None:
    def predict(texts: list[str]):  # type: ignore[no-untyped-def]
        return scorers.pipelines["staff_discourtesy"].predict_proba(texts)[:, 1]

    assert base_rate(predict, "staff", SEED).over_half <= MAX_DISCOURTEOUS_MESSAGES


def test_customer_negative_card_shows_reliability_base_rate_and_out_of_domain(
    scorers: Scorers,
) -> None:
    meta = scorers.metadata["customer_negative"]
    card = (MODELS / "customer_negative.md").read_text(encoding="utf-8")
    checks = meta["checks"]
    assert meta["params"]["prior"] == 0.06
    for bins in checks["reliability"].values():
        assert sum(b["examples"] for b in bins) > 100
        assert sum(b["share"] for b in bins) == pytest.approx(1.0, abs=1e-3)
    assert "| 0.9-1.0 |" in card and "observed positive rate" in card
    assert f"**{checks['base_rate']['over_half']:.1%}**" in card
    assert checks["base_rate"]["over_half"] <= MAX_NEGATIVE_MESSAGES
    assert f"ROC-AUC **{checks['out_of_domain']['roc_auc']:.4f}**" in card
