"""Training of the paraphrase detectors (``audit train``), their thresholds and model card.

Inputs: the hand-written seed messages of ``<data_dir>/detector_examples.txt`` (sections
``[<category>=<0|1> <role> <family>]``, one message per line, validated with line numbers),
the simulator's ordinary messages as negatives (seeds ``SIM_SEEDS``; the model card's
false-alarm figure uses another seed, never trained on), and supervisor labels from
``audit train --with-reviews``: a line labelled with a rule of a detector's category
(``diversion.wechat``, ``model.diversion``) is a positive (confirmed) or a negative (false
positive) of that category's detector.

Then the thresholds are calibrated on the clean messages of the evaluation set's tuning half
(``CALIBRATION``, next to the data directory; skipped when it is absent): a detector's
finding there, after context judgement (``DetectorBank.detect_many``), raises its category's
threshold just above that message's probability, so that no clean tuning message of the
detector's roles is reported. The test half is never read.

Per category, a logistic regression on the shared TF-IDF features (``clf_text``), sigmoid-
calibrated on out-of-fold scores. The reporting threshold is chosen on out-of-fold
probabilities (each example scored by a model that did not see it): the lowest threshold
at which precision reaches ``PRECISION`` and at most ``MAX_FALSE_ALARM`` of the ordinary
simulated messages pass. Precision first: a supervisor's queue must stay believable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from audit.quality import clf_data, clf_text
from audit.quality.clf_data import DataError
from audit.quality.detectors import CATEGORIES, CATEGORY_ROLES, DetectorBank
from audit.quality.sim_messages import ordinary_messages
from audit.scan.evaluate import load_eval_set

NAME = "detectors"
DATA_FILE = "detector_examples.txt"
SIM_SEEDS = (201, 202)  # ordinary simulated messages trained on as negatives
# The classifiers' hand-written training chats of value 0 (service talk, refusals, questions,
# thanks) are negatives too: written like the seeds, they keep the detectors from learning
# "hand-written = violation". A text also among the seeds keeps its seed label.
CHAT_NEGATIVES = {"staff_discourtesy": "staff", "customer_negative": "customer"}
# ... except courteous sales talk that promises (seeded here as promise=1, with variants there)
NOT_NEGATIVES = frozenset({"chat:s-ok-salestalk"})
CHECK_SEED = 101  # the model card's false alarms: never trained on
# Out-of-fold precision among the seeds, whose negatives are look-alikes written to be hard
# (ordinary traffic holds far fewer of them), and the share of ordinary simulated messages
# over the threshold.
PRECISION = 0.8
MAX_FALSE_ALARM = 0.001
THRESHOLDS = tuple(round(0.5 + 0.01 * i, 2) for i in range(50))  # 0.50 ... 0.99
# the clean messages of this labelled set (relative to the data directory's parent) calibrate
# the thresholds; the calibrated grid goes past 0.99 (probabilities have DIGITS decimals)
CALIBRATION = Path("eval") / "v2" / "tuning.jsonl"
CALIBRATED = (*THRESHOLDS, 0.995, 0.999, 0.9995, 0.9999, 1.0, 1.01)  # 1.01: off
POSITIVE_SHARE = 0.1  # of the training weight, so that a few dozen seeds are heard
FOLDS = 5
# Weaker regularization and character 4-grams: held-out seed families (out of fold) are found
# more often at the same precision; phrases such as 不用实名 or 上下分找 weigh as a whole.
C = 4.0
MAX_CHAR_NGRAM = 4
CODE_FILES = ("clf_text.py", "clf_data.py", "detectors.py", "detect_train.py")
HEADER = re.compile(
    rf"^\[(?P<category>{'|'.join(CATEGORIES)})=(?P<value>[01]) (?P<role>staff|customer) "
    r"(?P<family>[a-z0-9-]+)\]$"
)
_RULE = re.compile(rf"^(?:model\.)?(?P<category>{'|'.join(CATEGORIES)})(?:\.[\w.-]+)?$")


@dataclass(frozen=True)
class Seed:
    category: str
    value: int
    role: str
    text: str
    source: str  # "seed", "supervisor" or "simulator"


@dataclass(frozen=True)
class DetectorMetrics:
    category: str
    positives: int
    negatives: int
    oof_roc_auc: float
    threshold: float
    oof_precision: float
    oof_recall: float
    check_messages: int  # ordinary simulated messages of the category's roles, never trained on
    check_false_alarms: int
    calibration_alarms: int = 0  # clean tuning messages that raised the threshold


def read_seeds(path: Path) -> list[Seed]:
    """The seed messages; a bad line is an error naming the file and line."""
    if not path.is_file():
        raise DataError(f"{path}: detector seed messages not found")
    out: list[Seed] = []
    header: re.Match[str] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            header = HEADER.match(line)
            if header is None:
                raise DataError(
                    f"{path}:{number}: bad section header {line!r} (expected "
                    f"[<category>=<0|1> <staff|customer> <family>], category one of "
                    f"{', '.join(CATEGORIES)})"
                )
            if header["role"] not in CATEGORY_ROLES[header["category"]]:
                raise DataError(
                    f"{path}:{number}: {header['category']} is detected in "
                    f"{' and '.join(sorted(CATEGORY_ROLES[header['category']]))} messages, "
                    f"not {header['role']} ones"
                )
            continue
        if header is None:
            raise DataError(f"{path}:{number}: message before the first section header")
        out.append(Seed(header["category"], int(header["value"]), header["role"], line, "seed"))
    return out


def read_supervisor(path: Path) -> list[Seed]:
    """Review labels of a detector's category; other labels (the classifiers') are skipped."""
    out: list[Seed] = []
    for row in clf_data.iter_labelled(path):
        match = _RULE.match(row.label)
        if match is None:
            continue
        category = match["category"]
        roles = CATEGORY_ROLES[category]
        if row.role is not None and row.role not in roles:
            continue  # e.g. a customer's listed diversion term: not what the detector reads
        role = row.role or sorted(roles)[0]
        out.append(Seed(category, row.value, role, row.text, "supervisor"))
    return out


def _simulated(seeds: tuple[int, ...]) -> list[Seed]:
    seen: set[tuple[str, str]] = set()
    out = []
    for seed in seeds:
        for m in ordinary_messages(seed):
            if (m.text, m.role) not in seen:
                seen.add((m.text, m.role))
                out.append(Seed("", 0, m.role, m.text, "simulator"))
    return out


def _examples(category: str, seeds: list[Seed]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts, labels and "is simulated" of one category's detector: its own seeds, and every
    other message of its roles as a negative (other categories' violations included)."""
    roles = CATEGORY_ROLES[category]
    labels: dict[str, int] = {}
    simulated: dict[str, bool] = {}
    for s in seeds:
        if s.role not in roles:
            continue
        value = s.value if s.category == category else 0
        # a text labelled both ways (a supervisor's correction) counts as its latest label
        if s.category == category or s.text not in labels:
            labels[s.text] = value
            simulated[s.text] = s.source == "simulator"
    texts = sorted(labels)
    return (
        texts,
        np.array([labels[t] for t in texts]),
        np.array([simulated[t] for t in texts]),
    )


