"""The paraphrase detectors measured on seed families they never saw: leave-family-out
cross-validation of ``audit train``'s detectors.

The out-of-fold figures of the model card hold out single messages, whose siblings (the other
lines of their family, written together, often one sentence said five ways) stay in
training: they flatter. Here every family of the seed file (``[fraud=1 staff f4-cards]``)
falls into one of ``FOLDS`` folds as a whole; the ordinary simulated messages and the
classifiers' chats of value 0 are spread over the folds at random (seeded). Each fold is
scored by detectors trained as ``audit train`` trains them (same features, weights,
calibration and threshold choice) on the other folds; context judgement and the threshold
calibration on the tuning half are left out (probabilities only).

Per category: held-out families' positives found (recall at the threshold), look-alike
negatives of the category's roles reported (the families of value 0, false alarm rate),
other categories' violations reported as this one (confusion) and ordinary simulated
messages reported, with ROC-AUC over all held-out messages of the category's roles.

    python bench/detectors.py                 # tests/data/quality, seed 7
    python bench/detectors.py --folds 5 --seed 7
    python bench/detectors.py --only g8-      # the figures of some families only
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sklearn.metrics import roc_auc_score

from audit.quality import clf_data, clf_text
from audit.quality.detect_train import (
    CHAT_NEGATIVES,
    DATA_FILE,
    HEADER,
    MAX_CHAR_NGRAM,
    NOT_NEGATIVES,
    SIM_SEEDS,
    Seed,
    _examples,
    _fit,
    _simulated,
    _threshold,
    _weights,
)
from audit.quality.detectors import CATEGORIES, CATEGORY_ROLES


@dataclass(frozen=True)
class Item:
    seed: Seed
    group: str  # the seed family ("fraud=1 f4-cards"), or "" for a simulated or chat message


def load(data_dir: Path) -> list[Item]:
    items: list[Item] = []
    family = ""
    for raw in (data_dir / DATA_FILE).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            m = HEADER.match(line)
            assert m is not None, line
            family = f"{m['category']}={m['value']} {m['family']}"
            category, value, role = m["category"], int(m["value"]), m["role"]
            continue
        items.append(Item(Seed(category, value, role, line, "seed"), family))
    for label, role in CHAT_NEGATIVES.items():
        path = data_dir / f"{label}.train.jsonl"
        for e in clf_data.read_labelled(path, label, "chat"):
            if e.value == 0 and e.group not in NOT_NEGATIVES:
                items.append(Item(Seed("", 0, role, e.text, "chat"), ""))
    items += [Item(s, "") for s in _simulated(SIM_SEEDS)]
    return items


def folds_of(items: list[Item], folds: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    families = sorted({i.group for i in items if i.group})
    rng.shuffle(families)
    fold = {f: k % folds for k, f in enumerate(families)}
    return [fold[i.group] if i.group else rng.randrange(folds) for i in items]


@dataclass
class Tally:
    positives: int = 0
    found: int = 0
    lookalikes: int = 0
    lookalike_alarms: int = 0
    others: int = 0
    confused: int = 0
    ordinary: int = 0
    ordinary_alarms: int = 0


def run(data_dir: Path, folds: int, seed: int, only: str = "") -> None:
    items = load(data_dir)
    assignment = folds_of(items, folds, seed)
    tallies = {c: Tally() for c in CATEGORIES}
    scores: dict[str, list[tuple[int, float]]] = defaultdict(list)
    missed: dict[str, list[str]] = defaultdict(list)
    lookalike_texts: set[str] = set()
    alarmed_texts: set[str] = set()
    for k in range(folds):
        train = [i.seed for i, f in zip(items, assignment, strict=True) if f != k]
        held = [i for i, f in zip(items, assignment, strict=True) if f == k]
        features = clf_text.build_features(20000, 20000, 1)
        features.set_params(chars__ngram_range=(1, MAX_CHAR_NGRAM))
        features.fit(sorted({s.text for s in train}))
        for category in CATEGORIES:
            texts, y, is_sim = _examples(category, train)
            model, oof = _fit(features.transform(texts), y, _weights(y), seed)
            threshold = _threshold(y, oof, is_sim)[0]
            roles = CATEGORY_ROLES[category]
            mine = [i for i in held if i.seed.role in roles]
            if not mine:
                continue
            p = model.predict_proba(features.transform([i.seed.text for i in mine]))[:, 1]
            t = tallies[category]
            for item, prob in zip(mine, p, strict=True):
                s = item.seed
                if only and not item.group.split(" ")[-1].startswith(only):
                    continue
                hit = prob >= threshold
                positive = s.category == category and s.value == 1
                scores[category].append((int(positive), float(prob)))
                if positive:
                    t.positives += 1
                    t.found += hit
                    if not hit:
                        missed[category].append(f"{prob:.2f} {s.text}")
                elif s.source == "simulator":
                    t.ordinary += 1
                    t.ordinary_alarms += hit
                elif s.source == "seed" and s.value == 1:
                    t.others += 1
                    t.confused += hit
                else:
                    t.lookalikes += 1
                    t.lookalike_alarms += hit
                    lookalike_texts.add(s.text)
                    if hit:
                        alarmed_texts.add(s.text)
        print(f"fold {k + 1}/{folds} done", flush=True)
    total = Tally()
    print(
        f"\n{'category':<10} {'auc':>6} {'recall':>14} {'lookalike FA':>16} "
        f"{'confused':>14} {'ordinary FA':>16}"
    )
    for category in CATEGORIES:
        t = tallies[category]
        y, p = zip(*scores[category], strict=True)
        auc = roc_auc_score(y, p)
        print(
            f"{category:<10} {auc:>6.3f} {t.found:>4}/{t.positives:<4} {_r(t.found, t.positives)} "
            f"{t.lookalike_alarms:>4}/{t.lookalikes:<4} {_r(t.lookalike_alarms, t.lookalikes)} "
            f"{t.confused:>4}/{t.others:<4} {_r(t.confused, t.others)} "
            f"{t.ordinary_alarms:>4}/{t.ordinary:<5} {_r(t.ordinary_alarms, t.ordinary)}"
        )
        for name in vars(total):
            setattr(total, name, getattr(total, name) + getattr(t, name))
    print(
        f"{'all':<10} {'':>6} {total.found:>4}/{total.positives:<4} "
        f"{_r(total.found, total.positives)} {total.lookalike_alarms:>4}/{total.lookalikes:<4} "
        f"{_r(total.lookalike_alarms, total.lookalikes)} {total.confused:>4}/{total.others:<4} "
        f"{_r(total.confused, total.others)} {total.ordinary_alarms:>4}/{total.ordinary:<5} "
        f"{_r(total.ordinary_alarms, total.ordinary)}"
    )
    alarmed = len(alarmed_texts)
    print(
        f"look-alike messages reported by any detector: {alarmed}/{len(lookalike_texts)} "
        f"{_r(alarmed, len(lookalike_texts))}"
    )


def _r(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "  -  "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("tests/data/quality"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--only", default="", help="score only the seed families whose name starts so (g8-)"
    )
    args = parser.parse_args()
    run(args.data, args.folds, args.seed, args.only)


if __name__ == "__main__":
    main()
