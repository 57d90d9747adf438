"""A learned alternative to the context rules: a small logistic model over each hit's cues.

Features per hit are what the rules look at, made numeric: each cue kind that reaches the hit,
alone and crossed with the hit's category and the speaker's role, how close it is, and
whether it follows the hit. A model is trained on labelled hits (a hit overlapping a label of
its category is a violation, any other hit a false alarm) and decides like ``context.decide``:
a hit whose probability of being a violation falls under 0.5 is suppressed.

Only hits with at least one cue are the model's to judge; a hit without cues passes, as with
the rules, so the model cannot learn to silence a category wholesale. ``bench/context.py``
measures it against the rules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from audit.scan.context import SUPPRESS, Applied

NEAR = 2  # a cue this close (normalized characters) counts as adjacent


def features(category: str, role: str | None, applied: Sequence[Applied]) -> dict[str, float]:
    """The named features of one hit."""
    speaker = role or "unknown"
    out: dict[str, float] = {}
    for cue in applied:
        for name in (
            cue.kind,
            f"{cue.kind}:{category}",
            f"{cue.kind}:{category}:{speaker}",
            f"{cue.kind}:near" if cue.distance <= NEAR else f"{cue.kind}:far",
            f"{cue.kind}:after" if cue.after else f"{cue.kind}:before",
        ):
            out[name] = 1.0
    if applied:
        out[f"kinds:{min(len({a.kind for a in applied}), 3)}"] = 1.0
    return out


@dataclass(frozen=True)
class ContextModel:
    """Logistic weights by feature name; ``decide`` has the signature of ``context.decide``."""

    weights: dict[str, float]
    bias: float

    def probability(self, category: str, role: str | None, applied: Sequence[Applied]) -> float:
        """The probability that a hit with these cues is a violation."""
        z = self.bias + sum(
            self.weights.get(name, 0.0) * value
            for name, value in features(category, role, applied).items()
        )
        return 1.0 / (1.0 + math.exp(-z))

    def decide(
        self, category: str, role: str | None, applied: Sequence[Applied]
    ) -> tuple[str, Applied | None]:
        if not applied or self.probability(category, role, applied) >= 0.5:
            return "", None
        return SUPPRESS, min(applied, key=lambda a: a.distance)


@dataclass(frozen=True)
class LabelledHit:
    category: str
    role: str | None
    applied: tuple[Applied, ...]
    violation: bool


def train(hits: Iterable[LabelledHit], c: float = 1.0, seed: int = 0) -> ContextModel:
    """A logistic model on the hits that have cues (L2, ``c`` as in scikit-learn)."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    judged = [h for h in hits if h.applied]
    if len({h.violation for h in judged}) < 2:
        raise ValueError("training needs hits with cues of both kinds: violations and clean")
    vectorizer = DictVectorizer()
    x = vectorizer.fit_transform([features(h.category, h.role, h.applied) for h in judged])
    y = [h.violation for h in judged]
    model = LogisticRegression(C=c, random_state=seed, class_weight="balanced").fit(x, y)
    names = vectorizer.get_feature_names_out()
    weights = {str(n): float(w) for n, w in zip(names, model.coef_[0], strict=True) if w}
    return ContextModel(weights, float(model.intercept_[0]))


__all__ = ["ContextModel", "LabelledHit", "features", "train"]