def _weights(y: np.ndarray) -> np.ndarray:
    positives = float(y.sum())
    w = np.where(y == 1, POSITIVE_SHARE / positives, (1 - POSITIVE_SHARE) / (len(y) - positives))
    return np.asarray(w * len(y))


def _classifier(seed: int, cv: Any) -> CalibratedClassifierCV:
    base = LogisticRegression(C=C, solver="liblinear", max_iter=1000, random_state=seed)
    return CalibratedClassifierCV(base, method="sigmoid", ensemble=False, cv=cv)


def _fit(x: Any, y: np.ndarray, w: np.ndarray, seed: int) -> tuple[Any, np.ndarray]:
    """The calibrated detector and its out-of-fold probabilities: the sigmoid is fitted on
    out-of-fold decision values (``ensemble=False``), and the same values give each training
    message a probability from a model that did not see it."""
    folds = list(
        StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    )
    model = _classifier(seed, folds)
    model.fit(x, y, sample_weight=w)
    base = clone(model.estimator)
    decision = cross_val_predict(
        base, x, y, cv=folds, method="decision_function", params={"sample_weight": w}
    )
    calibrator = model.calibrated_classifiers_[0].calibrators[0]
    model.set_params(cv=FOLDS)  # fold indices would only bloat the artifact
    return model, np.asarray(calibrator.predict(decision))


