"""Checks a model card reports beyond held-out accuracy: a reliability table at the assumed
prior, the share of ordinary simulated messages over 0.5, and an out-of-domain ROC-AUC.

They answer the questions an operator asks before believing a score: "when it says 0.8, is
it right 8 times in 10 in traffic like mine?" and "how many of my ordinary chats will it
flag?". Figures are rounded so that a model card is byte-for-byte reproducible.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from audit.quality.sim_messages import ordinary_messages

Predict = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    examples: int
    share: float  # of all examples, weighted to the prior
    mean_predicted: float
    observed: float  # positive rate, weighted to the prior


@dataclass(frozen=True)
class BaseRate:
    seed: int
    messages: int
    over_half: float  # share of messages scored over 0.5
    conversations: int
    conversations_over_half: float  # share with at least one such message (the dashboard's)


def prior_weights(y: np.ndarray, prior: float | None) -> np.ndarray:
    """Per-example weights that make the positive share ``prior`` (ones when None); each
    class keeps its examples equal, and the weights sum to the number of examples."""
    weights = np.ones(len(y), dtype=float)
    if prior is None:
        return weights
    positives = float(y.sum())
    if positives == 0 or positives == len(y):
        raise ValueError("a prior needs examples of both classes")
    weights[y == 1] = prior / positives
    weights[y == 0] = (1 - prior) / (len(y) - positives)
    return weights * len(y)


def reliability(
    y: Sequence[int], p: np.ndarray, prior: float | None, edges: Sequence[float]
) -> list[ReliabilityBin]:
    """Predicted against observed per probability bin, the examples weighted to ``prior``."""
    labels = np.asarray(y)
    weights = prior_weights(labels, prior)
    total = float(weights.sum())
    out = []
    for i, (low, high) in enumerate(itertools.pairwise(edges)):
        last = i == len(edges) - 2
        mask = (p >= low) & ((p <= high) if last else (p < high))
        w = weights[mask]
        if not mask.any():
            out.append(ReliabilityBin(low, high, 0, 0.0, 0.0, 0.0))
            continue
        out.append(
            ReliabilityBin(
                low=low,
                high=high,
                examples=int(mask.sum()),
                share=round(float(w.sum()) / total, 4),
                mean_predicted=round(float(np.average(p[mask], weights=w)), 4),
                observed=round(float(np.average(labels[mask], weights=w)), 4),
            )
        )
    return out


def base_rate(predict: Predict, role: str, seed: int) -> BaseRate:
    """How much of a seeded simulated archive's ordinary ``role`` messages scores over 0.5."""
    rows = [m for m in ordinary_messages(seed) if m.role == role]
    p = predict([m.text for m in rows])
    flagged = {m.conversation for m, score in zip(rows, p, strict=True) if score > 0.5}
    conversations = {m.conversation for m in rows}
    return BaseRate(
        seed=seed,
        messages=len(rows),
        over_half=round(float((p > 0.5).mean()), 4),
        conversations=len(conversations),
        conversations_over_half=round(len(flagged) / len(conversations), 4),
    )


def roc_auc(y: Sequence[int], p: np.ndarray) -> float:
    return round(float(roc_auc_score(list(y), p)), 4)