def _threshold(y: np.ndarray, p: np.ndarray, simulated: np.ndarray) -> tuple[float, float, float]:
    """The lowest grid threshold meeting the precision and false-alarm bars (or the top one),
    with its out-of-fold precision and recall."""
    chosen = THRESHOLDS[-1]
    for t in THRESHOLDS:
        hit = p >= t
        if not hit.any():
            break
        precision = float(y[hit].mean())
        false_alarm = float(hit[simulated].mean()) if simulated.any() else 0.0
        if precision >= PRECISION and false_alarm <= MAX_FALSE_ALARM:
            chosen = t
            break
    hit = p >= chosen
    precision = float(y[hit].mean()) if hit.any() else 1.0
    recall = float(hit[y == 1].mean())
    return chosen, round(precision, 4), round(recall, 4)


def _calibrate(bank: DetectorBank, texts: list[str], roles: list[str | None]) -> dict[str, int]:
    """Raise each threshold above the clean calibration messages the detector still reports
    after context judgement; returns how many messages moved each category's threshold."""
    moved: dict[str, int] = {}
    while True:
        found = bank.detect_many(texts, roles)
        raised = False
        for category in CATEGORIES:
            scores = [f.score for fs in found for f in fs if f.category == category]
            if not scores:
                continue
            top = max(scores)
            bank.thresholds[category] = next(t for t in CALIBRATED if t > top)
            moved[category] = moved.get(category, 0) + len(scores)
            raised = True
        if not raised:
            return moved


def train_detectors(
    models_dir: Path,
    data_dir: Path,
    seed: int,
    extra: Path | None,
    hash_parts: Callable[[list[str]], str],
    environment: dict[str, str],
    format_: int,
) -> tuple[str, list[DetectorMetrics]]:
    """Build ``models/detectors.joblib`` with its metadata and card; returns the version."""
    seed_path = data_dir / DATA_FILE
    seeds = read_seeds(seed_path)
    files = [
        clf_data.DataFile(
            "seed messages", seed_path.name, clf_data.sha256_file(seed_path), len(seeds),
            sum(s.value for s in seeds),
        )
    ]  # fmt: skip
    supervisor = read_supervisor(extra) if extra is not None else []
    if extra is not None:
        files.append(
            clf_data.DataFile(
                "supervisor review labels", extra.name, clf_data.sha256_file(extra),
                len(supervisor), sum(s.value for s in supervisor),
            )
        )  # fmt: skip
    simulated = _simulated(SIM_SEEDS)
    chat: list[Seed] = []
    for label, role in CHAT_NEGATIVES.items():
        path = data_dir / f"{label}.train.jsonl"
        rows = [
            e
            for e in clf_data.read_labelled(path, label, "chat")
            if e.value == 0 and e.group not in NOT_NEGATIVES
        ]
        chat += [Seed("", 0, role, e.text, "chat") for e in rows]
        files.append(clf_data.describe(f"{label} training chats of value 0", path, rows))
    everything = seeds + supervisor + chat + simulated
    for category in CATEGORIES:
        if not any(s.category == category and s.value == 1 for s in everything):
            raise DataError(f"{seed_path}: no message of value 1 for {category}")

    features = clf_text.build_features(20000, 20000, 1)
    features.set_params(chars__ngram_range=(1, MAX_CHAR_NGRAM))
    vocabulary_texts = sorted({s.text for s in everything})
    features.fit(vocabulary_texts)
    classifiers: dict[str, Any] = {}
    thresholds: dict[str, float] = {}
    metrics: list[DetectorMetrics] = []
    check = ordinary_messages(CHECK_SEED)
    fitted: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for category in CATEGORIES:
        texts, y, is_sim = _examples(category, everything)
        x = features.transform(texts)
        w = _weights(y)
        model, oof = _fit(x, y, w, seed)
        classifiers[category] = model
        thresholds[category] = _threshold(y, oof, is_sim)[0]
        roles = CATEGORY_ROLES[category]
        check_texts = [m.text for m in check if m.role in roles]
        check_p = model.predict_proba(features.transform(check_texts))[:, 1]
        fitted[category] = (y, oof, np.round(check_p, 4))
    bank = DetectorBank(features, classifiers, thresholds)
    calibration = data_dir.parent / CALIBRATION
    calibrated: dict[str, int] = {}
    if calibration.is_file():
        clean = [m for m in load_eval_set(calibration) if not m.labels]
        calibrated = _calibrate(bank, [m.text for m in clean], [m.role for m in clean])
        files.append(
            clf_data.DataFile(
                "calibration: clean messages of the tuning half", calibration.name,
                clf_data.sha256_file(calibration), len(clean), 0,
            )
        )  # fmt: skip
    clf_text.slim(features)
    for category, (y, oof, check_p) in fitted.items():
        threshold = thresholds[category]
        hit = oof >= threshold
        metrics.append(
            DetectorMetrics(
                category=category,
                positives=int(y.sum()),
                negatives=int(len(y) - y.sum()),
                oof_roc_auc=round(float(roc_auc_score(y, oof)), 4),
                threshold=threshold,
                oof_precision=round(float(y[hit].mean()), 4) if hit.any() else 1.0,
                oof_recall=round(float(hit[y == 1].mean()), 4),
                check_messages=len(check_p),
                check_false_alarms=int((check_p >= threshold).sum()),
                calibration_alarms=calibrated.get(category, 0),
            )
        )

    params = {
        "seed": seed,
        "features": f"jieba word 1-2 grams and character 1-{MAX_CHAR_NGRAM} grams, TF-IDF, at "
        "most 20000 each",
        "classifier": f"LogisticRegression(C={C}, solver=liblinear) per category, sigmoid-"
        f"calibrated out of fold ({FOLDS} stratified folds); positives weigh "
        f"{POSITIVE_SHARE:.0%} of the training weight",
        "threshold": f"lowest of 0.50..0.99 with out-of-fold precision >= {PRECISION} and at "
        f"most {MAX_FALSE_ALARM:.1%} of ordinary simulated messages over it, then raised above "
        "every clean message of the tuning half still reported after context judgement",
        "simulator_seeds": list(SIM_SEEDS),
        "check_seed": CHECK_SEED,
    }
    data_sha = hash_parts([f.sha256 for f in files] + [f"simulator:{SIM_SEEDS}"])
    here = Path(__file__).parent
    code_sha = hash_parts([clf_data.sha256_file(here / name) for name in CODE_FILES])
    version = hash_parts([data_sha, code_sha, json.dumps(params, sort_keys=True)])[:12]
    artifact = models_dir / f"{NAME}.joblib"
    payload = {
        "format": format_,
        "name": NAME,
        "version": version,
        "data_sha256": data_sha,
        "sklearn": sklearn.__version__,
        "pipeline": bank,
    }
    joblib.dump(payload, artifact, compress=("zlib", 6))
    meta: dict[str, Any] = {
        "format": format_,
        "name": NAME,
        "version": version,
        "categories": {c: sorted(CATEGORY_ROLES[c]) for c in CATEGORIES},
        "thresholds": thresholds,
        "data": [asdict(f) for f in files],
        "simulated_negatives": len(simulated),
        "data_sha256": data_sha,
        "code_sha256": code_sha,
        "params": params,
        "metrics": [asdict(m) for m in metrics],
        "environment": environment,
        "artifact": {
            "file": artifact.name,
            "sha256": clf_data.sha256_file(artifact),
            "bytes": artifact.stat().st_size,
        },
    }
    (models_dir / f"{NAME}.json").write_text(
        json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    (models_dir / f"{NAME}.md").write_text(_card(meta, metrics), encoding="utf-8")
    return version, metrics


def _card(meta: dict[str, Any], metrics: list[DetectorMetrics]) -> str:
    rows = "\n".join(
        f"| `model.{m.category}` | {', '.join(meta['categories'][m.category])} | {m.positives} "
        f"| {m.negatives} | {m.oof_roc_auc:.4f} | {m.threshold:.2f} | {m.oof_precision:.4f} | "
        f"{m.oof_recall:.4f} | {m.check_false_alarms} / {m.check_messages} | "
        f"{m.calibration_alarms} |"
        for m in metrics
    )
    data = "\n".join(
        f"| {d['name']} | `{d['path']}` | {d['examples']} | {d['positives']} | "
        f"`{d['sha256'][:16]}` |"
        for d in meta["data"]
    )
    p = meta["params"]
    env = ", ".join(f"{k} {v}" for k, v in meta["environment"].items())
    return f"""# Model card: paraphrase detectors (`{NAME}`)

Version **{meta["version"]}** (a hash of the seed messages, the training code and the
parameters); format {meta["format"]}. Rebuilt by `audit train`; do not edit by hand.

## Purpose

One message-level detector per finding category for what the word lists cannot enumerate:
offering a personal account or "my own number", moving the talk elsewhere (私下找我,
走我自己的号), guarantees in words no list holds, insults without a listed word, threats to
escalate, asking for (or sending) codes, passwords and ID photos, offering gambling, drugs or
fake base stations. A detector reports a finding with rule `model.<category>`, severity medium, the
whole message as its span, its calibrated probability as the score and the explanation
`model <category> p=0.93`, when the probability reaches the category's threshold and the
word lists found nothing of that category in the message. Run by the scan stage and by
`audit inspect`.

## Data

| source | file | examples | positive (1) | sha256 |
|---|---|---:|---:|---|
{data}

Plus {meta["simulated_negatives"]} distinct ordinary messages of the simulator (seeds \
{", ".join(map(str, p["simulator_seeds"]))}) as negatives of every detector of their role. \
Each detector's negatives are also the other categories' seed messages of its roles.

## Algorithm

- Features: {p["features"]} (the normalization of `audit.quality.clf_text`).
- Classifier: {p["classifier"]}.
- Threshold: {p["threshold"]}, on out-of-fold probabilities of the training data (each
  message scored by a model that did not see it).
- Seed {p["seed"]}. Environment: {env}.

## Metrics

Out-of-fold on the training data; the last column counts ordinary simulated messages of the
detector's roles at or over the threshold (seed {p["check_seed"]}, never trained on); "tuning
alarms" counts the clean messages of the evaluation set's tuning half that the detector
reported after context judgement at its out-of-fold threshold, and that raised it above them.

| rule | roles | positive | negative | ROC-AUC | threshold | precision | recall | ordinary hits \
| tuning alarms |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|
{rows}

## Limitations

- The seeds are about a hundred hand-written messages per category, in a dozen or so
  families: the detectors catch wording near them, not every paraphrase. Recall is low by
  design; the threshold buys precision. Confirmed and rejected alerts (`audit train
  --with-reviews`) are the way to teach them real traffic.
- The out-of-fold figures come from the same seed families they were written with; the
  evaluation set of the scanner (`audit eval`) is the independent measure.
- One message at a time: no conversation context. A message of one normalized character
  (「人呢」) is never reported; the "ordinary hits" column counts probabilities before that
  and before context judgement.
"""
